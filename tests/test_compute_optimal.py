"""Tests of volterra_sgd.compute_optimal (IsoFLOP frontier, fits, sweeps, Dask, CLI)."""

import math

import numpy as np
import pytest

from volterra_sgd.compute_optimal import isoflop_frontier


def _synthetic(A, a, B, b, ratio=2**0.5, d_range=(1e1, 1e5), f=None, seeds=None, rng=None):
    """Curves L(d, f) = A d^-a + B (f/d)^-b; xi = b/(a+b), eta = ab/(a+b) exactly."""
    f = np.logspace(0, 16, 400) if f is None else f
    ds = 10 ** np.arange(math.log10(d_range[0]), math.log10(d_range[1]) + 1e-9,
                         math.log10(ratio))
    curves = []
    for d in ds:
        L = A * d**-a + B * (f / d) ** -b
        if seeds is not None:
            L = L * np.exp(0.05 * rng.standard_normal((seeds, f.size)))
        curves.append((d, f, L))
    return curves


@pytest.mark.parametrize("A,a,B,b", [(1.0, 1.0, 1.0, 0.5), (2.0, 0.7, 0.5, 0.35),
                                     (1.0, 0.4, 3.0, 1.2)])
def test_frontier_recovers_synthetic_exponents(A, a, B, b):
    fr = isoflop_frontier(_synthetic(A, a, B, b), n_boot=100)
    xi, eta = b / (a + b), a * b / (a + b)
    assert abs(fr.params_fit.exponent - xi) < 1e-3
    assert abs(fr.loss_fit.exponent - eta) < 1e-3
    # the frontier itself against the closed-form optimum d* = (aA f^b / (bB))^(1/(a+b))
    tab = fr.frontier
    d_star = (a * A * tab["flops"] ** b / (b * B)) ** (1 / (a + b))
    L_star = A * d_star**-a + B * (tab["flops"] / d_star) ** -b
    inner = (tab["d_opt"] > fr.d_values[1]) & (tab["d_opt"] < fr.d_values[-2])
    assert np.max(np.abs(np.log(tab["d_opt"][inner] / d_star[inner]))) < 0.02
    assert np.max(np.abs(np.log(tab["loss_opt"][inner] / L_star[inner]))) < 3e-3  # log-f interpolation
    # the minimum is strictly inside the grid over the whole window
    assert np.all(tab["d_opt"] > fr.d_values[0]) and np.all(tab["d_opt"] < fr.d_values[-1])
    # bootstrap intervals contain the point estimates and are not degenerate
    for fit in (fr.loss_fit, fr.params_fit):
        lo, hi = fit.exponent_ci
        assert lo <= fit.exponent <= hi and hi - lo > 0
    assert fr.n_boot_used > 50


def test_frontier_window_is_reported_and_respected():
    curves = _synthetic(1.0, 1.0, 1.0, 0.5)
    full = isoflop_frontier(curves, n_boot=0)
    lo, hi = full.window
    win = (lo * 100, hi / 100)
    sub = isoflop_frontier(curves, n_boot=0, window=win)
    assert sub.window[0] >= win[0] * (1 - 1e-9) and sub.window[1] <= win[1] * (1 + 1e-9)
    assert sub.loss_fit.window == sub.window
    assert abs(sub.loss_fit.exponent - 1 / 3) < 1e-3
    trimmed = isoflop_frontier(curves, n_boot=0, trim=1.0)
    assert trimmed.window[0] == pytest.approx(lo * 10, rel=0.1)
    assert trimmed.window[1] == pytest.approx(hi / 10, rel=0.1)
    # a window beyond the interior range is refused
    with pytest.raises(ValueError, match="window"):
        isoflop_frontier(curves, n_boot=0, window=(lo / 100, hi))


def test_frontier_seed_bootstrap_widens_interval():
    rng = np.random.default_rng(1)
    curves = _synthetic(1.0, 1.0, 1.0, 0.5, seeds=8, rng=rng)
    fr = isoflop_frontier(curves, n_boot=200, rng=3)
    assert abs(fr.loss_fit.exponent - 1 / 3) < 0.01
    lo, hi = fr.loss_fit.exponent_ci
    assert lo <= fr.loss_fit.exponent <= hi
    assert np.all(fr.n_seeds == 8)
    # same data without the per-run noise: deterministic curves give a narrower interval
    clean = isoflop_frontier(_synthetic(1.0, 1.0, 1.0, 0.5), n_boot=200, rng=3)
    assert hi - lo > clean.loss_fit.exponent_ci[1] - clean.loss_fit.exponent_ci[0]
    # reproducible with the same seed
    again = isoflop_frontier(curves, n_boot=200, rng=3)
    assert again.loss_fit.exponent_ci == fr.loss_fit.exponent_ci


def test_frontier_bad_input():
    f = np.logspace(0, 8, 50)
    good = [(d, f, 1 / d + (f / d) ** -0.5) for d in (10.0, 100.0, 1000.0)]
    with pytest.raises(ValueError, match="at least 3"):
        isoflop_frontier(good[:2])
    with pytest.raises(TypeError, match="curves"):
        isoflop_frontier(42)
    with pytest.raises(TypeError, match=r"curves\[0\]"):
        isoflop_frontier([object()] + good)
    with pytest.raises(ValueError, match="positive"):
        isoflop_frontier([(10.0, f, -np.ones(50))] + good[1:])
    with pytest.raises(ValueError, match="increasing"):
        isoflop_frontier([(10.0, f[::-1], np.ones(50))] + good[1:])
    with pytest.raises(ValueError, match="distinct"):
        isoflop_frontier(good + [good[0]])
    with pytest.raises(ValueError, match="model size"):
        isoflop_frontier([(-1.0, f, np.ones(50))] + good[1:])
    with pytest.raises(ValueError, match="shape|flops must be"):
        isoflop_frontier([(10.0, f, np.ones(49))] + good[1:])
    # monotone in d (bigger is always better): no interior minimum
    mono = [(d, f, 1 / d + 1e-3 * f**-0.01) for d in (10.0, 100.0, 1000.0)]
    with pytest.raises(ValueError, match="no compute-optimal frontier"):
        isoflop_frontier(mono)
    with pytest.raises(ValueError, match="n_boot"):
        isoflop_frontier(good, n_boot=-1)
