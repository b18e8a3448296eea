"""The single place where volterra_sgd configures Numba.

Every compiled kernel of the package is built with :func:`njit`, which is
``numba.njit(cache=True, nogil=True, error_model="numpy")`` with ``fastmath`` off: the
kernels are accuracy-critical (geometric sums with ``1 - q`` of order 1e-12,
compensated sums), so no algebraic reassociation is allowed.  ``nogil=True`` lets the
package's thread pool (:mod:`volterra_sgd._parallel`) and the caller's own threads run
kernels side by side.  Nothing is compiled at import time; :func:`warmup` compiles (or
loads from the on-disk cache) every kernel on demand.

On-disk cache.  Numba stores compiled kernels next to the sources (``__pycache__``), in
``~/.cache/numba``, or in ``NUMBA_CACHE_DIR`` when that is set.  When none of these is
writable (a read-only site-packages and no writable home directory: cluster workers,
containers), ``numba.njit(cache=True)`` raises at decoration time, i.e. on
``import volterra_sgd``.  :func:`njit` then compiles in memory (``cache=False``) and
issues one :class:`NumbaCacheWarning` per process that names ``NUMBA_CACHE_DIR``.

Developer note: Numba's cache index is keyed on the signature and the bytecode, not on the
decorator options.  After changing the options here, delete the ``__pycache__/*.nbi`` and
``*.nbc`` files, or kernels whose source did not change keep their old compiled form.
"""

from __future__ import annotations

import os
import sys
import warnings

import numba

from .exceptions import NumbaCacheWarning

__all__ = ["njit", "warmup", "NumbaCacheWarning"]

#: Options of every kernel (``fastmath`` stays off).
OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

_warned = False


def njit(func=None, /, **options):
    """``numba.njit`` with the package's settings (:data:`OPTIONS`), usable like it.

    ``@njit`` and ``@njit(parallel=True)`` both work; keyword options override
    :data:`OPTIONS`.  If no cache location is writable the kernel is compiled without the
    on-disk cache (see the module notes).

    Parameters
    ----------
    func : callable, optional
        The Python function to compile.
    **options
        Further ``numba.njit`` options.

    Returns
    -------
    numba dispatcher, or a decorator when ``func`` is None
    """
    if func is None:
        return lambda f: njit(f, **options)
    opts = {**OPTIONS, **options}
    try:
        return numba.njit(**opts)(func)
    except RuntimeError as exc:
        if not opts.get("cache") or "no locator available" not in str(exc):
            raise
        _warn_no_cache(func)
        return numba.njit(**{**opts, "cache": False})(func)


def _warn_no_cache(func) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    where = os.path.dirname(func.__code__.co_filename)
    warnings.warn(
        f"volterra_sgd: Numba cannot cache compiled kernels (neither {where}/__pycache__ nor "
        "the user cache directory is writable); kernels are compiled in memory, once per "
        "process (tens of seconds).  Set the environment variable NUMBA_CACHE_DIR to a "
        "writable directory to keep them across runs.",
        NumbaCacheWarning, stacklevel=_caller_stacklevel())


def _caller_stacklevel() -> int:
    """Stack level of the first frame outside this package and importlib (the user's import)."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        fname = frame.f_code.co_filename
        if "importlib" in fname and "_bootstrap" in fname:
            frame = frame.f_back  # warnings.warn skips these frames when counting
            continue
        if not (fname.startswith(pkg) or "numba" + os.sep in fname
                or fname.endswith(os.path.join("importlib", "__init__.py"))):
            return level  # (importlib.import_module: the package's lazy attribute access)
        frame = frame.f_back
        level += 1
    return 2


def warmup() -> float:
    """Compile (or load from cache) all Numba kernels of the package.

    Numba compiles lazily at the first call.  Call this once, e.g. before
    timing code, to move the compilation cost out of the measured region.

    Returns
    -------
    float
        Wall-clock seconds spent.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> seconds = vs.warmup()
    """
    import time

    from . import _warmup

    t0 = time.perf_counter()
    _warmup.run()
    return time.perf_counter() - t0
