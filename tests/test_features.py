"""Tests of volterra_sgd.features: spectra and targets of nonlinear random features.

References: the closed-form kernels (method="exact": arc-cosine for ReLU, arcsine for erf,
Stein's lemma for the target) against the sample estimator (Monte Carlo with stated
tolerance), and against a direct Monte-Carlo evaluation for one pair of features; exact
identities (linear features: C = F^T D F / p, full-rank features explain all of y; the
SpectralModel's initial loss equals the explained variance).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

import volterra_sgd as vs
from volterra_sgd.features import _moments_exact, feature_spectrum, tail_exponent


@pytest.mark.parametrize("act", ["linear", "relu", "erf"])
def test_sample_estimator_matches_closed_form(act):
    """n = 40000, p = 200: top-10 eigenvalues within 3 %, explained variance within 1.5 %."""
    ex = feature_spectrum(1.0, 0.7, 50, 200, act, method="exact", rng=0)
    sa = feature_spectrum(1.0, 0.7, 50, 200, act, n_samples=40000, rng=0)
    rel = sa.eigenvalues[:10] / ex.eigenvalues[:10] - 1
    assert np.max(np.abs(rel)) <= 0.03
    # the split-half spread is an honest error scale (within 4 spreads + 1 %)
    assert np.all(np.abs(sa.eigenvalues[:10] - ex.eigenvalues[:10])
                  <= 4 * sa.eigenvalue_spread[:10] + 0.01 * ex.eigenvalues[:10])
    assert sa.explained_variance == pytest.approx(ex.explained_variance, rel=0.015)
    # target coefficients of the two leading directions (sign fixed by the eigenvector)
    for k in range(2):
        assert abs(sa.target[k]) == pytest.approx(abs(ex.target[k]), rel=0.06)
    assert sa.p_over_n == 200 / 40000 and ex.p_over_n == 0.0


@pytest.mark.parametrize("act,fn", [("relu", lambda h: np.maximum(h, 0)), ("erf", erf)])
def test_closed_form_kernel_entries_by_monte_carlo(act, fn):
    """One off-diagonal entry, one diagonal entry and E[phi y], 5e5 samples (5 SE)."""
    rng = np.random.default_rng(3)
    v = 20
    lam = np.arange(1, v + 1.0) ** -2.0
    b = np.arange(1, v + 1.0) ** -0.7
    F = rng.standard_normal((v, 2)) / math.sqrt(lam.sum())
    C, c = _moments_exact(act, F, lam, b)
    x = rng.standard_normal((500_000, v)) * np.sqrt(lam)
    P = fn(x @ F)
    P -= P.mean(axis=0)
    y = x @ b
    for est, ref in ((P[:, 0] * P[:, 1], C[0, 1]), (P[:, 0] ** 2, C[0, 0]),
                     (P[:, 1] * y, c[1])):
        assert abs(est.mean() - ref) <= 5 * est.std() / math.sqrt(est.size)


def test_linear_features_exact_identities():
    rng = 5
    fs = feature_spectrum(1.0, 0.7, 30, 12, "linear", method="exact", rng=rng)
    F = np.random.default_rng(rng).standard_normal((30, 12))
    lam = np.arange(1, 31.0) ** -2.0
    F /= math.sqrt(lam.sum())
    ref = np.sort(np.linalg.eigvalsh(F.T @ (lam[:, None] * F) / 12))[::-1]
    np.testing.assert_allclose(fs.eigenvalues, ref, rtol=1e-12)
    # p >= v: the features span x, the whole target is explained
    full = feature_spectrum(1.0, 0.7, 30, 60, "linear", method="exact", rng=1)
    assert full.eigenvalues.size == 30
    assert abs(full.unexplained_variance) <= 1e-9 * full.target_variance


def test_spectral_model_reproduces_explained_variance_and_ridge():
    fs = feature_spectrum(1.0, 0.7, 40, 150, "relu", method="exact", rng=2)
    sm = fs.model(d=60)
    assert isinstance(sm, vs.SpectralModel)
    assert sm.initial_loss == pytest.approx(fs.explained_variance, rel=1e-12)
    assert 0 < fs.unexplained_variance < fs.target_variance
    # the best linear predictor on all features leaves nothing of the linear part:
    assert vs.ridge_equivalent(sm, math.inf, 0.0, n_features=math.inf).loss == 0.0
    # ridge on the spectral model runs and is bounded by the initial loss
    assert 0 < vs.ridge_test_loss(sm, 400, 1e-3) < sm.initial_loss


def test_nonlinearity_extends_the_power_law():
    """Linear features have rank v (hard cut-off); ReLU and erf continue past k = v."""
    v, p = 60, 600
    lin = feature_spectrum(1.0, 0.7, v, p, "linear", method="exact", rng=0)
    assert lin.eigenvalues.size == v
    assert tail_exponent(lin.eigenvalues, 5, 40) == pytest.approx(2.0, abs=0.15)
    for act in ("relu", "erf"):
        fs = feature_spectrum(1.0, 0.7, v, p, act, method="exact", rng=0)
        mu = fs.eigenvalues
        assert mu.size > 4 * v
        s = tail_exponent(mu, 2 * v, 6 * v)
        assert 1.3 < s < 2.3  # a power law of comparable exponent beyond the latent rank
        assert mu[2 * v] > 1e-4 * mu[0]


def test_callable_activation_and_tanh_sampled():
    a = feature_spectrum(1.0, 0.7, 20, 30, np.tanh, n_samples=2000, rng=4)
    b = feature_spectrum(1.0, 0.7, 20, 30, "tanh", n_samples=2000, rng=4)
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-12)
    assert a.activation == "tanh" and a.method == "sample"


def test_bad_input():
    with pytest.raises(ValueError, match="activation"):
        feature_spectrum(1.0, 0.7, 10, 10, "sigmoid")
    with pytest.raises(TypeError, match="activation"):
        feature_spectrum(1.0, 0.7, 10, 10, 3)
    with pytest.raises(ValueError, match="exact"):
        feature_spectrum(1.0, 0.7, 10, 10, "tanh", method="exact")
    with pytest.raises(ValueError, match="method"):
        feature_spectrum(1.0, 0.7, 10, 10, "relu", method="bootstrap")
    with pytest.raises(ValueError, match="n_samples"):
        feature_spectrum(1.0, 0.7, 10, 10, "relu", n_samples=2)
    with pytest.raises(ValueError, match="n_features"):
        feature_spectrum(1.0, 0.7, 10, 0, "relu")
    with pytest.raises(ValueError, match="shape"):
        feature_spectrum(1.0, 0.7, 10, 10, lambda h: h[:, :2], n_samples=10)
    with pytest.raises(ValueError, match="non-finite"):
        feature_spectrum(1.0, 0.7, 10, 10, lambda h: np.full_like(h, np.nan), n_samples=10)
    with pytest.raises(ValueError, match="k_max"):
        tail_exponent(np.ones(5), 1, 9)
