"""simulate_sgd with momentum optimizers and label noise (Sec. 9).

Statistical agreement: the Monte-Carlo mean of both engines against the exact given-W expected
loss (Eq. (9.9), ``vs.expected_loss_given_w(..., optimizer=opt)``) for one fixed W, within 4
standard errors; a deliberately wrong reference (another momentum / step / noise level) must
be rejected by the same criterion, so the test can fail.  Bit-identity of plain SGD without
label noise with the code before momentum was added (stored sums, rtol 1e-10).
"""

import math

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd.sgd import simulate_sgd

R = np.array([0, 5, 20, 60, 150])
N_RUNS = {"eigen": 4000, "literal": 1500}


@pytest.fixture(scope="module")
def setup():
    model = vs.PLRF(alpha=1.0, beta=0.7, v=100, d=20, noise_variance=0.05)
    return model, model.sample_embedding(rng=0), model.trace_data_covariance


def _optimizers(model, trd):
    """(name, optimizer, wrong model, wrong optimizer) for the reference that must fail."""
    quiet = vs.PLRF(alpha=1.0, beta=0.7, v=100, d=20)
    return [
        ("sgd", vs.SGD(0.5 / trd), quiet, vs.SGD(0.5 / trd)),               # sigma^2 ignored
        ("heavy_ball", vs.HeavyBall(0.05 / trd, 0.8), model, vs.HeavyBall(0.05 / trd, 0.6)),
        ("nesterov", vs.Nesterov(0.1 / trd, 0.7), model, vs.Nesterov(0.1 / trd, 0.5)),
        ("dana", vs.DANA.decaying(model), model, vs.DANA.decaying(model, c3=0.05)),
    ]


def _z(sim, exact):
    return (sim.loss[1:] - exact[1:]) / sim.stderr[1:]


@pytest.mark.parametrize("engine", ["eigen", "literal"])
@pytest.mark.parametrize("which", range(4))
def test_mean_matches_exact_given_w(setup, engine, which):
    model, W, trd = setup
    name, opt, wrong_model, wrong = _optimizers(model, trd)[which]
    sim = simulate_sgd(model, R, optimizer=opt, n_runs=N_RUNS[engine], rng=7, W=W,
                       engine=engine)
    exact = vs.expected_loss_given_w(model, W, R, optimizer=opt)
    assert sim.success and sim.optimizer is (None if name == "sgd" else opt)
    assert sim.loss[0] == pytest.approx(model.initial_loss, rel=1e-13)
    z = _z(sim, exact.loss)
    assert np.max(np.abs(z)) < 4.0, (name, engine, z)
    np.testing.assert_allclose(sim.total_loss, sim.loss + 0.05, rtol=0, atol=0)
    np.testing.assert_allclose(sim.total_loss[1:], exact.total_loss[1:],
                               atol=4.0 * sim.stderr[1:].max())
    # the same criterion rejects a wrong reference
    bad = vs.expected_loss_given_w(wrong_model, W, R, optimizer=wrong).loss
    assert np.max(np.abs(_z(sim, bad))) > 4.0, (name, engine, _z(sim, bad))


def test_nesterov_reports_iterates_not_look_ahead(setup):
    """Nesterov's recorded loss is that of theta_r (Eq. (9.10)); the look-ahead loss differs."""
    model, W, trd = setup
    opt = vs.Nesterov(0.1 / trd, 0.7)
    look = vs.GeneralizedMomentum(1.0, opt.learning_rate, opt.learning_rate * opt.momentum,
                                  1.0 - opt.momentum)
    a = simulate_sgd(model, R, optimizer=opt, n_runs=400, rng=3, W=W)
    b = simulate_sgd(model, R, optimizer=look, n_runs=400, rng=3, W=W)
    assert np.all(a.loss[1:] != b.loss[1:])
    exact_look = vs.expected_loss_given_w(model, W, R, optimizer=look).loss
    assert np.max(np.abs(_z(b, exact_look))) < 4.0


def test_plain_sgd_unchanged_from_previous_code():
    """Plain-SGD losses against values computed with the code before momentum (db010b4).

    Covers both engines, constant and scheduled learning rates/batch sizes, a fixed W and
    W=None.  At the time of the change the SHA-256 of all losses was unchanged (bit-identical,
    d4fa8bce...); kept as sums at rtol 1e-10 so that another BLAS/LAPACK (the eigen engine's
    spectra) moving the last bits does not fail the test, while any change of the algorithm,
    the random stream or the schedule handling does.
    """
    m = vs.PLRF(alpha=1.0, beta=0.7, v=60, d=15)
    W = m.sample_embedding(rng=3)
    g = m.reference_learning_rate(0.5)
    sums = []
    for eng in ("eigen", "literal"):
        for kw in (dict(learning_rate=g), dict(learning_rate=g / 2, batch_size=3),
                   dict(learning_rate=lambda s: g / 3 * (1 + s / 10) ** -0.5,
                        batch_size=[1, 2, 3] * 10)):
            for WW in (W, None):
                s = simulate_sgd(m, [0, 1, 5, 30], n_runs=7, rng=11, W=WW, engine=eng, **kw)
                sums.append(float(np.sum(s.losses)))
    previous = [16.84015581232243, 17.25865077753655, 16.780335210007006, 14.34494297260796,
                17.899604300576215, 19.36361873213011, 18.406856273796173, 17.182582714219553,
                14.451259921377327, 15.00893881456655, 17.664218000557543, 19.645364897482338]
    np.testing.assert_allclose(sums, previous, rtol=1e-10, atol=0)
    # optimizer=vs.SGD(...) is the same code path
    a = simulate_sgd(m, [0, 30], learning_rate=g / 2, batch_size=3, n_runs=5, rng=2, W=W)
    b = simulate_sgd(m, [0, 30], optimizer=vs.SGD(g / 2, 3), n_runs=5, rng=2, W=W)
    assert np.array_equal(a.losses, b.losses) and np.array_equal(a.total_loss, a.loss)


def test_label_noise_reaches_the_sgd_path(setup):
    model, W, trd = setup
    quiet = vs.PLRF(alpha=1.0, beta=0.7, v=100, d=20)
    for engine in ("eigen", "literal"):
        a = simulate_sgd(model, [0, 50], learning_rate=0.5 / trd, n_runs=3, rng=1, W=W,
                         engine=engine)
        b = simulate_sgd(quiet, [0, 50], learning_rate=0.5 / trd, n_runs=3, rng=1, W=W,
                         engine=engine)
        assert a.noise_variance == 0.05 and b.noise_variance == 0.0
        assert not np.array_equal(a.losses[:, 1], b.losses[:, 1])


def test_unstable_and_bad_arguments_refused(setup):
    model, W, trd = setup
    opt = vs.HeavyBall(0.5 / trd, 0.9)
    with pytest.raises(vs.UnstableLearningRateError) as err:
        simulate_sgd(model, [0, 10], optimizer=opt, n_runs=2, rng=0, W=W)
    gmax = err.value.max_learning_rate
    assert gmax == pytest.approx(opt.max_stable_learning_rate(
        vs.embedding_spectrum(model, W).eigenvalues), rel=1e-9)
    with pytest.raises(vs.UnstableLearningRateError, match="drawn for run 0"):
        simulate_sgd(model, [0, 10], optimizer=opt, n_runs=2, rng=0, engine="literal")
    with pytest.raises(TypeError, match="not both"):
        simulate_sgd(model, [0, 10], optimizer=vs.SGD(0.1), learning_rate=0.1, W=W)
    with pytest.raises(TypeError, match="batch_size belongs"):
        simulate_sgd(model, [0, 10], optimizer=vs.HeavyBall(0.01, 0.5), batch_size=2, W=W)
    with pytest.raises(TypeError, match="learning_rate= .* or optimizer="):
        simulate_sgd(model, [0, 10], W=W)
    with pytest.raises(TypeError, match="optimizer"):
        simulate_sgd(model, [0, 10], optimizer="adam", W=W)


def test_momentum_runs_reproducible_and_batched(setup):
    """Same seed, same numbers (eigen: any chunking); W=None draws per run; B > 1 works."""
    model, W, trd = setup
    opt = vs.HeavyBall(0.02 / trd, 0.8, batch_size=3)
    a = simulate_sgd(model, [0, 7, 40], optimizer=opt, n_runs=6, rng=5)
    b = simulate_sgd(model, [0, 7, 40], optimizer=opt, n_runs=6, rng=5, progress=False)
    assert np.array_equal(a.losses, b.losses) and not a.fixed_embedding
    c = simulate_sgd(model, [0, 7, 40], optimizer=opt, n_runs=6, rng=5,
                     W=a.embedding(2), spectrum_method=a.metadata["options"]["spectrum_method"])
    np.testing.assert_allclose(c.losses[2], a.losses[2], rtol=1e-12)
    assert a.metadata["options"]["optimizer"] == repr(opt)
    assert a.batch_size == 3 and a.learning_rate == pytest.approx(0.02 / trd)


@pytest.mark.parametrize("engine", ["eigen", "literal"])
def test_momentum_kernel_calls_resume_exactly(setup, engine, monkeypatch):
    """Split into one kernel call per step (Ctrl-C chunking): the same bits, buffer and
    time-varying hyper-parameters (indexed by the absolute step) carried across calls."""
    import volterra_sgd.sgd as sgd_mod

    model, W, trd = setup
    opt = vs.DANA.decaying(model)
    a = simulate_sgd(model, [0, 3, 17], optimizer=opt, n_runs=3, rng=4, W=W, engine=engine)
    monkeypatch.setattr(sgd_mod, "_CHUNK_WORK", 1.0)
    b = simulate_sgd(model, [0, 3, 17], optimizer=opt, n_runs=3, rng=4, W=W, engine=engine)
    assert np.array_equal(a.losses, b.losses)


# ------------------------------------------------ pathwise: NumPy replicas, same normals
def _normals(state, n):
    from volterra_sgd import _rng

    out = np.empty(n)
    _rng.fill_standard_normal(state.copy(), *_rng.ziggurat_tables(), out)
    return out


def _replica_opts(model, trd):
    return [vs.Nesterov(0.1 / trd, 0.7, batch_size=2), vs.DANA.decaying(model, batch_size=2)]


@pytest.mark.parametrize("which", [0, 1])
def test_literal_momentum_kernel_equals_numpy_replica(which):
    """Eq. (9.3) in the original coordinates (theta, y), label noise as one extra normal per
    sample after the v data normals, Nesterov read out at theta + gamma mu y (Eq. (9.10))."""
    from volterra_sgd.sgd import _sgd_states

    model = vs.PLRF(alpha=0.8, beta=0.3, v=30, d=10, noise_variance=0.03)
    W = model.sample_embedding(rng=1)
    opt = _replica_opts(model, model.trace_data_covariance)[which]
    B = opt.batch_size
    r = np.array([0, 1, 4, 9, 25])
    sim = simulate_sgd(model, r, optimizer=opt, n_runs=2, rng=6, W=W, engine="literal")
    g1, g2, g3, dl = opt.hyperparameters(np.arange(r[-1]))
    c = opt.readout[1] / 2
    sd = np.sqrt(model.data_eigenvalues)
    b = np.asarray(model.target)
    for i in range(2):
        z = _normals(_sgd_states(sim.entropy, 2)[i], r[-1] * B * (model.v + 1))
        z = z.reshape(r[-1], B, model.v + 1)
        theta, y = np.zeros(model.d), np.zeros(model.d)
        got = []
        for s in range(r[-1] + 1):
            if s in r:
                u = sd * (W @ (theta + c * y) - b)
                got.append(u @ u)
            if s == r[-1]:
                break
            x = z[s, :, :-1] * sd
            labels = x @ b + math.sqrt(0.03) * z[s, :, -1]
            feats = x @ W
            grad = feats.T @ (feats @ theta - labels)
            y = (1 - dl[s]) * y + g1[s] * grad
            theta = theta - g2[s] * grad - g3[s] * y
        np.testing.assert_allclose(sim.losses[i], got, rtol=1e-11)


@pytest.mark.parametrize("which", [0, 1])
def test_eigen_momentum_kernel_equals_numpy_replica(which):
    """The eigenbasis buffer psi = Sigma V^T y: psi' = (1-Delta)psi + g1 Lambda g,
    phi' = phi - g2 Lambda g - g3 psi', noise scale sqrt(F0 + sigma^2)."""
    from volterra_sgd.sgd import _sgd_states

    model = vs.PLRF(alpha=1.0, beta=0.4, v=40, d=12, noise_variance=0.03)
    W = model.sample_embedding(rng=2)
    opt = _replica_opts(model, model.trace_data_covariance)[which]
    B = opt.batch_size
    r = np.array([0, 1, 2, 7, 20, 60])
    sim = simulate_sgd(model, r, optimizer=opt, n_runs=3, rng=5, W=W)
    spec = vs.embedding_spectrum(model, W)
    k, lam = spec.rank, spec.eigenvalues
    g1, g2, g3, dl = opt.hyperparameters(np.arange(r[-1]))
    c = opt.readout[1] / 2
    for i in range(3):
        z = _normals(_sgd_states(sim.entropy, 3)[i], r[-1] * B * (k + 1))
        z = z.reshape(r[-1], B, k + 1)
        phi, psi = -spec.coefficients.copy(), np.zeros(k)
        got = []
        for s in range(r[-1] + 1):
            if s in r:
                t = phi + c * psi
                got.append(t @ t + spec.limit_loss)
            if s == r[-1]:
                break
            zeta, xi = z[s, :, :k], z[s, :, k]
            lg = lam * (zeta.T @ (zeta @ phi - math.sqrt(spec.limit_loss + 0.03) * xi))
            psi = (1 - dl[s]) * psi + g1[s] * lg
            phi = phi - g2[s] * lg - g3[s] * psi
        np.testing.assert_allclose(sim.losses[i], got, rtol=1e-11)
