"""Dense output (every iteration): the recurrence of the closed form against per-point evaluation.

Along equally spaced iterations the closed form advances each term by one multiplication and
re-evaluates it exactly every few points, dropping terms that no longer matter; the results
must agree with the independent per-point evaluation ``sum_i R_i exp(r log1p(-mu_i))`` (summed
with ``math.fsum``) and stay within the reported rounding error.
"""

import math

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd._secular import power_sums, solve_exponential_volterra
from volterra_sgd.curve import sum_of_exponentials
from volterra_sgd.schedule import envelope


@pytest.fixture(scope="module")
def representation():
    model = vs.PLRF(alpha=0.7, beta=0.7, v=2000, d=200)
    rep = sum_of_exponentials(model, learning_rate=model.reference_learning_rate(0.5))
    return rep["one_minus_q"], rep["forcing_weights"], rep["kernel_weights"], rep["limit_loss"]


def _per_point(info, r):
    """Independent evaluation: every term from its exponential, summed exactly (fsum)."""
    mu, R = info["mu"], info["residues"]
    lg0 = math.log1p(-mu[0])
    out = []
    for x in np.asarray(r, dtype=np.float64):
        e0 = math.exp(x * lg0)
        terms = [-info["p_inf"] * math.expm1(x * lg0), info["first_amplitude"] * e0]
        terms += list(R[1:] * np.exp(x * np.log1p(-mu[1:])))
        out.append(math.fsum(terms))
    return np.array(out)


def test_dense_closed_form_matches_per_point_evaluation(representation):
    r = np.arange(40_000)
    P, info = solve_exponential_volterra(*representation, r)
    pick = np.r_[np.arange(300), np.arange(300, r.size, 97), r.size - 1]
    ref = _per_point(info, r[pick])
    diff = np.abs(P[pick] - ref)
    assert np.max(diff / ref) < 1e-13
    # honest: the reported rounding error bounds the actual error at every checked point
    assert np.all(diff <= info["rounding_error"][pick])
    assert np.max(info["rounding_error"] / P) < 1e-12


def test_dense_runs_with_repeats_gaps_and_any_order(representation):
    # runs of several spacings, repeated iterations and a jump, in shuffled order
    r = np.r_[np.arange(0, 500), np.arange(500, 5000, 3), 5000, 5000, 5000,
              np.arange(10_000, 20_000, 7), 10**6, 10**6 + 5]
    P, info = solve_exponential_volterra(*representation, r)
    ref = _per_point(info, r)
    assert np.max(np.abs(P - ref) / ref) < 1e-13
    perm = np.random.default_rng(0).permutation(r.size)
    P2, _ = solve_exponential_volterra(*representation, r[perm])
    np.testing.assert_array_equal(P2, P[perm])


def test_dense_loss_curve_equals_its_log_spaced_values():
    # log-spaced iterations are evaluated point by point; dense ones by the recurrence
    model = vs.PLRF(alpha=0.7, beta=0.7, v=2000, d=200)
    g = model.reference_learning_rate(0.5)
    dense = vs.loss_curve(model, np.arange(30_001), learning_rate=g)
    r = np.unique(np.round(np.logspace(0, np.log10(30_000), 60)).astype(np.int64))
    sparse = vs.loss_curve(model, r, learning_rate=g)
    np.testing.assert_allclose(dense.loss[r], sparse.loss, rtol=1e-13, atol=0)
    np.testing.assert_allclose(dense.forcing[r], sparse.forcing, rtol=1e-13, atol=0)
    np.testing.assert_allclose(dense.kernel[r], sparse.kernel, rtol=1e-13, atol=0)
    assert dense.info.success


def test_power_sums_match_the_exponential_matrix():
    rng = np.random.default_rng(1)
    n = 60
    logq = -np.exp(rng.uniform(np.log(1e-5), np.log(2.0), n))
    w = rng.uniform(0.1, 1.0, (2, n))
    w[:, 40:] *= -1.0  # error-only modes enter the group sums with negative weights
    part = np.r_[rng.integers(0, 2, 40), -np.ones(20, dtype=np.int64)]
    group = rng.integers(0, 7, n)
    for r in (np.arange(3000), np.r_[np.arange(0, 900, 9), 5, 10**5, 10**5 + 1]):
        E = np.exp(np.multiply.outer(r.astype(np.float64), logq))
        ref = np.empty((r.size, 6))
        for c in range(2):
            for p in range(2):
                ref[:, 2 * c + p] = E[:, part == p] @ w[c, part == p]
            gsum = np.stack([E[:, group == g] @ w[c, group == g] for g in range(7)], axis=1)
            ref[:, 4 + c] = np.abs(gsum).sum(axis=1)
        out = power_sums(logq, w, part, group, r)
        scale = E @ np.abs(w).max(axis=0)  # the sums of magnitudes
        assert np.all(np.abs(out - ref) <= 1e-13 * scale[:, None])


def test_envelope_equals_the_maximum_over_each_window():
    rng = np.random.default_rng(2)
    for r in (np.arange(3000), np.unique(rng.integers(0, 10**6, 500)), np.array([0]),
              np.repeat(np.arange(40), 3), np.array([], dtype=np.int64)):
        e = rng.standard_normal(r.size)
        e[::13] = np.nan
        lo = np.searchsorted(r, r // 2, side="left")
        hi = np.searchsorted(r, 2 * r + 1, side="right")
        ref = np.array([e[a:b].max() for a, b in zip(lo, hi, strict=True)])
        np.testing.assert_array_equal(envelope(r, e), ref)


def test_roots_and_residues_over_threads_equal_the_serial_kernels(monkeypatch):
    # from PARALLEL_MIN poles on, the secular roots and residues run in chunks on the
    # package's threads; the chunks call the same serial code, so the bits are the same
    from volterra_sgd import _secular

    rng = np.random.default_rng(3)
    n = 600
    p = np.sort(rng.uniform(1e-4, 1.0, n))
    kappa = 0.5 * rng.uniform(0.1, 1.0, n) * p / n
    f = rng.uniform(0.0, 1.0, n)
    r = np.r_[0, np.unique(np.round(np.logspace(0, 8, 30)).astype(np.int64))]
    serial = solve_exponential_volterra(p, f, kappa, 0.1, r)
    monkeypatch.setattr(_secular, "_chunks", lambda m: ([(0, 7), (7, 300), (300, m)], 2))
    threaded = solve_exponential_volterra(p, f, kappa, 0.1, r)
    np.testing.assert_array_equal(threaded[0], serial[0])
    for key in ("mu", "residues", "tau", "origin"):
        np.testing.assert_array_equal(threaded[1][key], serial[1][key])
    # and the closed form solves the equation: the direct O(n^2) sum on the first 300 steps
    from volterra_sgd.numba_api import volterra_direct

    q = (1.0 - p)[None, :] ** np.arange(300)[:, None]
    P = np.empty(300)
    volterra_direct(0.1 + q @ f, q @ kappa, P)
    np.testing.assert_allclose(solve_exponential_volterra(p, f, kappa, 0.1, np.arange(300))[0],
                               P, rtol=1e-11)
