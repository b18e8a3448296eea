import math

import numpy as np
import pytest
from reference_moments import dense_second_moment_loss, mp_given_w

import volterra_sgd as vs
from volterra_sgd.exact import (
    _mode_recursion_kernel,
    embedding_spectrum,
    expected_loss_given_w,
    generator_polynomial,
    kernel_norm,
    max_stable_learning_rate,
)


@pytest.mark.parametrize("alpha,beta,B,v,d,n", [
    (1.0, 0.7, 1, 120, 40, 300), (1.0, 0.7, 3, 120, 40, 300), (0.4, 0.9, 1, 120, 40, 300),
    (0.75, -0.1, 3, 120, 40, 300), (1.5, 1.5, 2, 120, 40, 300),
    (0.7, 0.7, 1, 300, 100, 120), (0.7, 0.7, 3, 300, 100, 120)])
def test_matches_dense_second_moment_recursion(alpha, beta, B, v, d, n):
    model = vs.PLRF(alpha=alpha, beta=beta, v=v, d=d)
    W = model.sample_embedding(rng=11)
    g = model.reference_learning_rate(0.6) / B
    ref = dense_second_moment_loss(model, W, n, g, B)
    for method in ("closed_form", "recursion"):
        res = expected_loss_given_w(model, W, np.arange(n + 1), learning_rate=g, batch_size=B,
                                    method=method)
        np.testing.assert_allclose(res.loss, ref, rtol=1e-12, atol=0)
    # F(0) = P(0) = initial loss, F(r) <= P(r) (kernel is positive)
    assert res.forcing[0] == pytest.approx(model.initial_loss, rel=1e-14)
    assert np.all(res.loss >= res.forcing * (1 - 1e-13))


def test_matches_dense_recursion_at_v300_d_greater_than_v():
    # d > v: rank-deficient H, F0 = 0 and P -> 0.
    model = vs.PLRF(alpha=1.0, beta=0.5, v=60, d=90)
    W = model.sample_embedding(rng=3)
    spec = embedding_spectrum(model, W)
    assert spec.rank == 60 and spec.limit_loss < 1e-26
    g = model.reference_learning_rate(0.5)
    ref = dense_second_moment_loss(model, W, 200, g, 1)
    for method in ("closed_form", "recursion"):
        res = expected_loss_given_w(model, W, np.arange(201), learning_rate=g, method=method)
        np.testing.assert_allclose(res.loss, ref, rtol=1e-12)


def test_single_mode_closed_form():
    # v = d = 1: P(r) = P(0) (1 - 2 g B lam + g^2 B (B+2) lam^2)^r exactly (E over chi^2_B).
    model = vs.PLRF(alpha=0.8, beta=0.3, v=1, d=1)
    W = np.array([[1.7]])
    lam = 1.7 ** 2
    for B in (1, 4):
        g = 0.3 / ((B + 2) * lam)
        r = np.array([0, 1, 5, 50, 400])
        res = expected_loss_given_w(model, W, r, learning_rate=g, batch_size=B)
        np.testing.assert_allclose(
            expected_loss_given_w(model, W, r, learning_rate=g, batch_size=B,
                                  method="recursion").loss, res.loss, rtol=1e-13)
        exact = (1 - 2 * g * B * lam + g * g * B * (B + 2) * lam * lam) ** r.astype(float)
        np.testing.assert_allclose(res.loss, exact, rtol=1e-13)


def test_mpmath_50_digits():
    model = vs.PLRF(alpha=0.9, beta=0.4, v=5, d=3)
    W = model.sample_embedding(rng=5)
    g, B = 0.35, 2
    F, K, P = mp_given_w(model, W, 50, g, B, dps=50)
    res = expected_loss_given_w(model, W, np.arange(51), learning_rate=g, batch_size=B)
    np.testing.assert_allclose(res.forcing, F, rtol=1e-13)
    np.testing.assert_allclose(res.kernel, K, rtol=1e-13)
    np.testing.assert_allclose(res.loss, P, rtol=1e-13)


def test_limit_loss_is_least_squares_minimum_and_long_run_limit():
    model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30)
    W = model.sample_embedding(rng=0)
    spec = embedding_spectrum(model, W)
    X = np.sqrt(model.data_eigenvalues)[:, None] * W
    c = np.asarray(model.scaled_target)
    theta, *_ = np.linalg.lstsq(X, c, rcond=None)
    assert spec.limit_loss == pytest.approx(float(np.sum((X @ theta - c) ** 2)), rel=1e-10)
    g = model.reference_learning_rate(0.5)
    lmin = spec.eigenvalues[-1]
    r_end = int(60 / (2 * g * lmin))
    res = expected_loss_given_w(model, spec, [0, r_end], learning_rate=g)
    assert res.loss[-1] == pytest.approx(res.limit_loss, rel=1e-10)
    assert res.limit_loss == pytest.approx(spec.limit_loss / (1 - res.kernel_norm), rel=1e-15)


def test_kernel_norm_is_sum_of_kernel():
    model = vs.PLRF(alpha=1.2, beta=0.7, v=100, d=20)
    spec = embedding_spectrum(model, model.sample_embedding(rng=1))
    g, B = 0.3, 2
    r_end = int(80 / (2 * g * B * spec.eigenvalues[-1]))
    lam = spec.eigenvalues
    q = generator_polynomial(lam, g, B)
    # sum_r K(r) exactly by geometric series per mode, vs the closed form (Eq. (3.7))
    direct = g * g * B * np.sum(lam ** 2 * (1 - q ** (r_end + 1)) / (1 - q))
    assert kernel_norm(spec, g, B) == pytest.approx(direct, rel=1e-12)


def test_max_stable_learning_rate_and_error_message():
    model = vs.PLRF(alpha=1.0, beta=0.7, v=200, d=50)
    spec = embedding_spectrum(model, model.sample_embedding(rng=2))
    for B in (1, 3):
        gmax = max_stable_learning_rate(spec, B)
        assert kernel_norm(spec, gmax * (1 - 1e-9), B) < 1 < kernel_norm(spec, gmax * (1 + 1e-9), B)
        with pytest.raises(vs.UnstableLearningRateError, match="largest stable learning rate") as e:
            expected_loss_given_w(model, model.sample_embedding(rng=2), [0, 1],
                                  learning_rate=1.01 * gmax, batch_size=B)
        assert e.value.max_learning_rate == pytest.approx(gmax, rel=1e-12)
        assert isinstance(e.value, ValueError)
    # gamma (B+1) lambda_max >= 2 is refused too, with the same kind of error
    with pytest.raises(vs.UnstableLearningRateError, match="lambda_max"):
        expected_loss_given_w(model, spec, [0], learning_rate=2.0 / spec.eigenvalues[0])


def test_bad_input():
    model = vs.PLRF(alpha=1.0, beta=0.7, v=50, d=10)
    W = model.sample_embedding(rng=0)
    with pytest.raises(ValueError, match="shape"):
        expected_loss_given_w(model, W.T, [0], learning_rate=0.1)
    Wn = W.copy()
    Wn[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        expected_loss_given_w(model, Wn, [0], learning_rate=0.1)
    with pytest.raises(ValueError, match="sorted"):
        expected_loss_given_w(model, W, [3, 1], learning_rate=0.1)
    with pytest.raises(ValueError, match="non-negative"):
        expected_loss_given_w(model, W, [-1, 2], learning_rate=0.1)
    with pytest.raises(ValueError, match="whole"):
        expected_loss_given_w(model, W, [0.5], learning_rate=0.1)
    with pytest.raises(ValueError, match="finite"):
        expected_loss_given_w(model, W, [0, np.inf], learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        expected_loss_given_w(model, W, [0], learning_rate=-0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        expected_loss_given_w(model, W, [0], learning_rate=math.nan)
    with pytest.raises(TypeError, match="batch_size"):
        expected_loss_given_w(model, W, [0], learning_rate=0.1, batch_size=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        expected_loss_given_w(model, W, [0], learning_rate=0.1, batch_size=0)
    with pytest.raises(ValueError, match="finite hidden dimension"):
        vs.PLRF(1.0, 0.7, math.inf, 10).sample_embedding()


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(alpha=0.0, beta=0.5, v=10, d=5), ValueError, "alpha"),
    (dict(alpha=math.nan, beta=0.5, v=10, d=5), ValueError, "alpha"),
    (dict(alpha=1.0, beta=math.inf, v=10, d=5), ValueError, "beta"),
    (dict(alpha=1.0, beta=0.5, v=10.5, d=5), TypeError, "v must be an integer"),
    (dict(alpha=1.0, beta=0.5, v=10, d=5 + 0j), TypeError, "d must be real"),
    (dict(alpha=100.0, beta=1.5, v=740, d=37), ValueError, "alpha is too large"),
    (dict(alpha=1.0, beta=-200.0, v=300, d=10), ValueError, "beta is too negative"),
    (dict(alpha=1.0, beta=0.5, v=10, d=5.5), TypeError, "d must be an integer"),
    (dict(alpha=1.0, beta=0.5, v=0, d=5), ValueError, "v must be"),
    (dict(alpha=1.0, beta=0.5, v=10, d=True), TypeError, "d must be an integer"),
    (dict(alpha=0.4, beta=0.5, v=math.inf, d=5), ValueError, "2\\*alpha > 1"),
    (dict(alpha=0.6, beta=-0.2, v=math.inf, d=5), ValueError, "alpha \\+ beta"),
    (dict(alpha="1", beta=0.5, v=10, d=5), TypeError, "alpha"),
])
def test_model_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        vs.PLRF(**kwargs)


def test_model_basics():
    m = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    j = np.arange(1, 2001, dtype=float)
    assert m.initial_loss == pytest.approx(math.fsum(j ** -3.4), rel=1e-15)
    assert m.reference_learning_rate(0.5) == pytest.approx(0.5 / math.fsum(j ** -2.0), rel=1e-15)
    inf = vs.PLRF(alpha=1.0, beta=0.7, v=math.inf, d=200)
    import mpmath
    assert inf.initial_loss == pytest.approx(float(mpmath.zeta(3.4)), rel=1e-14)
    W1 = m.sample_embedding(rng=4)
    W2 = m.sample_embedding(rng=np.random.default_rng(4))
    np.testing.assert_array_equal(W1, W2)
    assert abs(W1.var() * m.d - 1) < 0.01
    with pytest.raises(ValueError):
        m.data_eigenvalues[0] = 3.0


def test_kernel_resumes_and_handles_duplicates():
    rng = np.random.default_rng(0)
    k = 7
    q = rng.uniform(0.5, 0.99, k)
    c = rng.uniform(0, 0.01, k)
    rho = rng.uniform(0, 1, k)
    r_all = np.array([0, 3, 3, 10, 25], dtype=np.int64)
    out_all = np.empty(5)
    assert _mode_recursion_kernel(q, c, 0.1, rho.copy(), 0, r_all, out_all) == 0
    rho2 = rho.copy()
    out_a = np.empty(3)
    out_b = np.empty(2)
    assert _mode_recursion_kernel(q, c, 0.1, rho2, 0, r_all[:3], out_a) == 0
    assert _mode_recursion_kernel(q, c, 0.1, rho2, 3, r_all[3:], out_b) == 0
    np.testing.assert_array_equal(np.r_[out_a, out_b], out_all)
    assert out_all[1] == out_all[2]
    # invalid input is reported by a status code, not an exception
    assert _mode_recursion_kernel(q, c, 0.1, rho.copy(), 5, r_all, out_all) == 2


@pytest.mark.parametrize("alpha,beta,B", [(1.0, 0.7, 1), (0.6, 0.3, 4), (1.5, 2.0, 2)])
def test_closed_form_equals_recursion_and_is_stable_to_1e12(alpha, beta, B):
    model = vs.PLRF(alpha=alpha, beta=beta, v=1000, d=150)
    spec = embedding_spectrum(model, model.sample_embedding(rng=7))
    g = model.reference_learning_rate(0.7) / B
    r = np.unique(np.round(np.logspace(0, 5, 80)).astype(np.int64))
    a = expected_loss_given_w(model, spec, r, learning_rate=g, batch_size=B)
    b = expected_loss_given_w(model, spec, r, learning_rate=g, batch_size=B, method="recursion")
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-12)
    far = expected_loss_given_w(model, spec, [10**6, 10**9, 10**12], learning_rate=g,
                                batch_size=B)
    assert np.all(np.isfinite(far.loss)) and np.all(far.loss > 0)
    assert np.all(np.diff(far.loss) <= 1e-15 * far.loss[0])
    assert far.loss[-1] == pytest.approx(far.limit_loss, rel=1e-12)


def _companion_powers(p, f, kappa, f0, n):
    """P(0..n-1) from Y(r+1) = (Q + kappa 1^T) Y(r) + f0 kappa, P = f0 + 1^T Y (matrix steps)."""
    A = np.diag(1 - p) + np.outer(kappa, np.ones(p.size))
    Y = f.copy()
    ref = []
    for _ in range(n):
        ref.append(f0 + Y.sum())
        Y = A @ Y + f0 * kappa
    return ref


def test_secular_solution_matches_eigendecomposition_of_companion_matrix():
    # Independent check: Y(r+1) = (Q + kappa 1^T) Y(r) + f0 kappa, P = f0 + 1^T Y, by matrix powers.
    from volterra_sgd._secular import solve_exponential_volterra
    rng = np.random.default_rng(3)
    n = 12
    p = np.sort(rng.uniform(0.01, 0.9, n))
    kappa = rng.uniform(0.0, 1.0, n) * p / n * 0.8
    f = rng.uniform(0, 1, n)
    f0 = 0.3
    # duplicate one pole to exercise merging
    p = np.r_[p, p[4]]
    kappa = np.r_[kappa, 0.5 * kappa[4]]
    f = np.r_[f, 2.0]
    P, info = solve_exponential_volterra(p, f, kappa, f0, np.arange(60))
    np.testing.assert_allclose(P, _companion_powers(p, f, kappa, f0, 60), rtol=1e-12)
    assert info["p_inf"] == pytest.approx(f0 / (1 - np.sum(kappa / p)), rel=1e-15)
    with pytest.raises(ValueError, match="kernel norm"):
        solve_exponential_volterra(p, f, 3 * kappa, f0, [0])
    # forcing-only modes (kappa = 0) are handled by their own poles
    kappa0 = kappa.copy()
    kappa0[[2, 7]] = 0.0
    P0, _ = solve_exponential_volterra(p, f, kappa0, f0, np.arange(60))
    np.testing.assert_allclose(P0, _companion_powers(p, f, kappa0, f0, 60), rtol=1e-12)


def test_eigh_method_agrees_with_svd():
    model = vs.PLRF(alpha=1.0, beta=0.7, v=1000, d=100)
    W = model.sample_embedding(rng=8)
    a = embedding_spectrum(model, W)
    b = embedding_spectrum(model, W, method="eigh")
    np.testing.assert_allclose(b.eigenvalues, a.eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(b.weights, a.weights, rtol=1e-6, atol=1e-14)
    assert b.limit_loss == pytest.approx(a.limit_loss, rel=1e-8)
    with pytest.raises(ValueError, match="method"):
        embedding_spectrum(model, W, method="qr")
