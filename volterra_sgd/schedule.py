r"""Learning-rate and batch-size schedules: exact recursion and geometric-block integrator.

docs/theory.md, Sec. 8 and Eq. (8.1).  With a schedule :math:`\gamma(s)`, :math:`B(s)` the per-mode
recursion of docs/theory.md, Eq. (3.6), stays exact step by step,

.. math::

    \rho_k(s+1) = q_k(s)\rho_k(s) + c_k(s) P(s), \qquad P(s) = F_0 + \sum_k \rho_k(s),

    q_k(s) = 1 - 2\gamma(s)B(s)x_k + \gamma(s)^2 B(s)(B(s)+1)x_k^2, \qquad
    c_k(s) = \gamma(s)^2 B(s)\, x_k^2 w^K_k,

where the modes are the eigenvalues of one embedding (:math:`w^K_k = 1`) or the nodes of the
deterministic measure (:math:`w^K_k = \rho_k`, the eigenvalue weight), and
:math:`\rho_k(0) = f_k` are the forcing weights.  It costs :math:`O(M)` per step.

For long horizons the **geometric-block integrator** takes unit steps up to ``r_exact``, then
blocks of length :math:`L \approx h\,s` (ending at every requested iteration and at every
jump of an array schedule).  Inside a block :math:`q_k` is frozen at the block's mean step,
the source :math:`\sigma(s) = \gamma(s)^2 B(s) P(s)` is taken linear between the block ends,
and every mode is advanced by exact geometric sums:

.. math::

    \rho_k(s+L) = q_k^L\rho_k(s) + x_k^2 w^K_k\big(S_0\,\sigma(s) + S_1 (\sigma(s+L) -
    \sigma(s))/L\big),\quad
    S_0 = \frac{1-q_k^L}{1-q_k},\quad S_1 = \frac{L - S_0}{1-q_k},

which is linear in :math:`P(s+L)` and closed by one scalar division.  The scheme is second
order in :math:`h`; running it with :math:`h` and :math:`h/2` gives the reported solution
(:math:`h/2`) and the error estimate: twice the largest relative difference
:math:`|P_h - P_{h/2}|/P` over all iterations up to :math:`2r`, times :math:`P(r)` (errors
made early persist in the slow modes), plus a rounding floor.
"""

from __future__ import annotations

import math

import numpy as np

from ._numba import njit

__all__ = ["as_schedule", "schedule_recursion", "schedule_integrator"]


def as_schedule(value, name: str, *, integer: bool = False):
    """Normalize a constant, an array (indexed by step) or a callable into a function of s.

    Returns ``(func, constant)`` where ``func(s_array) -> float64 array`` and ``constant`` is
    the value if the schedule is constant, else None.

    Parameters
    ----------
    value : float, array_like or callable
        A positive constant; an array indexed by the step ``s`` (length at least the number
        of steps); or a vectorized callable ``s -> value`` (called with float64 arrays).
    name : str
        Parameter name for error messages (``"learning_rate"``, ``"batch_size"``).
    integer : bool, default False
        Require integer values (batch sizes).

    Returns
    -------
    func : callable
        ``func(s_array) -> float64 array`` of the schedule at the steps ``s``.
    constant : float or None
        The value when the schedule is constant, else None.

    Examples
    --------
    >>> import numpy as np
    >>> from volterra_sgd.schedule import as_schedule
    >>> func, const = as_schedule(0.1, "learning_rate")
    >>> const, func(np.array([0.0, 5.0])).tolist()
    (0.1, [0.1, 0.1])
    >>> func, const = as_schedule(lambda s: 0.1 / (1 + s), "learning_rate")
    >>> const, func(np.array([0.0, 1.0])).tolist()
    (None, [0.1, 0.05])
    """
    import numbers

    if isinstance(value, (complex, np.complexfloating)):
        raise TypeError(f"{name} must be real; got a complex value {value!r}")
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = float(value)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be positive and finite; got {value!r}")
        if integer and v != int(v):
            raise TypeError(f"{name} must be an integer; got {value!r}")
        return (lambda s: np.full(np.shape(s), v)), v
    if callable(value):
        def func(s):
            out = np.asarray(value(np.asarray(s, dtype=np.float64)))
            if out.dtype.kind == "c":
                raise TypeError(f"the {name} schedule must return real values; got complex")
            out = out.astype(np.float64)
            out = np.broadcast_to(out, np.shape(s)).astype(np.float64)
            if not (np.all(np.isfinite(out)) and np.all(out > 0)):
                raise ValueError(f"the {name} schedule returned a non-positive or non-finite "
                                 "value")
            if integer and np.any(out != np.round(out)):
                raise ValueError(f"the {name} schedule must return whole numbers")
            return out
        return func, None
    from ._validation import as_real_array

    arr = as_real_array(value, name)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a positive number, a 1-D array indexed by the step, "
                         f"or a callable; got shape {arr.shape}")
    if not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
        raise ValueError(f"{name} must be positive and finite")
    if integer and np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must hold whole numbers")

    jumps = np.abs(np.diff(arr)) > 1e-4 * np.minimum(arr[1:], arr[:-1])

    def lookup(s):
        s = np.asarray(s, dtype=np.float64)
        if np.any(s > arr.size - 1):
            raise ValueError(f"the {name} array has {arr.size} entries but step "
                             f"{int(np.ceil(np.max(s)))} is needed (one entry per step "
                             "s < max(r))")
        lo = np.floor(s).astype(np.int64)
        frac = s - lo
        hi = np.minimum(lo + 1, arr.size - 1)
        return arr[lo] * (1.0 - frac) + arr[hi] * frac  # fractional steps: interpolate
    lookup.breakpoints = np.flatnonzero(jumps).astype(np.int64) + 1  # steps where it jumps
    return lookup, None


@njit
def _schedule_recursion_kernel(x, fw, kw, f0, gam, bat, r_out, out):
    """Exact step recursion with per-step ``gam[s]``, ``bat[s]``; status 0/1 (non-finite)."""
    n = x.shape[0]
    rho = fw.copy()
    i = 0
    s = 0
    while i < r_out.shape[0]:
        p = f0
        for k in range(n):
            p += rho[k]
        while i < r_out.shape[0] and r_out[i] == s:
            out[i] = p
            i += 1
        if i == r_out.shape[0]:
            break
        g = gam[s]
        B = bat[s]
        for k in range(n):
            xk = x[k]
            q = 1.0 - g * B * xk * (2.0 - g * (B + 1.0) * xk)
            rho[k] = q * rho[k] + g * g * B * xk * xk * kw[k] * p
        if not math.isfinite(p):
            return 1
        s += 1
    return 0


@njit
def _geometric_sums(pk, L):
    """S0 = sum_{j<L} q^j and S1 = sum_{j<L} (L-1-j) q^j for q = 1 - pk, accurately."""
    if L == 1:
        return 1.0, 0.0
    ell = -math.log1p(-pk)
    s0 = -math.expm1(-L * ell) / pk
    if L * ell > 1e-3:
        return s0, (L - s0) / pk
    Lf = float(L)  # series in ell: avoids the cancellation in L - S0
    s1 = (Lf * (Lf - 1.0) / 2.0 - ell * Lf * (Lf - 1.0) * (Lf - 2.0) / 6.0
          + ell * ell * Lf * (Lf - 1.0) ** 2 * (Lf - 2.0) / 24.0)
    return s0, s1


@njit
def _block_kernel(x, fw, kw, f0, lengths, gam, bat, src0, src1, p_out):
    """March over blocks of the given lengths; ``p_out[b]`` = P at the end of block b.

    ``gam``/``bat`` (schedule at the block's mean step) set :math:`q`; the source
    :math:`\\gamma(s)^2 B(s) P(s)` is taken linear in ``s`` between its values at the block
    start (``src0 * P(start)``) and end (``src1 * P(end)``).  Returns 0, or 1 if the loss
    became non-finite.
    """
    n = x.shape[0]
    rho = fw.copy()
    tail = np.empty(n)
    p = f0
    for k in range(n):
        p += rho[k]
    for b in range(lengths.shape[0]):
        L = lengths[b]
        g = gam[b]
        B = bat[b]
        base = f0
        coef_new = 0.0
        for k in range(n):
            xk = x[k]
            pk = g * B * xk * (2.0 - g * (B + 1.0) * xk)  # 1 - q, without cancellation
            ak = xk * xk * kw[k]
            s0, s1 = _geometric_sums(pk, L)
            rho[k] = math.exp(L * math.log1p(-pk)) * rho[k] + ak * src0[b] * (s0 - s1 / L) * p
            base += rho[k]
            tail[k] = ak * src1[b] * s1 / L
            coef_new += tail[k]
        p = base / (1.0 - coef_new)  # P at the block end: the linear equation closed
        for k in range(n):
            rho[k] += tail[k] * p
        p_out[b] = p
        if not math.isfinite(p):
            return 1
    return 0


def _blocks(r: np.ndarray, h: float, r_exact: int, breaks=()) -> tuple[np.ndarray, np.ndarray]:
    """Block lengths covering [0, max r], ending at every requested r and at every schedule
    breakpoint (so that no block straddles a jump); return (lengths, ends)."""
    targets = np.unique(np.r_[np.asarray(r, dtype=np.int64),
                              np.asarray(breaks, dtype=np.int64)[np.asarray(breaks) < np.max(r)]])
    ends = []
    s = 0
    ti = 0
    rmax = int(targets[-1])
    brk = np.unique(np.asarray(breaks, dtype=np.int64))
    bi = 0
    last_jump = -1
    while s < rmax:
        while bi < brk.size and brk[bi] <= s:
            last_jump = int(brk[bi])
            bi += 1
        L = 1 if s < r_exact else max(1, int(h * s))
        if last_jump >= 0:  # after a jump P has a fast transient: grow blocks from it anew
            L = min(L, max(1, int(h * (s - last_jump))))
        nxt = s + L
        while ti < targets.size and targets[ti] <= s:
            ti += 1
        if ti < targets.size and targets[ti] < nxt:
            nxt = int(targets[ti])
        ends.append(nxt)
        s = nxt
    ends = np.asarray(ends, dtype=np.int64)
    lengths = np.diff(np.r_[0, ends]).astype(np.int64)
    return lengths, ends


def envelope(r, e):
    """Maximum of ``e`` over the iterations within ``[r/2, 2r + 1]`` of each ``r`` (sorted).

    Error estimates from the difference of two solutions vanish where the two cross; the
    envelope covers those iterations.
    """
    lo = np.searchsorted(r, r // 2, side="left")
    hi = np.searchsorted(r, 2 * r + 1, side="right")
    # sparse table, one level at a time: M holds the maxima over e[i : i + 2^k], and a
    # window of length L in [2^k, 2^(k+1)) is covered by two of them (O(n log n), not the
    # O(n^2) of slicing when r is dense)
    length = hi - lo
    level = np.log2(np.maximum(length, 1)).astype(np.int64)
    out = np.empty(len(e))
    M = np.asarray(e)
    k = 0
    while True:
        sel = np.flatnonzero(level == k)
        out[sel] = np.maximum(M[lo[sel]], M[hi[sel] - (1 << k)])
        if sel.size == length.size or (2 << k) > length.max(initial=0):
            return out
        M = np.maximum(M[:-(1 << k)], M[(1 << k):])
        k += 1


def _source_factor(gamma_fn, batch_fn, steps):
    """gamma(s)^2 B(s) at the given steps (the factor of the Volterra source term)."""
    if steps.size == 0:
        return np.empty(0)
    g = gamma_fn(steps)
    return np.ascontiguousarray(g * g * batch_fn(steps), dtype=np.float64)


def _breakpoints(*funcs) -> np.ndarray:
    """Steps at which array schedules jump (callables are assumed smooth)."""
    parts = [getattr(f, "breakpoints", np.empty(0, dtype=np.int64)) for f in funcs]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def schedule_integrator(x, fw, kw, f0, r, gamma_fn, batch_fn, *, h: float = 0.02,
                        r_exact: int = 1000):
    r"""Geometric-block integrator (see module doc); returns (P at r, error estimate at r).

    Parameters
    ----------
    x, fw, kw, f0, r, gamma_fn, batch_fn
        As for :func:`schedule_recursion`.
    h : float, default 0.02
        Relative block length, :math:`L \approx h s`.
    r_exact : int, default 1000
        Unit steps up to this iteration.

    Returns
    -------
    P : ndarray
        :math:`P(r)` from the run with :math:`h/2`.
    error : ndarray
        Error estimate (see :func:`_integrator_error`).

    Examples
    --------
    A decaying learning rate on three modes, against the exact step-by-step recursion:

    >>> import numpy as np
    >>> from volterra_sgd.schedule import as_schedule, schedule_integrator, schedule_recursion
    >>> x, fw, kw = np.array([0.5, 0.05, 0.005]), np.array([1.0, 0.5, 0.25]), np.ones(3)
    >>> g = as_schedule(lambda s: 0.2 / np.sqrt(1 + s / 100), "learning_rate")[0]
    >>> b = as_schedule(1, "batch_size")[0]
    >>> r = np.array([0, 100, 3000, 20000])
    >>> exact = schedule_recursion(x, fw, kw, 0.01, r, g, b)
    >>> P, err = schedule_integrator(x, fw, kw, 0.01, r, g, b)
    >>> bool(np.all(np.abs(P - exact) < 1e-4 * exact)), bool(np.all(err < 1e-4 * exact))
    (True, True)
    """
    results = []
    breaks = _breakpoints(gamma_fn, batch_fn)
    for hh in (h, h / 2):
        lengths, ends = _blocks(r, hh, r_exact, breaks)
        starts = ends - lengths
        mid = starts + (lengths - 1) / 2.0  # q frozen at the block's mean step
        gam = np.ascontiguousarray(gamma_fn(mid), dtype=np.float64)
        bat = np.ascontiguousarray(batch_fn(mid), dtype=np.float64)
        src0 = _source_factor(gamma_fn, batch_fn, starts.astype(np.float64))
        # the schedule factor at the block end s = ends, extrapolated linearly from its last
        # two steps ends - 1, ends - 2 (a block never reaches across a jump, and array
        # schedules of length max(r) suffice); taking it at ends - 1 instead is an error of
        # one step in the source, ~1/s relative per block, that does not shrink with h
        last = _source_factor(gamma_fn, batch_fn, (ends - 1).astype(np.float64))
        prev = _source_factor(gamma_fn, batch_fn, np.maximum(ends - 2, starts).astype(np.float64))
        src1 = np.ascontiguousarray(np.maximum(2.0 * last - prev, 0.0))
        p_out = np.empty(lengths.size)
        status = _block_kernel(x, fw, kw, f0, lengths, gam, bat, src0, src1, p_out)
        if status != 0:
            from .exceptions import ConvergenceError

            raise ConvergenceError("schedule integrator: the loss became non-finite "
                                   "(unstable schedule)")
        p0 = f0 + float(np.sum(fw))
        vals = np.r_[p0, p_out]
        pos = np.searchsorted(np.r_[0, ends], r)
        results.append(vals[pos])
    coarse, fine = results
    return fine, _integrator_error(r, coarse, fine, x.size, r_exact)


def _integrator_error(r, coarse, fine, n_modes, r_exact):
    """Estimate the error of the h/2 run.

    Twice the largest relative difference ``|P_h - P_{h/2}|/P`` over all iterations up to
    ``2r``, times ``P(r)``, plus a rounding floor.

    Not ``|P_h - P_{h/2}|/3`` (Richardson for second order) over ``[r/2, 2r]``: the errors
    made early (unit steps end at ``r_exact``, jumps) persist in the slow modes and are not
    yet in the asymptotic regime at the default h, so the two runs can cross while both are
    off (measured: up to 7x under-reported).  Without the factor 2 the estimate still fell
    10% short on a decaying schedule started at (1 - 1e-8) gamma*.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(fine != 0.0, np.abs(coarse - fine) / np.abs(fine), 0.0)
    hi = np.searchsorted(r, 2 * r + 1, side="right")
    run = np.maximum.accumulate(rel) if rel.size else rel
    est = 2.0 * np.abs(fine) * run[np.maximum(hi - 1, 0)] if rel.size else rel
    eps = np.finfo(float).eps
    floor = (16.0 * eps * (n_modes / 4.0 + 4.0) * np.maximum.accumulate(np.abs(fine))
             * (1.0 + np.minimum(r, 2 * r_exact)))  # unit steps, then few blocks
    return est + floor


def schedule_recursion(x, fw, kw, f0, r, gamma_fn, batch_fn):
    r"""Exact step-by-step recursion with the schedule (cost O(M max r)).

    Parameters
    ----------
    x, fw, kw : ndarray
        Mode positions :math:`x_k` (eigenvalues or quadrature nodes), forcing weights
        :math:`f_k = \rho_k(0)` and kernel weights :math:`w^K_k` (see the module docstring).
    f0 : float
        Constant part :math:`F_0` of the forcing.
    r : ndarray of int64
        Non-decreasing iterations.
    gamma_fn, batch_fn : callable
        Schedules from :func:`as_schedule`.

    Returns
    -------
    ndarray
        :math:`P(r)`.

    Examples
    --------
    One mode with a constant schedule: :math:`P(r) = (q + c)^r` with
    :math:`q = 1 - 2\gamma x + 2\gamma^2 x^2` and :math:`c = \gamma^2 x^2` (here 0.9075).

    >>> import numpy as np
    >>> from volterra_sgd.schedule import as_schedule, schedule_recursion
    >>> g, b = as_schedule(0.1, "learning_rate")[0], as_schedule(1, "batch_size")[0]
    >>> P = schedule_recursion(np.array([0.5]), np.array([1.0]), np.array([1.0]), 0.0,
    ...                        np.array([0, 1, 2, 10]), g, b)
    >>> bool(np.allclose(P, 0.9075 ** np.array([0, 1, 2, 10]), rtol=1e-14))
    True
    """
    rmax = int(np.max(r))
    steps = np.arange(max(rmax, 1))
    gam = np.ascontiguousarray(gamma_fn(steps))
    bat = np.ascontiguousarray(batch_fn(steps), dtype=np.float64)
    out = np.empty(r.size)
    status = _schedule_recursion_kernel(x, fw, kw, f0, gam, bat, np.ascontiguousarray(r), out)
    if status != 0:
        from .exceptions import ConvergenceError

        raise ConvergenceError("schedule recursion: the loss became non-finite")
    return out


def schedule_forcing(x, fw, kw, f0, r, gamma_fn, batch_fn, comp=None, *, h: float = 0.02,
                     r_exact: int = 1000):
    """F(r) and K(r, 0) under a schedule, split by component (0 bulk, >0 outliers).

    ``F(r) = F0 + sum_k f_k prod_{s<r} q_k(s)`` and
    ``K(r, 0) = gamma(0)^2 B(0) sum_k x_k^2 w_k prod_{0<s<=r} q_k(s)`` (the kernel at lag r for a
    unit loss at step 0, with q(r-1) standing in for q(r) so that array schedules of length
    max(r) suffice; it equals K(r) for constant hyper-parameters), with the products
    accumulated over the integrator's blocks (schedule frozen at block midpoints).
    Returns a dict with "F", "K", "Fpp", "Fac", "Kpp", "Kac" arrays aligned with r.
    """
    lengths, ends = _blocks(r, h, r_exact, _breakpoints(gamma_fn, batch_fn))
    starts = ends - lengths
    mid = starts + (lengths - 1) / 2.0
    gam = gamma_fn(mid) if lengths.size else np.empty(0)
    bat = batch_fn(mid) if lengths.size else np.empty(0)
    g0 = float(gamma_fn(np.zeros(1))[0])
    b0 = float(batch_fn(np.zeros(1))[0])
    pp = np.zeros(x.size, dtype=bool) if comp is None else comp > 0
    logq0 = np.log1p(-g0 * b0 * x * (2.0 - g0 * (b0 + 1.0) * x))
    kw0 = g0 * g0 * b0 * x * x * kw
    acc = np.zeros(x.size)
    out = {k: np.empty(r.size) for k in ("F", "K", "Fpp", "Fac", "Kpp", "Kac")}
    pos = np.searchsorted(np.r_[0, ends], r)
    order = np.argsort(pos, kind="stable")
    bi = 0
    for i in order:
        while bi < pos[i]:
            L, g, B = lengths[bi], gam[bi], bat[bi]
            acc += L * np.log1p(-g * B * x * (2.0 - g * (B + 1.0) * x))
            bi += 1
        e = np.exp(acc)
        last = np.array([max(int(r[i]) - 1, 0)])  # step r-1 stands in for step r (defined)
        gr = float(gamma_fn(last)[0])
        br = float(batch_fn(last)[0])
        # steps 1..r: the kernel at lag r for a unit loss at step 0 (= K(r) when constant)
        ek = np.exp(acc - logq0 + np.log1p(-gr * br * x * (2.0 - gr * (br + 1.0) * x)))
        fpp = float(np.sum((fw * e)[pp]))
        fac = float(np.sum((fw * e)[~pp]))
        kpp = float(np.sum((kw0 * ek)[pp]))
        kac = float(np.sum((kw0 * ek)[~pp]))
        out["Fpp"][i], out["Fac"][i], out["Kpp"][i], out["Kac"][i] = fpp, fac, kpp, kac
        out["F"][i] = f0 + fpp + fac
        out["K"][i] = kpp + kac
    return out
