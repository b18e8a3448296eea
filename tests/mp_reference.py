"""High-precision (mpmath) references for volterra_sgd.resolvent (docs/theory.md, Sec. 6).

These are deliberately naive and independent of the package's Numba kernels:

* finite ``v``: every sum over ``j = 1..v`` is done term by term at ``mp.dps`` digits;
* ``v = inf``: the terms ``j <= N`` are summed directly and the tail ``j > N`` by the
  convergent series ``sum_k c_k * zeta(s_k, N + 1)`` with mpmath's Hurwitz zeta (the
  package uses Euler--Maclaurin power sums instead), ``N`` chosen so the ratio of the
  series is at most 0.01.

Typical use (what the tests do)::

    import mpmath as mp
    with mp.workdps(30):
        t = tau_mp(1.0, 2000, 200)               # tau for alpha = 1, v = 2000, d = 200
        f0 = limit_loss_mp(1.0, 0.7, 2000, 200)   # F0
"""

from __future__ import annotations

import functools
import math

import mpmath as mp

__all__ = ["tau_mp", "limit_loss_mp"]


def _tail_cutoff(scale, two_alpha, ratio=0.01, minimum=64):
    """Smallest N >= minimum with scale * N^(-2 alpha) <= ratio."""
    n = int(mp.ceil((mp.mpf(abs(scale)) / ratio) ** (1 / mp.mpf(two_alpha))))
    return max(n, minimum)


def _series_terms():
    return mp.mp.dps // 2 + 6  # ratio 0.01 -> two digits per term


def _powers(alpha, n):
    """Exact-precision data eigenvalues j^(-2 alpha), j = 1..n."""
    a2 = 2 * mp.mpf(alpha)
    return [mp.mpf(j) ** (-a2) for j in range(1, n + 1)]


def _hurwitz(s, a):
    return _hurwitz_cached(mp.mpf(s), int(a), mp.mp.dps)


@functools.lru_cache(maxsize=4096)
def _hurwitz_cached(s, a, dps):
    """Hurwitz zeta(s, a) to the working precision.

    mpmath's zeta(s, a) loses digits for large ``s`` and ``a`` (e.g. 20 of 30 digits at
    s = 50, a = 131), so it is evaluated with s*log10(a)/2 + 10 guard digits.
    """
    extra = int(mp.mpf(s) * mp.log10(a)) // 2 + 10
    with mp.workdps(dps + max(extra, 10)):
        return +mp.zeta(s, a)


def _power_sum(s, a, b):
    """sum_{j=a}^{b} j^(-s) for finite b (digamma difference at s = 1)."""
    if s == 1:
        return mp.digamma(b + 1) - mp.digamma(a)
    return _hurwitz(s, a) - _hurwitz(s, b + 1)


def _split_sum(term, series, scale, two_alpha, v, direct_max=5000):
    """sum_{j=1}^{v} term(j), the tail j > N as sum_k c_k * sum_{j>N} j^(-s_k).

    ``series`` is a list of (c_k, s_k) with ``term(j) = sum_k c_k j^(-s_k)`` for j > N,
    valid when ``scale * N^(-2 alpha) <= 0.01``.  Finite ``v <= direct_max`` (or ``v <= N``)
    is summed term by term.  The tail power sums are Hurwitz zeta differences
    ``zeta(s, N+1) - zeta(s, v+1)`` (analytic continuation for s <= 1, finite v).
    """
    n = _tail_cutoff(scale, two_alpha)
    if not math.isinf(v) and (v <= direct_max or v <= n):
        return mp.fsum(term(j) for j in range(1, int(v) + 1))
    head = mp.fsum(term(j) for j in range(1, n + 1))
    if math.isinf(v):
        tail = mp.fsum(c * _hurwitz(sk, n + 1) for c, sk in series)
    else:
        tail = mp.fsum(c * _power_sum(sk, n + 1, int(v)) for c, sk in series)
    return head + tail


def _tau_sum(t, alpha, v, d):
    """sum_j t/(j^(2a) + t) - d."""
    a2 = 2 * mp.mpf(alpha)
    series = [((-1) ** (k + 1) * t**k, a2 * k) for k in range(1, _series_terms())]
    return _split_sum(lambda j: t / (mp.mpf(j) ** a2 + t), series, t, a2, v) - d


def tau_mp(alpha, v, d):
    """tau solving sum_{j<=v} tau/(j^(2 alpha) + tau) = d (Illinois method in log tau).

    Returns ``mp.inf`` if ``v <= d``.
    """
    if v <= d:
        return mp.inf
    alpha = mp.mpf(alpha)
    f = lambda s: _tau_sum(mp.exp(s), alpha, v, d)  # noqa: E731
    # bracket in log tau (the sum is increasing in tau), then a bracketing solver
    lo = mp.log(d) - 2
    while f(lo) > 0:
        lo -= 2
    hi = lo + 2
    while f(hi) < 0:
        lo, hi = hi, hi + 2
    # Illinois (bracketed regula falsi) in log tau
    flo, fhi = f(lo), f(hi)
    tol = mp.mpf(10) ** (-mp.mp.dps + 3)
    side = 0
    for _ in range(400):
        x = (lo * fhi - hi * flo) / (fhi - flo)
        fx = f(x)
        if fx < 0:
            lo, flo = x, fx
            if side == -1:
                fhi /= 2
            side = -1
        else:
            hi, fhi = x, fx
            if side == 1:
                flo /= 2
            side = 1
        if hi - lo < tol or fx == 0:
            break
    return mp.exp(x)


def limit_loss_mp(alpha, beta, v, d):
    """F0 = sum_j j^(-2(alpha+beta)) / (1 + tau j^(-2 alpha)) (0 if v <= d)."""
    t = tau_mp(alpha, v, d)
    if mp.isinf(t):
        return mp.mpf(0)
    a2 = 2 * mp.mpf(alpha)
    sc = 2 * (mp.mpf(alpha) + mp.mpf(beta))
    series = [((-t) ** k, sc + a2 * k) for k in range(_series_terms())]
    return _split_sum(lambda j: mp.mpf(j) ** (-sc) / (1 + t * mp.mpf(j) ** (-a2)),
                      series, t, a2, v)


def _m_tail_cutoff(u, alpha, ratio=0.2, minimum=64):
    return _tail_cutoff(2 * abs(u), 2 * mp.mpf(alpha), ratio=ratio, minimum=minimum)


@functools.lru_cache(maxsize=16)
def _lam_cached(alpha, n, dps):
    with mp.workdps(dps):
        a2 = 2 * mp.mpf(alpha)
        return tuple(mp.mpf(j) ** (-a2) for j in range(1, n + 1))


def _m_sums(m, z, alpha, v, n, terms):
    """(S1, S2) = (sum_j l/(l m - z), sum_j l^2/(l m - z)^2), tail by Hurwitz zeta."""
    a2 = 2 * mp.mpf(alpha)
    u = m / z
    if not math.isinf(v) and n >= v:
        n = int(v)
    lam = _lam_cached(float(alpha), n, mp.mp.dps)
    s1 = mp.mpf(0)
    s2 = mp.mpf(0)
    for lj in lam:
        t = lj / (lj * m - z)
        s1 += t
        s2 += t * t
    if math.isinf(v) or n < v:
        # sum_{j>n} l/(l m - z) = -(1/z) sum_k u^k sum_{j>n} j^(-2a(k+1))
        def ps(k):
            if math.isinf(v):
                return _hurwitz(a2 * (k + 1), n + 1)
            return _power_sum(a2 * (k + 1), n + 1, int(v))

        zs = [ps(k) for k in range(terms + 1)]
        s1 += -mp.fsum(u**k * zs[k] for k in range(terms)) / z
        # d/dm of sum l/(l m - z) = -sum l^2/(l m - z)^2
        s2 += mp.fsum((k + 1) * u**k * zs[k + 1] for k in range(terms)) / z**2
    return s1, s2


def m_mp(alpha, v, d, z, m0, maxsteps=50):
    """m(z) at the working precision by Newton on m (1 + delta(m)) - 1 = 0 from ``m0``.

    The sums over j are exact for finite v (or direct up to N plus a Hurwitz-zeta series
    for the tail, N with |m/z| N^(-2 alpha) <= 0.1).  Newton converges to the root
    nearest ``m0`` (e.g. a float64 value); :func:`branch_ok_mp` checks that it is the
    Stieltjes branch.  Returns ``(m, step)``, ``step`` the size of the last Newton
    correction relative to ``|m|`` (quadratic convergence: the error is far smaller).
    """
    z = mp.mpc(z)
    m = mp.mpc(m0)
    n = _m_tail_cutoff(m / z, alpha)
    terms = int(mp.mp.dps / 0.69) + 5  # ratio <= 0.1 per term
    tol = mp.mpf(10) ** (-mp.mp.dps + 4)
    for _ in range(maxsteps):
        s1, s2 = _m_sums(m, z, alpha, v, n, terms)
        F = m * (1 + s1 / d) - 1
        Fp = 1 + s1 / d - m * s2 / d
        step = F / Fp
        m -= step
        if abs(step) <= tol * abs(m):
            return m, abs(step) / abs(m)
    raise RuntimeError("m_mp: Newton did not converge")


def branch_ok_mp(alpha, v, d, z, m):
    """Stieltjes-branch test at high precision: Im z > 0 => Im(m/z) < 0; z < 0 => 0 < m < 1."""
    z = mp.mpc(z)
    u = m / z
    if z.imag > 0:
        return u.imag < 0
    if z.imag < 0:
        return u.imag > 0
    return 0 < m.real < 1 and abs(m.imag) <= mp.mpf(10) ** (-mp.mp.dps + 5)


def forcing_transform_mp(alpha, beta, v, z, m):
    """G_F(z) = sum_j j^(-2(a+b)) / (j^(-2a) m - z) at the working precision."""
    z = mp.mpc(z)
    a2 = 2 * mp.mpf(alpha)
    sc = 2 * (mp.mpf(alpha) + mp.mpf(beta))
    u = m / z
    n = _m_tail_cutoff(u, alpha)
    if not math.isinf(v) and n >= v:
        n = int(v)
    head = mp.fsum(mp.mpf(j) ** (-sc) / (mp.mpf(j) ** (-a2) * m - z) for j in range(1, n + 1))
    if math.isinf(v) or n < v:
        terms = int(mp.mp.dps / 0.69) + 5

        def ps(k):
            if math.isinf(v):
                return _hurwitz(sc + a2 * k, n + 1)
            return _power_sum(sc + a2 * k, n + 1, int(v))

        head += -mp.fsum(u**k * ps(k) for k in range(terms)) / z
    return head
