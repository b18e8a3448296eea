"""Tests of fit_loss_curves (calibration on loss curves, docs/theory.md, Sec. 16)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd.calibration import _as_curves
from volterra_sgd.fitting import FittingWarning

# hidden truth of the noise-free case: exponents and nuisance scales
ALPHA, BETA = 0.9, 0.45
A_TRUE, G_TRUE, E_TRUE = 2.5, 0.35, 2e-4   # loss scale, learning rate (units of 1/tr D), E
SIZES = (16, 32, 64)
R = np.unique(np.round(np.logspace(0, 5, 40))).astype(np.int64)


def _curves(alpha=ALPHA, beta=BETA, sizes=SIZES, g=G_TRUE, A=A_TRUE, E=E_TRUE):
    """Independent reference: curves of vs.loss_curve at known parameters, as dicts."""
    runs = []
    for d in sizes:
        m = vs.PLRF(alpha, beta, 10 * d, d)
        c = vs.loss_curve(m, R, learning_rate=m.reference_learning_rate(g))
        runs.append({"d": d, "r": R, "loss": A * c.loss + E})
    return runs


@pytest.fixture(scope="module")
def exact_fit():
    # learning rate unknown to the fit (reference g = 0.5): the time scale must find 0.7
    return vs.fit_loss_curves(_curves(), grid=(4, 4), n_bootstrap=50, rng=1)


def test_recovers_known_parameters_from_deterministic_curves(exact_fit):
    fit = exact_fit
    assert fit.success, fit.message
    # noise-free curves: only the interpolation of log P in log t (~1e-6) and the quadrature
    # tolerance (1e-7) separate the model from the data
    assert abs(fit.alpha - ALPHA) < 1e-3
    assert abs(fit.beta - BETA) < 1e-3
    assert fit.loss_scale == pytest.approx(A_TRUE, rel=2e-3)
    assert fit.time_scale == pytest.approx(G_TRUE / 0.5, rel=2e-3)
    assert fit.irreducible_loss == pytest.approx(E_TRUE, rel=1e-2)
    assert fit.lr_scale == pytest.approx(G_TRUE, rel=2e-3)
    assert fit.chi2 < 1e-2                     # residuals << the 1% floor
    assert fit.phase == vs.phase(ALPHA, BETA)
    assert fit.exponents.eta == pytest.approx(vs.phase_exponents(fit.alpha, fit.beta).eta)
    lo, hi = fit.alpha_ci
    assert lo <= fit.alpha + 1e-9 and fit.alpha - 1e-9 <= hi


def test_predict_is_the_loss_curve_at_the_fitted_parameters(exact_fit):
    fit = exact_fit
    d, r = 128, np.array([0, 10, 1000, 10**5])
    pred = fit.predict(d, r)
    m = vs.PLRF(fit.alpha, fit.beta, round(fit.v_ratio * d), d)
    ref = vs.loss_curve(m, r, learning_rate=fit.lr_scale / m.trace_data_covariance, rtol=1e-9)
    np.testing.assert_allclose(pred.loss, fit.loss_scale * ref.loss + fit.irreducible_loss,
                               rtol=1e-10)
    assert pred.learning_rate == pytest.approx(ref.learning_rate, rel=1e-14)
    assert np.all(pred.lower <= pred.loss) and np.all(pred.loss <= pred.upper)
    # extrapolation to a size the fit never saw: against the truth at d = 128
    mt = vs.PLRF(ALPHA, BETA, 10 * d, d)
    truth = A_TRUE * vs.loss_curve(mt, r, learning_rate=mt.reference_learning_rate(G_TRUE)).loss
    np.testing.assert_allclose(pred.loss, truth + E_TRUE, rtol=5e-3)


def _with_learning_rates(runs, g=G_TRUE):
    """The same curves with the learning rate each was made with (model units)."""
    return [dict(run, learning_rate=vs.PLRF(ALPHA, BETA, 10 * run["d"], run["d"])
                 .reference_learning_rate(g)) for run in runs]


def test_known_learning_rates_fix_the_time_scale():
    runs = _with_learning_rates(_curves())
    fit = vs.fit_loss_curves(runs, grid=(4, 4), n_bootstrap=20, rng=1)
    assert not fit.time_scale_fitted
    assert fit.time_scale == 1.0 and fit.time_scale_ci == (1.0, 1.0)
    assert np.all(fit.boot[:, 2] == 0.0)
    assert abs(fit.alpha - ALPHA) < 1e-3 and abs(fit.beta - BETA) < 1e-3
    assert fit.loss_scale == pytest.approx(A_TRUE, rel=2e-3)
    assert fit.irreducible_loss == pytest.approx(E_TRUE, rel=1e-2)
    assert fit.lr_scale == pytest.approx(G_TRUE, rel=1e-6)   # the data's g (tr D at alpha_hat)
    assert "fixed: the curves' learning rates are known" in fit.summary()
    # forced free: the fitted tau is 1 (the learning rates given are the true ones)
    free = vs.fit_loss_curves(runs, grid=(4, 4), n_bootstrap=0, fit_time_scale=True)
    assert free.time_scale_fitted and free.time_scale == pytest.approx(1.0, rel=2e-3)
    # forced fixed without learning rates: tau = 1 means the reference g = lr_scale, so a
    # fit at lr_scale = G_TRUE is exact, and one at the default 0.5 is not
    fixed = vs.fit_loss_curves(_curves(), grid=(4, 4), n_bootstrap=0, fit_time_scale=False,
                               lr_scale=G_TRUE)
    assert not fixed.time_scale_fitted and abs(fixed.beta - BETA) < 1e-3
    assert fixed.chi2 < 1e-2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FittingWarning)
        wrong = vs.fit_loss_curves(_curves(), grid=(4, 4), n_bootstrap=0,
                                   fit_time_scale=False)
    assert wrong.chi2 > 100 * fixed.chi2
    with pytest.raises(TypeError, match="fit_time_scale"):
        vs.fit_loss_curves(runs, fit_time_scale="yes")


@pytest.mark.slow
def test_recovers_exponents_from_simulated_sgd():
    # lean simulated case: 3 sizes, 40 runs each, r <= 3e4; tolerance 0.1 (the 100-run study
    # at d = 32..512 with the 0.05 criterion is validation/curve_calibration.py)
    runs = []
    r = np.unique(np.round(np.logspace(0, 4.5, 30))).astype(np.int64)
    for d in (32, 64, 128):
        m = vs.PLRF(1.0, 0.7, 10 * d, d)
        runs.append(vs.simulate_sgd(m, r, learning_rate=m.reference_learning_rate(0.5),
                                    n_runs=40, rng=d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FittingWarning)
        fit = vs.fit_loss_curves(runs, grid=(4, 4), n_bootstrap=200, rng=0, irreducible=False)
    assert abs(fit.alpha - 1.0) < 0.1 and abs(fit.beta - 0.7) < 0.1, fit.summary()
    assert fit.irreducible_loss == 0.0
    assert fit.alpha_ci[0] < fit.alpha_ci[1] and fit.beta_ci[0] < fit.beta_ci[1]
    assert fit.boot.shape == (200, 5)          # runs resampled: no replicate dropped


def test_flops_axis_is_converted_to_iterations():
    c = _as_curves([{"d": 20, "flops": 20 * 4 * np.arange(1.0, 30), "loss": 1 / np.arange(1, 30),
                     "batch_size": 4},
                    {"d": 40, "r": np.arange(1.0, 30), "loss": 1 / np.arange(1, 30)}], 10.0)
    np.testing.assert_array_equal(c[0].r, np.arange(1.0, 30))
    assert c[0].v == 200 and c[1].batch_size == 1


def test_per_run_losses_give_the_standard_error():
    # a dict with per-run losses but no stderr: the standard error of their mean
    gen = np.random.default_rng(4)
    losses = np.exp(0.1 * gen.standard_normal((7, 29))) / np.arange(1, 30)
    c = _as_curves([{"d": 20, "r": np.arange(1.0, 30), "loss": losses.mean(axis=0),
                     "losses": losses},
                    {"d": 40, "r": np.arange(1.0, 30), "loss": 1 / np.arange(1, 30)}], 10.0)
    ref = [np.sqrt(np.sum((col - col.mean()) ** 2) / 6 / 7) for col in losses.T]
    np.testing.assert_allclose(c[0].stderr, ref, rtol=1e-12)
    assert np.all(c[1].stderr == 0.0)


def test_wide_intervals_warn_but_keep_success(tmp_path):
    # five runs per size, each off the true curve by a random level and tilt in log r:
    # the exponents are constrained to about +-0.05 only, which the fit must say
    gen = np.random.default_rng(3)
    runs = []
    for run in _with_learning_rates(_curves()):
        z = gen.standard_normal((5, 2))
        tilt = z[:, :1] + z[:, 1:] * np.log1p(run["r"]) / np.log(1e5)
        losses = run["loss"] * np.exp(0.3 * tilt)
        runs.append(dict(run, loss=losses.mean(axis=0), losses=losses))
    with pytest.warns(FittingWarning, match=r"intervals alpha \[.*wider than 0.1"):
        fit = vs.fit_loss_curves(runs, grid=(4, 4), n_bootstrap=50, rng=1)
    assert fit.success and fit.status == 0
    widths = np.diff(fit.alpha_ci)[0], np.diff(fit.beta_ci)[0]
    assert 0.1 < max(widths) < 0.5, widths
    _check_round_trip(fit, tmp_path / "wide.npz")     # a fit that carries per-run losses


def _check_round_trip(fit, path):
    back = vs.load_curve_fit(fit.save(path))
    for f in dataclasses.fields(vs.CurveFit):
        a, b = getattr(fit, f.name), getattr(back, f.name)
        if f.name == "_curves":
            assert len(a) == len(b)
            for ca, cb in zip(a, b, strict=True):
                for g in dataclasses.fields(ca):
                    x, y = getattr(ca, g.name), getattr(cb, g.name)
                    assert (x is None and y is None) or np.array_equal(x, y), g.name
        elif isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        elif isinstance(a, float) and math.isnan(a):
            assert math.isnan(b)
        else:
            assert a == b, f.name
    np.testing.assert_array_equal(back.predict(100, [0, 10, 1000]).loss,
                                  fit.predict(100, [0, 10, 1000]).loss)
    assert back.summary() == fit.summary()


def test_save_and_load_round_trip_and_corrupt_files(exact_fit, tmp_path):
    _check_round_trip(exact_fit, tmp_path / "fit.npz")
    with pytest.raises(ValueError, match=r"\.npz"):
        exact_fit.save(tmp_path / "fit.json")
    raw = (tmp_path / "fit.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        vs.load_curve_fit(tmp_path / "cut.npz")
    with np.load(tmp_path / "fit.npz") as z:
        parts = {k: z[k] for k in z.files}
    np.savez(tmp_path / "bad.npz", **dict(parts, boot=parts["boot"][:, :3]))
    with pytest.raises(ValueError, match="'result.boot'.*5 columns"):
        vs.load_curve_fit(tmp_path / "bad.npz")
    co = vs.compute_optimal(0.7, 0.7, d_values=[16, 23, 32], max_flops=1e5, n_boot=0,
                            chinchilla=False, n_jobs=1)
    with pytest.raises(ValueError, match="expected 'CurveFit'"):
        vs.load_curve_fit(co.save(tmp_path / "co.npz"))


def test_misfit_beyond_the_errors_warns():
    # the d = 64 curve made at a learning rate 3.5 times smaller and none given: one time
    # scale cannot describe all three curves, and chi2 (2 % errors) must say so
    runs = _curves()
    m = vs.PLRF(ALPHA, BETA, 640, 64)
    c = vs.loss_curve(m, R, learning_rate=m.reference_learning_rate(0.1))
    runs[2] = dict(runs[2], loss=A_TRUE * c.loss + E_TRUE)
    runs = [dict(run, stderr=0.02 * run["loss"]) for run in runs]
    with pytest.warns(FittingWarning, match="chi2 = .* degrees of freedom"):
        fit = vs.fit_loss_curves(runs, grid=(4, 4), n_bootstrap=0)
    assert fit.chi2 > 2 * (fit.n_points - 5)
    # the consistent curves with the same errors: no such warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", FittingWarning)
        ok = vs.fit_loss_curves([dict(run, stderr=0.02 * run["loss"]) for run in _curves()],
                                grid=(4, 4), n_bootstrap=0)
    assert ok.chi2 < 1.0


def _ok(d, n=30):
    r = np.unique(np.round(np.logspace(0, 4, n)))
    return {"d": d, "r": r, "loss": 1.0 / (1.0 + r) ** 0.5}


@pytest.mark.parametrize("runs,match", [
    ([_ok(32)], "two or more model sizes"),
    ([_ok(32), dict(_ok(64), loss=np.r_[np.nan, _ok(64)["loss"][1:]])], "NaN"),
    ([_ok(32), dict(_ok(64), loss=-_ok(64)["loss"])], "positive"),
    ([_ok(32), _ok(64, n=4)], "too few points"),
    ([_ok(32), dict(_ok(64), r=_ok(64)["r"][::-1])], "increasing"),
    ([{"d": d, "r": np.arange(1.0, 9), "loss": 1 - np.arange(1.0, 9) / 100} for d in (8, 16)],
     "too short to constrain beta"),
    ([dict(_ok(d), loss=0.9 + 0.1 / np.sqrt(1.0 + _ok(d)["r"])) for d in (8, 16)],
     "falls by 20 %"),                     # four decades, but a fall of 7 % only
    ([_ok(32), dict(_ok(64), loss=_ok(64)["loss"][::-1])], "ends above"),
    ([_ok(32), dict(_ok(64), flop=1)], "unknown keys"),
    ([_ok(32), {"d": 64, "loss": [1.0]}], "one of 'r' or 'flops'"),
])
def test_bad_input_raises_with_the_reason(runs, match):
    with pytest.raises(ValueError, match=match):
        vs.fit_loss_curves(runs)


def test_bad_arguments():
    with pytest.raises(TypeError, match="runs"):
        vs.fit_loss_curves("curves.csv")
    with pytest.raises(TypeError, match=r"runs\[1\]"):
        vs.fit_loss_curves([_ok(32), (64, [1], [1])])
    with pytest.raises(ValueError, match="grid"):
        vs.fit_loss_curves([_ok(32), _ok(64)], grid=(1, 5))
    with pytest.raises(ValueError, match="bounds"):
        vs.fit_loss_curves([_ok(32), _ok(64)], bounds=((1.0, 0.5), (0.1, 1.0)))
    with pytest.raises(ValueError, match="n_bootstrap"):
        vs.fit_loss_curves([_ok(32), _ok(64)], n_bootstrap=-1)


def test_non_monotone_curve_warns_with_the_place():
    bumpy = _ok(64)
    loss = bumpy["loss"].copy()
    loss[10] *= 1.5
    with pytest.warns(FittingWarning, match=r"not monotone.*r = "):
        with pytest.raises(ValueError, match="two or more"):   # stop before the fit
            vs.fit_loss_curves([dict(bumpy, loss=loss)])


def test_estimate_on_the_box_edge_warns():
    # truth alpha = 0.9 outside a box that ends at 0.7: status 1 and a FittingWarning
    with pytest.warns(FittingWarning, match="edge of the search box"):
        fit = vs.fit_loss_curves(_curves(), bounds=((0.4, 0.7), (0.1, 1.0)), grid=(2, 2),
                                 n_bootstrap=0)
    assert fit.status == 1 and not fit.success
    assert math.isnan(fit.alpha_ci[0])


def test_cli_fit_curves(tmp_path, capsys, exact_fit):
    from volterra_sgd.cli import main

    rows = [(run["d"], r, loss, 0.01 * loss) for run in _curves()
            for r, loss in zip(run["r"], run["loss"], strict=True)]
    np.savetxt(tmp_path / "c.csv", np.array(rows), delimiter=",", header="d,r,loss,stderr",
               comments="")
    assert main(["fit", "--curves", str(tmp_path / "c.csv"), "--n-boot", "20",
                 "--plot", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "3 curves (d = 16, 32, 64)" in out and f"phase {vs.phase(ALPHA, BETA)}" in out
    assert f"alpha            = {exact_fit.alpha:.4g}" in out
    assert (tmp_path / "c.png").stat().st_size > 10_000
    np.savetxt(tmp_path / "bad.csv", np.array(rows)[:, :3], delimiter=",", header="d,x,loss",
               comments="")
    assert main(["fit", "--curves", str(tmp_path / "bad.csv")]) == 2
    assert "header must name the columns" in capsys.readouterr().err
    # a learning_rate column fixes the time scale (unless --fit-time-scale yes)
    rows = [(run["d"], r, loss, run["learning_rate"]) for run in _with_learning_rates(_curves())
            for r, loss in zip(run["r"], run["loss"], strict=True)]
    np.savetxt(tmp_path / "lr.csv", np.array(rows), delimiter=",",
               header="d,r,loss,learning_rate", comments="")
    assert main(["fit", "--curves", str(tmp_path / "lr.csv"), "--n-boot", "0",
                 "--save", str(tmp_path / "lr.npz")]) == 0
    out = capsys.readouterr().out
    assert "time scale tau   = 1  (fixed" in out and f"phase {vs.phase(ALPHA, BETA)}" in out
    saved = vs.load_curve_fit(tmp_path / "lr.npz")
    assert saved.summary() in out and not saved.time_scale_fitted
    assert main(["fit", "--data", str(tmp_path / "lr.csv"), "--save",
                 str(tmp_path / "x.npz")]) == 2
    assert "--save: only the curve route" in capsys.readouterr().err
    rows[0] = rows[0][:3] + (2 * rows[0][3],)
    np.savetxt(tmp_path / "lr2.csv", np.array(rows), delimiter=",",
               header="d,r,loss,learning_rate", comments="")
    assert main(["fit", "--curves", str(tmp_path / "lr2.csv")]) == 2
    assert "2 different learning rates" in capsys.readouterr().err


def test_trial_points_whose_quadrature_fails_are_stepped_past(monkeypatch):
    # a ConvergenceError of the spectral measure at a trial point (here every alpha > 1.5,
    # which the coarse grid visits) makes that point infeasible instead of ending the fit
    import volterra_sgd.forcing as forcing
    from volterra_sgd.exceptions import ConvergenceError

    real = forcing.deterministic_measure

    def failing(model, **kw):
        if model.alpha > 1.5:
            raise ConvergenceError("m(x + i0) failed (test)")
        return real(model, **kw)

    monkeypatch.setattr(forcing, "deterministic_measure", failing)
    fit = vs.fit_loss_curves(_curves(), grid=(4, 4), n_bootstrap=0)
    assert fit.success and abs(fit.alpha - ALPHA) < 1e-3 and abs(fit.beta - BETA) < 1e-3
