"""Optimizers beyond SGD: label noise, heavy ball, Nesterov, DANA (Sec. 9).

References: dense second-moment recursions in the original coordinates (tests/naive_momentum.py,
no eigendecomposition), the independent SGD secular solver, a 60-digit mpmath evaluation of
the coupled linear system, and the published Case I numbers of the team notes (reproduced
below as plain reference values).
"""

import math

import mpmath
import numpy as np
import pytest
from naive_momentum import generalized_momentum_moments, two_step_moments

import volterra_sgd as vs
from volterra_sgd._secular import solve_exponential_volterra
from volterra_sgd.momentum import momentum_loss
from volterra_sgd.optimizers import mode_noise_response

SMALL = vs.PLRF(alpha=1.0, beta=0.7, v=100, d=20)
W_SMALL = SMALL.sample_embedding(rng=3)
SPEC_SMALL = vs.embedding_spectrum(SMALL, W_SMALL)
TR_SMALL = SMALL.trace_data_covariance

CASE1 = vs.PLRF(alpha=1.0, beta=0.7, v=200, d=50)
W1 = np.random.default_rng(0).standard_normal((200, 50)) / math.sqrt(50)
SPEC1 = vs.embedding_spectrum(CASE1, W1)
TR1 = CASE1.trace_data_covariance


def _loss(spec, opt, r, sigma2=0.0, **kw):
    return momentum_loss(spec.eigenvalues, spec.weights, spec.limit_loss, r, opt,
                         noise_variance=sigma2, **kw)


def _optimizer(name, B):
    g = 0.05 / TR_SMALL
    if name == "sgd":
        return vs.SGD(0.25 / TR_SMALL, B)
    if name == "heavy ball":
        return vs.HeavyBall(g, 0.9, B)
    if name == "nesterov":
        return vs.Nesterov(g, 0.9, B)
    if name == "dana-decaying":                  # c2 = 0.3: this embedding has lambda_max 1.6
        return vs.DANA.decaying(SMALL, B, c2=0.3)
    return vs.DANA.constant(SMALL, B, c2=0.3)


NAMES = ["sgd", "heavy ball", "nesterov", "dana-decaying", "dana-constant"]


def _bruteforce(name, opt, R, B, sigma2):
    """Brute-force second-moment recursion in the original coordinates (no eigenbasis)."""
    if name in ("heavy ball", "nesterov"):
        return two_step_moments(SMALL, W_SMALL, opt.learning_rate, opt.momentum, R,
                                nesterov=name == "nesterov", batch_size=B, sigma2=sigma2)

    def hyper(s):
        return tuple(float(a[0]) for a in opt.hyperparameters(np.array([s])))
    return generalized_momentum_moments(SMALL, W_SMALL, hyper, R, batch_size=B, sigma2=sigma2)


@pytest.mark.parametrize("sigma2", [0.0, 0.04])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_exact_recursion_matches_bruteforce_in_original_coordinates(name, B, sigma2):
    opt = _optimizer(name, B)
    R = 150
    r = np.arange(R + 1)
    got = _loss(SPEC_SMALL, opt, r, sigma2, method="recursion")
    ref = _bruteforce(name, opt, R, B, sigma2)
    assert np.max(np.abs(got.loss - ref) / ref) < 1e-10
    np.testing.assert_array_equal(got.total_loss, got.loss + sigma2)


def test_nesterov_lookahead_loss_matches_bruteforce():
    opt = vs.Nesterov(0.05 / TR_SMALL, 0.8, 2)
    gm = opt.learning_rate * opt.momentum
    look = vs.GeneralizedMomentum(1.0, opt.learning_rate, gm, 1 - opt.momentum, 2)
    R = 100
    ref_look = generalized_momentum_moments(
        SMALL, W_SMALL, lambda s: (1.0, opt.learning_rate, gm, 1 - opt.momentum), R,
        batch_size=2, sigma2=0.04)
    ref_theta = generalized_momentum_moments(
        SMALL, W_SMALL, lambda s: (1.0, opt.learning_rate, gm, 1 - opt.momentum), R,
        batch_size=2, sigma2=0.04, readout=(1.0, gm))
    r = np.arange(R + 1)
    assert np.max(np.abs(_loss(SPEC_SMALL, look, r, 0.04).loss - ref_look) / ref_look) < 1e-10
    assert np.max(np.abs(_loss(SPEC_SMALL, opt, r, 0.04).loss - ref_theta) / ref_theta) < 1e-10


# Case I (v = 200, d = 50, alpha = 1, beta = 0.7, seed 0): P at r = 1, 10, 100, 1000 and
# (||K||, P(inf)) where listed -- reference values of the team notes, from a per-mode
# recursion checked against an independent 2d x 2d brute force.
CASE1_TABLE = {
    "sgd+noise": ([6.7392799608e-01, 7.6804207149e-02, 2.5515686371e-02, 2.2192831753e-02],
                  (0.3177987643, 2.1646259739e-02)),
    "hb": ([1.0890734552e+00, 2.6792505803e-01, 1.4593825708e-02, 3.8617539944e-03],
           (0.2502624406, 2.7411652829e-03)),
    "nesterov-lookahead": ([1.0481553288e+00, 2.3503682530e-01, 1.2576895021e-02,
                            3.7102242071e-03], (0.2214855165, 2.6398411496e-03)),
    "nesterov": ([1.0890734552e+00, 2.5913012232e-01, 1.2612044056e-02, 3.6871724871e-03],
                 None),
    "dana-decaying": ([8.5069127627e-01, 1.3152992210e-01, 1.0028175858e-02,
                       3.7200434405e-03], None),
    "dana-constant": ([8.4088848797e-01, 1.3699548225e-01, 2.6612193102e-02,
                       2.0494610636e-02], None),
}


def _case1(name):
    g = 0.05 / TR1
    return {
        "sgd+noise": (vs.SGD(0.5 / TR1, 2), 0.04),
        "hb": (vs.HeavyBall(g, 0.9), 0.0),
        "nesterov-lookahead": (vs.GeneralizedMomentum(1.0, g, 0.9 * g, 0.1), 0.0),
        "nesterov": (vs.Nesterov(g, 0.9), 0.0),
        "dana-decaying": (vs.DANA.decaying(CASE1), 0.0),
        "dana-constant": (vs.DANA.constant(CASE1), 0.04),
    }[name]


@pytest.mark.parametrize("name", list(CASE1_TABLE))
def test_case_one_reference_values(name):
    assert abs(TR1 - 1.639946546015) < 1e-11
    assert abs(SPEC1.limit_loss - 2.055154568999e-03) < 1e-14
    opt, sigma2 = _case1(name)
    values, norm_limit = CASE1_TABLE[name]
    res = _loss(SPEC1, opt, [1, 10, 100, 1000], sigma2, method="recursion")
    np.testing.assert_allclose(res.loss, values, rtol=1e-10, atol=0)
    if norm_limit is not None:
        cf = _loss(SPEC1, opt, [0, 10**6], sigma2)
        assert abs(cf.kernel_norm - norm_limit[0]) < 1e-10
        assert abs(cf.limit_loss - norm_limit[1]) < 1e-10 * norm_limit[1]


def test_dana_rules_reproduce_case_one_hyperparameters():
    dec, con = vs.DANA.decaying(CASE1), vs.DANA.constant(CASE1)
    r = np.array([0, 1, 99], dtype=np.int64)
    g1, g2, g3, dl = dec.hyperparameters(r)
    np.testing.assert_allclose(g2, 0.5 / TR1, rtol=1e-15)
    np.testing.assert_allclose(g3, 0.25 / TR1 / np.sqrt(1.0 + r), rtol=1e-15)
    np.testing.assert_allclose(dl, 5.7 / (5.7 + r), rtol=1e-15)
    np.testing.assert_array_equal(g1, 1.0)
    assert con.hyperparameters(r)[2][2] == pytest.approx(0.1 / (50 * TR1), rel=1e-15)
    assert vs.DANA.decaying(CASE1, 4).gamma1 == 0.25
    with pytest.raises(ValueError, match="delta"):
        vs.DANA.constant(vs.SpectralModel.from_plrf(CASE1))


# ------------------------------------------------------------------ closed form
R6 = np.unique(np.round(np.logspace(0, 6, 40)).astype(np.int64))


@pytest.mark.parametrize("name,sigma2", [("sgd", 0.04), ("hb", 0.0), ("hb99", 0.04),
                                         ("nesterov", 0.0), ("general", 0.04)])
def test_closed_form_matches_unit_steps_to_a_million(name, sigma2):
    g = 0.05 / TR1
    opt = {"sgd": vs.SGD(0.5 / TR1, 2), "hb": vs.HeavyBall(g, 0.9),
           "hb99": vs.HeavyBall(0.005 / TR1, 0.99, 3), "nesterov": vs.Nesterov(g, 0.9),
           "general": vs.GeneralizedMomentum(0.5, 0.2 / TR1, 0.02 / TR1, 0.05, 2)}[name]
    ref = _loss(SPEC1, opt, R6, sigma2, method="recursion").loss
    cf = _loss(SPEC1, opt, R6, sigma2)
    assert cf.method == "closed_form" and cf.status == 0
    assert np.max(np.abs(cf.loss - ref) / ref) < 1e-10
    assert np.all(cf.loss_error <= 1e-8 * ref)
    assert np.all(np.abs(cf.loss - ref) <= cf.loss_error + 1e-15 * ref)


def test_closed_form_sgd_matches_the_independent_secular_solver_to_1e12():
    x = np.geomspace(1.0, 1e-13, 200)
    f = x**0.7
    w = x**0.5 / np.sum(x**1.5)
    g = 0.5 * vs.SGD(1.0).max_stable_learning_rate(x, weights=w)
    r = np.unique(np.round(np.logspace(0, 12, 80)).astype(np.int64))
    got = momentum_loss(x, f, 1e-3, r, vs.SGD(g), eigen_weights=w)
    p = g * x * (2.0 - 2.0 * g * x)
    ref, _ = solve_exponential_volterra(p, f, g * g * x * x * w, 1e-3, r)
    assert np.max(np.abs(got.loss - ref) / ref) < 1e-12


def _mp_reference(x, f, f0, sigma2, g1, g2, g3, dl, r):
    """P(r) of the coupled system X' = M X + x^2 w (P + sigma^2), 60 digits, by powering."""
    mpmath.mp.dps = 60
    n = len(x)
    s = mpmath.mpf(g2) + mpmath.mpf(g1) * mpmath.mpf(g3)
    ob = [s * s, -s * g1, mpmath.mpf(g1) ** 2]
    G = mpmath.zeros(3 * n + 1, 3 * n + 1)
    for i, xi in enumerate(x):
        xi = mpmath.mpf(xi)
        t11, t12 = 1 - s * xi, -mpmath.mpf(g3) * (1 - mpmath.mpf(dl))
        t21, t22 = g1 * xi, 1 - mpmath.mpf(dl)
        sig = [[t11**2, 2 * t11 * t12, t12**2],
               [t11 * t21, t11 * t22 + t12 * t21, t12 * t22],
               [t21**2, 2 * t21 * t22, t22**2]]
        for a in range(3):
            for b in range(3):
                G[3 * i + a, 3 * i + b] = sig[a][b]
            G[3 * i + a, 3 * i] += xi * xi * ob[a]   # self-noise B a_i^2 (Eq. (9.8))
            for j in range(n):                       # coupling through P = F0 + sum_j A_j
                G[3 * i + a, 3 * j] += xi * xi * ob[a]
            G[3 * i + a, 3 * n] = xi * xi * ob[a] * (mpmath.mpf(f0) + mpmath.mpf(sigma2))
    G[3 * n, 3 * n] = 1
    Y = mpmath.zeros(3 * n + 1, 1)
    for i in range(n):
        Y[3 * i] = mpmath.mpf(f[i])
    Y[3 * n] = 1
    Y = (G**int(r)) * Y
    return float(mpmath.mpf(f0) + sum(Y[3 * i] for i in range(n)))


@pytest.mark.parametrize("opt", [vs.HeavyBall(0.1, 0.9), vs.Nesterov(0.1, 0.9)])
def test_closed_form_against_mpmath_at_1e12(opt):
    # modes with 1 - nu ~ 1e-12 (lambda = 1e-13): plain eig or repeated squaring in float64
    # lose 20-100 % here; the structured slow root keeps full accuracy.
    x = [0.5, 1e-4, 1e-13]
    f = [0.3, 0.2, 0.1]
    g1, g2, g3, dl = (float(a[0]) for a in opt.hyperparameters([0]))
    read = opt.readout
    for r in (10**6, 10**12):
        got = momentum_loss(np.array(x), np.array(f), 1e-3, [r], vs.GeneralizedMomentum(
            g1, g2, g3, dl), noise_variance=0.01).loss[0]
        ref = _mp_reference(x, f, 1e-3, 0.01, g1, g2, g3, dl, r)
        assert abs(got - ref) < 1e-12 * ref, (r, got, ref)
    assert read[0] == 1.0


def test_closed_form_finite_and_monotone_to_1e12():
    x = np.geomspace(1.0, 1e-13, 300)
    w = x**0.5 / np.sum(x**1.5)
    r = np.unique(np.round(np.logspace(3, 12.5, 120)).astype(np.int64))
    for opt in (vs.HeavyBall(1.0, 0.9), vs.Nesterov(1.0, 0.9)):
        opt = type(opt)(0.5 * opt.max_stable_learning_rate(x, weights=w), 0.9)
        res = momentum_loss(x, x**0.7, 1e-3, r, opt, eigen_weights=w, noise_variance=0.01)
        assert res.status == 0 and np.all(np.isfinite(res.loss))
        assert np.all(np.diff(res.loss) <= 0)            # late times: monotone decrease
        assert res.loss[-1] > res.limit_loss
        assert abs(res.loss[-1] / res.limit_loss - 1) < 0.1


def test_label_noise_limit_and_total_loss():
    opt = vs.SGD(0.5 / TR1, 2)
    kn = opt.kernel_norm(SPEC1.eigenvalues)
    limit = (SPEC1.limit_loss + 0.04 * kn) / (1 - kn)           # Eq. (9.5)
    far = _loss(SPEC1, opt, [2 * 10**5], 0.04, method="recursion")
    assert abs(far.loss[0] - limit) < 1e-10 * limit
    assert abs(far.total_loss[0] - (SPEC1.limit_loss + 0.04) / (1 - kn)) < 1e-10 * limit
    # sigma^2 = 0 reproduces plain SGD of expected_loss_given_w (Eqs. (3.4), (9.2))
    r = np.array([0, 1, 10, 1000, 10**6])
    plain = vs.expected_loss_given_w(CASE1, W1, r, learning_rate=0.5 / TR1, batch_size=2)
    ours = _loss(SPEC1, opt, r, 0.0)
    assert np.max(np.abs(ours.loss - plain.loss) / plain.loss) < 1e-12


def test_node_weights_enter_as_multiplicities():
    # splitting every mode into two half-weight copies (forcing and eigenvalue weight) is
    # the same spectrum (Eq. (9.19))
    opt = vs.DANA.decaying(CASE1)
    r = np.array([0, 5, 50, 500])
    a = _loss(SPEC1, opt, r, 0.02, method="recursion").loss
    x = np.repeat(SPEC1.eigenvalues, 2)
    f = np.repeat(SPEC1.weights, 2) / 2
    b = momentum_loss(x, f, SPEC1.limit_loss, r, opt, eigen_weights=np.full(x.size, 0.5),
                      noise_variance=0.02, method="recursion").loss
    assert np.max(np.abs(a - b) / a) < 1e-13


# ------------------------------------------------------------------ block integrator
RB = np.unique(np.round(np.logspace(0, 5, 40)).astype(np.int64))


@pytest.mark.parametrize("which,sigma2", [("decaying", 0.0), ("constant", 0.04)])
def test_block_integrator_is_accurate_and_honest_for_dana(which, sigma2):
    opt = getattr(vs.DANA, which)(CASE1)
    ref = _loss(SPEC1, opt, RB, sigma2, method="recursion").loss
    res = _loss(SPEC1, opt, RB, sigma2)
    assert res.method == "blocks"
    err = np.abs(res.loss - ref)
    assert np.max(err / ref) < 1e-4
    assert np.all(err <= res.loss_error + 1e-14 * ref)          # honest estimate
    assert np.max(res.loss_error / ref) < 1e-3                    # and not absurdly loose


def test_block_integrator_converges_with_order_above_one():
    opt = vs.DANA.decaying(CASE1)
    ref = _loss(SPEC1, opt, RB, 0.0, method="recursion").loss
    errs = [np.max(np.abs(_loss(SPEC1, opt, RB, 0.0, method="blocks", h=h).loss - ref) / ref)
            for h in (0.04, 0.02, 0.01)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    # first-order freezing of the coefficients, second-order interpolation of P: measured
    # orders 1.42 and 1.61 here (the team notes report about 1.4)
    assert np.all(orders > 1.2) and np.all(orders < 2.0), orders


def test_block_integrator_exact_for_unit_blocks_and_constant_runs():
    opt = vs.HeavyBall(0.05 / TR1, 0.9)
    r = np.array([0, 3, 700])
    ref = _loss(SPEC1, opt, r, 0.04, method="recursion").loss
    unit = _loss(SPEC1, opt, r, 0.04, method="blocks", r_exact=10**4)   # only unit blocks
    assert np.max(np.abs(unit.loss - ref) / ref) < 1e-13
    long = _loss(SPEC1, opt, R6, 0.04, method="blocks")
    exact = _loss(SPEC1, opt, R6, 0.04, method="recursion").loss
    assert np.max(np.abs(long.loss - exact) / exact) < 1e-5


# ------------------------------------------------------------------ stability
def test_mode_response_closed_form_matches_a_generic_3x3_solve():
    rng = np.random.default_rng(5)
    for _ in range(200):
        lam, g1, g2, g3 = rng.uniform(0.01, 1.0), rng.uniform(0, 1), rng.uniform(0, 0.5), \
            rng.uniform(0, 0.5)
        dl, B = rng.uniform(0.01, 1.0), int(rng.integers(1, 4))
        h, ok = mode_noise_response(lam, g1, g2, g3, dl, B)
        s = g2 + g1 * g3
        T = np.array([[1 - s * B * lam, -g3 * (1 - dl)], [g1 * B * lam, 1 - dl]])
        Sig = np.array([[T[0, 0]**2, 2 * T[0, 0] * T[0, 1], T[0, 1]**2],
                        [T[0, 0] * T[1, 0], T[0, 0] * T[1, 1] + T[0, 1] * T[1, 0],
                         T[0, 1] * T[1, 1]],
                        [T[1, 0]**2, 2 * T[1, 0] * T[1, 1], T[1, 1]**2]])
        om = B * lam**2 * np.array([s * s, -s * g1, g1 * g1])
        M = Sig + np.outer(om, [1.0, 0.0, 0.0])
        stable = np.max(np.abs(np.linalg.eigvals(M))) < 1
        assert bool(ok) == stable
        if np.max(np.abs(np.linalg.eigvals(T))) < 1:
            generic = np.linalg.solve(np.eye(3) - Sig, om)[0]
            assert abs(h - generic) <= 1e-9 * abs(generic)


def test_kernel_norm_is_the_sum_of_the_kernel():
    # ||K|| = sum_j K(j): the loss response to a unit extra loss at step 0 summed over time
    opt = vs.HeavyBall(0.05 / TR1, 0.9)
    x = SPEC1.eigenvalues
    kn = opt.kernel_norm(x)
    # K(j) = sum_k e1^T M_k^j omega_k by unit steps on modes with no initial mass and
    # a one-step source: drive with F0 = 0, f = 0, sigma^2 = 1 for one step is the same as
    # the steady state limit P(inf) = sigma^2 ||K|| / (1 - ||K||) with F0 = 0
    res = momentum_loss(x, np.zeros_like(x), 0.0, [0, 10**6], opt, noise_variance=1.0)
    assert abs(res.limit_loss - kn / (1 - kn)) < 1e-12
    assert abs(res.loss[-1] - kn / (1 - kn)) < 1e-9


@pytest.mark.parametrize("opt", [vs.SGD(1.0, 2), vs.HeavyBall(1.0, 0.9, 3), vs.Nesterov(1.0, 0.5)])
def test_unstable_learning_rate_is_refused_naming_the_largest_stable_one(opt):
    x = SPEC1.eigenvalues
    gmax = opt.max_stable_learning_rate(x)
    ok = type(opt)(**{**opt.__dict__, "learning_rate": 0.999 * gmax})
    bad = type(opt)(**{**opt.__dict__, "learning_rate": 1.001 * gmax})
    assert ok.kernel_norm(x) < 1.0
    with pytest.raises(vs.UnstableLearningRateError, match="must be below") as err:
        momentum_loss(x, SPEC1.weights, SPEC1.limit_loss, [10], bad)
    assert err.value.max_learning_rate == pytest.approx(gmax, rel=1e-9)
    if isinstance(opt, vs.SGD):
        assert gmax == pytest.approx(vs.max_stable_learning_rate(x, 2), rel=1e-12)


def test_invalid_optimizer_arguments_are_refused():
    with pytest.raises(ValueError, match="momentum"):
        vs.HeavyBall(0.1, 1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        vs.Nesterov(-0.1, 0.5)
    with pytest.raises((TypeError, ValueError), match="batch_size"):
        vs.SGD(0.1, 1.5)
    with pytest.raises(ValueError, match="delta"):
        vs.GeneralizedMomentum(1.0, 0.1, 0.1, 1.5)
    bad = vs.GeneralizedMomentum(1.0, 0.1, lambda r: -0.1 + 0 * r, 0.5)
    with pytest.raises(ValueError, match="gamma3"):
        bad.hyperparameters(np.arange(3))
    with pytest.raises(TypeError, match="optimizer"):
        momentum_loss([0.1], [1.0], 0.0, [1], "sgd")
    with pytest.raises(ValueError, match="noise_variance"):
        vs.PLRF(1.0, 0.7, 100, 10, noise_variance=-1.0)


# ------------------------------------------------------------------ any order, clustered nodes
@pytest.mark.parametrize("opt", [vs.HeavyBall(0.05 / TR1, 0.9), vs.Nesterov(0.05 / TR1, 0.9)])
def test_closed_form_does_not_depend_on_the_order_of_the_modes(opt):
    perm = np.random.default_rng(1).permutation(SPEC1.eigenvalues.size)
    x, f = SPEC1.eigenvalues[perm], SPEC1.weights[perm]
    ref = momentum_loss(x, f, SPEC1.limit_loss, R6, opt, method="recursion").loss
    for xx, ff in ((x, f), (x[::-1], f[::-1])):
        got = momentum_loss(xx, ff, SPEC1.limit_loss, R6, opt)
        assert got.method == "closed_form"
        assert np.max(np.abs(got.loss - ref) / ref) < 1e-10


def test_closed_form_with_nodes_closer_than_rounding():
    # a deterministic measure repeats nodes to 1e-16 at a spectral edge: the slow poles
    # coincide in float64 and the nodes are merged (error ~1e-12 relative)
    x = np.repeat(SPEC1.eigenvalues, 3) * np.tile([1.0, 1.0 + 2e-16, 1.0 - 4e-16], 50)
    f = np.repeat(SPEC1.weights, 3) / 3
    w = np.full(x.size, 1 / 3)
    opt = vs.Nesterov(0.05 / TR1, 0.9)
    got = momentum_loss(x, f, SPEC1.limit_loss, R6, opt, eigen_weights=w, noise_variance=0.04)
    ref = _loss(SPEC1, opt, R6, 0.04, method="recursion").loss
    assert got.method == "closed_form" and got.status == 0
    assert np.max(np.abs(got.loss - ref) / ref) < 1e-10


# ------------------------------------------------------------------ deterministic equivalent
DET = vs.PLRF(alpha=1.0, beta=0.7, v=600, d=60)


def test_sgd_over_deterministic_nodes_reproduces_loss_curve():
    from volterra_sgd.forcing import deterministic_measure

    meas = deterministic_measure(DET)
    g = DET.reference_learning_rate(0.5)
    r = np.r_[0, np.unique(np.round(np.logspace(0, 12, 30)).astype(np.int64))]
    old = vs.loss_curve(DET, r, learning_rate=g)
    new = momentum_loss(meas.nodes, meas.forcing_weights, meas.limit_loss, r, vs.SGD(g),
                        eigen_weights=meas.eigen_weights)           # Eq. (9.19)
    assert new.method == "closed_form"
    assert np.max(np.abs(new.loss - old.loss) / old.loss) < 1e-12


@pytest.mark.parametrize("opt", [vs.HeavyBall(0.005, 0.9), vs.Nesterov(0.005, 0.9)])
def test_momentum_over_deterministic_nodes_closed_form_matches_recursion(opt):
    from volterra_sgd.forcing import deterministic_measure

    meas = deterministic_measure(DET)
    args = (meas.nodes, meas.forcing_weights, meas.limit_loss)
    r = np.unique(np.round(np.logspace(0, 5, 25)).astype(np.int64))
    ref = momentum_loss(*args, r, opt, eigen_weights=meas.eigen_weights, method="recursion")
    got = momentum_loss(*args, r, opt, eigen_weights=meas.eigen_weights, noise_variance=0.0)
    assert got.method == "closed_form" and got.status == 0
    assert np.max(np.abs(got.loss - ref.loss) / ref.loss) < 1e-10


def test_fused_block_pass_equals_separate_solves_and_compression_is_invisible():
    # one block pass carries the loss, the forcing and the kernel of both components; the
    # same quantities from momentum_loss / momentum_forcing_kernel one by one (blocks, h/2)
    import volterra_sgd.forcing as forcing
    from volterra_sgd.momentum import _fused_blocks, momentum_forcing_kernel

    model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30, noise_variance=0.02)
    opt = vs.DANA.decaying(model)
    meas = forcing.deterministic_measure(model, rtol=1e-8)
    r = np.r_[0, np.unique(np.round(np.logspace(0, 5, 20)).astype(np.int64))]
    fine, coarse, parts = _fused_blocks(meas, r, opt, 0.02, 0.01, 0.5)
    args = (meas.limit_loss, r, opt)
    ref = momentum_loss(meas.nodes, meas.forcing_weights, *args, noise_variance=0.02,
                        eigen_weights=meas.eigen_weights)
    ref_c = momentum_loss(meas.coarse_nodes, meas.coarse_forcing_weights, *args,
                          noise_variance=0.02, eigen_weights=meas.coarse_eigen_weights)
    np.testing.assert_allclose(fine.loss, ref.loss, rtol=1e-13, atol=0)
    np.testing.assert_allclose(fine.loss_error, ref.loss_error, rtol=1e-9, atol=0)
    np.testing.assert_allclose(coarse.loss, ref_c.loss, rtol=1e-13, atol=0)
    sel = meas.component > 0
    fk = momentum_forcing_kernel(meas.nodes[sel], meas.forcing_weights[sel], 0.0, r, opt,
                                 eigen_weights=meas.eigen_weights[sel])
    np.testing.assert_allclose(parts["Fpp"], fk["forcing"], rtol=1e-13, atol=0)
    # the kernel's blocks differ by the one-step shift: within the block error (1e-4)
    big = np.abs(fk["kernel"]) > 1e-8 * fk["kernel"][0]
    np.testing.assert_allclose(parts["Kpp"][big], fk["kernel"][big], rtol=1e-4, atol=0)
    # the public curve runs over the compressed measure: same loss within its estimate
    curve = vs.loss_curve(model, r, optimizer=opt, rtol=1e-8)
    assert curve.info.n_modes < meas.nodes.size
    assert np.all(np.abs(curve.loss - ref.loss) <= curve.loss_error)


# ------------------------------------------------------------------ heavy ball vs SGD
def test_heavy_ball_is_sgd_at_the_effective_rate_regression():
    # PLRF v = 800, d = 200, alpha = 1, beta = 0.7, W from seed 0, exact route: the ratios
    # P_HB(gamma, mu) / P_SGD(gamma / (1 - mu)) and kernel norms of the team notes' table
    # (3-4 digits), and the late-time agreement within 1 % at a small effective rate
    m = vs.PLRF(alpha=1.0, beta=0.7, v=800, d=200)
    spec = vs.embedding_spectrum(m, np.random.default_rng(0).standard_normal((800, 200))
                                 / math.sqrt(200))
    trd = m.trace_data_covariance
    r = np.array([10, 100, 1000, 3000, 10**4, 10**5])

    def ratio(geff, mu, B=1):
        sgd = vs.expected_loss_given_w(m, spec, r, optimizer=vs.SGD(geff / trd, B))
        hb = vs.expected_loss_given_w(m, spec, r,
                                      optimizer=vs.HeavyBall((1 - mu) * geff / trd, mu, B))
        return hb.loss / sgd.loss, hb.kernel_norm, sgd.kernel_norm

    q9, kn9, kn_sgd = ratio(0.5, 0.9)
    np.testing.assert_allclose(q9[:3], [2.48, 1.44, 0.986], atol=6e-3)
    q99, kn99, _ = ratio(0.5, 0.99)
    np.testing.assert_allclose(q99[[0, 1, 2, 4]], [8.9, 39.6, 2.38, 0.987],
                               rtol=6e-3)
    q5, kn5, _ = ratio(0.5, 0.5)
    np.testing.assert_allclose([kn_sgd, kn5, kn9, kn99], [0.2998, 0.2755, 0.2668, 0.2654],
                               atol=1e-4)
    assert np.all((q9[-1] > 0.954) & (q5[-1] < 0.967))            # the floor F0/(1 - ||K||)
    for mu, late in ((0.5, slice(3, None)), (0.9, slice(3, None)), (0.99, slice(4, None))):
        q = ratio(0.1, mu)[0][late]
        assert np.all(np.abs(q - 1) < 0.01) and np.all((q > 0.9985) & (q < 1.0045)), (mu, q)
    q4, kn4, kn4_sgd = ratio(0.5, 0.9, B=4)                         # summed batch gradients
    assert abs(kn4_sgd - 0.590) < 1e-3 and abs(kn4 - 0.272) < 1e-3
    assert 0.56 - 1e-3 < q4[-1] < 0.60


# ------------------------------------------------------------------ forcing and kernel
def test_forcing_and_kernel_of_sgd_are_sums_of_powers_to_1e12():
    from volterra_sgd.momentum import momentum_forcing_kernel

    g, B = 0.5 / TR1, 2
    r = np.r_[0, np.unique(np.round(np.logspace(0, 12, 40)).astype(np.int64))]
    x = SPEC1.eigenvalues
    out = momentum_forcing_kernel(x, SPEC1.weights, SPEC1.limit_loss, r, vs.SGD(g, B))
    logq = np.log1p(-2 * g * B * x + g * g * B * (B + 1) * x * x)
    pw = np.exp(np.multiply.outer(r.astype(float), logq))          # Eq. (3.3)
    F = SPEC1.limit_loss + pw @ SPEC1.weights
    K = pw @ (g * g * B * x * x)
    np.testing.assert_allclose(out["forcing"], F, rtol=1e-12, atol=0)
    big = K > 1e-300
    np.testing.assert_allclose(out["kernel"][big], K[big], rtol=1e-10, atol=0)


@pytest.mark.parametrize("opt", [vs.Nesterov(0.05 / TR1, 0.9), "dana"])
def test_kernel_is_the_response_to_a_unit_loss(opt):
    # K(r) = K(r + 1, 0): a unit loss at step 0 loads x^2 omega(0) into every mode, which
    # then evolves uncoupled with the matrices of steps 1, 2, ...  Brute force per mode with
    # dense 3x3 matrices built from T (Eq. (9.7)).
    from volterra_sgd.momentum import momentum_forcing_kernel

    opt = vs.DANA.decaying(CASE1) if opt == "dana" else opt
    x = SPEC1.eigenvalues
    r = np.arange(0, 60)
    out = momentum_forcing_kernel(x, SPEC1.weights, SPEC1.limit_loss, r, opt)
    g1, g2, g3, dl = opt.hyperparameters(np.arange(0, 61))
    ref = []
    for k in range(x.size):
        lam = x[k]
        s0 = g2[0] + g1[0] * g3[0]
        X = lam**2 * np.array([s0 * s0, -s0 * g1[0], g1[0] ** 2])
        col = []
        for j in range(60):
            col.append(X[0])
            s = g2[j + 1] + g1[j + 1] * g3[j + 1]
            T = np.array([[1 - s * lam, -g3[j + 1] * (1 - dl[j + 1])],
                          [g1[j + 1] * lam, 1 - dl[j + 1]]])
            Sig = np.array([[T[0, 0]**2, 2 * T[0, 0] * T[0, 1], T[0, 1]**2],
                            [T[0, 0] * T[1, 0], T[0, 0] * T[1, 1] + T[0, 1] * T[1, 0],
                             T[0, 1] * T[1, 1]],
                            [T[1, 0]**2, 2 * T[1, 0] * T[1, 1], T[1, 1]**2]])
            om = lam**2 * np.array([s * s, -s * g1[j + 1], g1[j + 1] ** 2])
            X = Sig @ X + om * X[0]
        ref.append(col)
    ref = np.sum(ref, axis=0)
    np.testing.assert_allclose(out["kernel"], ref, rtol=1e-12, atol=0)


# ------------------------------------------------------------------ public-route backends
def test_expected_loss_backend_matches_bruteforce_with_noise():
    from volterra_sgd.momentum import optimizer_expected_loss

    model = vs.PLRF(alpha=1.0, beta=0.7, v=100, d=20, noise_variance=0.04)
    opt = vs.Nesterov(0.05 / TR_SMALL, 0.9, 3)
    R = 120
    res = optimizer_expected_loss(model, W_SMALL, np.arange(R + 1), opt)
    ref = two_step_moments(SMALL, W_SMALL, opt.learning_rate, opt.momentum, R, nesterov=True,
                           batch_size=3, sigma2=0.04)
    true = np.abs(res.loss - ref)
    assert np.max(true / ref) < 1e-10
    # unit-step rounding bound 1e-14 (r + 1) P: honest, and small
    assert res.info.success and np.all(true <= res.loss_error)
    assert np.all(res.loss_error < 2e-14 * (np.arange(R + 1) + 1.0) * ref)


def test_loss_curve_backend_quadrature_error_is_honest():
    from volterra_sgd.momentum import optimizer_loss_curve

    model = vs.PLRF(alpha=1.0, beta=0.7, v=600, d=60, noise_variance=0.02)
    opt = vs.HeavyBall(0.1 * model.reference_learning_rate(0.5), 0.9)
    r = np.r_[0, np.unique(np.round(np.logspace(0, 10, 25)).astype(np.int64))]
    coarse = optimizer_loss_curve(model, r, opt, rtol=1e-6)
    fine = optimizer_loss_curve(model, r, opt, rtol=1e-12)
    assert np.all(np.abs(coarse.loss - fine.loss) <= coarse.loss_error + fine.loss_error)
    np.testing.assert_allclose(fine.forcing, sum(fine.parts[k] for k in ("Fo", "Fpp", "Fac")),
                               rtol=1e-15)
    assert fine.forcing[0] == pytest.approx(model.initial_loss, rel=1e-10)


def test_noise_variance_survives_save_and_load(tmp_path):
    from volterra_sgd.io import _model_from_meta
    from volterra_sgd.model import model_metadata

    for model in (vs.PLRF(1.0, 0.7, 200, 50, noise_variance=0.04),
                  vs.SpectralModel.from_plrf(vs.PLRF(1.0, 0.7, 200, 50, noise_variance=0.04))):
        meta = model_metadata(model)
        if isinstance(model, vs.SpectralModel):
            meta = {**meta, "eigenvalues": model.data_eigenvalues.tolist(),
                    "target": model.target.tolist()}
        back = _model_from_meta(meta)
        assert back.noise_variance == 0.04 and back == model
    plain = vs.PLRF(1.0, 0.7, 200, 50)
    assert "noise_variance" not in model_metadata(plain)        # unchanged at sigma^2 = 0
    assert _model_from_meta(model_metadata(plain)) == plain


# ------------------------------------------------------------------ public API
def _model_with_noise(sigma2):
    return vs.PLRF(alpha=1.0, beta=0.7, v=100, d=20, noise_variance=sigma2)


@pytest.mark.parametrize("sigma2", [0.0, 0.04])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_expected_loss_given_w_with_optimizer_matches_bruteforce(name, B, sigma2):
    opt = _optimizer(name, B)
    R = 100
    res = vs.expected_loss_given_w(_model_with_noise(sigma2), W_SMALL, np.arange(R + 1),
                                   optimizer=opt)
    ref = _bruteforce(name, opt, R, B, sigma2)
    assert np.max(np.abs(res.loss - ref) / ref) < 1e-10
    np.testing.assert_array_equal(res.total_loss, res.loss + sigma2)
    assert res.info.success


def test_exact_recursion_succeeds_at_long_horizons():
    # the recursion's rounding bound 1e-14 (r + 1) P passes 1e-10 at r = 1e4: the default
    # tol follows it (DANA on an embedding to r = 2e4, as in the validation)
    opt = vs.DANA.decaying(SMALL, c2=0.3)
    res = vs.expected_loss_given_w(SMALL, W_SMALL, [0, 100, 20000], optimizer=opt,
                                   method="recursion")
    assert res.info.success and res.info.error_estimate > 1e-10
    with pytest.raises(vs.ConvergenceError, match="exceeds tol"):
        vs.expected_loss_given_w(SMALL, W_SMALL, [0, 20000], optimizer=opt,
                                 method="recursion", tol=1e-10)


def test_plain_sgd_through_optimizer_is_bit_identical():
    g = 0.5 / TR1
    r = np.array([0, 1, 10, 10**3, 10**6])
    a = vs.expected_loss_given_w(CASE1, W1, r, learning_rate=g, batch_size=2)
    b = vs.expected_loss_given_w(CASE1, W1, r, optimizer=vs.SGD(g, 2))
    np.testing.assert_array_equal(a.loss, b.loss)
    model = vs.PLRF(alpha=1.0, beta=0.7, v=600, d=60)
    g = model.reference_learning_rate(0.5)
    c = vs.loss_curve(model, r, learning_rate=g)
    d = vs.loss_curve(model, r, optimizer=vs.SGD(g))
    np.testing.assert_array_equal(c.loss, d.loss)
    np.testing.assert_array_equal(d.total_loss, d.loss)


def test_loss_curve_with_optimizers_and_noise():
    model = vs.PLRF(alpha=1.0, beta=0.7, v=600, d=60, noise_variance=0.02)
    g = model.reference_learning_rate(0.5)
    r = np.r_[0, np.unique(np.round(np.logspace(0, 4, 12)).astype(np.int64))]
    sgd = vs.loss_curve(model, r, learning_rate=g)              # noise: the seam, SGD(g)
    same = vs.loss_curve(model, r, optimizer=vs.SGD(g))
    np.testing.assert_array_equal(sgd.loss, same.loss)
    assert sgd.limit_loss == pytest.approx((sgd.parts["Fo"][0] + 0.02 * sgd.kernel_norm)
                                           / (1 - sgd.kernel_norm), rel=1e-12)   # Eq. (9.5)
    np.testing.assert_allclose(sgd.total_loss, sgd.loss + 0.02, rtol=0, atol=0)
    hb = vs.loss_curve(model, r, optimizer=vs.HeavyBall(g / 10, 0.9))
    dana = vs.loss_curve(model, r, optimizer=vs.DANA.decaying(model))
    for c in (sgd, hb, dana):
        assert c.info.success and np.all(np.isfinite(c.loss)) and np.all(c.loss_error >= 0)
    assert dana.options["method"] == "blocks"
    with pytest.raises(TypeError, match="either"):
        vs.loss_curve(model, r, learning_rate=g, optimizer=vs.SGD(g))
    with pytest.raises(vs.UnstableLearningRateError, match="must be below"):
        vs.loss_curve(model, r, optimizer=vs.HeavyBall(10 * g, 0.9))


def test_learning_rate_schedule_with_label_noise_matches_bruteforce():
    model = _model_with_noise(0.04)
    g0 = 0.25 / TR_SMALL

    def sched(s):
        return g0 / (1.0 + np.asarray(s, dtype=float) / 20.0)

    R = 80
    res = vs.expected_loss_given_w(model, W_SMALL, np.arange(R + 1), learning_rate=sched,
                                   batch_size=2)
    ref = generalized_momentum_moments(SMALL, W_SMALL,
                                       lambda s: (0.0, float(sched(s)), 0.0, 1.0), R,
                                       batch_size=2, sigma2=0.04)
    assert np.max(np.abs(res.loss - ref) / ref) < 1e-10
    with pytest.raises(ValueError, match="batch-size schedule"):
        vs.expected_loss_given_w(model, W_SMALL, [0, 5], learning_rate=g0,
                                 batch_size=np.r_[1, 1, 2, 2, 2, 2])


def test_limit_loss_known_for_short_horizons():
    # the unit-step route (max r <= 1000) reports the same limit as the closed form, and the
    # limit is where the recursion goes (heavy ball, Nesterov readout, label noise)
    m = vs.PLRF(1.0, 0.7, 500, 50, noise_variance=0.01)
    g = m.reference_learning_rate(0.5)
    for opt in (vs.HeavyBall(0.1 * g, 0.9), vs.Nesterov(0.1 * g, 0.9)):
        short = vs.loss_curve(m, [0, 10, 100], optimizer=opt)
        late = vs.loss_curve(m, [0, 10, 10**13], optimizer=opt)
        assert np.isfinite(short.limit_loss)
        assert short.limit_loss == pytest.approx(late.limit_loss, rel=1e-13)
        assert late.loss[-1] == pytest.approx(late.limit_loss, rel=1e-6)
