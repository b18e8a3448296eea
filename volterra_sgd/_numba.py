"""The single place where volterra_sgd configures Numba.

Every compiled kernel of the package is built with :data:`njit`, which is
``numba.njit(cache=True, error_model="numpy")`` with ``fastmath`` off: the
kernels are accuracy-critical (geometric sums with ``1 - q`` of order 1e-12,
compensated sums), so no algebraic reassociation is allowed.  Nothing is
compiled at import time; :func:`warmup` compiles (or loads from the on-disk
cache) every kernel on demand.
"""

from __future__ import annotations

from functools import partial

import numba

__all__ = ["njit", "warmup"]

#: ``numba.njit`` with the package's settings (``cache=True``, ``error_model="numpy"``).
njit = partial(numba.njit, cache=True, error_model="numpy")


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
