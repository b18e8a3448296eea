"""Tests of volterra_sgd.data_limited: the data-limited frontier and Kaplan's L(N, D) fit.

References: the max-min definition of the frontier exponents evaluated by brute force on a
grid of allocations; a brute-force grid over (N, ridge) at fixed compute on the ridge route of
the equivalent (independent of the optimiser's kappa route); the closed-form exponents of
ridge_scaling_exponents; a synthetic surface of the exact Kaplan form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd.data_limited import _fit_kaplan, _kaplan_law
from volterra_sgd.ridge import _evaluate, _Spectrum


# ------------------------------------------------------------------ derived exponents
@pytest.mark.parametrize("alpha,beta,regime", [(1.0, 0.3, "balanced"), (0.75, 2.0, "cross"),
                                               (0.8, 0.9, "cross"), (1.5, 1.2, "square-root"),
                                               (1.0, 0.7, "marginal"), (2.0, 0.1, "balanced")])
def test_derived_exponents_solve_the_max_min_problem(alpha, beta, regime):
    """eta = max_x min(a x, c (1 - x), (a - 1)(1 - x) + x) by brute force over x."""
    ex = vs.data_limited_exponents(alpha, beta)
    ref = vs.ridge_scaling_exponents(alpha, beta)
    a, c = ref.features, ref.samples
    assert (ex.features, ex.samples, ex.regime) == (a, c, regime)
    x = np.linspace(0.0, 1.0, 200_001)
    val = np.minimum(np.minimum(a * x, c * (1 - x)), (a - 1) * (1 - x) + x)
    assert ex.loss == pytest.approx(val.max(), abs=1e-5)
    if regime != "marginal":  # there the max is attained on an interval
        assert ex.params == pytest.approx(x[np.argmax(val)], abs=1e-4)
    else:
        assert ex.params == pytest.approx(c / (a + c), abs=1e-12)  # the additive next order
    assert ex.data == pytest.approx(1.0 - ex.params, abs=1e-15)
    assert ex.additive_params == pytest.approx(c / (a + c))
    assert ex.additive_loss == pytest.approx(a * c / (a + c))
    assert ex.loss <= ex.additive_loss + 1e-12


# --------------------------------------------------------------------- the frontier
def test_frontier_point_against_brute_force_grid():
    """At C = 1e4 the optimum over (N, ridge) on a grid of the ridge route (21 N x 36 ridges)
    is not below the frontier's loss and lies within two grid steps in N."""
    model = vs.PLRF(1.0, 0.7, 3000, 1, noise_variance=1e-5)
    c = 1e4
    fr = vs.data_limited_frontier(model, [c, 2 * c], n_boot=0)
    spec = _Spectrum(model)
    logn = np.linspace(math.log(fr.n_features[0]) - 0.5, math.log(fr.n_features[0]) + 0.5, 21)
    ridges = np.concatenate([[0.0], np.geomspace(1e-9, 1e-2, 36)])
    best = np.array([min(_evaluate(spec, math.exp(x), c / math.exp(x), r).loss
                         for r in ridges) for x in logn])
    i = int(np.argmin(best))
    assert fr.loss[0] <= best[i] * (1 + 1e-9)
    assert fr.loss[0] >= best[i] * (1 - 0.02)  # ridge grid: 58 % steps
    assert abs(math.log(fr.n_features[0]) - logn[i]) <= 2 * (logn[1] - logn[0])
    np.testing.assert_allclose(fr.n_features * fr.n_samples, fr.compute, rtol=1e-12)
    assert fr.theory is None and math.isnan(fr.max_deviation)  # noisy: no derived exponents
    np.testing.assert_allclose(fr.total_loss, fr.loss + 1e-5, rtol=1e-15)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.3), (0.75, 2.0)])
def test_frontier_exponents_match_the_derived_ones(alpha, beta):
    """C in [1e5, 1e7] (5 points): fitted xi_N, xi_T, eta within 0.03 of Eq. (19.5).

    (0.75, 2.0) is the case where the additive allocation (19.4) is wrong by 0.14 in eta.
    """
    fr = vs.data_limited_frontier((alpha, beta), np.logspace(5, 7, 5), n_boot=50, rng=1)
    th = fr.theory
    assert fr.max_deviation <= 0.03
    assert abs(fr.params_fit.exponent - th.params) <= 0.03
    assert abs(fr.loss_fit.exponent - th.loss) <= 0.03
    lo, hi = fr.loss_fit.exponent_ci
    assert lo <= fr.loss_fit.exponent <= hi
    if th.regime == "cross":
        assert abs(fr.loss_fit.exponent - th.additive_loss) > 0.1
    assert fr.params_fit.exponent + fr.data_fit.exponent == pytest.approx(1.0, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.3), (0.75, 2.0), (1.5, 1.2), (1.0, 0.7)])
def test_frontier_exponents_full_window_slow(alpha, beta):
    """The documented window C in [1e5, 1e9] for the four regimes: within 0.03."""
    fr = vs.data_limited_frontier((alpha, beta), n_boot=0)
    assert fr.max_deviation <= 0.03, (fr.params_fit.exponent, fr.loss_fit.exponent,
                                      fr.theory)


def test_frontier_bad_input():
    with pytest.raises(ValueError, match="compute"):
        vs.data_limited_frontier((1.0, 0.7), [1e5])
    with pytest.raises(ValueError, match="compute"):
        vs.data_limited_frontier((1.0, 0.7), [1e6, 1e5])
    with pytest.raises(ValueError, match="compute"):
        vs.data_limited_frontier((1.0, 0.7), [2.0, 1e5])
    with pytest.raises(ValueError, match="n_boot"):
        vs.data_limited_frontier((1.0, 0.7), [1e4, 1e5], n_boot=-1)
    with pytest.raises(TypeError, match="model"):
        vs.data_limited_frontier("plrf", [1e4, 1e5])


# ------------------------------------------------------------------------ Kaplan L(N, D)
def test_kaplan_fit_recovers_an_exact_kaplan_surface():
    ns, ts = np.geomspace(50, 5000, 6), np.geomspace(80, 8000, 5)
    theta = np.array([math.log(30.0), math.log(5e3), 0.7, 0.35])
    logn, logd = np.meshgrid(np.log(ns), np.log(ts), indexing="ij")
    res = _fit_kaplan(ns, ts, _kaplan_law(theta, logn, logd))
    np.testing.assert_allclose(res.x, theta, rtol=1e-7)


def test_kaplan_fit_on_the_ridge_surface():
    ns = ts = [100, 300, 1000, 3000]
    good = vs.kaplan_overfitting_fit((1.0, 0.3), ns, ts)   # a = c: no cross term, fits well
    bad = vs.kaplan_overfitting_fit((0.75, 2.0), ns, ts)   # cross term T^(1-a)/N: it does not
    for fit in (good, bad):
        assert fit.success
        np.testing.assert_allclose(fit.fitted, fit.predict(np.asarray(ns)[:, None],
                                                           np.asarray(ts)[None, :]),
                                   rtol=1e-12)
        assert fit.max_relative_residual == pytest.approx(
            np.max(np.abs(fit.fitted / fit.loss - 1)), rel=1e-12)
    assert good.max_relative_residual < 0.05 < bad.max_relative_residual
    assert good.alpha_n == pytest.approx(good.features, abs=0.15)
    assert good.alpha_d == pytest.approx(good.samples, abs=0.15)
    # the surface is the optimal-ridge loss
    assert good.loss[1, 2] == pytest.approx(vs.optimal_ridge((1.0, 0.3), 300, 1000).loss,
                                            rel=1e-12)


def test_kaplan_fit_bad_input():
    with pytest.raises(ValueError, match="ridge"):
        vs.kaplan_overfitting_fit((1.0, 0.7), [10, 20], [10, 20], ridge="best")
    with pytest.raises(ValueError, match="interpolation peak"):
        vs.kaplan_overfitting_fit((1.0, 0.7), [10, 20], [10, 20], ridge=0.0)
    with pytest.raises(ValueError, match="n_features"):
        vs.kaplan_overfitting_fit((1.0, 0.7), [0.5, 20], [10, 20])
    with pytest.raises(ValueError, match="n_samples"):
        vs.kaplan_overfitting_fit((1.0, 0.7), [10, 20], [10])
