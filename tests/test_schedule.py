"""Learning-rate / batch-size schedules: exact recursion and geometric-block integrator."""

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd.curve import sum_of_exponentials
from volterra_sgd.schedule import as_schedule, schedule_integrator, schedule_recursion

MODEL = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
G0 = MODEL.reference_learning_rate(0.5)
R = np.r_[0, np.unique(np.round(np.logspace(0, 5.5, 50)).astype(np.int64))]
N = int(R[-1])
s = np.arange(N)
SCHEDULES = {
    "power decay": (lambda t: G0 * (1 + t / 100.0) ** -0.5, 1),
    "warm-up": (np.minimum(1.0, (s + 1) / 500.0) * G0, 1),
    "step decay": (np.where(s < 3000, G0, np.where(s < 30000, G0 / 3, G0 / 10)), 1),
    "batch ramp": (G0 / 4, np.where(s < 2000, 1, 4)),
}


def _measure_modes():
    meas = vs.spectral_measure(MODEL)
    return meas.nodes, meas.forcing_weights, meas.eigen_weights, meas.limit_loss


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_integrator_matches_exact_recursion_with_honest_estimate(name):
    lr, B = SCHEDULES[name]
    gf, _ = as_schedule(lr, "learning_rate")
    bf, _ = as_schedule(B, "batch_size", integer=True)
    args = _measure_modes()
    P, est = schedule_integrator(*args, R, gf, bf)
    ref = schedule_recursion(*args, R, gf, bf)
    rel = np.abs(P - ref) / ref
    assert rel.max() < 1e-4
    # honest: the estimate bounds the error at every r (it under-reported up to 7x with
    # |P_h - P_{h/2}|/3 over [r/2, 2r]); and not wildly pessimistic over the whole curve
    assert np.all(np.abs(P - ref) <= est), np.max(np.abs(P - ref) / est)
    assert np.max(est / ref) < 50 * rel.max()
    # the public API gives the same numbers
    curve = vs.loss_curve(MODEL, R, learning_rate=lr, batch_size=B)
    np.testing.assert_allclose(curve.loss, P, rtol=1e-12)
    assert curve.options["method"] == "schedule_integrator"


def test_integrator_honest_from_the_edge_of_stability():
    # a decaying schedule started at (1 - 1e-8) gamma*: the slow mode amplifies every error
    gmax = vs.max_stable_learning_rate(MODEL)
    r = R[R <= 10**5]
    gf, _ = as_schedule(lambda t: (1 - 1e-8) * gmax * (1 + t / 1000.0) ** -0.5,
                        "learning_rate")
    bf, _ = as_schedule(1, "batch_size", integer=True)
    args = _measure_modes()
    P, est = schedule_integrator(*args, r, gf, bf)
    ref = schedule_recursion(*args, r, gf, bf)
    assert np.all(np.abs(P - ref) <= est), np.max(np.abs(P - ref) / est)
    assert np.max(np.abs(P - ref) / ref) < 1e-3
    with pytest.warns(vs.ConvergenceWarning, match="schedule"):
        curve = vs.loss_curve(MODEL, r, learning_rate=gf, tol=1e-6, throw=False)
    assert not curve.info.success
    with pytest.raises(vs.ConvergenceError):
        vs.loss_curve(MODEL, r, learning_rate=gf, tol=1e-6)
    assert vs.loss_curve(MODEL, r, learning_rate=gf).info.success  # default tol 1e-3


def test_constant_schedule_reduces_to_closed_form():
    lr = np.full(N, G0)
    closed = vs.loss_curve(MODEL, R, learning_rate=G0)
    sched = vs.loss_curve(MODEL, R, learning_rate=lr)
    np.testing.assert_allclose(sched.loss, closed.loss, rtol=1e-5)
    np.testing.assert_allclose(sched.forcing, closed.forcing, rtol=1e-13)
    np.testing.assert_allclose(sched.kernel, closed.kernel, rtol=1e-13)
    rep = sum_of_exponentials(MODEL, learning_rate=G0)
    gf, _ = as_schedule(lr, "learning_rate")
    bf, _ = as_schedule(1, "batch_size", integer=True)
    exact = schedule_recursion(rep["nodes"], rep["forcing_weights"],
                               vs.spectral_measure(MODEL).eigen_weights, rep["limit_loss"], R,
                               gf, bf)
    np.testing.assert_allclose(exact, closed.loss, rtol=1e-11)


def test_given_w_schedule_recursion_matches_dense_reference():
    from reference_moments import dense_second_moment_loss  # noqa: F401  (constant only)

    model = vs.PLRF(alpha=0.8, beta=0.6, v=100, d=30)
    W = model.sample_embedding(rng=2)
    g0 = model.reference_learning_rate(0.5)
    lr = g0 * (1 + np.arange(300) / 20.0) ** -0.5
    # independent step-by-step reference: the dense second-moment recursion with gamma(s)
    X = np.sqrt(model.data_eigenvalues)[:, None] * W
    Kh = X @ X.T
    M = np.outer(model.scaled_target, model.scaled_target)
    ref = []
    for t in range(301):
        ref.append(np.trace(M))
        if t == 300:
            break
        g = lr[t]
        KM = Kh @ M
        M = M - g * (KM + KM.T) + 2 * g * g * (KM @ Kh) + g * g * np.trace(M) * (Kh @ Kh)
    res = vs.expected_loss_given_w(model, W, np.arange(301), learning_rate=lr)
    np.testing.assert_allclose(res.loss, ref, rtol=1e-11)


def test_bad_schedules():
    with pytest.raises(ValueError, match="positive"):
        vs.loss_curve(MODEL, [0, 10], learning_rate=np.r_[G0, -G0, np.full(10, G0)])
    with pytest.raises(ValueError, match="entries"):
        vs.loss_curve(MODEL, [0, 100], learning_rate=np.full(10, G0))
    with pytest.raises(ValueError, match="non-positive or non-finite"):
        vs.loss_curve(MODEL, [0, 100], learning_rate=lambda t: G0 - t)
    with pytest.raises(ValueError, match="whole"):
        vs.loss_curve(MODEL, [0, 10], learning_rate=G0, batch_size=np.full(10, 1.5))
    with pytest.raises(vs.UnstableLearningRateError):
        vs.loss_curve(MODEL, [0, 10], learning_rate=np.full(10, 10.0))
