"""Tests of volterra_sgd.critical_batch (critical batch size, Eqs. (18.1)-(18.4))."""

import math

import numpy as np
import pytest

import volterra_sgd as vs
from tests.naive import naive_volterra
from volterra_sgd.critical_batch import fit_hyperbola, steps_to_targets


def _one_mode_errors(ppd):
    """Largest relative error of S against the closed form of a d = 1 model (S > 100)."""
    model = vs.PLRF(1.0, 0.7, v=3, d=1)
    W = np.array([[0.8], [0.5], [0.3]])
    spec = vs.embedding_spectrum(model, W)
    lam, w, F0 = spec.eigenvalues[0], spec.weights[0], spec.limit_loss
    targets = np.array([0.3, 0.05, 0.01, 0.003])
    Bs, phis = [1, 2, 8, 32], [0.001, 0.003, 0.01]
    res = vs.critical_batch_size(model, targets, embedding=W, batch_sizes=Bs, lr_fractions=phis,
                                 max_steps=1e6, points_per_decade=ppd)
    err = 0.0
    for ib, B in enumerate(Bs):
        gmax = 2.0 / ((B + 2) * lam)                        # ||K|| = 1 for one mode
        assert res.max_learning_rates[ib] == pytest.approx(gmax, rel=1e-12)
        for jf, phi in enumerate(phis):
            # P(r) = P(inf) + (P0 - P(inf)) nu^r, nu = q + gamma^2 B lambda^2 (one pole)
            g = phi * gmax
            q = 1 - 2 * g * B * lam + g * g * B * (B + 1) * lam**2
            kap = g * g * B * lam**2
            pinf = F0 / (1 - kap / (1 - q))
            S = np.log((targets - pinf) / (w + F0 - pinf)) / np.log(q + kap)
            big = S > 100                                   # log-spaced part of the grid
            err = max(err, float(np.max(np.abs(res.steps_all[big, ib, jf] / S[big] - 1))))
    # the largest rate of this grid is the fastest; E = B S
    np.testing.assert_allclose(res.learning_rates, 0.01 * np.ones((4, 1))
                               * res.max_learning_rates[None, :], rtol=1e-15)
    np.testing.assert_allclose(res.examples, res.steps * np.array(Bs)[None, :], rtol=1e-15)
    return err


def test_one_mode_closed_form_and_interpolation_order():
    """Exact S(B) of a one-eigenvalue model; the PCHIP error falls ~8x per doubling."""
    e20, e40 = _one_mode_errors(20), _one_mode_errors(40)
    assert e40 < 1e-4                                      # measured 4.0e-5
    assert e40 < e20 / 5                                   # measured 3.2e-4 -> 4.0e-5


def test_steps_match_brute_force_integer_crossings():
    """Continuous S against the first integer r with P(r) <= L of the literal recursion."""
    model = vs.PLRF(1.0, 0.7, v=24, d=6)
    W = model.sample_embedding(rng=3)
    spec = vs.embedding_spectrum(model, W)
    targets = np.array([0.5, 0.2, 0.1])                    # P(inf) >= 0.052 at d = 6
    Bs, phis = [1, 3, 10], [0.1, 0.3, 0.9]
    res = vs.critical_batch_size(model, targets, embedding=spec, batch_sizes=Bs,
                                 lr_fractions=phis, max_steps=1000, points_per_decade=25)
    lam, wk = spec.eigenvalues, spec.weights
    rr = np.arange(1001)
    for ib, B in enumerate(Bs):
        for jf, phi in enumerate(phis):
            g = phi * res.max_learning_rates[ib]
            q = 1 - 2 * g * B * lam + g * g * B * (B + 1) * lam**2
            F = spec.limit_loss + (wk[None, :] * q[None, :] ** rr[:, None]).sum(1)
            K = (g * g * B * lam[None, :] ** 2 * q[None, :] ** rr[:, None]).sum(1)
            P = naive_volterra(F, K)
            for it, L in enumerate(targets):
                S = res.steps_all[it, ib, jf]
                if not np.any(P <= L):
                    assert S == math.inf
                    continue
                first = int(np.flatnonzero(P <= L)[0])
                assert first - 1 < S <= first + 1e-9, (B, phi, L, S, first)
    np.testing.assert_array_equal(res.steps, res.steps_all.min(axis=2))


def test_steps_to_targets_interpolation_order():
    """PCHIP in log r: a pure power law is inverted exactly, a curved one to ~1e-6."""
    r = np.r_[0, np.unique(np.round(np.logspace(0, 6, 121)))]
    S = steps_to_targets(r, 2.0 * np.maximum(r, 1.0) ** -0.7, [0.1, 1e-3])
    np.testing.assert_allclose(S, (np.array([0.1, 1e-3]) / 2.0) ** (-1 / 0.7), rtol=1e-10)
    loss = 1e-3 + 1.0 / (1.0 + r / 50.0)
    L = np.array([0.5, 0.01, 0.002])
    np.testing.assert_allclose(steps_to_targets(r, loss, L), 50.0 * (1 / (L - 1e-3) - 1),
                               rtol=1e-5)
    assert steps_to_targets(r, loss, [5e-4])[0] == math.inf


def test_hyperbola_fit_recovers_exact_hyperbola():
    B = np.array([1, 2, 4, 8, 16, 64, 256.0])
    Smin, Emin, rms, mx, ok = fit_hyperbola(B, 120.0 + 900.0 / B)
    assert ok and rms < 1e-12 and mx < 1e-12
    assert Smin == pytest.approx(120.0, rel=1e-10) and Emin == pytest.approx(900.0, rel=1e-10)
    # on the hyperbola (S/Smin - 1)(E/Emin - 1) = 1
    S = 120.0 + 900.0 / B
    np.testing.assert_allclose((S / Smin - 1) * (B * S / Emin - 1), 1.0, rtol=1e-9)


def test_critical_batch_grows_as_loss_falls_small_model():
    res = vs.critical_batch_size(vs.PLRF(1.0, 0.7, 1000, 100), [1e-2, 3e-3, 1.5e-3],
                                 batch_sizes=[1, 2, 4, 16, 64, 256],
                                 lr_fractions=[0.3, 0.5, 0.7, 0.9])
    assert res.success and res.status == 0
    assert np.all(np.diff(res.critical_batch_size) > 0)
    assert res.exponent > 0 and np.all(res.hyperbola_residual < 0.05)
    # B_crit = E_min / S_min, and the minima bound the measured pairs from below (hyperbola)
    np.testing.assert_allclose(res.critical_batch_size, res.min_examples / res.min_steps)
    assert np.all(res.min_steps < res.steps.min(axis=1) * 1.05)
    assert np.all(res.min_examples < res.examples.min(axis=1) * 1.05)


@pytest.mark.slow
def test_acceptance_d400():
    """B_crit(L) increases as L falls at (1.0, 0.7), d = 400; hyperbola residual < 5%."""
    res = vs.critical_batch_size(vs.PLRF(1.0, 0.7, 4000, 400), [1e-2, 3e-3, 1e-3, 3e-4, 1e-4],
                                 points_per_decade=20)
    assert res.success
    assert np.all(np.diff(res.critical_batch_size) > 0)
    assert 0.0 < res.exponent_ci[0] < res.exponent < res.exponent_ci[1]
    assert np.all(res.hyperbola_residual < 0.05)


@pytest.mark.parametrize("kwargs,match", [
    ({"target_losses": [2.0]}, "below the initial loss"),
    ({"target_losses": [-1.0]}, "target_losses"),
    ({"batch_sizes": [1, 2]}, "batch_sizes"),
    ({"batch_sizes": [1, 2, 2.5]}, "batch_sizes"),
    ({"lr_fractions": [0.5, 1.0]}, "lr_fractions"),
    ({"optimizer": "heavy-ball"}, "optimizer"),
    ({"max_steps": 5}, "max_steps"),
    ({"target_losses": [1e-9]}, "not reached"),
])
def test_validation(kwargs, match):
    args = {"target_losses": [0.1], "batch_sizes": [1, 2, 4], "lr_fractions": [0.5],
            "max_steps": 1e3}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        vs.critical_batch_size(vs.PLRF(1.0, 0.7, 100, 10), **args)


def test_cli_writes_table_summary_and_figures(tmp_path, capsys):
    import json

    from volterra_sgd.cli import main

    out = tmp_path / "cb"
    assert main(["critical-batch", "--alpha", "1.0", "--beta", "0.7", "--d", "20",
                 "--targets", "0.1", "0.03", "--batch-sizes", "1", "4", "16",
                 "--lr-fractions", "0.5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "B_crit" in text
    summ = json.loads((out / "critical_batch.json").read_text())
    res = vs.critical_batch_size(vs.PLRF(1.0, 0.7, 200, 20), [0.1, 0.03],
                                 batch_sizes=[1, 4, 16], lr_fractions=[0.5])
    np.testing.assert_allclose(summ["critical_batch_size"], res.critical_batch_size)
    rows = np.loadtxt(out / "critical_batch.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(rows[:, 2], res.steps.ravel())
    assert (out / "critical_batch.png").exists() and (out / "critical_batch_size.pdf").exists()
    # one-line errors naming the options, status 2
    assert main(["critical-batch", "--alpha", "1.0", "--beta", "0.7", "--d", "20",
                 "--targets", "1e-9", "--batch-sizes", "1", "2", "4", "--lr-fractions", "0.5",
                 "--max-steps", "1e4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--targets" in err and "--max-steps" in err
    assert main(["critical-batch", "--alpha", "1", "--beta", "0.7", "--d", "20", "--targets",
                 "0.1", "--lr-fractions", "1.5", "--out", str(out)]) == 2
