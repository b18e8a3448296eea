"""Deterministic spectral measures, forcing and kernel (contour.py, forcing.py)."""

import math

import mpmath as mp
import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd.contour import spectral_measure, spectral_support
from volterra_sgd.exact import embedding_spectrum
from volterra_sgd.forcing import forcing_and_kernel

REF = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
GAMMA = 0.5 / math.fsum(np.arange(1, 2001.0) ** -2)


def test_reference_numbers_theory_C():
    # docs/theory.md, Eq. (13.1) (independent check): F0 = 1.5355e-4, lambda_min = 1.290e-5,
    # F(1000) = 7.341e-4, K(1000) = 2.700e-6.
    fk = forcing_and_kernel(REF, [0, 1000], learning_rate=GAMMA)
    assert fk.measure.limit_loss == pytest.approx(1.5355e-4, rel=1e-4)
    assert fk.measure.support.lower_edge == pytest.approx(1.290e-5, rel=1e-3)
    assert fk.forcing[1] == pytest.approx(7.341e-4, rel=1e-3)
    assert fk.kernel[1] == pytest.approx(2.700e-6, rel=1e-3)
    assert fk.forcing[0] == pytest.approx(REF.initial_loss, rel=1e-12)


@pytest.mark.parametrize("model", [
    REF, vs.PLRF(0.35, 0.45, 2000, 200), vs.PLRF(1.5, 0.5, math.inf, 150),
    # small alpha: at one node each the Newton residual of m(x+i0) used to stall a few ulp
    # above its test (sums of ~2000 terms), raising ConvergenceError
    vs.PLRF(0.2157558958641495, 0.5833882849451256, 1280, 128),
    vs.PLRF(0.15495829065855873, 0.7568302034356469, 2560, 256)])
def test_measure_masses(model):
    meas = spectral_measure(model)
    # total eigenvalue count is d (finite v > d: rank d), F-mass balance P(0) = F0 + mass
    assert np.sum(meas.eigen_weights) == pytest.approx(model.d, rel=1e-9)
    assert abs(meas.mass_defect) < 1e-11 * model.initial_loss
    # every isolated outlier component carries exactly one eigenvalue
    np.testing.assert_allclose(meas.outlier_counts, 1.0, rtol=1e-9)
    assert np.all(meas.forcing_weights >= 0) and np.all(meas.eigen_weights >= 0)


def test_stieltjes_transform_matches_mpmath_resolvent():
    # Independent check of the whole measure: its Stieltjes transform at z off the axis
    # must equal G_F(z) = sum_j c_j^2 / (lambda_j m(z) - z) with m(z) solved by mpmath.
    model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=60)
    meas = spectral_measure(model)
    j = np.arange(1, 301)
    with mp.workdps(30):
        lam = [mp.mpf(int(k)) ** -2 for k in j]
        c2 = [mp.mpf(int(k)) ** mp.mpf(-3.4) for k in j]
        for z in [mp.mpc(0.05, 0.01), mp.mpc(1e-3, 5e-4), mp.mpc(0.3, 0.05), mp.mpc(-0.01, 0)]:
            f = lambda m: m + sum(l * m / (l * m - z) for l in lam) / 60 - 1  # noqa: E731
            m = mp.findroot(f, mp.mpc(1, 0) if z.real < 0 else mp.mpc(0.5, -0.3))
            # the physical branch: Im m has the opposite sign to Im z
            assert z.imag == 0 or mp.im(m) * z.imag < 0
            GF = complex(sum(c / (l * m - z) for l, c in zip(lam, c2)))
            zc = complex(z)
            ours = meas.limit_loss / (0 - zc) + np.sum(meas.forcing_weights / (meas.nodes - zc))
            assert abs(ours - GF) < 1e-9 * abs(GF)


def test_two_resolutions_and_error_estimate():
    r = np.unique(np.round(np.logspace(0, 9, 120)).astype(np.int64))
    a = forcing_and_kernel(REF, r, learning_rate=GAMMA, rtol=1e-8)
    b = forcing_and_kernel(REF, r, learning_rate=GAMMA, rtol=1e-11)
    ref = forcing_and_kernel(REF, r, learning_rate=GAMMA, rtol=1e-13)
    np.testing.assert_allclose(b.forcing, a.forcing, rtol=1e-8)
    keep = ref.kernel > 1e-5 * ref.kernel[0]
    np.testing.assert_allclose(b.kernel[keep], a.kernel[keep], rtol=1e-8)
    for res in (a, b):  # the reported error estimate bounds the true error
        assert np.all(np.abs(res.forcing - ref.forcing) <= res.forcing_error + 1e-16 * ref.forcing)
        assert np.all(np.abs(res.kernel - ref.kernel) <= res.kernel_error + 1e-300)


def test_parts_sum_and_sign():
    r = np.unique(np.round(np.logspace(0, 12, 100)).astype(np.int64))
    fk = forcing_and_kernel(REF, r, learning_rate=GAMMA)
    p = fk.parts
    np.testing.assert_allclose(p["Fo"] + p["Fpp"] + p["Fac"], fk.forcing, rtol=1e-12)
    np.testing.assert_allclose(p["Kpp"] + p["Kac"], fk.kernel, rtol=1e-12, atol=0)
    for key in ("Fo", "Fpp", "Fac", "Kpp", "Kac"):
        assert np.all(p[key] >= 0) and np.all(np.isfinite(p[key]))
    assert np.all(np.diff(fk.forcing) <= 0)  # F decreases (q^r decreasing, weights >= 0)
    assert fk.forcing[-1] == pytest.approx(fk.measure.limit_loss, rel=1e-14)  # r = 1e12


def test_outliers_are_the_top_eigenvalues_of_sampled_embeddings():
    # Fpp is carried by the isolated components: for sampled W, the k-th largest eigenvalue
    # must fall in (or right next to) the k-th outlier interval, and the bulk holds the rest.
    model = vs.PLRF(alpha=1.0, beta=0.7, v=4000, d=400)
    sup = spectral_support(model)
    assert sup.n_outliers >= 8
    rng = np.random.default_rng(0)
    hits = np.zeros(sup.n_outliers)
    n = 20
    for _ in range(n):
        lam = embedding_spectrum(model, model.sample_embedding(rng)).eigenvalues
        for k, (a, b) in enumerate(sup.outliers):
            w = b - a
            hits[k] += (a - 0.25 * w) <= lam[k] <= (b + 0.25 * w)
        assert lam[sup.n_outliers] < sup.outliers[-1, 0]  # next eigenvalue is below them
    assert np.all(hits[:5] >= n - 1)
    meas = spectral_measure(model)
    bulk_nodes = meas.nodes[meas.component == 0]
    assert bulk_nodes.max() < sup.outliers[:, 0].min()


def test_bad_input():
    with pytest.raises(ValueError, match="finite"):
        forcing_and_kernel(REF, [0, np.nan], learning_rate=GAMMA)
    with pytest.raises(vs.UnstableLearningRateError, match="largest stable learning rate"):
        forcing_and_kernel(REF, [0], learning_rate=10.0)
    with pytest.raises(ValueError, match="v > d"):
        forcing_and_kernel(vs.PLRF(1.0, 0.7, 100, 100), [0], learning_rate=0.1)
    with pytest.raises(TypeError):
        forcing_and_kernel("model", [0], learning_rate=0.1)


def test_infinite_v_with_small_alpha_lower_edge():
    # |u| at the lower edge is far above tau for alpha = 0.7, v = inf: the lambda table must
    # grow (regression: the lower edge came out as -inf).  Reference from the resolvent module.
    from volterra_sgd.resolvent import lower_spectral_edge

    model = vs.PLRF(alpha=0.7, beta=0.7, v=math.inf, d=1000)
    meas = spectral_measure(model)
    assert meas.support.lower_edge == pytest.approx(lower_spectral_edge(model), rel=1e-12)
    assert np.sum(meas.eigen_weights) == pytest.approx(model.d, rel=1e-10)
    assert abs(meas.mass_defect) < 1e-12 * model.initial_loss
