"""Tests of volterra_sgd.resolvent (docs/theory.md, Sec. 6 and Eqs. (13.1)-(13.2))."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from mp_reference import (
    branch_ok_mp,
    forcing_transform_mp,
    limit_loss_mp,
    m_mp,
    tau_mp,
)

from volterra_sgd.exceptions import ConvergenceError, ConvergenceWarning
from volterra_sgd.model import PLRF
from volterra_sgd.resolvent import (
    _newton,
    _scaled_power_sum,
    _tables,
    forcing_transform,
    limit_loss,
    lower_spectral_edge,
    resolvent,
    resolvent_m,
    support_bands,
    tau,
)

INF = math.inf


# ------------------------------------------------------------------ power sums (tail)
@pytest.mark.parametrize(
    "s, J, v",
    [(2.0, 32, INF), (0.6, 100, 2000), (1.0, 50, 1000), (3.7, 40, INF), (150.0, 32, INF),
     (1.4, 1000, 1e7), (1.0 + 1e-9, 64, 1e6), (2.2, 500, 501), (2.2, 500, 520)],
)
def test_scaled_power_sum_against_hurwitz_zeta(s, J, v):
    # reference: J^s (zeta(s, J+1) - zeta(s, v+1)) at 30 digits (harmonic numbers at s = 1)
    with mp.workdps(30):
        if s == 1.0:
            ref = J * (mp.harmonic(v) - mp.harmonic(J))
        else:
            ref = mp.mpf(J) ** s * (mp.zeta(s, J + 1) - (0 if v == INF else mp.zeta(s, v + 1)))
        ref = float(ref)
    got = _scaled_power_sum(s, float(J), float(v))
    assert got == pytest.approx(ref, rel=2e-15, abs=0)


def test_scaled_power_sum_empty():
    assert _scaled_power_sum(2.0, 100.0, 100.0) == 0.0


# ------------------------------------------------------------------ tau and F0
def test_tau_and_limit_loss_reference_numbers():
    # docs/theory.md, Eq. (13.1): v = 2000, d = 200, alpha = 1, beta = 0.7
    m = PLRF(1.0, 0.7, 2000, 200)
    assert tau(m) / 200**2 == pytest.approx(0.44414, abs=5e-6)
    assert limit_loss(m) == pytest.approx(1.5355e-4, abs=5e-9)


@pytest.mark.parametrize(
    "alpha, ratio, kappa",
    [(1.0, 4, 0.5152), (0.7, 4, 0.4625), (0.4, 4, 0.4110), (1.0, 10, 0.4418)],
)
def test_kappa_finite_ratio(alpha, ratio, kappa):
    # docs/theory.md, Eq. (13.2), gives the d -> inf continuum kappa(v/d) to 4 digits; at
    # d = 2e4 the discrete tau differs from it by O(1/d).
    d = 20000
    k = tau(PLRF(alpha, 1.0, ratio * d, d)) / d ** (2 * alpha)
    assert k == pytest.approx(kappa, abs=1.5e-4)


@pytest.mark.parametrize("alpha, kappa", [(1.0, 0.40528), (0.7, 0.22852)])
def test_kappa_infinite_v(alpha, kappa):
    # kappa_inf = c^(-2 alpha), c = (pi/2a)/sin(pi/2a) (docs/theory.md, Eq. (6.10)), approached
    # as O(1/d)
    c = (math.pi / (2 * alpha)) / math.sin(math.pi / (2 * alpha))
    assert c ** (-2 * alpha) == pytest.approx(kappa, abs=5e-6)
    errs = []
    for d in (1000, 10000, 100000):
        errs.append(abs(tau(PLRF(alpha, 1.0, INF, d)) / d ** (2 * alpha) - c ** (-2 * alpha)))
    assert errs[2] < 1e-5
    # first-order convergence in 1/d
    slopes = np.diff(np.log(errs)) / np.diff(np.log([1000, 10000, 100000]))
    assert np.all((slopes < -0.9) & (slopes > -1.1))


TAU_CASES = [
    (1.0, 0.7, 2000, 200),
    (0.3, 0.6, 1500, 150),
    (0.7, 0.3, INF, 100),
    (1.5, 0.2, INF, 150),
    (1.5, -0.5, INF, 150),
    (0.7, 0.0, 101, 100),  # v = d + 1: tau is huge
    (0.25, 0.5, 8000, 100),
    (0.6, 0.4, 10**7, 100),
    (2.5, 1.0, 10**6, 120),
]


@pytest.mark.parametrize("alpha, beta, v, d", TAU_CASES)
def test_tau_limit_loss_against_mpmath(alpha, beta, v, d):
    # reference: tests/mp_reference.py at 30 digits, e.g.
    #   with mp.workdps(30): tau_mp(1.0, 2000, 200), limit_loss_mp(1.0, 0.7, 2000, 200)
    model = PLRF(alpha, beta, v, d)
    with mp.workdps(30):
        t_ref = float(tau_mp(alpha, v, d))
        f_ref = float(limit_loss_mp(alpha, beta, v, d))
    assert tau(model) == pytest.approx(t_ref, rel=1e-13)
    assert limit_loss(model) == pytest.approx(f_ref, rel=1e-13)


@pytest.mark.parametrize("v", [50, 99, 100])
def test_tau_no_solution_when_v_le_d(v):
    model = PLRF(1.0, 0.7, v, 100)
    assert tau(model) == INF
    assert limit_loss(model) == 0.0


def test_limit_loss_below_initial_loss_and_monotone_in_d():
    prev = math.inf
    for d in (10, 50, 200, 800):
        model = PLRF(1.0, 0.7, 4000, d)
        f0 = limit_loss(model)
        assert 0.0 < f0 < model.initial_loss
        assert f0 < prev
        prev = f0


def test_tau_and_limit_loss_reject_non_models():
    with pytest.raises(TypeError, match="PLRF"):
        tau((1.0, 0.7, 2000, 200))
    with pytest.raises(TypeError, match="PLRF"):
        limit_loss("model")


# ====================================================================== m(z)
def _acceptance_points(model, rel_imag=(1e-3, 1e-8)):
    """Points over the spectrum's scales (support from support_bands)."""
    bands = support_bands(model)
    lmin, lmax = bands[0, 0], bands[-1, 1]
    xs = [10.0, 2 * lmax, lmax * (1 + 1e-6), lmax * (1 - 1e-6)]  # above / at the top edge
    for k in (1, 2, 3):  # outlier bands: centre, both sides of the lower edge, gap below
        if len(bands) > k:
            a, b = bands[-k]
            xs += [0.5 * (a + b), a * (1 + 1e-6), a * (1 - 1e-6)]
            if len(bands) > k + 1:
                xs.append(0.5 * (bands[-k - 1, 1] + a))
    xs += list(np.geomspace(lmin * 1.01, bands[0, 1] * 0.99, 6))  # bulk
    xs += [lmin * (1 + 1e-3), lmin * (1 - 1e-3), lmin * (1 + 1e-6), lmin * (1 - 1e-6)]  # edge
    xs += [lmin / 2, lmin / 10, lmin * 1e-4]  # gap, near 0
    zs = [complex(x, r * x) for x in xs for r in rel_imag]
    zs += [-1e-3 * lmin, -1.0, -10.0, complex(-lmin, lmin)]  # negative real axis, left
    return np.array(zs)


M_CASES = [  # (alpha, v, d): v = 10 d finite, and v = inf for 2 alpha > 1
    (0.3, 1000, 100),
    (0.7, 1000, 100),
    (1.5, 1000, 100),
    (0.7, INF, 100),
    (1.5, INF, 100),
]


def _check_against_mp(model, zs, dps=20):
    res = resolvent(model, zs)
    assert res.success, res.message
    assert np.all(res.residual <= 1e-12)
    errs = []
    with mp.workdps(dps):
        for z, m, est in zip(zs, res.m, res.error_estimate, strict=True):
            m_ref, _ = m_mp(model.alpha, model.v, model.d, z, m)
            assert branch_ok_mp(model.alpha, model.v, model.d, z, m_ref), z
            err = float(abs(m_ref - m) / abs(m_ref))
            assert err <= max(est, 1e-15), (z, err, est)  # the error estimate is honest
            errs.append(err)
    return np.array(errs)


@pytest.mark.parametrize("alpha, v, d", M_CASES)
def test_m_against_mpmath_subset(alpha, v, d):
    # Default-suite version of the acceptance test: every 6th point.  Reference:
    #   with mp.workdps(20): m_mp(alpha, v, d, z, m_float64)   (tests/mp_reference.py)
    model = PLRF(alpha, 0.5, v, d)
    zs = _acceptance_points(model)[::6]
    errs = _check_against_mp(model, zs)
    assert errs.max() <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("alpha, v, d", M_CASES)
def test_m_against_mpmath_acceptance(alpha, v, d):
    # >= 50 points per model, Im z = 1e-3 Re z and 1e-8 Re z, points 1e-6 from edges
    model = PLRF(alpha, 0.5, v, d)
    zs = _acceptance_points(model)
    assert zs.size >= 50 or alpha < 0.5  # alpha = 0.3 has a single outlier band
    errs = _check_against_mp(model, zs)
    assert errs.max() <= 1e-12


def test_m_point_order_does_not_matter():
    model = PLRF(1.0, 0.7, 2000, 200)
    zs = _acceptance_points(model, rel_imag=(1e-3, 1e-10))
    perm = np.random.default_rng(0).permutation(zs.size)
    m1 = resolvent_m(model, zs)
    m2 = resolvent_m(model, zs[perm])
    assert np.allclose(m2, m1[perm], rtol=1e-12, atol=0)


def test_m_exact_single_eigenvalue():
    # v = 1: m^2 - m (z + 1 - 1/d) + z = 0, the root with Im(m/z) < 0 for Im z > 0
    d = 7
    model = PLRF(1.0, 0.5, 1, d)
    z = np.array([0.3 + 0.01j, 1.0 + 1e-9j, 2.5 + 0.5j, -0.2, 5.0 - 1e-3j, 1e-6 + 1e-12j])
    b = z + 1 - 1 / d
    roots = np.stack([(b + np.sqrt(b * b - 4 * z)) / 2, (b - np.sqrt(b * b - 4 * z)) / 2])
    u = roots / z
    pick = np.where(z.imag > 0, u.imag < 0, np.where(z.imag < 0, u.imag > 0, u.real < 0))
    expected = np.where(pick[0], roots[0], roots[1])
    assert np.all(pick.sum(axis=0) == 1)
    assert np.allclose(resolvent_m(model, z), expected, rtol=1e-14, atol=0)


def test_m_marchenko_pastur_limit():
    # alpha -> 0: all data eigenvalues 1, m solves m^2 - m (z + 1 - v/d) + z = 0 and -m/z is
    # the Stieltjes transform of the Marchenko-Pastur law with ratio v/d (edges (1 +- sqrt)^2)
    v, d, alpha = 300, 100, 1e-13
    model = PLRF(alpha, 0.5, v, d)
    c = v / d
    z = np.array([0.5 + 1e-2j, 2.0 + 1e-8j, 8.0 + 0.1j, 20.0 + 1e-6j, -1.0, 0.2 + 1e-9j])
    b = z + 1 - c
    roots = np.stack([(b + np.sqrt(b * b - 4 * z)) / 2, (b - np.sqrt(b * b - 4 * z)) / 2])
    u = roots / z
    pick = np.where(z.imag > 0, u.imag < 0, u.real < 0)
    expected = np.where(pick[0], roots[0], roots[1])
    m = resolvent_m(model, z)
    assert np.allclose(m, expected, rtol=1e-10, atol=0)  # O(alpha log v) model difference
    lo = lower_spectral_edge(model)
    assert lo == pytest.approx((1 - math.sqrt(c)) ** 2, rel=1e-9)
    bands = support_bands(model)
    assert bands.shape == (1, 2)
    assert bands[0, 1] == pytest.approx((1 + math.sqrt(c)) ** 2, rel=1e-9)


def test_newton_converges_quadratically():
    # residual sequence of the plain Newton iteration from a perturbed start
    model = PLRF(1.0, 0.7, 2000, 200)
    z = 3e-4 + 1e-6j
    m_star = resolvent_m(model, [z])[0]
    t = _tables(model, 4096)
    start = m_star * (1 + 3e-3)
    res = []
    for k in range(1, 5):
        _, r, _, _, _ = _newton(z, start, 200.0, k, True, 2000.0, t.lam, t.levels, t.pow_m,
                                t.tail_m)
        res.append(r)  # residual of the (k-1)-th iterate
    res = np.array(res)
    assert res[0] > 1e-4 and res[2] < 1e-12
    order = np.log(res[2] / res[1]) / np.log(res[1] / res[0])
    assert 1.8 < order < 2.3


def test_conjugate_symmetry_and_signs():
    model = PLRF(0.7, 0.5, INF, 300)
    rng = np.random.default_rng(3)
    x = np.exp(rng.uniform(np.log(1e-7), np.log(3.0), 60))
    y = x * np.exp(rng.uniform(np.log(1e-10), np.log(1.0), 60))
    z = x + 1j * y
    res = resolvent(model, z)
    resc = resolvent(model, np.conj(z))
    assert np.array_equal(resc.m, np.conj(res.m))  # same canonical path, bit for bit
    # Im z > 0: Im m < 0, and -m/z, G_F, G_K, tr(W^T D W - z)^-1 are Stieltjes transforms
    assert np.all(res.m.imag < 0)
    assert np.all(res.gram_trace.imag > 0)
    assert np.all(res.k_transform.imag > 0)
    assert np.all(forcing_transform(model, z, res.m).imag > 0)
    # z < 0: 0 < m < 1, real, increasing in z towards 0 ... and m -> -tau z at 0
    zn = -np.geomspace(10.0, 1e-12, 30)
    mn = resolvent_m(model, zn)
    assert np.all(mn.imag == 0) and np.all((mn.real > 0) & (mn.real < 1))
    assert np.all(np.diff(mn.real) < 0)
    assert mn[-1].real / (-zn[-1]) == pytest.approx(tau(model), rel=1e-6)


def test_large_z_asymptotics():
    # delta = -tr D/(d z) + O(z^-2), so m = 1/(1 + delta) = 1 + tr D/(d z) + O(z^-2)
    model = PLRF(1.0, 0.5, 5000, 100)
    z = np.array([1e6j, -1e6, 1e7 + 1e7j])
    m = resolvent_m(model, z)
    approx = 1 + model.trace_data_covariance / (model.d * z)
    assert np.all(np.abs(m - approx) < 10 * np.abs(1 - approx) ** 2 + 1e-13)
    assert np.all(np.abs(m - approx) < 1e-3 * np.abs(1 - approx))


def test_trace_identity_against_direct_sum():
    # d (1 - m) = v + z tr R (docs/theory.md, Eq. (6.7)) with tr R = sum_j 1/(lambda_j m - z)
    # summed here
    model = PLRF(0.7, 0.4, 3000, 300)
    z = np.array([1e-3 + 1e-5j, 0.2 + 1e-9j, -0.5, 2e-5 + 2e-5j])
    res = resolvent(model, z)
    lam = model.data_eigenvalues
    direct = np.array([np.sum(1.0 / (lam * m - zz)) for zz, m in zip(z, res.m, strict=True)])
    assert np.allclose(res.trace_resolvent, direct, rtol=1e-11)
    with pytest.raises(ValueError, match="finite"):
        resolvent(PLRF(0.7, 0.4, INF, 300), z).trace_resolvent  # noqa: B018


def test_huge_finite_v_against_mpmath():
    # v = 1e6 (tail j > J summed to v by Euler-Maclaurin) against the Hurwitz-zeta reference;
    # it differs from v = inf by ~ sum_{j>v} j^-3 / (d z), i.e. 2.5e-10 at z = 1e-5
    z = np.array([1e-5 + 1e-7j, 0.1 + 1e-9j, -1e-3])
    model = PLRF(1.5, 0.5, 10**6, 200)
    res = resolvent(model, z)
    m_inf = resolvent_m(PLRF(1.5, 0.5, INF, 200), z)
    with mp.workdps(20):
        for zi, mi in zip(z, res.m, strict=True):
            m_ref, _ = m_mp(1.5, 10**6, 200, zi, mi)
            assert abs(complex(m_ref) - mi) <= 1e-13 * abs(mi)
    assert abs(m_inf[0] / res.m[0] - 1) > 1e-11  # the difference is resolved


def test_cost_does_not_grow_with_v():
    z = np.geomspace(1e-5, 1.0, 200) * (1 + 0.1j)
    small = resolvent(PLRF(0.7, 0.5, 10**4, 200), z)
    huge = resolvent(PLRF(0.7, 0.5, 10**12, 200), z)  # explicit part stays <= 16 d terms
    assert huge.success and small.success
    assert huge.n_sweeps.sum() < 2 * small.n_sweeps.sum()
    assert _tables(PLRF(0.7, 0.5, 10**12, 200), 1).jmax <= 4096


def test_gram_trace_against_sampled_matrices():
    # tr(W^T D W - z)^-1 at z < 0 concentrates (fluctuations O(1/d)) on -d m(z)/z
    model = PLRF(1.0, 0.7, 1000, 100)
    z = np.array([-1e-4, -1e-2])
    rng = np.random.default_rng(5)
    lam = model.data_eigenvalues
    vals = []
    for _ in range(10):
        W = model.sample_embedding(rng)
        ev = np.linalg.eigvalsh(W.T @ (lam[:, None] * W))
        vals.append([np.sum(1.0 / (ev - zz)) for zz in z])
    emp = np.mean(vals, axis=0)
    det = resolvent(model, z).gram_trace.real
    assert np.allclose(emp, det, rtol=0.03)


# ====================================================================== measures
def _band_integral(model, a, b, f, n=400):
    """Integral over [a, b] of f(x) with x = a + (b-a)(1-cos t)/2 (square-root edges)."""
    t, w = np.polynomial.legendre.leggauss(n)
    t = 0.5 * np.pi * (t + 1)
    w = 0.5 * np.pi * w
    x = a + 0.5 * (b - a) * (1 - np.cos(t))
    jac = 0.5 * (b - a) * np.sin(t)
    return np.sum(w * jac * f(x))


def test_eigenvalue_density_integrates_to_d():
    # Im tr R(x + i0)/pi on (0, inf): one eigenvalue per outlier band, d in total
    model = PLRF(1.0, 0.7, 2000, 200)
    bands = support_bands(model)

    def density(x):
        return resolvent(model, x * (1 + 1e-14j)).trace_resolvent.imag / np.pi

    masses = np.array([_band_integral(model, a, b, density, n=2000 if k == 0 else 200)
                       for k, (a, b) in enumerate(bands)])
    assert np.allclose(masses[1:], 1.0, atol=1e-6)
    assert masses.sum() == pytest.approx(model.d, rel=1e-5)


def test_forcing_measure_mass_plus_limit_loss_is_initial_loss():
    model = PLRF(1.0, 0.7, 2000, 200)
    bands = support_bands(model)

    def density(x):
        return forcing_transform(model, x * (1 + 1e-14j)).imag / np.pi

    mass = sum(_band_integral(model, a, b, density, n=2000 if k == 0 else 200)
               for k, (a, b) in enumerate(bands))
    assert mass + limit_loss(model) == pytest.approx(model.initial_loss, rel=1e-6)
    # and the point mass at 0: -z G_F(z) -> F0
    g = forcing_transform(model, np.array([-1e-13]))
    assert (1e-13 * g[0]).real == pytest.approx(limit_loss(model), rel=1e-6)


def test_forcing_transform_against_mpmath():
    # reference: forcing_transform_mp(alpha, beta, v, z, m) at 25 digits
    for alpha, beta, v, d in [(1.0, 0.7, 2000, 200), (0.7, 0.3, INF, 150), (1.5, -0.5, INF, 100)]:
        model = PLRF(alpha, beta, v, d)
        lmin = lower_spectral_edge(model)
        z = np.array([-1e-12, 1e-3 + 1e-6j, 0.5 * lmin * (1 + 1e-8j), 2 + 1j,
                      2 * lmin * (1 + 1e-9j)])
        res = resolvent(model, z)
        g = forcing_transform(model, z, res.m)
        with mp.workdps(25):
            for zi, mi, gi in zip(z, res.m, g, strict=True):
                ref = forcing_transform_mp(alpha, beta, v, zi, mp.mpc(mi))
                assert abs(gi - complex(ref)) <= 1e-13 * abs(ref)


# ====================================================================== edges
def test_lower_edge_reference_number():
    # docs/theory.md, Eq. (13.1): v = 2000, d = 200, alpha = 1: lambda_min = 1.290e-5
    assert lower_spectral_edge(PLRF(1.0, 0.7, 2000, 200)) == pytest.approx(1.290e-5, abs=5e-9)


@pytest.mark.parametrize("alpha, v, d", [(1.0, 2000, 200), (0.7, INF, 500), (0.3, 1500, 150)])
def test_density_vanishes_outside_support(alpha, v, d):
    model = PLRF(alpha, 0.5, v, d)
    bands = support_bands(model)
    eps = 1e-4
    inside = np.concatenate([bands[:, 0] * (1 + eps), bands[:, 1] * (1 - eps)])
    outside = np.concatenate([bands[:, 0] * (1 - eps), bands[:, 1] * (1 + eps)])
    dens_in = resolvent(model, inside * (1 + 1e-15j)).gram_trace.imag
    dens_out = resolvent(model, outside * (1 + 1e-15j)).gram_trace.imag
    assert np.all(dens_in > 1e3 * np.abs(dens_out))
    # the edges are critical points: the band edges are separated, ordered
    assert np.all(np.diff(bands.ravel()) > 0)


def test_edges_require_v_greater_than_d():
    with pytest.raises(ValueError, match="v > d"):
        lower_spectral_edge(PLRF(1.0, 0.7, 100, 100))
    with pytest.raises(ValueError, match="v > d"):
        support_bands(PLRF(1.0, 0.7, 50, 100))


# ====================================================================== input errors
def test_bad_inputs():
    model = PLRF(1.0, 0.7, 2000, 200)
    with pytest.raises(ValueError, match=r"\[0, inf\)"):
        resolvent(model, [1e-3 + 1e-6j, 0.5])
    with pytest.raises(ValueError, match=r"\[0, inf\)"):
        resolvent_m(model, 0.0)
    with pytest.raises(ValueError, match="finite"):
        resolvent(model, [np.nan + 1j])
    with pytest.raises(TypeError, match="dtype"):
        resolvent(model, ["a"])
    with pytest.raises(TypeError, match="PLRF"):
        resolvent((1.0, 0.7, 2000, 200), [1j])
    with pytest.raises(ValueError, match="shape"):
        forcing_transform(model, [1j, 2j], m=[1.0])
    # scalars and shapes are preserved
    assert resolvent_m(model, -1.0).shape == ()
    assert resolvent_m(model, np.full((2, 3), -1.0 + 1j)).shape == (2, 3)
    assert resolvent_m(model, np.array([], dtype=complex)).shape == (0,)


def test_throw_false_warns_and_reports_status(monkeypatch):
    import volterra_sgd.resolvent as R

    model = PLRF(1.0, 0.7, 2000, 200)

    def broken(*args):  # emulate a kernel failure on every point
        args[-2][:] = R._NO_CONVERGENCE
        args[-5][:] = np.nan
        args[-4][:] = np.inf
        args[-3][:] = np.inf
        args[-1][:] = 1
        return args[0].size

    monkeypatch.setattr(R, "_m_path_kernel", broken)
    with pytest.raises(ConvergenceError, match="did not converge"):
        R.resolvent(model, [1j])
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = R.resolvent(model, [1j, 2j], throw=False)
    assert not res.success and np.all(res.status == 1)
