"""Property-based tests of the public API (Hypothesis; issue 12, items 4 and 8).

Every call with arbitrary (valid or invalid) input must either return finite results of the
documented shape, or raise ``TypeError``/``ValueError`` (or a package exception) whose
message names the offending parameter.  Sizes are small and ``derandomize=True`` keeps the
examples fixed, so the module is reproducible and runs in well under a minute.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import volterra_sgd as vs
from volterra_sgd._validation import as_iterations, check_budget
from volterra_sgd.exceptions import VolterraSGDError

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=12)

#: Anything a user might pass for a number.
junk = st.one_of(st.none(), st.text(max_size=3), st.booleans(), st.complex_numbers(),
                 st.lists(st.integers(), max_size=2))
any_float = st.floats(allow_nan=True, allow_infinity=True)

def mostly(valid, *invalid):
    """``valid`` about three times in four, else one of ``invalid``."""
    return st.one_of(valid, valid, valid, *invalid)


exponent = mostly(st.floats(-3.0, 3.0), any_float, junk)
size = mostly(st.integers(1, 2000), st.integers(-3, 0),
              st.sampled_from([1e3, 1.5, 10**12, 10**30, math.inf, math.nan, -math.inf]), junk)


def _names(exc: BaseException, names) -> bool:
    msg = str(exc)
    return any(n in msg for n in names)


def _expect_named(call, names):
    """Run ``call``; an error must be TypeError/ValueError/VolterraSGDError naming a parameter."""
    try:
        out = call()
    except (TypeError, ValueError, VolterraSGDError) as exc:
        assert _names(exc, names), f"{type(exc).__name__} does not name {names}: {exc}"
        event(f"refused: {type(exc).__name__}")
        return None
    event("accepted")
    return out


def _finite(x) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))


# ------------------------------------------------------------------------------ models
@SETTINGS
@given(alpha=exponent, beta=exponent, v=size, d=size)
def test_plrf_is_finite_or_refused_by_name(alpha, beta, v, d):
    model = _expect_named(lambda: vs.PLRF(alpha, beta, v, d), ("alpha", "beta", "v", "d"))
    if model is None:
        return
    for value in (model.initial_loss, model.trace_data_covariance,
                  model.trace_data_covariance_squared, model.reference_learning_rate(0.5)):
        assert math.isfinite(value) and value > 0.0, (model, value)


valid_alpha = st.floats(0.05, 4.0)
valid_beta = st.floats(-1.0, 3.0)


@st.composite
def small_models(draw, v_max=60, d_max=12):
    alpha = draw(valid_alpha)
    beta = draw(valid_beta)
    d = draw(st.integers(1, d_max))
    v = draw(st.integers(d + 1, max(d + 1, v_max)))
    try:
        return vs.PLRF(alpha, beta, v, d)
    except ValueError as exc:  # only the float64 range may refuse these
        assert _names(exc, ("alpha", "beta")), exc
        return vs.PLRF(1.0, 0.7, v, d)


@SETTINGS
@given(model=small_models(v_max=400, d_max=100))
def test_tau_and_limit_loss_are_finite(model):
    t = vs.tau(model)
    assert math.isfinite(t) and t > 0.0
    f0 = vs.limit_loss(model)
    assert math.isfinite(f0) and 0.0 <= f0 <= model.initial_loss * (1 + 1e-12)


@SETTINGS
@given(alpha=st.floats(0.5, 150.0, exclude_min=True), beta=st.floats(-0.45, 3.0),
       d=st.integers(1, 2000))
def test_infinite_models_tau_finite_or_refused(alpha, beta, d):
    model = _expect_named(lambda: vs.PLRF(alpha, beta, math.inf, d), ("alpha", "beta", "v"))
    if model is None:
        return
    assert math.isfinite(model.initial_loss) and math.isfinite(model.trace_data_covariance)
    t = vs.tau(model)
    assert math.isfinite(t) and t > 0.0
    assert 0.0 <= vs.limit_loss(model) <= model.initial_loss * (1 + 1e-12)


spectrum = mostly(
    st.lists(st.floats(1e-12, 1e3), min_size=2, max_size=40),
    st.lists(any_float, min_size=1, max_size=4),
    st.lists(st.complex_numbers(max_magnitude=2.0), min_size=2, max_size=3),
    st.lists(st.lists(st.floats(0.1, 1.0), max_size=2), min_size=2, max_size=3), junk)


@SETTINGS
@given(lam=spectrum, b=spectrum, d=size)
def test_spectral_model_finite_or_refused(lam, b, d):
    names = ("eigenvalues", "target", "d")
    model = _expect_named(lambda: vs.SpectralModel(lam, b, d), names)
    if model is None:
        return
    assert math.isfinite(model.initial_loss) and model.initial_loss >= 0.0
    assert math.isfinite(model.trace_data_covariance_squared)
    if model.d < model.v:
        t = vs.tau(model)
        assert math.isfinite(t) and t > 0.0


@SETTINGS
@given(alpha=st.floats(0.0, 200.0, exclude_min=True), beta=st.floats(-50.0, 50.0),
       v=st.integers(2, 10**4))
def test_tau_extreme_exponents_finite_or_refused(alpha, beta, v):
    d = max(1, v // 3)
    model = _expect_named(lambda: vs.PLRF(alpha, beta, v, d), ("alpha", "beta"))
    if model is None:
        return
    assert math.isfinite(model.initial_loss)
    t = _expect_named(lambda: vs.tau(model), ("max_cost",))
    assert t is None or (math.isfinite(t) and t > 0.0)


@SETTINGS
@given(alpha=exponent, beta=exponent)
def test_phase_exponents_finite_or_refused(alpha, beta):
    ex = _expect_named(lambda: vs.phase_exponents(alpha, beta), ("alpha", "beta"))
    if ex is not None:
        assert math.isfinite(ex.xi) and math.isfinite(ex.eta)
        assert vs.phase(alpha, beta, boundary="ignore") == ex.phase or ex.on_boundary


@SETTINGS
@given(alpha=exponent, beta=exponent)
def test_ridge_scaling_exponents_finite_or_refused(alpha, beta):
    ex = _expect_named(lambda: vs.ridge_scaling_exponents(alpha, beta), ("alpha", "beta"))
    if ex is not None:
        assert all(math.isfinite(x) for x in (ex.features, ex.samples, ex.ridge))


# ------------------------------------------------------------------------- iterations
iteration_input = st.one_of(
    st.lists(st.integers(-5, 10**6), min_size=0, max_size=5),
    st.lists(st.integers(0, 10**12), min_size=1, max_size=5).map(sorted),
    st.lists(st.integers(0, 2**70), min_size=1, max_size=3),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=3),
    st.lists(st.lists(st.integers(0, 9), max_size=3), min_size=1, max_size=3),
    st.lists(st.complex_numbers(), min_size=1, max_size=2),
    st.integers(-3, 10**30), junk,
)


@SETTINGS
@given(r=iteration_input)
def test_iterations_are_int64_or_refused_by_name(r):
    out = _expect_named(lambda: as_iterations(r, "r"), ("r",))
    if out is not None:
        assert out.dtype == np.int64 and out.ndim == 1 and out.size >= 1
        assert np.all(out >= 0) and np.all(np.diff(out) >= 0)


# --------------------------------------------------------------------- curves and SGD
learning_rates = mostly(
    st.sampled_from(["ref", "ref", "array"]), st.floats(0.0, 2.0), any_float,
    st.complex_numbers(max_magnitude=1.0), st.just("complex array"), junk)


def _lr(model, kind, n):
    g = model.reference_learning_rate(0.25)
    if kind == "ref":
        return g
    if kind == "array":
        return np.full(n, g)
    if kind == "complex array":
        return np.full(n, g) * (1 + 1j)
    return kind


@FEW
@given(model=small_models(), lr=learning_rates,
       r=st.lists(st.integers(0, 10**6), min_size=1, max_size=4).map(sorted))
def test_loss_curve_finite_or_refused(model, lr, r):
    names = ("learning_rate", "r", "batch_size")
    curve = _expect_named(lambda: vs.loss_curve(model, r, learning_rate=_lr(model, lr, r[-1])),
                          names)
    if curve is not None:
        assert curve.loss.shape == (len(r),) and _finite(curve.loss) and curve.info.success
        assert np.all(curve.loss >= curve.limit_loss * (1 - 1e-9))


@FEW
@given(model=small_models(v_max=30, d_max=8), lr=learning_rates,
       r=st.lists(st.integers(0, 40), min_size=1, max_size=3).map(sorted),
       n_runs=mostly(st.integers(1, 3), st.sampled_from([0, 2.0, 2.5, "2"])),
       rng=mostly(st.integers(0, 9), st.sampled_from([None, -1, 1.5, "seed", True])))
def test_simulate_sgd_finite_or_refused(model, lr, r, n_runs, rng):
    names = ("learning_rate", "r", "n_runs", "rng")
    run = _expect_named(lambda: vs.simulate_sgd(model, r, learning_rate=_lr(model, lr, r[-1]),
                                                n_runs=n_runs, rng=rng), names)
    if run is not None:
        assert run.losses.shape == (int(n_runs), len(r)) and _finite(run.losses)


@FEW
@given(model=small_models(v_max=30, d_max=8), lr=learning_rates,
       r=st.lists(st.integers(0, 10**5), min_size=1, max_size=3).map(sorted))
def test_expected_loss_given_w_finite_or_refused(model, lr, r):
    W = model.sample_embedding(rng=0)
    res = _expect_named(lambda: vs.expected_loss_given_w(
        model, W, r, learning_rate=_lr(model, lr, r[-1])), ("learning_rate", "r"))
    if res is not None:
        assert res.loss.shape == (len(r),) and _finite(res.loss)


@SETTINGS
@given(model=small_models(v_max=200, d_max=40),
       n=mostly(st.integers(1, 10**15), st.sampled_from([0, 2.5, math.nan, "x"])),
       ridge=mostly(st.floats(0.0, 10.0), st.sampled_from([-1.0, math.inf, 1j])))
def test_ridge_test_loss_finite_or_refused(model, n, ridge):
    loss = _expect_named(lambda: vs.ridge_test_loss(model, n, ridge), ("n_samples", "ridge"))
    if loss is not None:
        # +inf only at the interpolation peak of min-norm least squares
        assert (math.isfinite(loss) and loss > 0.0) or (ridge == 0.0 and math.isinf(loss))


# ------------------------------------------------------------------------- cost limits
@SETTINGS
@given(r_max=st.integers(10**10, 2**62), n_runs=st.integers(1, 1000),
       d=st.integers(1, 10**7), v_factor=st.integers(2, 100))
def test_oversized_requests_are_refused_up_front(r_max, n_runs, d, v_factor):
    model = vs.PLRF(1.0, 0.7, d * v_factor, d)
    with pytest.raises(ValueError, match="max_cost|memory") as info:
        vs.simulate_sgd(model, [0, r_max], learning_rate=1e-3, n_runs=n_runs, rng=0)
    assert "Reduce" in str(info.value)


@SETTINGS
@given(steps=st.floats(0.0, 1e30), memory=st.floats(0.0, 1e30),
       max_cost=st.one_of(st.none(), st.floats(1.0, 1e30), st.just(math.inf),
                          st.sampled_from([0.0, -1.0, math.nan, "big", 1j])))
def test_check_budget_refuses_exactly_above_the_limits(steps, memory, max_cost):
    from volterra_sgd._validation import MAX_COST, machine_memory

    try:
        check_budget(steps, memory, what="job", parameter="size", max_cost=max_cost)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        assert "max_cost" in msg or ("memory" in msg and "size" in msg)
        bad_limit = not isinstance(max_cost, (float, type(None))) or (
            max_cost is not None and not max_cost > 0)
        limit = MAX_COST if max_cost is None else max_cost
        assert bad_limit or memory > machine_memory() or steps > limit
    else:
        limit = MAX_COST if max_cost is None else max_cost
        assert steps <= limit and memory <= machine_memory()


@SETTINGS
@given(d_values=mostly(st.lists(st.integers(2, 10**6), min_size=3, max_size=5, unique=True),
                       st.lists(st.integers(-2, 5), max_size=3), st.just([[16, 32], [64]]),
                       st.lists(st.complex_numbers(), min_size=3, max_size=3), junk),
       max_flops=mostly(st.floats(1e7, 1e40), any_float, junk),
       flops_per_decade=mostly(st.integers(2, 10**12), st.sampled_from([1, 2.5, "x"])),
       lr_scale=mostly(st.floats(0.01, 0.99), st.floats(1.0, 10.0), any_float),
       rng=mostly(st.integers(0, 9), st.sampled_from([-1, 1.5, "seed"])))
def test_compute_optimal_refuses_by_name_before_any_work(d_values, max_flops,
                                                         flops_per_decade, lr_scale, rng):
    # max_cost=1 refuses every valid request by its cost, so nothing is ever computed
    names = ("d_values", "max_flops", "flops_per_decade", "lr_scale", "rng", "max_cost")
    with pytest.raises((TypeError, ValueError)) as info:
        vs.compute_optimal(0.7, 0.7, d_values, max_flops=max_flops, lr_scale=lr_scale,
                           flops_per_decade=flops_per_decade, rng=rng, max_cost=1.0,
                           n_jobs=1)
    assert _names(info.value, names), info.value
