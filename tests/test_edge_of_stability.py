"""Accuracy and honest error estimates near the largest stable learning rate (issue 12).

At gamma -> gamma*, 1 - ||K|| -> 0 and P(inf) = F0 / (1 - ||K||) dwarfs P(r): the plain closed
form P(inf) + sum_i R_i nu_i^r cancels catastrophically (it returned P(0) = 3.9 P(0) with
success=True).  Every route must now either be accurate to its tolerance at every requested r
or say that it is not (success=False, a warning, ConvergenceError with throw=True), and its
``loss_error`` must bound the true error.  References: exact matrix powers of the mode
recursion in mpmath, the mode recursion in double on the same representation, and the curve
on a finer quadrature.
"""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd._secular import norm_sensitivity, solve_exponential_volterra
from volterra_sgd.curve import sum_of_exponentials
from volterra_sgd.exact import _mode_recursion_kernel, embedding_spectrum

FRACTIONS = [0.5, 0.99, 1 - 1e-4, 1 - 1e-6, 1 - 1e-8, 1 - 1e-10, 1 - 1e-12]
SMALL = vs.PLRF(alpha=1.0, beta=0.7, v=12, d=4)
SPEC = embedding_spectrum(SMALL, SMALL.sample_embedding(rng=0))
R_EXACT = np.array([0, 1, 10, 100, 10**3, 10**4, 10**5, 10**6, 10**8, 10**10, 10**12])
CURVE_MODEL = vs.PLRF(alpha=1.0, beta=0.7, v=500, d=50)


def mp_mode_recursion(lam, w, f0, g, B, r_list, dps=60):
    """P(r) of rho(r+1) = q rho + g^2 B lam^2 P(r), P = F0 + sum rho (docs/theory.md, Eq. (3.6))
    by exact powers of the augmented (k+1)x(k+1) transition matrix at ``dps`` digits, the
    double inputs taken as exact: an independent reference at any r (10**12 included)."""
    with mp.workdps(dps):
        k = len(lam)
        g, B, F0 = mp.mpf(float(g)), mp.mpf(int(B)), mp.mpf(float(f0))
        lam = [mp.mpf(float(x)) for x in lam]
        q = [1 - 2 * g * B * x + g * g * B * (B + 1) * x * x for x in lam]
        c = [g * g * B * x * x for x in lam]
        A = mp.zeros(k + 1, k + 1)
        for i in range(k):
            for j in range(k):
                A[i, j] = c[i]
            A[i, i] += q[i]
            A[i, k] = c[i] * F0
        A[k, k] = 1
        y0 = mp.matrix([mp.mpf(float(x)) for x in w] + [1])
        out = []
        for r in r_list:
            y = (A ** int(r)) * y0
            out.append(float(F0 + mp.fsum(y[i] for i in range(k))))
    return np.array(out)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vs.ConvergenceWarning)
        return fn(*args, **kwargs)


def test_single_mode_closed_form_at_the_edge():
    # one mode: P(r) = P(inf) + (P(0) - P(inf)) nu^r, nu = 1 - (p - kappa), exactly; with
    # 1 - kappa/p = 1e-14 the plain form loses everything at small r
    p, kappa, f, f0 = 1e-3, 1e-3 * (1 - 1e-14), 1.0, 0.25
    r = np.array([0, 1, 10, 10**4, 10**8, 10**12, 10**16])
    P, info = solve_exponential_volterra([p], [f], [kappa], f0, r)
    with mp.workdps(50):
        pm, km = mp.mpf(p), mp.mpf(kappa)
        pinf = f0 / (1 - km / pm)
        nu = 1 - (pm - km)
        ref = np.array([float(pinf + (f + f0 - pinf) * nu ** int(x)) for x in r])
    # 1 - kappa/p itself carries ~eps absolute, i.e. 2e-2 relative, which only matters once
    # r (p - kappa) is no longer small: norm_sensitivity bounds it
    bound = info["rounding_error"] + norm_sensitivity(info, r, 2 * np.finfo(float).eps)
    assert np.all(np.abs(P - ref) <= bound)
    assert np.all(bound[:5] <= 1e-10 * ref[:5])
    np.testing.assert_allclose(P[:4], ref[:4], rtol=1e-14)


@pytest.mark.parametrize("frac", FRACTIONS + [1.0])
def test_given_w_routes_against_mpmath(frac):
    gmax = vs.max_stable_learning_rate(SPEC)
    g = frac * gmax if frac < 1 else gmax
    ref = mp_mode_recursion(SPEC.eigenvalues, SPEC.weights, SPEC.limit_loss, g, 1, R_EXACT)
    for method, r in (("closed_form", R_EXACT), ("recursion", R_EXACT[R_EXACT <= 10**6])):
        res = _quiet(vs.expected_loss_given_w, SMALL, SPEC, r, learning_rate=g, method=method,
                     throw=False)
        err = np.abs(res.loss - ref[:r.size])
        assert np.all(err <= res.loss_error), (method, err / res.loss_error)
        assert res.info.error_estimate == pytest.approx(np.max(res.loss_error / res.loss))
        if res.info.success:
            assert np.all(err <= 1e-10 * ref[:r.size])
        # early iterations are well conditioned at every learning rate (no cancellation)
        early = r <= 10**4
        np.testing.assert_allclose(res.loss[early], ref[:r.size][early], rtol=1e-12)


def test_given_w_failure_is_reported():
    gmax = vs.max_stable_learning_rate(SPEC)
    g = (1 - 1e-10) * gmax
    with pytest.warns(vs.ConvergenceWarning, match="exceeds tol"):
        res = vs.expected_loss_given_w(SMALL, SPEC, [0, 10**12], learning_rate=g, throw=False)
    assert not res.info.success and res.info.status == 1 and "ill-conditioned" in res.info.message
    with pytest.raises(vs.ConvergenceError, match="exceeds tol"):
        vs.expected_loss_given_w(SMALL, SPEC, [0, 10**12], learning_rate=g)
    # the same learning rate at early iterations, or a looser tol, succeeds
    assert vs.expected_loss_given_w(SMALL, SPEC, [0, 10**4], learning_rate=g).info.success
    assert vs.expected_loss_given_w(SMALL, SPEC, [0, 10**12], learning_rate=g,
                                    tol=1e-3).info.success


@pytest.mark.parametrize("frac", FRACTIONS)
def test_loss_curve_against_recursion_and_finer_quadrature(frac):
    gmax = vs.max_stable_learning_rate(CURVE_MODEL)
    g = frac * gmax
    r = np.unique(np.r_[0, np.round(np.logspace(0, 4, 20)).astype(np.int64),
                        np.round(np.logspace(5, 12, 8)).astype(np.int64)])
    curve = _quiet(vs.loss_curve, CURVE_MODEL, r, learning_rate=g, throw=False)
    assert curve.loss[0] == pytest.approx(CURVE_MODEL.initial_loss, rel=1e-13)
    # the closed form solves its own discretization exactly: the mode recursion on the same
    # sum of exponentials (docs/theory.md, Eq. (7.1)) agrees at every gamma
    rep = sum_of_exponentials(CURVE_MODEL, learning_rate=g)
    early = r <= 10**4
    out = np.empty(int(early.sum()))
    assert _mode_recursion_kernel(rep["q"], rep["kernel_weights"], rep["limit_loss"],
                                  np.array(rep["forcing_weights"]), 0, r[early], out) == 0
    np.testing.assert_allclose(curve.loss[early], out, rtol=1e-11)
    # the estimate bounds the error against the curve on a finer quadrature (up to that
    # reference's own estimate, mostly far smaller)
    fine = _quiet(vs.loss_curve, CURVE_MODEL, r, learning_rate=g, rtol=1e-13, throw=False)
    err = np.abs(curve.loss - fine.loss)
    assert np.all(err <= curve.loss_error + fine.loss_error)
    if curve.info.success:
        assert np.all(err <= curve.options["tol"] * fine.loss + fine.loss_error)
    else:
        assert curve.info.status in (1, 2) and curve.info.error_estimate > curve.options["tol"]
    # up to r = 1e4 the curve is accurate to its default tolerance at every gamma
    assert vs.loss_curve(CURVE_MODEL, r[early], learning_rate=g).info.success


def test_loss_curve_failure_is_reported_and_thrown():
    gmax = vs.max_stable_learning_rate(CURVE_MODEL)
    r = [0, 10, 10**12]
    with pytest.warns(vs.ConvergenceWarning, match="loss_curve"):
        c = vs.loss_curve(CURVE_MODEL, r, learning_rate=(1 - 1e-10) * gmax, throw=False)
    assert not c.info.success and c.info.error_estimate > c.options["tol"]
    with pytest.raises(vs.ConvergenceError, match="loss_curve"):
        vs.loss_curve(CURVE_MODEL, r, learning_rate=(1 - 1e-10) * gmax)
    ok = vs.loss_curve(CURVE_MODEL, r, learning_rate=0.5 * gmax)
    assert ok.info.success and ok.info.error_estimate <= ok.options["tol"]


@pytest.mark.parametrize("model,B", [(vs.PLRF(1.0, 0.7, 100, 1), 1), (vs.PLRF(1.0, 0.7, 100, 2), 4),
                                     (vs.PLRF(1.0, 0.7, 100, 3), 4), (CURVE_MODEL, 1),
                                     (CURVE_MODEL, 4)])
def test_max_stable_learning_rate_is_the_last_accepted_double(model, B):
    gmax = vs.max_stable_learning_rate(model, batch_size=B)
    assert math.isfinite(gmax) and gmax > 0
    meas = vs.spectral_measure(model)
    assert vs.check_learning_rate(meas.nodes, gmax, B, weights=meas.eigen_weights) < 1
    above = float(np.nextafter(gmax, np.inf))
    with pytest.raises(vs.UnstableLearningRateError):
        vs.check_learning_rate(meas.nodes, above, B, weights=meas.eigen_weights)
    with pytest.raises(vs.UnstableLearningRateError):
        vs.loss_curve(model, [0, 10], learning_rate=above, batch_size=B)
    # exactly at gamma*: a result (or a reported failure), never a plain ValueError
    c = _quiet(vs.loss_curve, model, [0, 10, 1000], learning_rate=gmax, batch_size=B,
               throw=False)
    assert c.loss[0] == pytest.approx(model.initial_loss, rel=1e-12)


def test_exact_route_at_gamma_star_and_above():
    gmax = vs.max_stable_learning_rate(SPEC)
    res = vs.expected_loss_given_w(SMALL, SPEC, [0, 10, 1000], learning_rate=gmax)
    assert res.info.success
    with pytest.raises(vs.UnstableLearningRateError):
        vs.expected_loss_given_w(SMALL, SPEC, [0], learning_rate=float(np.nextafter(gmax, np.inf)))


def test_closed_form_against_direct_volterra_sum_at_the_edge():
    # the direct O(n^2) sum (docs/theory.md eq. 3.4) of the same F and K, n = 3000 steps
    from volterra_sgd.numba_api import volterra_direct

    gmax = vs.max_stable_learning_rate(SPEC)
    r = np.arange(3000)
    for frac in (1 - 1e-8, 1 - 1e-12):
        res = vs.expected_loss_given_w(SMALL, SPEC, r, learning_rate=frac * gmax)
        P = np.empty(r.size)
        assert volterra_direct(res.forcing, res.kernel, P) == 0
        np.testing.assert_allclose(res.loss, P, rtol=1e-12)
        assert res.info.success
