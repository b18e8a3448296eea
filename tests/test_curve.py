"""Deterministic loss curves (curve.py), save/load (io.py)."""

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd.curve import sum_of_exponentials
from volterra_sgd.exact import _mode_recursion_kernel

MODEL = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)


@pytest.mark.parametrize("alpha,beta,B", [(1.0, 0.7, 1), (0.7, 0.7, 4), (0.35, 0.45, 1)])
def test_closed_form_equals_step_recursion_on_same_representation(alpha, beta, B):
    model = vs.PLRF(alpha=alpha, beta=beta, v=2000, d=200)
    g = model.reference_learning_rate(0.5) / B
    r = np.unique(np.round(np.logspace(0, 6, 60)).astype(np.int64))
    curve = vs.loss_curve(model, r, learning_rate=g, batch_size=B)
    rep = sum_of_exponentials(model, learning_rate=g, batch_size=B)
    out = np.empty(r.size)
    rho = np.array(rep["forcing_weights"])
    assert _mode_recursion_kernel(rep["q"], rep["kernel_weights"], rep["limit_loss"], rho, 0,
                                  r, out) == 0
    np.testing.assert_allclose(curve.loss, out, rtol=1e-10)
    # forcing of the curve = forcing of the representation
    np.testing.assert_allclose(curve.forcing, vs.forcing_and_kernel(
        model, r, learning_rate=g, batch_size=B).forcing, rtol=1e-14)


def test_long_horizon_stable_and_converges_to_limit():
    g = MODEL.reference_learning_rate(0.5)
    r = np.unique(np.round(np.logspace(0, 12, 300)).astype(np.int64))
    c = vs.loss_curve(MODEL, r, learning_rate=g)
    assert np.all(np.isfinite(c.loss)) and np.all(c.loss > 0)
    assert np.all(np.diff(c.loss) <= 1e-14 * c.loss[:-1])
    assert c.loss[-1] == pytest.approx(c.limit_loss, rel=1e-13)
    assert c.limit_loss == pytest.approx(vs.limit_loss(MODEL) / (1 - c.kernel_norm), rel=1e-14)
    assert np.all(c.loss >= c.forcing * (1 - 1e-13))
    assert c.info.success and c.info.error_estimate < 1e-8


def test_error_estimate_bounds_true_error():
    g = MODEL.reference_learning_rate(0.5)
    r = np.unique(np.round(np.logspace(0, 8, 80)).astype(np.int64))
    a = vs.loss_curve(MODEL, r, learning_rate=g, rtol=1e-7)
    ref = vs.loss_curve(MODEL, r, learning_rate=g, rtol=1e-13)
    assert np.all(np.abs(a.loss - ref.loss) <= a.loss_error + 1e-15 * ref.loss)


def test_max_stable_learning_rate_of_model():
    gmax = vs.max_stable_learning_rate(MODEL, batch_size=2)
    vs.loss_curve(MODEL, [0, 10], learning_rate=0.999 * gmax, batch_size=2)
    with pytest.raises(vs.UnstableLearningRateError) as e:
        vs.loss_curve(MODEL, [0, 10], learning_rate=1.001 * gmax, batch_size=2)
    assert e.value.max_learning_rate == pytest.approx(gmax, rel=1e-10)


@pytest.mark.parametrize("ext", ["npz", "csv"])
def test_save_load_roundtrip(tmp_path, ext):
    c = vs.loss_curve(MODEL, [0, 3, 100, 10**9], learning_rate=MODEL.reference_learning_rate(0.3))
    path = vs.save_curve(c, tmp_path / f"curve.{ext}")
    back = vs.load_curve(path)
    np.testing.assert_array_equal(back.r, c.r)
    for key in ("loss", "forcing", "kernel", "loss_error"):
        np.testing.assert_array_equal(getattr(back, key), getattr(c, key))
    for key in c.parts:
        np.testing.assert_array_equal(back.parts[key], c.parts[key])
    assert back.model == c.model and back.learning_rate == c.learning_rate
    assert back.kernel_norm == c.kernel_norm and back.info == c.info
    if ext == "npz":
        with np.load(path, allow_pickle=False) as z:
            assert "version" in str(z["meta"])
    with pytest.raises(ValueError, match="npz or .csv"):
        vs.save_curve(c, tmp_path / "curve.txt")


def test_disk_cache_roundtrip(tmp_path):
    from volterra_sgd.forcing import _cached_measure

    g = MODEL.reference_learning_rate(0.5)
    r = [0, 10, 10**4]
    a = vs.loss_curve(MODEL, r, learning_rate=g, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    _cached_measure.cache_clear()
    b = vs.loss_curve(MODEL, r, learning_rate=g, cache_dir=tmp_path)  # loaded from disk
    assert _cached_measure.cache_info().currsize == 0
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.parts["Fpp"], b.parts["Fpp"])
    other = vs.PLRF(1.0, 0.7, 2000, 150)
    vs.loss_curve(other, r, learning_rate=g, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_success_reflects_the_error_estimate():
    # no hard-coded success: the same curve passes or fails depending on tol only
    model = vs.PLRF(alpha=1.0, beta=0.7, v=500, d=50)
    g = model.reference_learning_rate(0.5)
    r = [0, 10, 10**4]
    ok = vs.loss_curve(model, r, learning_rate=g)
    est = ok.info.error_estimate
    assert ok.info.success and ok.info.status == 0
    assert est == pytest.approx(np.max(ok.loss_error / ok.loss), rel=1e-15)
    assert est <= ok.options["tol"] == max(1e3 * ok.options["rtol"], 1e-6)
    with pytest.warns(vs.ConvergenceWarning, match="exceeds tol"):
        bad = vs.loss_curve(model, r, learning_rate=g, tol=0.5 * est, throw=False)
    assert not bad.info.success and bad.info.status == 1
    np.testing.assert_array_equal(bad.loss, ok.loss)
    with pytest.raises(vs.ConvergenceError, match="exceeds tol"):
        vs.loss_curve(model, r, learning_rate=g, tol=0.5 * est)
    with pytest.warns(vs.ConvergenceWarning, match="schedule"):
        sched = vs.loss_curve(model, r, learning_rate=lambda s: g / (1 + s / 100), tol=1e-12,
                              throw=False)
    assert not sched.info.success and 1e-12 < sched.info.error_estimate <= 1e-3


@pytest.mark.parametrize("r, match", [
    ([0, 1e20], r"r exceeds int64.*got max 1e\+20"),
    ([0, 10**20], r"r exceeds int64"),
    ([0, 1.5], r"whole numbers; got r\[1\] = 1.5$"),
    ([0, float("nan")], r"must be finite; got r\[1\] = nan$"),
])
def test_iterations_errors_name_the_problem(r, match):
    with pytest.raises(ValueError, match=match):
        vs.loss_curve(vs.PLRF(1.0, 0.7, 500, 50), r, learning_rate=0.1)
