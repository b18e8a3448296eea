"""Compressed spectral measures and Euler--Maclaurin heads against the full / direct routes."""

import math

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd import contour, forcing

R = np.unique(np.r_[0, np.round(np.logspace(0, 12, 60))].astype(np.int64))
PL = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
PL_INF = vs.PLRF(alpha=0.7, beta=0.7, v=math.inf, d=300)


def _spectral_model():
    j = np.arange(1, 3001, dtype=np.float64)
    lam = np.where(j <= 40, j ** -1.2, 0.3 * j ** -1.4)  # a jump: a gap inside the bulk
    return vs.SpectralModel(lam, j ** -1.1, 150)


@pytest.fixture
def full_route():
    """Run the body with forcing.COMPRESS = False (the full quadrature everywhere)."""
    def run(fn):
        old = forcing.COMPRESS
        forcing.COMPRESS = False
        try:
            return fn()
        finally:
            forcing.COMPRESS = old
    return run


CASES = {
    "PLRF finite v": (PL, 0.5, 1),
    "PLRF v = inf": (PL_INF, 0.25, 1),
    "PLRF B = 4": (PL, 0.3, 4),
    "SpectralModel": (_spectral_model(), 0.5, 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compressed_curve_matches_full_quadrature(name, full_route):
    model, frac, B = CASES[name]
    g = model.reference_learning_rate(frac)
    comp = vs.loss_curve(model, R, learning_rate=g, batch_size=B)
    full = full_route(lambda: vs.loss_curve(model, R, learning_rate=g, batch_size=B))
    assert comp.info.n_modes < full.info.n_modes / 2.5
    np.testing.assert_allclose(comp.loss, full.loss, rtol=1e-11)
    keep = full.kernel > 1e-30
    np.testing.assert_allclose(comp.kernel[keep], full.kernel[keep], rtol=1e-9)
    np.testing.assert_allclose(comp.forcing, full.forcing, rtol=1e-11)
    # honest: the compressed route's estimate covers its difference to the full route, and
    # the coarser compressed 7-point rule does not inflate it much (measured: 0.6-9 times)
    assert np.all(np.abs(comp.loss - full.loss) <= comp.loss_error)
    assert comp.info.error_estimate <= 30.0 * full.info.error_estimate
    assert comp.info.success
    assert comp.kernel_norm == full.kernel_norm  # stability is decided on the full measure


def test_compressed_schedule_matches_full_quadrature(full_route):
    g0 = PL.reference_learning_rate(0.5)
    lr = lambda s: g0 * (1 + s / 100.0) ** -0.5  # noqa: E731
    r = R[R <= 10**5]
    comp = vs.loss_curve(PL, r, learning_rate=lr, batch_size=2)
    full = full_route(lambda: vs.loss_curve(PL, r, learning_rate=lr, batch_size=2))
    np.testing.assert_allclose(comp.loss, full.loss, rtol=1e-11)
    assert np.all(np.abs(comp.loss - full.loss) <= comp.loss_error)


def test_compression_keeps_masses_and_low_moments():
    meas = vs.spectral_measure(PL)
    c = vs.compress_measure(meas)
    assert c.nodes.size < meas.nodes.size / 3
    for w_full, w_c in ((meas.forcing_weights, c.forcing_weights),
                        (meas.kernel_weights, c.kernel_weights)):
        assert math.fsum(w_c) == pytest.approx(math.fsum(w_full), rel=1e-14)
        assert np.all(w_c > 0)
        # a smooth test function on the whole support: the Stieltjes transform off the axis
        for z in (-1e-3, -1.0, 2.0 * meas.support.upper_edge):
            assert np.sum(w_c / (c.nodes - z)) == pytest.approx(
                np.sum(w_full / (meas.nodes - z)), rel=1e-13)
    assert c.eigen_weights.sum() == pytest.approx(PL.d, rel=1e-9)
    # interpolatory rule: moments of degree < n of each measure are exact within a bin
    pids, label = contour._bins(meas, 4)
    top = label[np.flatnonzero(meas.component[np.searchsorted(meas.panel, pids)] == 0)[-1]]
    inside = np.isin(meas.panel, pids[label == top])
    lo, hi = meas.nodes[inside].min(), meas.nodes[inside].max()
    sel = (c.component == 0) & (c.nodes >= lo) & (c.nodes <= hi)
    assert sel.sum() == 12
    x0 = 0.5 * (lo + hi)
    for w_full, w_c in ((meas.forcing_weights, c.forcing_weights),
                        (meas.kernel_weights, c.kernel_weights)):
        for k in range(12):
            mk = np.sum(w_full[inside] * ((meas.nodes[inside] - x0) / x0) ** k)
            ck = np.sum(w_c[sel] * ((c.nodes[sel] - x0) / x0) ** k)
            assert abs(ck - mk) <= 1e-12 * np.sum(w_full[inside])
    # fine and coarse rules share their panels (the panel-wise error estimate)
    assert np.array_equal(np.unique(c.panel), np.unique(c.coarse_panel))
    with pytest.raises(ValueError, match="coarse_order"):
        vs.compress_measure(meas, order=8, coarse_order=8)


def test_deterministic_measure_compress_flag():
    a = forcing.deterministic_measure(PL)
    b = forcing.deterministic_measure(PL, compress=True)
    assert b is forcing.deterministic_measure(PL, compress=True)
    assert b.nodes.size < a.nodes.size and b.limit_loss == a.limit_loss


@pytest.mark.parametrize("w", [-3.0e6 - 1e3j, -1e7 + 1e5j, 3e6 * np.exp(2.0j), -5e5 + 0j])
def test_euler_maclaurin_head_against_exact_sum(w):
    alpha, beta = 0.7, 0.7
    J = 400_000
    h = contour._em_plan(w, alpha, J)
    assert h > 0
    j = np.arange(1, J + 1, dtype=np.float64)
    lam = j ** (-2 * alpha)
    t = lam * w
    inv = 1.0 / (t - 1.0)
    terms = (t * inv, lam * inv * inv, j ** (-2 * (alpha + beta)) * inv)
    ref = [complex(math.fsum(x.real), math.fsum(x.imag)) for x in terms]
    got = contour._em_head(w, alpha, beta, J, h)
    for a, b in zip(got, ref):
        assert abs(a - b) <= 4e-15 * abs(b)


def test_euler_maclaurin_refused_near_a_pole():
    # w on the positive axis: the summand has a real pole j* = w^(1/(2 alpha)) in the range
    assert contour._em_plan(1e6 + 1e-3j, 0.7, 400_000) == 0.0


def test_spectral_measure_with_and_without_accelerated_heads():
    model = vs.PLRF(alpha=0.7, beta=0.7, v=20_000, d=2000)  # lower-edge heads ~ 1.5e4 terms
    fast = vs.spectral_measure(model)
    old = contour.EM_MIN_HEAD
    contour.EM_MIN_HEAD = math.inf
    try:
        slow = vs.spectral_measure(model)
    finally:
        contour.EM_MIN_HEAD = old
    assert fast.nodes.size == slow.nodes.size
    np.testing.assert_array_equal(fast.nodes, slow.nodes)
    scale = slow.forcing_weights.max()
    assert np.max(np.abs(fast.forcing_weights - slow.forcing_weights)) <= 1e-14 * scale
    np.testing.assert_allclose(fast.eigen_weights, slow.eigen_weights, rtol=1e-11, atol=1e-14 *
                               slow.eigen_weights.max())
