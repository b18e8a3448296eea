"""Input checks shared by the public functions ("friendly" layer).

Each check names the parameter, the offending value and the allowed range, and
raises before any computation starts.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
import warnings

import numpy as np

__all__ = [
    "EXPONENT_MAX",
    "MAX_COST",
    "as_exponents",
    "as_real",
    "as_real_array",
    "as_int",
    "as_iterations",
    "as_positive_real",
    "as_rng",
    "check_budget",
    "check_max_cost",
    "machine_memory",
]

#: Default limit on the estimated number of compiled-kernel steps of one call (about a
#: minute of work on one core for the cheapest kernels); ``max_cost=`` raises it.
MAX_COST = 10**9

#: Largest accepted |alpha|, |beta|: every exponent formula (2*alpha + 1, ...) and every
#: power j^(-2 alpha) stays a finite, non-NaN float64 well below this.
EXPONENT_MAX = 1e6

_INT64_MAX = 2**63 - 1
#: numpy < 1.25 warns (instead of raising) on ragged nested sequences.
_RaggedWarning = getattr(getattr(np, "exceptions", np), "VisibleDeprecationWarning", Warning)


def _refuse_complex(x, name: str) -> None:
    if isinstance(x, (complex, np.complexfloating)) or np.iscomplexobj(x):
        raise TypeError(f"{name} must be real; got a complex value {x!r}"
                        if np.ndim(x) == 0 else f"{name} must be real; got a complex array")


def as_real(x, name: str, *, lower: float | None = None, lower_open: bool = True,
            upper: float | None = None, upper_open: bool = True) -> float:
    """Return ``x`` as a finite Python float, checking an optional range."""
    _refuse_complex(x, name)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {x!r} of type {type(x).__name__}")
    xf = float(x)
    if not math.isfinite(xf):
        raise ValueError(f"{name} must be finite; got {xf!r}")
    if lower is not None and (xf <= lower if lower_open else xf < lower):
        op = ">" if lower_open else ">="
        raise ValueError(f"{name} must be {op} {lower}; got {xf!r}")
    if upper is not None and (xf >= upper if upper_open else xf > upper):
        op = "<" if upper_open else "<="
        raise ValueError(f"{name} must be {op} {upper}; got {xf!r}")
    return xf


def as_positive_real(x, name: str) -> float:
    """Return ``x`` as a finite float > 0."""
    return as_real(x, name, lower=0.0)


def as_int(x, name: str, *, minimum: int = 1) -> int:
    """Return ``x`` as a Python int >= ``minimum``.

    Integral floats (``1e3``) are accepted; other floats (``1.5``, ``nan``, ``inf``), bools,
    complex numbers and strings raise ``TypeError``.
    """
    _refuse_complex(x, name)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be an integer; got {x!r} of type {type(x).__name__}")
    if not isinstance(x, numbers.Integral):
        xf = float(x)
        if not (math.isfinite(xf) and xf == math.floor(xf)):
            raise TypeError(f"{name} must be an integer (a whole number); got {x!r}")
        if abs(xf) > _INT64_MAX:
            raise ValueError(f"{name} must be below 2**63; got {x!r}")
    xi = int(x)
    if xi < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {xi}")
    return xi


def as_iterations(r, name: str = "r") -> np.ndarray:
    """Return iteration indices as a 1-D, non-decreasing, non-negative int64 array.

    Scalars become length-1 arrays.  Float input is accepted only when every entry is
    a finite whole number (e.g. the output of ``np.round(np.logspace(...))``).
    """
    arr = _as_array(r, name)
    if arr.dtype == object:  # Python ints beyond int64 (e.g. 10**20)
        flat = arr.ravel()
        if all(isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))
               for x in flat):
            big = next((x for x in flat if abs(int(x)) > _INT64_MAX), None)
            if big is not None:
                raise ValueError(f"{name} exceeds int64: got {big}, above 2**63 - 1")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of integers; got dtype {arr.dtype}")
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one iteration")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ValueError(f"{name} must be finite; got {name}[{bad}] = {float(arr[bad])!r}")
        if np.any(arr != np.round(arr)):
            bad = int(np.flatnonzero(arr != np.round(arr))[0])
            raise ValueError(f"{name} must hold whole numbers; got {name}[{bad}] = {float(arr[bad])!r}")
        if np.any(np.abs(arr) > 2.0**62):
            raise ValueError(f"{name} exceeds int64: entries must be below 2**62; got max "
                             f"{float(np.max(arr)):.6g}")
    out = arr.astype(np.int64)
    if np.any(out < 0):
        bad = int(np.flatnonzero(out < 0)[0])
        raise ValueError(f"{name} must be non-negative; got {name}[{bad}] = {out[bad]}")
    if out.size > 1 and np.any(np.diff(out) < 0):
        bad = int(np.flatnonzero(np.diff(out) < 0)[0]) + 1
        raise ValueError(
            f"{name} must be sorted (non-decreasing); got {name}[{bad}] = {out[bad]} "
            f"< {name}[{bad - 1}] = {out[bad - 1]}"
        )
    return np.ascontiguousarray(out)


def _as_array(x, name: str, *, complex_ok: bool = False) -> np.ndarray:
    """``np.asarray(x)`` with ragged input (and complex values, unless allowed) refused by name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", _RaggedWarning)
            arr = np.asarray(x)
    except (ValueError, _RaggedWarning) as exc:
        raise ValueError(f"{name} must be a rectangular array; got a ragged sequence "
                         f"({exc})") from None
    if complex_ok:
        return arr
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real; got a complex array")
    if arr.dtype == object and any(isinstance(v, (complex, np.complexfloating))
                                   for v in arr.ravel()):
        raise TypeError(f"{name} must be real; got a complex value")
    return arr


def as_exponents(alpha, beta, *, alpha_name: str = "alpha",
                 beta_name: str = "beta") -> tuple[float, float]:
    """Return ``(alpha, beta)`` as floats, ``0 < alpha <= 1e6`` and ``|beta| <= 1e6``."""
    a = as_real(alpha, alpha_name, lower=0.0)
    b = as_real(beta, beta_name)
    if a > EXPONENT_MAX:
        raise ValueError(f"{alpha_name} must be <= {EXPONENT_MAX:g}; got {a!r}")
    if abs(b) > EXPONENT_MAX:
        raise ValueError(f"{beta_name} must be in [-{EXPONENT_MAX:g}, {EXPONENT_MAX:g}]; "
                         f"got {b!r}")
    return a, b


def as_real_array(x, name: str) -> np.ndarray:
    """Return ``x`` as a float64 array; ragged, complex, object and string input raise by name."""
    arr = _as_array(x, name)
    if arr.dtype == object or arr.dtype.kind not in "iufb" or arr.dtype.kind == "b":
        raise TypeError(f"{name} must be an array of real numbers; got dtype {arr.dtype}")
    return arr.astype(np.float64)


def as_rng(rng, name: str = "rng"):
    """Check ``rng`` (SPEC 7) and return it; then ``np.random.default_rng(rng)`` cannot fail.

    Accepted: None, an int seed >= 0, a Generator, BitGenerator or SeedSequence.
    """
    if rng is None or isinstance(rng, (np.random.Generator, np.random.BitGenerator,
                                       np.random.SeedSequence)):
        return rng
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"{name} must be None, an int seed or a numpy.random.Generator; "
                        f"got {rng!r} of type {type(rng).__name__}")
    if int(rng) < 0:
        raise ValueError(f"{name} must be a non-negative int seed; got {int(rng)}")
    return int(rng)


def machine_memory() -> int | None:
    """Physical memory of the machine in bytes (``os.sysconf``), or None if unknown."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return None


#: The limit set by the innermost public call with an explicit ``max_cost`` (see
#: :func:`cost_limit`); inner routes (tau, spectral_measure, ...) then honour it too.
_COST_LIMIT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "volterra_sgd_max_cost", default=None)


@contextlib.contextmanager
def cost_limit(max_cost):
    """Context in which :func:`check_budget` uses ``max_cost`` (None: leave unchanged)."""
    if max_cost is None:
        yield
        return
    token = _COST_LIMIT.set(check_max_cost(max_cost))
    try:
        yield
    finally:
        _COST_LIMIT.reset(token)


def check_max_cost(max_cost) -> float:
    """Validate the ``max_cost`` keyword: None (the default :data:`MAX_COST`), > 0, or inf."""
    if max_cost is None:
        ctx = _COST_LIMIT.get()
        return float(MAX_COST) if ctx is None else ctx
    _refuse_complex(max_cost, "max_cost")
    if isinstance(max_cost, (bool, np.bool_)) or not isinstance(max_cost, numbers.Real):
        raise TypeError(f"max_cost must be a number of kernel steps (or math.inf); got "
                        f"{max_cost!r}")
    m = float(max_cost)
    if not m > 0:  # also NaN
        raise ValueError(f"max_cost must be > 0 (math.inf disables the limit); got {max_cost!r}")
    return m


def _bytes(n: float) -> str:
    for unit, size in (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.3g} bytes"


def check_budget(steps: float, memory_bytes: float, *, what: str, parameter: str,
                 max_cost=None) -> None:
    """Refuse a request whose estimated cost is too large, before any work starts.

    Parameters
    ----------
    steps : float
        Estimated number of compiled-kernel steps (innermost loop iterations).
    memory_bytes : float
        Estimated peak memory of the arrays the request allocates.
    what : str
        The request, for the message (e.g. ``"simulate_sgd"``).
    parameter : str
        The parameter(s) to reduce, for the message (e.g. ``"max(r) or n_runs"``).
    max_cost : float or None
        Step limit (None: :data:`MAX_COST`); ``math.inf`` disables the time limit.  The
        memory check against the machine's memory cannot be disabled.

    Raises
    ------
    ValueError
        If ``memory_bytes`` exceeds the machine's memory, or ``steps`` exceeds ``max_cost``.
        The message states the estimate and the parameter to change.
    """
    limit = check_max_cost(max_cost)
    mem = machine_memory()
    if mem is not None and not memory_bytes <= mem:
        raise ValueError(f"{what} would need about {_bytes(memory_bytes)} of memory; this "
                         f"machine has {_bytes(mem)}.  Reduce {parameter}.")
    if not steps <= limit:
        raise ValueError(f"{what} would take about {steps:.2g} kernel steps, more than "
                         f"max_cost = {limit:.3g}.  Reduce {parameter}, or pass a larger "
                         "max_cost (math.inf: no limit) to run it anyway.")


def _scalar_or_max(x, default: float = 1.0) -> float:
    """Return a number, the largest entry of a numeric array, or ``default`` (callables)."""
    if isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)):
        return float(x)
    if callable(x):
        return default
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return default
    return float(np.max(arr)) if arr.size and np.all(np.isfinite(arr)) else default


def embedding_cost(v: float, d: int) -> tuple[float, float]:
    """Estimate ``(flops, bytes)`` of one ``v x d`` embedding and its spectrum (SVD/eigh)."""
    v, d = float(v), float(d)
    return v * d * min(v, d), 3.0 * 8.0 * v * d


#: Kernel steps are counted in units of about 100 coordinate updates or 3000 dense
#: floating-point operations (roughly 0.1-0.3 microseconds each on one core), so that the
#: default :data:`MAX_COST` is a few minutes of work.
_COORDS_PER_STEP = 100.0
_FLOPS_PER_STEP = 3000.0


def sgd_cost(v: float, d: int, r_max: int, n_runs: int, batch_size, learning_rate, *,
             literal: bool, n_spectra: int) -> tuple[float, float]:
    r"""Estimate ``(steps, bytes)`` of :func:`volterra_sgd.simulate_sgd`.

    One step is one SGD sample of one run touching up to 100 coordinates: the eigenbasis
    engine updates ``d`` modes per sample, the literal engine ``v d`` entries; each
    embedding spectrum costs :math:`v d \min(v, d)` operations; schedules are tabulated for
    every step (three arrays of ``max(r)`` entries).
    """
    B = max(_scalar_or_max(batch_size), 1.0)
    coords = float(d) * (float(v) if literal else 1.0)
    per_sample = max(1.0, coords / _COORDS_PER_STEP)
    spec_steps, spec_bytes = embedding_cost(v, d)
    steps = (float(n_runs) * float(r_max) * B * per_sample
             + n_spectra * spec_steps / _FLOPS_PER_STEP)
    scheduled = not isinstance(learning_rate, numbers.Real) or \
        not isinstance(batch_size, numbers.Real)
    memory = spec_bytes + 4.0 * 8.0 * n_spectra * float(d) \
        + (3.0 * 8.0 * float(r_max) if scheduled else 0.0)
    return steps, memory


def deterministic_size(model) -> float:
    """Length of the explicit eigenvalue tables of the deterministic equivalent.

    A PLRF needs ``j`` up to the tail cut-off ``J ~ (2 tau)^(1/(2 alpha))``, a few times
    ``d`` (at most ``v``); a SpectralModel sums its explicit head (``n_explicit``).
    """
    n = getattr(model, "n_explicit", None)
    if n is not None:
        return float(n)
    return float(min(float(model.v), 4.0 * float(model.d)))


def measure_cost(model) -> tuple[float, float]:
    """Estimate ``(steps, bytes)`` of the spectral measure (the stage of every loss curve).

    About ``250 J`` steps for tables of length ``J`` (:func:`deterministic_size`) when every
    eigenvalue sum is explicit (a SpectralModel head: 7.5 CPU seconds at ``d = 1e5``), and
    ``40 J`` for a PLRF, whose long smooth lower-edge sums use the Euler-Maclaurin form of
    Sec. 15 (1.2 CPU seconds for a whole curve at ``d = 1e5``, 9.2 at ``d = 1e6``,
    ``v = 1e7``); memory: a few tables of ``J`` floats.
    """
    J = deterministic_size(model)
    per = 250.0 if getattr(model, "n_explicit", None) is not None else 40.0
    return per * J, 4.0 * 8.0 * J


def tau_cost(model) -> tuple[float, float]:
    """Estimate ``(steps, bytes)`` of :func:`volterra_sgd.tau`: about 60 sums of ``J`` terms."""
    J = deterministic_size(model)
    return 6.0 * J, 0.0


def curve_cost(model, n_r: int) -> tuple[float, float]:
    """Estimate ``(steps, bytes)`` of a loss curve: the spectral measure plus ``n_r`` points.

    Each requested iteration evaluates about 3000 quadrature nodes for two rules (about 60
    steps); the result holds about 30 arrays of ``n_r`` floats.
    """
    steps, memory = measure_cost(model)
    return steps + 60.0 * n_r, memory + 30.0 * 8.0 * n_r


def frontier_cost(n_flops: float, n_d: int, n_boot: int) -> tuple[float, float]:
    """Estimate ``(steps, bytes)`` of an IsoFLOP frontier (``n_flops`` points, ``n_d`` curves).

    Every bootstrap replica re-interpolates all curves on the grid (one step per grid point
    and curve); the grid of log-losses and its minimisers take about 4 arrays of
    ``n_flops * n_d`` floats.
    """
    cells = float(n_flops) * float(n_d)
    return cells * (float(n_boot) + 1.0), 4.0 * 8.0 * cells


#: Smallest accepted ``learning_rate * tr D``: far below it gamma^2 lambda^2 underflows, the
#: kernel vanishes and error estimates break down (1e-80 fails, 1e-60 works: margin 1e10).
LEARNING_RATE_SCALE_MIN = 1e-50


def check_learning_rate_scale(learning_rate: float, trace: float) -> None:
    """Refuse learning rates so small that ``(gamma lambda)^2`` underflows float64."""
    if learning_rate * trace < LEARNING_RATE_SCALE_MIN:
        raise ValueError(
            f"learning_rate = {learning_rate!r} is too small for this model: learning_rate * "
            f"tr D = {learning_rate * trace:.3g} must be >= {LEARNING_RATE_SCALE_MIN:g} "
            "(the kernel gamma^2 lambda^2 underflows below it)")
