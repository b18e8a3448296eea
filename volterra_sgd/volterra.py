r"""Generic discrete convolution-type Volterra equations (docs/theory.md, Eqs. (4.1)-(4.2)).

Solves

.. math::

    P(r) = F(r) + \sum_{s=0}^{r-1} K(r-1-s)\, P(s), \qquad r = 0, \dots, n-1,

for user-supplied sequences :math:`F` and :math:`K` of length :math:`n`, either by the
direct :math:`O(n^2)` sum or by the :math:`O(n \log^2 n)` Hairer--Lubich--Schlichte
("relaxed", divide-and-conquer) FFT scheme.  Both layers follow the package pattern: the
public :func:`solve_volterra` validates its input and calls Numba kernels that take only
float64 arrays and integers and return an integer status (:data:`STATUS`).  The kernels
can be called from your own ``@numba.njit`` code (docs/volterra.md):

``_volterra_direct_kernel(F, K, P) -> int``
    The whole solution by the direct sum, written into ``P``.
``_volterra_leaf_kernel(K, P, lo, hi) -> int``
    Finishes ``P[lo:hi]`` in place: on entry ``P[r]`` (``lo <= r < hi``) holds
    :math:`F(r) + \sum_{s<lo} K(r-1-s) P(s)`; on exit it holds :math:`P(r)`.
``_volterra_block_kernel(K, P, s0, s1, r0, r1) -> int``
    Adds the history :math:`\sum_{s_0 \le s < s_1} K(r-1-s) P(s)` to ``P[r]`` for
    ``r0 <= r < r1`` by the direct sum (the block update of the fast scheme, done
    without FFT).

The names without the leading underscore (``volterra_direct_kernel``,
``volterra_leaf_kernel``, ``volterra_block_kernel``) are stable aliases.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from ._numba import njit
from .exceptions import ConvergenceError

__all__ = [
    "STATUS",
    "solve_volterra",
    "volterra_block_kernel",
    "volterra_direct_kernel",
    "volterra_leaf_kernel",
]

#: Status codes returned by the Volterra kernels.
STATUS = {
    0: "success",
    1: "a non-finite value (overflow) appeared in P",
    2: "invalid arguments (array lengths or index range)",
}

#: Leaf size of the fast scheme: blocks of at most this length are finished by the
#: direct leaf kernel.  Measured (benchmarks/bench_volterra.py): 128..512 are within
#: 10% of each other at n = 2**20; 256 is the fastest.
_LEAF = 256

#: ``method="auto"`` uses the direct sum for ``n <= _AUTO_DIRECT_MAX`` (measured
#: crossover of the two methods, benchmarks/bench_volterra.py).
_AUTO_DIRECT_MAX = 1024

#: A block update of the fast scheme is exponentially weighted (see ``_fft_block``) only
#: when the weights span more than this factor; below it the plain FFT loses at most
#: this factor of relative accuracy, and the cached kernel transform can be reused.
_WEIGHT_MIN_RANGE = 64.0

#: Largest exponent ``theta * length`` of the exponential weights (keeps them finite).
_WEIGHT_MAX_LOG = 600.0


# ------------------------------------------------------------------- kernels
@njit
def _history(K, P, j, s0, s1):
    """``sum_{s0 <= s < s1} K[j - s] P[s]`` with four partial sums.

    The partial sums let the CPU overlap the multiply-adds, and the rounding error grows
    like (s1 - s0) / 4 instead of (s1 - s0).
    """
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    s = s0
    while s + 4 <= s1:
        a0 += K[j - s] * P[s]
        a1 += K[j - s - 1] * P[s + 1]
        a2 += K[j - s - 2] * P[s + 2]
        a3 += K[j - s - 3] * P[s + 3]
        s += 4
    while s < s1:
        a0 += K[j - s] * P[s]
        s += 1
    return (a0 + a1) + (a2 + a3)


@njit
def _volterra_leaf_kernel(K, P, lo, hi):
    """Finish ``P[lo:hi]`` in place by the direct sum over the leaf's own history.

    On entry ``P[r]`` (``lo <= r < hi``) holds ``F(r) + sum_{s<lo} K(r-1-s) P(s)``; on exit
    ``P[r] = F(r) + sum_{s<r} K(r-1-s) P(s)`` (docs/theory.md, Eq. (4.1)).  ``P[:lo]`` is not read.

    Parameters
    ----------
    K : float64[:]
        Kernel, ``K[m]`` for lags ``m = 0 .. hi-lo-2`` are read (length ``>= hi - lo - 1``).
    P : float64[:]
        Solution array, updated in place on ``[lo, hi)``.
    lo, hi : int
        Half-open index range, ``0 <= lo <= hi <= len(P)``.

    Returns
    -------
    int
        0 on success, 1 if a non-finite value appeared (``P`` is then left partly
        updated), 2 on invalid arguments.

    Examples
    --------
    Solve on ``[0, 2)``, add that history to ``[2, 4)`` with :func:`volterra_block`, then
    finish ``[2, 4)``: the same as the direct solution.

    >>> import numpy as np
    >>> from volterra_sgd.numba_api import volterra_block, volterra_leaf
    >>> K, P = np.full(4, 0.5), np.ones(4)              # P holds F on entry
    >>> volterra_leaf(K, P, 0, 2), volterra_block(K, P, 0, 2, 2, 4), volterra_leaf(K, P, 2, 4)
    (0, 0, 0)
    >>> P.tolist()
    [1.0, 1.5, 2.25, 3.375]
    """
    if lo < 0 or hi < lo or hi > P.shape[0] or K.shape[0] < hi - lo - 1:
        return 2
    for r in range(lo, hi):
        p = P[r] + _history(K, P, r - 1, lo, r)
        P[r] = p
        if not math.isfinite(p):
            return 1
    return 0


@njit
def _volterra_direct_kernel(F, K, P):
    """Solve the Volterra equation by the direct O(n^2) sum (docs/theory.md, Eq. (4.1)).

    Parameters
    ----------
    F, K : float64[:]
        Forcing and kernel, same length ``n`` (``K[n-1]`` is not used).
    P : float64[:]
        Output, length ``n``; overwritten with the solution.

    Returns
    -------
    int
        0 on success, 1 if a non-finite value appeared, 2 if the lengths differ.

    Examples
    --------
    With :math:`F = 1` and :math:`K = 1/2`: :math:`P = 1, 3/2, 9/4, 27/8`.

    >>> import numpy as np
    >>> from volterra_sgd.numba_api import volterra_direct
    >>> P = np.empty(4)
    >>> volterra_direct(np.ones(4), np.full(4, 0.5), P), P.tolist()
    (0, [1.0, 1.5, 2.25, 3.375])
    """
    n = F.shape[0]
    if K.shape[0] != n or P.shape[0] != n:
        return 2
    for r in range(n):
        P[r] = F[r]
    return _volterra_leaf_kernel(K, P, 0, n)


@njit
def _volterra_block_kernel(K, P, s0, s1, r0, r1):
    """Add the history of ``P[s0:s1]`` to ``P[r0:r1]`` by the direct sum.

    ``P[r] += sum_{s0 <= s < s1} K(r-1-s) P(s)`` for ``r0 <= r < r1``, with
    ``s1 <= r0`` (the block update of the fast scheme, docs/theory.md, Eq. (4.2)).

    Returns
    -------
    int
        0 on success, 1 if a non-finite value appeared, 2 on invalid arguments.

    Parameters
    ----------
    K : float64[:]
        Kernel; ``K[m]`` is read for lags ``r0 - s1 <= m <= r1 - s0 - 2``.
    P : float64[:]
        Solution array: ``P[s0:s1]`` is read, ``P[r0:r1]`` is updated in place.
    s0, s1 : int
        Half-open source range.
    r0, r1 : int
        Half-open target range, ``s1 <= r0 <= r1 <= len(P)``.

    Examples
    --------
    >>> import numpy as np
    >>> from volterra_sgd.numba_api import volterra_block
    >>> P = np.array([1.0, 2.0, 0.0, 0.0])
    >>> volterra_block(np.array([1.0, 10.0, 100.0]), P, 0, 2, 2, 4), P.tolist()
    (0, [1.0, 2.0, 12.0, 120.0])
    """
    if (s0 < 0 or s1 < s0 or r0 < s1 or r1 < r0 or r1 > P.shape[0]
            or (r1 > r0 and s1 > s0 and K.shape[0] < r1 - s0 - 1)):
        return 2
    for r in range(r0, r1):
        p = P[r] + _history(K, P, r - 1, s0, s1)
        P[r] = p
        if not math.isfinite(p):
            return 1
    return 0


@njit
def _decay_rate(a, lo, hi):
    """Exponential decay rate of ``|a[lo:hi]|``: log(max of head / max of tail) / distance.

    Returns 0.0 when the sequence does not decay or has an all-zero head or tail.
    """
    m = hi - lo
    q = max(1, m // 4)
    if m < 2 * q:
        return 0.0
    head = 0.0
    tail = 0.0
    for i in range(q):
        head = max(head, abs(a[lo + i]))
        tail = max(tail, abs(a[hi - q + i]))
    if not (tail > 0.0 and head > tail):
        return 0.0
    return math.log(head / tail) / (m - q)


#: Returned by ``_scaled_copy_kernel`` when a weighted value is not finite.
_NONFINITE = 1 << 20


@njit
def _scaled_copy_kernel(a, lo, count, theta, shift, out):
    """Copy ``a[lo + i] * exp(theta * (i - shift))`` (``i < count``) into ``out``, scaled.

    The values are divided by ``2**e`` (exact) so that the largest magnitude lies in
    ``[0.5, 1)``; the rest of ``out`` is zeroed.  Returns ``e`` (0 if all values are 0),
    or ``_NONFINITE`` if a value is not finite.
    """
    big = 0.0
    if theta == 0.0:
        for i in range(count):
            v = a[lo + i]
            out[i] = v
            big = max(big, abs(v))
    else:
        for i in range(count):
            v = a[lo + i] * math.exp(theta * (i - shift))
            out[i] = v
            big = max(big, abs(v))
    if not math.isfinite(big):
        return _NONFINITE
    e = 0
    if big > 0.0:
        e = math.frexp(big)[1]
        for i in range(count):
            out[i] = math.ldexp(out[i], -e)
    for i in range(count, out.shape[0]):
        out[i] = 0.0
    return e


@njit
def _add_block_kernel(P, r0, r1, z, t0, theta, e):
    """``P[r] += 2**e * z[t0 + j] * exp(-theta * j)``, ``j = r - r0``, for ``r0 <= r < r1``.

    Returns 1 if a non-finite value appeared, else 0.
    """
    bad = False
    if theta == 0.0:
        for r in range(r0, r1):
            p = P[r] + math.ldexp(z[t0 + r - r0], e)
            P[r] = p
            bad |= not math.isfinite(p)
    else:
        for r in range(r0, r1):
            p = P[r] + math.ldexp(z[t0 + r - r0] * math.exp(-theta * (r - r0)), e)
            P[r] = p
            bad |= not math.isfinite(p)
    return 1 if bad else 0


# ------------------------------------------------------------- fast scheme
def _kernel_transform(K, lag0, nk, theta):
    """``(size, rfft of the scaled, weighted K[lag0 : lag0 + nk], exponent)``, or None."""
    size = scipy.fft.next_fast_len(nk, real=True)
    kseg = np.empty(size)
    e = _scaled_copy_kernel(K, lag0, nk, theta, 0.0, kseg)
    if e == _NONFINITE:
        return None
    return size, scipy.fft.rfft(kseg, overwrite_x=True), e


def _fft_block(K, P, s0, s1, r0, r1, cache):
    r"""Add :math:`\sum_{s_0 \le s < s_1} K(r-1-s) P(s)` to ``P[r0:r1]`` by one FFT.

    With :math:`M = s_1 - s_0`, :math:`N = r_1 - r_0`, :math:`x_i = P(s_0 + i)` and
    :math:`k_m = K(r_0 - s_1 + m)` for :math:`m < M + N - 1`, the wanted sums are
    :math:`(x * k)(M - 1 + j)`, :math:`j < N`, of the linear convolution, whose support is
    :math:`[0, 2M + N - 2)`.  A circular convolution of length :math:`S \ge M + N - 1`
    aliases index :math:`t + S` onto :math:`t`; for :math:`t \ge M - 1` that index is
    :math:`\ge 2M + N - 2`, outside the support, so the wanted outputs are exact.

    Both inputs are scaled by powers of two (exact) so the FFT can neither overflow nor
    underflow.  If :math:`|x|` decays by more than ``_WEIGHT_MIN_RANGE`` over the block
    (and :math:`|k|` decays too), both are multiplied by :math:`e^{\theta i}`: the weighted
    convolution is :math:`e^{\theta t}` times the plain one, and its round-off is relative
    to the weighted (flattened) data instead of to the largest early values.
    """
    M = s1 - s0
    N = r1 - r0
    if M <= 0 or N <= 0:
        return 0
    lag0 = r0 - s1
    nk = M + N - 1
    theta = _decay_rate(P, s0, s1)
    if theta > 0.0:
        theta = min(theta, _decay_rate(K, lag0, lag0 + nk), _WEIGHT_MAX_LOG / (M + N))
    kt = None
    if theta * (M + N) >= math.log(_WEIGHT_MIN_RANGE):
        kt = _kernel_transform(K, lag0, nk, theta)  # None if the weights overflow
    if kt is None:
        theta = 0.0
        key = (lag0, nk)
        kt = cache.get(key)
        if kt is None:
            kt = cache[key] = _kernel_transform(K, lag0, nk, 0.0)
    size, kf, ek = kt
    x = np.empty(size)
    ex = _scaled_copy_kernel(P, s0, M, theta, M - 1.0, x)
    if ex == _NONFINITE:
        return 1
    xf = scipy.fft.rfft(x, overwrite_x=True)
    xf *= kf
    z = scipy.fft.irfft(xf, size, overwrite_x=True)
    return _add_block_kernel(P, r0, r1, z, M - 1, theta, ex + ek)


def _fft_solve(K, P, lo, hi, n, leaf, cache):
    """Divide and conquer on ``[lo, hi)`` (outputs beyond ``n`` are skipped); returns status."""
    if hi - lo <= leaf:
        return _volterra_leaf_kernel(K, P, lo, min(hi, n))
    mid = (lo + hi) // 2
    status = _fft_solve(K, P, lo, mid, n, leaf, cache)
    if status != 0 or mid >= n:
        return status
    r1 = min(hi, n)
    if lo == 0:
        # First column: P(0..mid) may span many orders of magnitude (a decaying
        # solution).  Split the sources so that, for regularly varying F and K, each
        # FFT sees either a small range of P or a small range of lags (docs/volterra.md).
        q = mid // 2
        status = _fft_block(K, P, 0, q, mid, r1, cache)
        if status == 0:
            status = _fft_block(K, P, q, mid, mid, r1, cache)
    else:
        status = _fft_block(K, P, lo, mid, mid, r1, cache)
    if status != 0:
        return status
    return _fft_solve(K, P, mid, hi, n, leaf, cache)


def _volterra_fft(F, K, P, leaf=_LEAF):
    """Fast scheme (docs/theory.md, Eq. (4.2)): writes the solution into ``P``; returns a status."""
    n = F.shape[0]
    P[:] = F
    size = leaf
    while size < n:
        size *= 2
    return _fft_solve(K, P, 0, size, n, leaf, {})


# ----------------------------------------------------------------- public API
def _as_sequence(x, name: str) -> np.ndarray:
    """Return ``x`` as a contiguous 1-D float64 array of finite values (or raise)."""
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers; got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must have length >= 1; got an empty array")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{name} must be finite; got {name}[{bad}] = {float(arr[bad])!r}")
    return arr


def solve_volterra(F, K, *, method: str = "auto") -> np.ndarray:
    r"""Solve the discrete convolution-type Volterra equation :math:`P = F + K \star P`.

    Computes, for :math:`r = 0, \dots, n - 1`,

    .. math::

        P(r) = F(r) + \sum_{s=0}^{r-1} K(r-1-s)\, P(s),

    so :math:`P(0) = F(0)` and :math:`K(n-1)` is never used.  This is the exact form of the
    equation for the expected SGD loss (docs/theory.md, Eq. (3.4)).

    Parameters
    ----------
    F : array_like, shape (n,)
        Forcing :math:`F(r)`, real and finite, ``n >= 1``.
    K : array_like, shape (n,)
        Kernel :math:`K(m)`, real and finite, same length as ``F``.
    method : {"auto", "direct", "fft"}, optional
        ``"direct"``: the direct :math:`O(n^2)` sum.  ``"fft"``: the
        :math:`O(n \log^2 n)` divide-and-conquer FFT scheme.  ``"auto"`` (default):
        ``"direct"`` for ``n <= 1024``, else ``"fft"`` (the measured crossover).

    Returns
    -------
    ndarray, shape (n,)
        The solution :math:`P(r)`, float64.

    Raises
    ------
    TypeError
        If ``F`` or ``K`` is not a real numeric array (complex, object, bool), or
        ``method`` is not a string.
    ValueError
        If ``F`` or ``K`` is not 1-D, is empty or holds NaN/inf, if the lengths differ,
        or if ``method`` is unknown.
    ConvergenceError
        If the solution overflows (or otherwise becomes non-finite).  For a
        non-negative kernel this happens when :math:`\sum_m K(m) \ge 1` and ``n`` is
        large: the solution then grows geometrically.

    Notes
    -----
    The fast scheme (Hairer, Lubich and Schlichte 1985; docs/theory.md, Eq. (4.2)) splits
    :math:`[0, n)` recursively into halves: it solves the left half, adds the left
    half's contribution to the right half by one FFT convolution, and recurses into the
    right half; blocks of at most 256 terms are finished by the direct sum.  The kernel
    transforms depend only on the block size and are computed once per level.  The
    result equals the direct sum up to round-off:

    * absolute error of order :math:`\epsilon \log n \max|K| \max|P|` in general;
    * relative error :math:`\max_r |P - P_{direct}|/|P_{direct}| \lesssim 10^{-13}`
      observed for positive :math:`F, K` with :math:`\sum K < 1` (random, power-law or
      exponentially decaying, :math:`n \le 10^5`), including solutions that decay over
      many orders of magnitude; the first-column blocks are split and decaying blocks
      exponentially weighted to keep this relative accuracy (docs/volterra.md).

    The direct sum uses four partial sums; its own relative error is about
    :math:`10^{-15}` for positive data.

    References
    ----------
    E. Hairer, Ch. Lubich, M. Schlichte, "Fast numerical solution of nonlinear Volterra
    convolution equations", SIAM J. Sci. Stat. Comput. 6 (1985) 532--541.

    Examples
    --------
    A one-exponential kernel :math:`K(m) = c \rho^m` with :math:`F \equiv 1` has the
    closed form :math:`P(r) = 1 + c\,((\rho + c)^r - 1)/(\rho + c - 1)`:

    >>> import numpy as np
    >>> from volterra_sgd.volterra import solve_volterra
    >>> P = solve_volterra(np.ones(4), 0.5 * 0.25 ** np.arange(4))
    >>> P.tolist()
    [1.0, 1.5, 1.875, 2.15625]
    >>> r = np.arange(5000)
    >>> P = solve_volterra(np.ones(5000), 0.5 * 0.25 ** r, method="fft")
    >>> bool(np.allclose(P, 1 + 0.5 * (0.75 ** r - 1) / (0.75 - 1), rtol=1e-13))
    True
    """
    F = _as_sequence(F, "F")
    K = _as_sequence(K, "K")
    if F.size != K.size:
        raise ValueError(f"F and K must have the same length; got len(F) = {F.size}, "
                         f"len(K) = {K.size}")
    if not isinstance(method, str):
        raise TypeError(f"method must be a string; got {method!r}")
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"method must be 'auto', 'direct' or 'fft'; got {method!r}")
    n = F.size
    if method == "auto":
        method = "direct" if n <= _AUTO_DIRECT_MAX else "fft"
    P = np.empty(n)
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "direct":
            status = _volterra_direct_kernel(F, K, P)
        else:
            status = _volterra_fft(F, K, P)
    if status == 1 or not np.isfinite(P).all():
        bad = np.flatnonzero(~np.isfinite(P))
        where = f" (first at r = {int(bad[0])})" if bad.size else ""
        knorm = float(np.sum(np.abs(K[: n - 1])))
        raise ConvergenceError(
            f"solve_volterra: the solution overflowed{where}; sum(|K|) = {knorm:.6g}"
            + (" >= 1, so P can grow geometrically (an unstable equation)"
               if knorm >= 1 else "")
        )
    if status != 0:  # pragma: no cover - the arguments above are always consistent
        raise ConvergenceError(f"solve_volterra: {STATUS.get(status, status)}")
    return P


#: Stable public aliases of the embeddable kernels (docs/volterra.md).
volterra_direct_kernel = _volterra_direct_kernel
volterra_leaf_kernel = _volterra_leaf_kernel
volterra_block_kernel = _volterra_block_kernel
