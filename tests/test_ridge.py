"""Tests of volterra_sgd.ridge: the ridge / least-squares deterministic equivalent and simulation.

References: closed forms (isotropic data, T = inf, N < T at ridge = 0, N = T = inf), an
independent naive implementation of the two-level equivalent in the original variable m(z)
with finite-difference derivatives (scipy brentq), empirical traces for sampled W, Monte
Carlo (simulate_ridge, stated tolerance in standard errors) and the closed-form exponents.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

import volterra_sgd as vs
from volterra_sgd.ridge import _fit_ridge, _ridge_losses
from volterra_sgd.sgd import _root_entropy


# ------------------------------------------------------------------ naive reference
def _m_naive(lam, n, z):
    """m(z) at real z < 0 from docs/theory.md, Eq. (6.8): m + (1/n) sum lam m/(lam m - z) = 1."""
    return brentq(lambda m: m + np.sum(lam * m / (lam * m - z)) / n - 1.0, 1e-300, 1.0,
                  xtol=1e-300, rtol=1e-15, maxiter=500)


def _naive_de(lam, b, n, t, ridge):
    """Two-level equivalent in the variable m(z), derivatives by central differences."""
    u2 = lam * b * b

    def tr_r(z):
        return np.sum(1.0 / (lam * _m_naive(lam, n, z) - z))

    def g_f(z):
        return np.sum(u2 / (lam * _m_naive(lam, n, z) - z))

    def df1(k):
        m = _m_naive(lam, n, -k)
        return np.sum(lam * m / (lam * m + k))

    if ridge == 0.0 and t > n:
        k = 0.0
    else:
        def h(k):
            return k * (1.0 - df1(k) / t) - ridge
        lo = 1e-14
        while df1(lo) < t and ridge == 0.0:  # pragma: no cover - not reached here
            lo /= 10.0
        if ridge == 0.0:
            k = brentq(lambda k: df1(k) - t, 1e-12, 10.0, xtol=1e-300, rtol=1e-14)
        else:
            # the root is on the branch df1(k) < t
            k0 = brentq(lambda k: df1(k) - t, 1e-12, 10.0, xtol=1e-300, rtol=1e-14) \
                if n > t else 0.0
            k = brentq(h, max(k0, ridge), 10.0, xtol=1e-300, rtol=1e-14)
    eps = 1e-4 * k
    z = -k
    trr = tr_r(z)
    dtrr = (tr_r(z + eps) - tr_r(z - eps)) / (2 * eps)
    df2 = lam.size - 2 * k * trr + k * k * dtrr
    p = k * k * (g_f(z + eps) - g_f(z - eps)) / (2 * eps)
    return p / (1.0 - df2 / t), k


@pytest.mark.parametrize("n,t,ridge,v", [(200, 100, 0.0, 1500), (200, 100, 1e-3, 1500),
                                         (100, 400, 1e-3, 1500), (300, 250, 1e-4, 1500),
                                         (200, 200, 1e-4, 1500), (300, 100, 1e-3, 150),
                                         (300, 100, 0.0, 150)])
def test_matches_naive_two_level_reference(n, t, ridge, v):
    model = vs.PLRF(1.0, 0.7, v, 1)
    eq = vs.ridge_equivalent(model, t, ridge, n_features=n)
    ref, k = _naive_de(model.data_eigenvalues, model.target, n, t, ridge)
    assert eq.kappa == pytest.approx(k, rel=1e-9)
    assert eq.loss == pytest.approx(ref, rel=1e-6)  # finite differences: ~1e-8


# ----------------------------------------------------------------- exact cases
def test_t_infinite_ridge_zero_is_limit_loss():
    model = vs.PLRF(1.0, 0.7, 2000, 200)
    assert vs.ridge_test_loss(model, math.inf) == pytest.approx(vs.limit_loss(model),
                                                                 rel=1e-12)


@pytest.mark.parametrize("n,t", [(50, 60), (100, 1000), (199, 200)])
def test_underparameterised_min_norm_closed_form(n, t):
    model = vs.PLRF(0.8, 0.5, 3000, n)
    expect = vs.limit_loss(model) / (1.0 - n / t)
    assert vs.ridge_test_loss(model, t) == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("alpha,beta,n", [(1.0, 0.7, 200), (0.6, 0.3, 100), (1.5, 0.2, 300)])
def test_infinite_spectrum_t_infinite_is_limit_loss(alpha, beta, n):
    """v = inf: the tail series against resolvent.limit_loss (its own tail machinery)."""
    model = vs.PLRF(alpha, beta, math.inf, n)
    assert vs.ridge_test_loss(model, math.inf) == pytest.approx(vs.limit_loss(model),
                                                                 rel=1e-12)
    assert vs.ridge_test_loss(model, 4 * n) == pytest.approx(vs.limit_loss(model) / 0.75,
                                                              rel=1e-12)


def test_infinite_spectrum_population_ridge_against_mpmath():
    # mpmath.mp.dps = 30; lam = mpmath.mpf("1e-3")
    # mpmath.nsum(lambda j: j**-3.4 * lam**2 / (j**-2 + lam)**2, [1, mpmath.inf],
    #             method="euler-maclaurin")  (the default method is off by 2e-3 here)
    ref = 0.000134080608421594285386221328114
    model = vs.PLRF(1.0, 0.7, math.inf, 1)
    eq = vs.ridge_equivalent(model, math.inf, 1e-3, n_features=math.inf)
    assert eq.loss == pytest.approx(ref, rel=1e-12)


def test_infinite_spectrum_agrees_with_spectral_model_and_large_v():
    pl = vs.PLRF(1.5, 0.2, math.inf, 300)
    sm = vs.SpectralModel.from_plrf(pl)
    # finite v = 2e5: the trace tail sum_{j>v} tau j^-3 shifts the loss by ~1e-6 relative
    big = vs.PLRF(1.5, 0.2, 200_000, 300)
    for t, r in ((100, 0.0), (1000, 0.0), (100, 1e-4)):
        x = vs.ridge_test_loss(pl, t, r)
        assert vs.ridge_test_loss(sm, t, r) == pytest.approx(x, rel=1e-12)
        assert vs.ridge_test_loss(big, t, r) == pytest.approx(x, rel=1e-5)
    assert vs.ridge_equivalent(pl, math.inf, 0.0, n_features=math.inf).loss == 0.0
    assert math.isinf(vs.ridge_test_loss(vs.PLRF(1.0, 0.7, math.inf, 100), 100))


def test_isotropic_closed_forms():
    v = 500
    b = np.linspace(0.5, 1.5, v)
    bb = float(b @ b)
    sm = vs.SpectralModel(np.ones(v), b, d=100)
    # random features at T = inf: F0 = |b|^2 (1 - N/v)
    assert vs.ridge_test_loss(sm, math.inf) == pytest.approx(bb * (1 - 100 / v), rel=1e-12)
    # N = inf (ridge on x), min-norm with T < v: E|theta - b|^2 = |b|^2 (1 - T/v)
    for t in (50, 250, 499):
        eq = vs.ridge_equivalent(sm, t, 0.0, n_features=math.inf)
        # 1/(1 - df2/T) amplifies rounding by v/(v - T)
        assert eq.loss == pytest.approx(bb * (1 - t / v), rel=1e-13 * v / (v - t))
    assert vs.ridge_equivalent(sm, 600, 0.0, n_features=math.inf).loss == 0.0


def test_population_ridge_on_x_closed_form():
    model = vs.PLRF(1.0, 0.7, 3000, 1)
    lam, b = model.data_eigenvalues, model.target
    for r in (1e-6, 1e-3):
        expect = np.sum(lam * b * b * r * r / (lam + r) ** 2)
        eq = vs.ridge_equivalent(model, math.inf, r, n_features=math.inf)
        assert eq.loss == pytest.approx(expect, rel=1e-12)
        assert eq.kappa == r


def test_spectral_model_gives_identical_results():
    pl = vs.PLRF(1.0, 0.7, 2000, 300)
    sm = vs.SpectralModel.from_plrf(pl)
    for t, r in ((100, 0.0), (1000, 0.0), (200, 1e-3)):
        assert vs.ridge_test_loss(sm, t, r) == pytest.approx(vs.ridge_test_loss(pl, t, r),
                                                             rel=1e-13)
    a = vs.simulate_ridge(pl.__class__(1.0, 0.7, 400, 30), 60, 1e-3, n_runs=2, rng=3)
    b = vs.simulate_ridge(vs.SpectralModel.from_plrf(vs.PLRF(1.0, 0.7, 400, 30)), 60, 1e-3,
                          n_runs=2, rng=3)
    np.testing.assert_array_equal(a.losses, b.losses)


# ------------------------------------------------------- empirical traces given W
def test_feature_level_equivalent_against_sampled_embeddings():
    """df1, df2 and P(theta_kappa) of the DE against exact traces for sampled W."""
    model = vs.PLRF(1.0, 0.7, 2000, 300)
    eq = vs.ridge_equivalent(model, 150, 1e-4)
    lam, b = model.data_eigenvalues, model.target
    u = np.sqrt(lam) * b
    k = eq.kappa
    d1, d2, p = [], [], []
    for seed in range(6):
        A = np.sqrt(lam)[:, None] * model.sample_embedding(seed)
        ev = np.linalg.eigvalsh(A.T @ A)
        d1.append(np.sum(ev / (ev + k)))
        d2.append(np.sum(ev**2 / (ev + k) ** 2))
        r = A @ np.linalg.solve(A.T @ A + k * np.eye(300), A.T @ u) - u
        p.append(r @ r)
    assert np.mean(d1) == pytest.approx(eq.df1, rel=0.01)
    assert np.mean(d2) == pytest.approx(eq.df2, rel=0.01)
    assert np.mean(p) == pytest.approx(eq.population_loss, rel=0.06)


# -------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("n,t", [(100, 400), (400, 100)])
def test_equivalent_matches_simulation(n, t):
    """20 draws each; |sim/DE - 1| <= 5 % and within 3 standard errors (seeded)."""
    model = vs.PLRF(1.0, 0.7, 2000, n)
    ridges = (0.0, 1e-3)
    losses = _ridge_losses(model.data_eigenvalues, model.target, n, t, ridges, 20,
                           _root_entropy(11)[1])
    for k, r in enumerate(ridges):
        de = vs.ridge_test_loss(model, t, r)
        mean = losses[:, k].mean()
        se = losses[:, k].std(ddof=1) / math.sqrt(20)
        assert abs(mean / de - 1) <= 0.05
        assert abs(mean - de) <= 3 * se


def test_simulate_ridge_reproducible_and_prefix_stable():
    model = vs.PLRF(1.0, 0.7, 300, 40)
    a = vs.simulate_ridge(model, 80, 1e-3, n_runs=3, rng=7)
    b = vs.simulate_ridge(model, 80, 1e-3, n_runs=5, rng=7)
    np.testing.assert_array_equal(a.losses, b.losses[:3])
    assert a.loss == pytest.approx(np.mean(a.losses))
    assert a.stderr == pytest.approx(np.std(a.losses, ddof=1) / math.sqrt(3))
    assert math.isnan(vs.simulate_ridge(model, 80, 0.0, n_runs=1, rng=1).stderr)


@pytest.mark.parametrize("shape", [(30, 10), (10, 30)])
def test_fit_ridge_primal_and_kernel_forms_against_direct_solve(shape):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal(shape)
    y = rng.standard_normal(shape[0])
    t, n = shape
    direct = np.linalg.solve(Z.T @ Z / t + 0.3 * np.eye(n), Z.T @ y / t)
    np.testing.assert_allclose(_fit_ridge(Z, y, 0.3), direct, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_fit_ridge(Z, y, 0.0), np.linalg.pinv(Z) @ y, rtol=1e-9,
                               atol=1e-12)


# ---------------------------------------------------------------- peak, surface, best N
def test_interpolation_peak_at_n_equals_t():
    model = vs.PLRF(1.0, 0.7, 2000, 1)
    ns = [150, 190, 199, 200, 201, 210, 300]
    s = vs.ridge_loss_surface(model, ns, [200], 0.0).loss[:, 0]
    assert math.isinf(s[3]) and np.all(np.isfinite(np.delete(s, 3)))
    assert s[0] < s[1] < s[2] and s[4] > s[5] > s[6]  # diverges from both sides
    eq = vs.ridge_equivalent(vs.PLRF(1.0, 0.7, 2000, 200), 200)
    assert eq.status == 3 and eq.success and math.isinf(eq.loss)
    # a ridge removes the divergence
    assert math.isfinite(vs.ridge_test_loss(vs.PLRF(1.0, 0.7, 2000, 200), 200, 1e-4))


def test_surface_limits():
    model = vs.PLRF(1.0, 0.7, 2000, 1)
    surf = vs.ridge_loss_surface(model, [50, math.inf], [100, math.inf], 1e-3)
    assert surf.loss[0, 1] == pytest.approx(
        vs.ridge_equivalent(vs.PLRF(1.0, 0.7, 2000, 50), math.inf, 1e-3).loss, rel=1e-14)
    assert surf.kappa[1, 1] == 1e-3
    assert surf.loss.shape == (2, 2)


def test_best_n_features_underparameterised_branch():
    t = 120
    model = vs.PLRF(1.0, 0.3, 2000, 1)
    grid = np.arange(5, t, 5)
    best = vs.best_n_features(model, t, 0.0, n_features=grid)
    brute = [vs.limit_loss(vs.PLRF(1.0, 0.3, 2000, int(n))) / (1 - n / t) for n in grid]
    assert best.n_features == grid[int(np.argmin(brute))]
    assert best.loss == pytest.approx(min(brute), rel=1e-12)
    default = vs.best_n_features(model, t, 1e-3)
    assert default.grid[-1] == math.inf and default.loss <= best.loss * 10


# ---------------------------------------------------------------- scaling exponents
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.2), (1.0, 1.0), (0.75, 2.0)])
def test_measured_exponents_match_closed_forms(alpha, beta):
    """Log-log slopes over N, T in [100, 1000] (v = inf) within 0.03 of the closed forms."""
    model = vs.PLRF(alpha, beta, math.inf, 1)
    ex = vs.ridge_scaling_exponents(alpha, beta)
    x = np.array([100, 178, 316, 562, 1000])
    ln = [vs.ridge_equivalent(model, math.inf, 0.0, n_features=int(n)).loss for n in x]
    lt = [vs.ridge_equivalent(model, int(t), 0.0, n_features=math.inf).loss for t in x]
    lams = np.geomspace(1e-6, 1e-4, 5)
    ll = [vs.ridge_equivalent(model, math.inf, r, n_features=math.inf).loss for r in lams]
    assert -np.polyfit(np.log(x), np.log(ln), 1)[0] == pytest.approx(ex.features, abs=0.03)
    assert -np.polyfit(np.log(x), np.log(lt), 1)[0] == pytest.approx(ex.samples, abs=0.03)
    assert np.polyfit(np.log(lams), np.log(ll), 1)[0] == pytest.approx(ex.ridge, abs=0.03)


def test_closed_form_exponent_branches():
    assert vs.ridge_scaling_exponents(1.0, 0.2) == vs.RidgeExponents(1.4, 1.4, 0.7)
    assert vs.ridge_scaling_exponents(1.0, 1.0) == vs.RidgeExponents(2.0, 3.0, 1.5)
    assert vs.ridge_scaling_exponents(0.75, 2.0) == vs.RidgeExponents(1.5, 3.0, 2.0)
    with pytest.raises(ValueError, match="alpha"):
        vs.ridge_scaling_exponents(0.4, 1.0)


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw,exc,match", [
    ({"n_samples": 0}, ValueError, "n_samples"),
    ({"n_samples": -3}, ValueError, "n_samples"),
    ({"n_samples": 10.5}, TypeError, "n_samples"),
    ({"n_samples": 10, "ridge": -1e-3}, ValueError, "ridge"),
    ({"n_samples": 10, "ridge": math.nan}, ValueError, "ridge"),
    ({"n_samples": 10, "ridge": math.inf}, ValueError, "ridge"),
    ({"n_samples": 10, "ridge": "0"}, TypeError, "ridge"),
])
def test_bad_input_raises(kw, exc, match):
    model = vs.PLRF(1.0, 0.7, 300, 20)
    with pytest.raises(exc, match=match):
        vs.ridge_test_loss(model, **kw)
    with pytest.raises(exc, match=match):
        vs.simulate_ridge(model, **kw, n_runs=2)


def test_bad_input_simulation_and_models():
    model = vs.PLRF(1.0, 0.7, 300, 20)
    with pytest.raises(ValueError, match="n_runs"):
        vs.simulate_ridge(model, 10, n_runs=0)
    with pytest.raises(TypeError, match="n_runs"):
        vs.simulate_ridge(model, 10, n_runs=2.5)
    inf_model = vs.PLRF(1.0, 0.7, math.inf, 20)
    with pytest.raises(ValueError, match="finite"):
        vs.simulate_ridge(inf_model, 10)
    with pytest.raises(TypeError, match="model"):
        vs.ridge_test_loss(object(), 10)
    with pytest.raises(ValueError, match="n_features"):
        vs.ridge_loss_surface(model, [0, 5], [10])
    with pytest.raises(ValueError, match="n_samples"):
        vs.ridge_loss_surface(model, [5], [math.nan])


# ------------------------------------------------------------------------- CLI
def test_cli_ridge_prints_equivalent(capsys):
    from volterra_sgd.cli import main

    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "100", "200",
                 "--n-samples", "200", "--v", "2000"]) == 0
    out = capsys.readouterr().out.splitlines()
    expect = vs.ridge_test_loss(vs.PLRF(1.0, 0.7, 2000, 100), 200)
    assert float(out[2].split()[3]) == pytest.approx(expect, rel=1e-5)
    assert out[3].split()[3] == "inf"  # N = T: the interpolation peak
    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "40",
                 "--n-samples", "80", "--ridge", "1e-3", "--runs", "3", "--v", "300"]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    sim = vs.simulate_ridge(vs.PLRF(1.0, 0.7, 300, 40), 80, 1e-3, n_runs=3, rng=0)
    assert float(row[5]) == pytest.approx(sim.loss, rel=1e-5)


def test_cli_ridge_bad_input(capsys):
    from volterra_sgd.cli import main

    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "10",
                 "--n-samples", "20", "--ridge", "-1"]) == 2  # an argparse error: returned
    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "10",
                 "--n-samples", "20", "--runs", "-1"]) == 2
    assert "--runs" in capsys.readouterr().err
    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "10",
                 "--n-samples", "20", "--v", "inf", "--runs", "2"]) == 2
    assert "finite --v" in capsys.readouterr().err
    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "10",
                 "--n-samples", "20", "--v", "inf"]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert float(row[3]) == pytest.approx(vs.ridge_test_loss(vs.PLRF(1.0, 0.7, math.inf, 10),
                                                             20), rel=1e-5)


@pytest.mark.slow
def test_grid_against_simulation_slow():
    """The validation grid at (alpha, beta) = (0.7, 0.4), 20 runs: every point within 5 %."""
    from volterra_sgd.validation.ridge_vs_simulation import GRID, compare_grid

    rows = compare_grid(params=[(0.7, 0.4)], grid=GRID, n_runs=20, rng=2)
    assert len(rows) == 12
    for r in rows:
        assert abs(r["rel_dev"]) <= 0.05, r
        assert abs(r["z"]) <= 3.0, r


def test_infinite_broken_power_law_spectral_model_against_long_finite_list():
    """Head from a callable, declared tail powers beyond it, against the explicit list."""
    def lam(j):
        return np.where(j <= 50, j**-1.6, 50.0**-1.6 * (j / 50.0) ** -3.0)

    def tgt(j):
        return j**-0.4

    inf_sm = vs.SpectralModel(lam, tgt, d=200, tail_power=3.0, target_tail_power=3.8,
                              n_explicit=5000)
    j = np.arange(1, 400_001.0)
    fin_sm = vs.SpectralModel(lam(j), tgt(j), d=200)
    for t, r in ((100, 0.0), (1000, 0.0), (300, 1e-5), (math.inf, 0.0)):
        assert vs.ridge_test_loss(inf_sm, t, r) == pytest.approx(
            vs.ridge_test_loss(fin_sm, t, r), rel=1e-6)  # the list's missing tail: ~4e-8


# ----------------------------------------------------------------------- label noise
def test_zero_noise_reproduces_the_noiseless_values():
    """noise_variance = 0: the values of the code before label noise (hex digits stored then;
    equal to the last bit on the machine of the change, 1e-15 allows another libm)."""
    cases = [((1.0, 0.7, 2000, 100), 400, 0.0, "0x1.aa4cebb7c73bfp-11"),
             ((1.0, 0.7, 2000, 400), 100, 1e-3, "0x1.228bdd42bd631p-11"),
             ((1.0, 0.7, math.inf, 300), 1000, 1e-5, "0x1.9fe82fe90a94ep-14"),
             ((0.8, 0.5, 3000, 50), math.inf, 1e-4, "0x1.6b786d5135bfbp-6")]
    for (a, b, v, d), t, r, ref in cases:
        eq = vs.ridge_equivalent(vs.PLRF(a, b, v, d, noise_variance=0.0), t, r)
        assert eq.loss == pytest.approx(float.fromhex(ref), rel=1e-15, abs=0)
        assert eq.noise_loss == 0.0 and eq.total_loss == eq.loss
    model = vs.PLRF(1.0, 0.7, 300, 40)
    run = vs.simulate_ridge(model, 80, 1e-3, n_runs=3, rng=5)
    ref = [float.fromhex(h) for h in ("0x1.fb21f31baaf69p-8", "0x1.e4a0fb906d598p-9",
                                      "0x1.0a7d86efe10b6p-8")]
    np.testing.assert_allclose(run.losses, ref, rtol=1e-12)  # BLAS may move the last bits
    assert run.noise_variance == 0.0 and run.total_loss == run.loss


def test_noise_closed_forms():
    s2 = 0.03
    # ridge 0, N < T: sigma^2 N/(T - N) on top of F0/(1 - N/T) (Eq. (19.1))
    for n, t in ((50, 60), (100, 1000)):
        quiet = vs.ridge_equivalent(vs.PLRF(0.8, 0.5, 3000, n), t)
        eq = vs.ridge_equivalent(vs.PLRF(0.8, 0.5, 3000, n, noise_variance=s2), t)
        assert eq.noise_loss == pytest.approx(s2 * n / (t - n), rel=1e-12)
        assert eq.loss == pytest.approx(quiet.loss + s2 * n / (t - n), rel=1e-12)
        assert eq.total_loss == pytest.approx((quiet.population_loss + s2) /
                                              (1 - n / t), rel=1e-12)
    # isotropic data, N = inf, min-norm, T < v: |b|^2 (1 - T/v) + sigma^2 T/(v - T)
    v = 500
    b = np.linspace(0.5, 1.5, v)
    sm = vs.SpectralModel(np.ones(v), b, d=100, noise_variance=s2)
    for t in (50, 250, 450):
        eq = vs.ridge_equivalent(sm, t, 0.0, n_features=math.inf)
        expect = float(b @ b) * (1 - t / v) + s2 * t / (v - t)
        assert eq.loss == pytest.approx(expect, rel=1e-12 * v / (v - t))
    # T = inf: the noise averages out
    eq = vs.ridge_equivalent(vs.PLRF(1.0, 0.7, 2000, 100, noise_variance=s2), math.inf, 1e-3)
    assert eq.noise_loss == 0.0 and eq.total_loss == pytest.approx(eq.loss + s2)
    # the peak stays infinite
    eq = vs.ridge_equivalent(vs.PLRF(1.0, 0.7, 2000, 200, noise_variance=s2), 200)
    assert eq.status == 3 and math.isinf(eq.loss) and math.isinf(eq.noise_loss)


def test_noise_term_against_exact_traces_for_sampled_designs():
    """E_eps of the noise part is sigma^2 tr(A^T Sigma A) for each (X, W) exactly; its mean
    over 8 draws matches sigma^2 df2/(T - df2) within 5 % (finite N, T) and 4 SE."""
    s2 = 0.01
    for n, t, r in ((60, 180, 0.0), (180, 60, 1e-4)):
        model = vs.PLRF(1.0, 0.7, 600, n, noise_variance=s2)
        lam = model.data_eigenvalues
        vals = []
        for seed in range(8):
            g = np.random.default_rng(seed)
            W = g.standard_normal((lam.size, n)) / math.sqrt(n)
            X = g.standard_normal((t, lam.size)) * np.sqrt(lam)
            Z = X @ W
            S = W.T @ (lam[:, None] * W)
            A = np.linalg.pinv(Z) if r == 0.0 else \
                Z.T @ np.linalg.inv(Z @ Z.T + t * r * np.eye(t))
            vals.append(s2 * np.trace(A.T @ S @ A))
        de = vs.ridge_equivalent(model, t, r).noise_loss
        se = np.std(vals, ddof=1) / math.sqrt(len(vals))
        assert abs(np.mean(vals) / de - 1) <= 0.05
        assert abs(np.mean(vals) - de) <= 4 * se + 0.01 * de


def test_simulated_noise_is_the_noiseless_run_plus_the_trace():
    """Same seed: W and X are the noiseless run's; the loss moves by the noise part, whose
    mean over eps is sigma^2 tr(A^T Sigma A) (tested in units of its own spread)."""
    s2, n, t, r = 0.02, 30, 60, 1e-3
    model = vs.PLRF(1.0, 0.7, 200, n)
    lam, b = model.data_eigenvalues, model.target
    ent = _root_entropy(4)[1]
    quiet = _ridge_losses(lam, b, n, t, (r,), 30, ent)[:, 0]
    noisy = _ridge_losses(lam, b, n, t, (r,), 30, ent, s2)[:, 0]
    expect = []
    for i in range(30):
        gen = np.random.default_rng(np.random.SeedSequence(ent, spawn_key=(i,)))
        W = gen.standard_normal((lam.size, n)) / math.sqrt(n)
        X = gen.standard_normal((t, lam.size)) * np.sqrt(lam)
        Z = X @ W
        A = Z.T @ np.linalg.inv(Z @ Z.T + t * r * np.eye(t))
        expect.append(s2 * np.trace(A.T @ (W.T @ (lam[:, None] * W)) @ A))
    d = noisy - quiet - np.array(expect)
    assert abs(d.mean()) <= 4 * d.std(ddof=1) / math.sqrt(30)
    assert np.all(noisy != quiet)


@pytest.mark.parametrize("n,t", [(100, 400), (400, 100)])
def test_noisy_equivalent_matches_simulation(n, t):
    """20 draws, sigma^2 = 1e-3 (the noise part is 18-72 % of the loss): within 5 % and 3 SE."""
    model = vs.PLRF(1.0, 0.7, 2000, n, noise_variance=1e-3)
    run = vs.simulate_ridge(model, t, 1e-4, n_runs=20, rng=12)
    eq = vs.ridge_equivalent(model, t, 1e-4)
    assert eq.noise_loss > 0.15 * eq.loss  # measured 18 % and 72 % of the excess risk
    assert abs(run.loss / eq.loss - 1) <= 0.05
    assert abs(run.loss - eq.loss) <= 3 * run.stderr
    assert run.total_loss == pytest.approx(run.loss + 1e-3, rel=1e-15)


def test_surface_and_best_n_with_noise():
    model = vs.PLRF(1.0, 0.7, 2000, 1, noise_variance=1e-3)
    surf = vs.ridge_loss_surface(model, [50, 150], [100, math.inf], 1e-4)
    assert surf.noise_variance == 1e-3
    assert surf.loss[0, 0] == vs.ridge_test_loss(vs.PLRF(1.0, 0.7, 2000, 50,
                                                          noise_variance=1e-3), 100, 1e-4)
    # under-parameterised branch at ridge 0: the noise variance sigma^2 N/(T - N) moves the
    # best N down (both from the same grid; brute-force minimum of the closed form)
    grid = np.arange(5, 200, 5)
    noisy = vs.best_n_features(model, 200, 0.0, n_features=grid)
    quiet = vs.best_n_features(vs.PLRF(1.0, 0.7, 2000, 1), 200, 0.0, n_features=grid)
    brute = [vs.limit_loss(vs.PLRF(1.0, 0.7, 2000, int(n))) / (1 - n / 200)
             + 1e-3 * n / (200 - n) for n in grid]
    assert noisy.n_features == grid[int(np.argmin(brute))] < quiet.n_features


# ---------------------------------------------------------------------- optimal ridge
@pytest.mark.parametrize("params,n,t,s2", [((1.0, 0.7), 100, 1000, 0.0),
                                           ((1.0, 0.7), 200, 200, 0.0),
                                           ((0.75, 2.0), 300, 100, 1e-4),
                                           ((1.0, 0.3), 100, 300, 1e-3)])
def test_optimal_ridge_against_dense_grid(params, n, t, s2):
    """The optimum against 241 ridges over 12 decades through the public lambda route."""
    model = vs.PLRF(*params, 3000, n, noise_variance=s2)
    opt = vs.optimal_ridge(model, n, t)
    grid = np.geomspace(1e-12, 1.0, 241)  # 20 per decade
    losses = np.array([vs.ridge_test_loss(model, t, r) for r in grid])
    i = int(np.argmin(losses))
    assert opt.status == 0
    assert opt.loss <= losses[i] * (1 + 1e-9)
    assert opt.loss >= losses[i] * (1 - 2e-3)  # grid spacing 12 % in ridge: O(1e-3) in loss
    assert grid[max(i - 1, 0)] <= opt.ridge <= grid[min(i + 1, grid.size - 1)]
    # the kappa route of the search agrees with the lambda route at the reported ridge
    assert vs.ridge_test_loss(model, t, opt.ridge) == pytest.approx(opt.loss, rel=1e-9)
    assert opt.total_loss == opt.loss + s2


def test_optimal_ridge_zero_and_limits():
    # noiseless, N >> T: no positive ridge helps (min-norm is optimal)
    model = vs.PLRF(1.0, 0.7, math.inf, 1)
    opt = vs.optimal_ridge(model, 4000, 200)
    assert opt.status == 1 and opt.ridge == 0.0 and opt.loss == opt.loss_at_zero
    m = vs.PLRF(1.0, 0.7, math.inf, 4000)
    assert opt.loss == pytest.approx(vs.ridge_test_loss(m, 200, 0.0), rel=1e-12)
    assert all(vs.ridge_test_loss(m, 200, r) >= opt.loss for r in np.geomspace(1e-12, 1, 25))
    # T = inf: the population ridge loss increases with the ridge
    inf_t = vs.optimal_ridge((1.0, 0.7), 100, math.inf)
    assert inf_t.status == 1 and inf_t.ridge == 0.0
    assert inf_t.loss == pytest.approx(vs.limit_loss(vs.PLRF(1.0, 0.7, math.inf, 100)),
                                       rel=1e-12)
    # the peak: infinite at ridge 0, finite at the optimum
    peak = vs.optimal_ridge((1.0, 0.7), 300, 300)
    assert math.isinf(peak.loss_at_zero) and peak.status == 0 and peak.ridge > 0
    # a huge label noise: the minimum leaves the search range towards the zero predictor
    loud = vs.optimal_ridge(vs.PLRF(1.0, 0.7, 500, 1, noise_variance=1e6), 100, 50)
    assert loud.status == 2 and loud.loss < loud.loss_at_zero


@pytest.mark.parametrize("args,exc,match", [
    (((1.0, 0.7), 0, 10), ValueError, "n_features"),
    (((1.0, 0.7), 10, 2.5), TypeError, "n_samples"),
    (((1.0,), 10, 10), ValueError, "model_or_params"),
    (((0.3, 0.7), 10, 10), ValueError, "alpha"),
    ((object(), 10, 10), TypeError, "model"),
])
def test_optimal_ridge_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        vs.optimal_ridge(*args)


def test_cli_ridge_noise_variance_and_frontier_flag(capsys):
    from volterra_sgd.cli import main

    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "100",
                 "--n-samples", "300", "--ridge", "1e-4", "--noise-variance", "0.002",
                 "--v", "2000"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "sigma^2=0.002" in out[0]
    expect = vs.ridge_test_loss(vs.PLRF(1.0, 0.7, 2000, 100, noise_variance=0.002), 300, 1e-4)
    assert float(out[2].split()[3]) == pytest.approx(expect, rel=1e-5)
    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--n-features", "10"]) == 2
    assert "--frontier" in capsys.readouterr().err
    assert main(["ridge", "--alpha", "1", "--beta", "0.7", "--noise-variance", "-1",
                 "--frontier"]) == 2
