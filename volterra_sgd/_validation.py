"""Input checks shared by the public functions ("friendly" layer).

Each check names the parameter, the offending value and the allowed range, and
raises before any computation starts.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "as_real",
    "as_int",
    "as_iterations",
    "as_positive_real",
]


def as_real(x, name: str, *, lower: float | None = None, lower_open: bool = True,
            upper: float | None = None, upper_open: bool = True) -> float:
    """Return ``x`` as a finite Python float, checking an optional range."""
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
    """Return ``x`` as a Python int >= ``minimum``; floats (even 3.0) and bools are refused."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {x!r} of type {type(x).__name__}")
    xi = int(x)
    if xi < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {xi}")
    return xi


def as_iterations(r, name: str = "r") -> np.ndarray:
    """Return iteration indices as a 1-D, non-decreasing, non-negative int64 array.

    Scalars become length-1 arrays.  Float input is accepted only when every entry is
    a finite whole number (e.g. the output of ``np.round(np.logspace(...))``).
    """
    arr = np.asarray(r)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of integers; got dtype {arr.dtype}")
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one iteration")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ValueError(f"{name} must be finite; got {name}[{bad}] = {arr[bad]!r}")
        if np.any(arr != np.round(arr)):
            bad = int(np.flatnonzero(arr != np.round(arr))[0])
            raise ValueError(f"{name} must hold whole numbers; got {name}[{bad}] = {arr[bad]!r}")
        if np.any(np.abs(arr) > 2.0**62):
            raise ValueError(f"{name} entries must be below 2**62; got max {np.max(arr)!r}")
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
