r"""Spectral measures of the deterministic equivalent, collapsed onto the real axis.

docs/theory.md, Eqs. (6.1)-(6.6) and (6.13).  The forcing and kernel functions are contour integrals

.. math::

    F(r) = -\frac{1}{2\pi i}\oint q(z)^r G_F(z)\,dz, \qquad
    K(r) = -\frac{\gamma^2 B}{2\pi i}\oint q(z)^r G_K(z)\,dz,

with :math:`G_F(z) = \sum_j j^{-2(\alpha+\beta)}/(j^{-2\alpha} m(z) - z)` and
:math:`G_K(z) = d\,z\,(1 - m(z))` (docs/theory.md, Eq. (6.2)).  Off the real axis
:math:`|q(z)|^r` grows like :math:`\exp(r\,\gamma^2 B(B+1)\,\mathrm{Im}(z)^2)` and the
integrand oscillates, so a contour at a fixed distance loses all digits at late times.  We
therefore collapse the contour onto the spectrum: :math:`F(r) = F_0 + \int q(x)^r\,
\mu_F(dx)` and :math:`K(r) = \gamma^2 B \int q(x)^r x^2 \rho(x)\,dx` with the densities

.. math::

    \mu_F(x) = \tfrac1\pi \mathrm{Im}\, G_F(x + i0), \qquad
    \rho(x) = -\tfrac{d}{\pi x}\mathrm{Im}\, m(x + i0),

evaluated from :math:`m(x+i0)` solved *on* the real axis (Newton in complex :math:`m` at real
:math:`x`).  On the spectrum :math:`0 < q(x) < 1`, so every term is positive and bounded for
every :math:`r` and nothing can cancel or overflow.

The support is found exactly from the real critical points of
:math:`z(u) = 1/u - \frac1d\sum_j \lambda_j/(\lambda_j u - 1)` (:math:`u = m/z`,
:math:`\lambda_j = j^{-2\alpha}`): the lower edge :math:`\lambda_{min}` (root with
:math:`u < 0`), the top edge (root in :math:`(0, 1)`), and between consecutive poles
:math:`u = j^{2\alpha}` either no critical point (the components merge) or two, which bound a
gap.  The isolated components above the first merge are the **outliers** (pure-point part;
each carries exactly one eigenvalue), the remaining interval :math:`[\lambda_{min}, x_b]` is the
**bulk** (absolutely continuous part), and the point mass :math:`F_0` at 0 is the limit level
(from :func:`volterra_sgd.resolvent.limit_loss`).  Hence
:math:`F = F_o + F_{pp} + F_{ac}` and :math:`K = K_{pp} + K_{ac}` hold by construction.

Quadrature: each component is mapped to :math:`\theta\in[0,\pi]` by
:math:`x = a + (b-a)(1-\cos\theta)/2`, which removes the square-root edges; the bulk is cut into
panels graded geometrically towards both edges (down to :math:`10^{-14}` of its width, so that
the boundary layer :math:`e^{-2\gamma B r (x-\lambda_{min})}` is resolved for every
:math:`r`), and panels are bisected adaptively until a 15-point Gauss--Legendre rule and the
7-point rule on the same panel agree.  The 7-point rule is kept as a coarse discretization: the
difference of the two, panel by panel, is the reported error estimate.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.legendre import leggauss

from ._numba import njit
from .model import PLRF, SpectralModel, check_model
from .resolvent import _cutoff_for, _general_tables, _power_sum_table, limit_loss

__all__ = ["SpectralSupport", "SpectralMeasure", "SpectralDensities", "spectral_support",
           "spectral_measure", "spectral_densities", "compress_measure"]

_N_SERIES = 72  # terms of the tail series; |y| <= 1/2 gives 0.5**72 ~ 2e-22
_RHO = 0.5


# ---------------------------------------------------------------------------- sums over j
@njit
def _tables(alpha, beta, J, v, T1, T2):
    """Tail tables ``T1[k] = sum_{j>J} (J/j)^(2 alpha (k+1))``, ``T2[k] = ... (2(alpha+beta) + 2 alpha k)``."""
    if J < v:
        _power_sum_table(2.0 * alpha, 2.0 * alpha, J, v, T1)
        _power_sum_table(2.0 * (alpha + beta), 2.0 * alpha, J, v, T2)
    else:
        T1[:] = 0.0
        T2[:] = 0.0


#: Heads of the PLRF sums longer than this many terms are summed by Euler--Maclaurin when
#: the summand is smooth (Eqs. (15.5)-(15.6)); ``math.inf`` gives the plain sums (the
#: benchmark's baseline).  Read at each call of spectral_measure / spectral_densities.
EM_MIN_HEAD = 2048.0
_EM_A = 64  # terms j < _EM_A are summed explicitly
_EM_DIST = 16.0  # smallest distance of a pole of the summand from [_EM_A, J]
_EM_P = 8  # Bernoulli corrections
_GL20_T, _GL20_W = leggauss(20)
_BOF = np.array([1.0 / 12.0, -1.0 / 720.0, 1.0 / 30240.0, -1.0 / 1209600.0,
                 1.0 / 47900160.0, -691.0 / 1307674368000.0, 1.0 / 74724249600.0,
                 -3617.0 / 10670622842880000.0])  # B_2p / (2p)!, p = 1..8


@njit
def _em_plan(w, alpha, J):
    """Half-width ``h`` of the Gauss panels in ``s = log j`` for the Euler--Maclaurin head,
    or 0 if the summand has a pole within ``_EM_DIST`` of ``[_EM_A, J]`` or the plain sum
    is cheaper.

    The summands are rational in ``t = w j^(-2 alpha)``: poles at ``j^(2 alpha) = w``, i.e.
    ``s = (log|w| + i(arg w + 2 pi k)) / (2 alpha)``.
    """
    r = abs(w)
    if not r > 0.0:
        return 0.0
    th = math.atan2(w.imag, w.real)
    R = math.exp(math.log(r) / (2.0 * alpha))
    ds = math.inf
    for k in range(-4, 5):
        phi = (th + 2.0 * math.pi * k) / (2.0 * alpha)
        ds = min(ds, abs(phi))
        if abs(phi) < 0.5 * math.pi:
            re = R * math.cos(phi)
            im = abs(R * math.sin(phi))
            if re < _EM_A:
                dist = math.hypot(_EM_A - re, im)
            elif re > J:
                dist = math.hypot(re - J, im)
            else:
                dist = im
            if dist < _EM_DIST:
                return 0.0
    h = min(1.0, 0.5 * ds)
    n = math.ceil(math.log(J / _EM_A) / (2.0 * h))
    if 20.0 * n + 200.0 > 0.25 * (J - _EM_A):
        return 0.0
    return h


@njit
def _em_terms(j, w, alpha, beta):
    """The three summands at (real) j: ``t/(t-1)``, ``lam/(t-1)^2``, ``c^2/(t-1)``."""
    lj = math.log(j)
    lam = math.exp(-2.0 * alpha * lj)
    inv = 1.0 / (w * lam - 1.0)
    return w * lam * inv, lam * inv * inv, math.exp(-2.0 * (alpha + beta) * lj) * inv


@njit
def _em_derivs(e, w, alpha, beta, sign, out):
    """Add ``sign * sum_p B_2p/(2p)! f^(2p-1)(e)`` of the three summands to ``out``.

    Taylor coefficients in ``delta = j - e``: ``j^(-s) = e^(-s) sum_k binom(-s, k) (delta/e)^k``,
    then ``t - 1``, its reciprocal and the products as truncated power series.
    """
    K = 2 * _EM_P
    bl = np.empty(K)
    bc = np.empty(K)
    bl[0] = math.exp(-2.0 * alpha * math.log(e))
    bc[0] = math.exp(-2.0 * (alpha + beta) * math.log(e))
    for k in range(1, K):
        bl[k] = bl[k - 1] * (-2.0 * alpha - (k - 1)) / (k * e)
        bc[k] = bc[k - 1] * (-2.0 * (alpha + beta) - (k - 1)) / (k * e)
    D = np.empty(K, dtype=np.complex128)
    inv = np.empty(K, dtype=np.complex128)
    inv2 = np.empty(K, dtype=np.complex128)
    for k in range(K):
        D[k] = w * bl[k]
    D[0] -= 1.0
    inv[0] = 1.0 / D[0]
    for k in range(1, K):
        acc = 0j
        for i in range(1, k + 1):
            acc += D[i] * inv[k - i]
        inv[k] = -acc * inv[0]
    for k in range(K):
        acc = 0j
        for i in range(k + 1):
            acc += inv[i] * inv[k - i]
        inv2[k] = acc
    fact = 1.0  # (2p - 1)!
    for p in range(1, _EM_P + 1):
        k = 2 * p - 1
        if p > 1:
            fact *= (k - 1.0) * k
        f0 = 0j
        f1 = 0j
        f2 = 0j
        for i in range(k + 1):
            f0 += w * bl[i] * inv[k - i]
            f1 += bl[i] * inv2[k - i]
            f2 += bc[i] * inv[k - i]
        c = sign * _BOF[p - 1] * fact
        out[0] += c * f0
        out[1] += c * f1
        out[2] += c * f2


@njit
def _em_head(w, alpha, beta, J, h):
    """``sum_{j=1}^{J}`` of the three summands: explicit below ``_EM_A``, Euler--Maclaurin
    (Eq. (15.5)) from ``_EM_A`` to ``J`` with the integral by 20-point Gauss panels in
    ``s = log j`` of half-width ``h``."""
    A0 = 0j
    A1 = 0j
    A2 = 0j
    a = float(_EM_A)
    b = float(J)
    la = math.log(a)
    n = math.ceil((math.log(b) - la) / (2.0 * h))
    hs = (math.log(b) - la) / n / 2.0
    for p in range(n - 1, -1, -1):
        mid = la + (2 * p + 1) * hs
        for q in range(20):
            s = mid + hs * _GL20_T[q]
            j = math.exp(s)
            f0, f1, f2 = _em_terms(j, w, alpha, beta)
            wt = hs * _GL20_W[q] * j
            A0 += wt * f0
            A1 += wt * f1
            A2 += wt * f2
    out = np.zeros(3, dtype=np.complex128)
    _em_derivs(b, w, alpha, beta, 1.0, out)
    _em_derivs(a, w, alpha, beta, -1.0, out)
    fa = _em_terms(a, w, alpha, beta)
    fb = _em_terms(b, w, alpha, beta)
    A0 += out[0] + 0.5 * (fa[0] + fb[0])
    A1 += out[1] + 0.5 * (fa[1] + fb[1])
    A2 += out[2] + 0.5 * (fa[2] + fb[2])
    for j in range(_EM_A - 1, 0, -1):
        f0, f1, f2 = _em_terms(float(j), w, alpha, beta)
        A0 += f0
        A1 += f1
        A2 += f2
    return A0, A1, A2


@njit
def _sums_complex(w, lam, c2, J, lamJ, cJ2, T1, T2, v, alpha, beta, em):
    """``A0 = sum t/(t-1)``, ``A1 = sum lam/(t-1)^2``, ``A2 = sum c^2/(t-1)`` with ``t = lam_j w``.

    ``em``: heads longer than this go to :func:`_em_head` when the summand is smooth on them;
    ``None`` (see :func:`_em_arg`) compiles a variant without the Euler--Maclaurin head.
    """
    A0 = 0j
    A1 = 0j
    A2 = 0j
    h = 0.0
    if em is not None:  # pruned at compile time when em is None
        if J > em:
            h = _em_plan(w, alpha, J)
        if h > 0.0:
            A0, A1, A2 = _em_head(w, alpha, beta, J, h)
    for i in range(J - 1 if h == 0.0 else -1, -1, -1):
        t = lam[i] * w
        inv = 1.0 / (t - 1.0)
        A0 += t * inv
        A1 += lam[i] * inv * inv
        A2 += c2[i] * inv
    if J < v:
        y = lamJ * w
        s0 = 0j
        s1 = 0j
        s2 = 0j
        for n in range(T2.size - 2, -1, -1):  # Horner
            s0 = T1[n] + y * s0                    # sum_{n>=0} y^n T1[n]
            s1 = (n + 1.0) * T1[n] + y * s1       # sum (n+1) y^n T1[n]
            s2 = T2[n] + y * s2
        A0 -= y * s0
        A1 += lamJ * s1
        A2 -= cJ2 * s2
    return A0, A1, A2


@njit
def _sums_real(u, lam, J, lamJ, T1, v):
    """``A3 = sum t^2/(t-1)^2``, ``A4 = sum lam t/(t-1)^3``, ``A5 = sum lam/(t-1)``, ``t = lam_j u``."""
    A3 = 0.0
    A4 = 0.0
    A5 = 0.0
    for i in range(J - 1, -1, -1):
        t = lam[i] * u
        inv = 1.0 / (t - 1.0)
        A3 += t * t * inv * inv
        A4 += lam[i] * t * inv * inv * inv
        A5 += lam[i] * inv
    if J < v:
        y = lamJ * u
        s3 = 0.0
        s4 = 0.0
        s5 = 0.0
        for n in range(T1.size - 4, -1, -1):
            s3 = (n + 1.0) * T1[n + 1] + y * s3          # sum_{n>=0} (n+1) y^n T1[n+1]
            s4 = 0.5 * (n + 1.0) * (n + 2.0) * T1[n + 1] + y * s4
            s5 = T1[n] + y * s5
        A3 += y * y * s3
        A4 -= lamJ * y * s4
        A5 -= lamJ * s5
    return A3, A4, A5


@njit
def _prepare(scale, alpha, beta, v, lam, T1, T2, gen):
    """Cut-off J (with ``lam_J * scale <= 1/2``) and its tail tables; returns (J, lamJ, cJ2).

    J is rounded up to the grid ``ceil(32 * 1.25^k)`` and the tables are recomputed only when J
    changes (``T1[-1]`` stores the J they belong to), so nearby calls share them.

    General spectra (``gen`` has rows ``[J, P_J, tail_m (72), tail_f (72)]``, see
    ``resolvent._GeneralTables``): the smallest level with ``P_J * scale <= 1/2`` (or ``J = v``);
    its rows are copied into ``T1``/``T2`` (``lamJ = P_J``, ``cJ2 = 1``).  PLRF: ``gen`` has no
    rows.
    """
    if gen.shape[0] > 0:
        for i in range(gen.shape[0]):
            if gen[i, 1] * scale <= _RHO or gen[i, 0] >= v:
                J = int(gen[i, 0])
                if T1[T1.size - 1] != J:
                    nt = T2.size
                    for k in range(nt):
                        T1[k] = gen[i, 2 + k]
                        T2[k] = gen[i, 2 + nt + k]
                    T1[T1.size - 1] = J
                return J, gen[i, 1], 1.0
        return -1, 0.0, 0.0
    Jf = _cutoff_for(scale, 2.0 * alpha, v)
    if Jf < v:
        k = math.ceil(math.log(Jf / 32.0) / math.log(1.25)) if Jf > 32.0 else 0
        Jf = min(math.ceil(32.0 * 1.25 ** k), v)
    if Jf > lam.size:
        return -1, 0.0, 0.0  # the caller's table of lambda_j is too short for this scale
    J = int(Jf)
    if T1[T1.size - 1] != J:
        _tables(alpha, beta, float(J), v, T1[:T1.size - 1], T2)
        T1[T1.size - 1] = J
    lamJ = math.exp(-2.0 * alpha * math.log(J))
    cJ2 = math.exp(-2.0 * (alpha + beta) * math.log(J))
    return J, lamJ, cJ2


# ------------------------------------------------------------------------- support
@njit
def _critical(u, alpha, v, d, lam, T1, T2, gen):
    """``g(u) = (1/d) sum t^2/(t-1)^2 - 1``, ``g'(u)`` and ``z(u)`` for real u."""
    J, lamJ, cJ2 = _prepare(abs(u), alpha, 0.0, v, lam, T1, T2, gen)
    if J < 0:
        return math.nan, math.nan, math.nan
    A3, A4, A5 = _sums_real(u, lam, J, lamJ, T1, v)
    g = A3 / d - 1.0
    gp = -2.0 * A4 / d
    z = 1.0 / u - A5 / d
    return g, gp, z


@njit
def _bisect_g(lo, hi, which, alpha, v, d, lam, T1, T2, gen):
    """Root of g (which=0) or g' (which=1) on (lo, hi) by bisection in log|u| (sign change)."""
    glo = _critical(lo, alpha, v, d, lam, T1, T2, gen)[which]
    for _ in range(200):
        if lo > 0:
            mid = math.sqrt(lo * hi)
        else:
            mid = -math.sqrt(lo * hi)
        if mid == lo or mid == hi:
            break
        gm = _critical(mid, alpha, v, d, lam, T1, T2, gen)[which]
        if (gm > 0) == (glo > 0):
            lo = mid
            glo = gm
        else:
            hi = mid
        if abs(hi - lo) <= 2e-16 * abs(hi):
            break
    return 0.5 * (lo + hi)


@njit
def _support_kernel(alpha, v, d, lam, max_outliers, edges, gen):
    """Fill ``edges`` (rows: lower, upper x of each component, top first); return count.

    Row 0.. n-2 are outlier components (descending), the last row is the bulk.
    """
    T1 = np.zeros(_N_SERIES + 1)  # last entry: the J the table belongs to
    T2 = np.zeros(_N_SERIES)
    I0, I1 = np.int64(0), np.int64(1)  # not literals: one specialisation of _bisect_g
    # lower edge: root of g on u < 0 (g(0-) = -1, g(-inf) = v/d - 1 > 0)
    lo = -1.0
    while True:
        g0 = _critical(lo, alpha, v, d, lam, T1, T2, gen)[0]
        if math.isnan(g0):
            return -1  # lambda table too short: the caller retries with a longer one
        if g0 >= 0.0:
            break
        lo *= 4.0
    us = _bisect_g(lo, lo / 4.0 if lo < -1.0 else -1e-300, I0, alpha, v, d, lam, T1, T2, gen)
    lower = _critical(us, alpha, v, d, lam, T1, T2, gen)[2]
    # top edge: root of g on (0, 1)
    u_pole = 1.0 / lam[0] if gen.shape[0] > 0 else 1.0  # first pole (PLRF: lambda_1 = 1)
    ua = _bisect_g(1e-300 * u_pole, u_pole * (1.0 - 1e-15), I0, alpha, v, d, lam, T1, T2, gen)
    upper = _critical(ua, alpha, v, d, lam, T1, T2, gen)[2]
    n = 0
    top = upper
    j = 1
    while j <= max_outliers and j < v:
        if gen.shape[0] > 0:  # general spectrum: poles at 1/lambda_j (descending lambda)
            if j >= lam.size:
                break
            if not lam[j] < lam[j - 1]:  # tied eigenvalues share one component
                j += 1
                continue
            a = (1.0 / lam[j - 1]) * (1.0 + 1e-13)
            b = (1.0 / lam[j]) * (1.0 - 1e-13)
        else:
            a = math.exp(2.0 * alpha * math.log(j)) * (1.0 + 1e-13)
            b = math.exp(2.0 * alpha * math.log(j + 1.0)) * (1.0 - 1e-13)
        um = _bisect_g(a, b, I1, alpha, v, d, lam, T1, T2, gen)  # minimum of the convex g
        if _critical(um, alpha, v, d, lam, T1, T2, gen)[0] >= 0.0:
            break
        uL = _bisect_g(a, um, I0, alpha, v, d, lam, T1, T2, gen)
        uR = _bisect_g(um, b, I0, alpha, v, d, lam, T1, T2, gen)
        gap_hi = _critical(uL, alpha, v, d, lam, T1, T2, gen)[2]
        gap_lo = _critical(uR, alpha, v, d, lam, T1, T2, gen)[2]
        edges[n, 0] = gap_hi
        edges[n, 1] = top
        n += 1
        top = gap_lo
        j += 1
    edges[n, 0] = lower
    edges[n, 1] = top
    return n + 1


@njit
def _bulk_gaps_kernel(top, d, v, lam, gen, gaps):
    """Gaps inside the bulk ``[lambda_min, top]`` of a general spectrum; returns their count.

    Unlike a power law, a general spectrum (e.g. with a jump) can split the bulk: a gap lies
    between the poles ``u = 1/lambda_j`` and ``1/lambda_(j+1)`` iff the convex
    ``g(u) = (1/d) sum_k (lambda_k u/(lambda_k u - 1))^2 - 1`` dips below 0 there.  The two
    adjacent terms alone give ``g + 1 >= (2 lambda_(j+1)/(lambda_j - lambda_(j+1)))^2 / d``,
    which rules out almost every interval at O(1) cost; the others are checked by bisection
    as in :func:`_support_kernel`.  ``gaps[k] = (lower, upper)`` x of the k-th gap (descending).
    """
    T1 = np.zeros(_N_SERIES + 1)
    T2 = np.zeros(_N_SERIES)
    I0, I1 = np.int64(0), np.int64(1)
    alpha = 1.0  # unused with general tables
    k = 0
    for j in range(1, lam.size):
        if j >= v:
            break
        lj = lam[j - 1]
        lj1 = lam[j]
        if not lj1 < lj:
            continue
        bound = 2.0 * lj1 / (lj - lj1)
        if bound * bound > d * (1.0 + 1e-9):
            continue
        a = (1.0 / lj) * (1.0 + 1e-13)
        b = (1.0 / lj1) * (1.0 - 1e-13)
        um = _bisect_g(a, b, I1, alpha, v, d, lam, T1, T2, gen)
        if _critical(um, alpha, v, d, lam, T1, T2, gen)[0] >= 0.0:
            continue
        uL = _bisect_g(a, um, I0, alpha, v, d, lam, T1, T2, gen)
        uR = _bisect_g(um, b, I0, alpha, v, d, lam, T1, T2, gen)
        gap_hi = _critical(uL, alpha, v, d, lam, T1, T2, gen)[2]
        gap_lo = _critical(uR, alpha, v, d, lam, T1, T2, gen)[2]
        if gap_hi < top:  # the gaps above the bulk separate the outliers
            gaps[k, 0] = gap_lo
            gaps[k, 1] = gap_hi
            k += 1
    return k


# --------------------------------------------------------------- m(x + i0) and densities
@njit
def _newton_m(z, m, alpha, beta, v, d, lam, c2, T1, T2, gen, iters, em):
    """Newton for m(z) from start ``m``; returns (m, A2, status) with A2 = sum c^2/(t-1)."""
    scale = 4.0 * abs(m) / abs(z) + 1.0
    J, lamJ, cJ2 = _prepare(scale, alpha, beta, v, lam, T1, T2, gen)
    A2 = 0j
    phi = A0 = 1j
    if J < 0:
        return m, A2, 4
    for _ in range(iters):
        w = m / z
        if lamJ * abs(w) > _RHO and J < v:
            J, lamJ, cJ2 = _prepare(4.0 * abs(w) + 1.0, alpha, beta, v, lam, T1, T2, gen)
            if J < 0:
                return m, A2, 4
        A0, A1, A2 = _sums_complex(w, lam, c2, J, lamJ, cJ2, T1, T2, v, alpha, beta, em)
        phi = m + A0 / d - 1.0
        # converged when the residual is at round-off level (near a square-root edge phi'
        # -> 0 and the Newton step stagnates at ~1e-13 although phi is ~1e-16)
        if abs(phi) <= 4e-16 * (1.0 + abs(m) + abs(A0) / d):
            return m, A2, 0
        dphi = 1.0 - A1 / (d * z)
        m = m - phi / dphi
        if not (abs(m) < 1e300):
            return m, A2, 2
    # the residual of a sum of thousands of terms can stall a few ulp above the test, the
    # iterates hopping at round-off (m converged): accept a residual within 64 times the
    # test after all iterations, else report the failure
    if iters > 0 and abs(phi) <= 64.0 * 4e-16 * (1.0 + abs(m) + abs(A0) / d):
        return m, A2, 0
    return m, A2, 1


@njit
def _continuation(x, alpha, beta, v, d, lam, c2, T1, T2, gen, em):
    """m(x + i0) from m = 1 at Im z = 1e6, walking Im z down geometrically."""
    m = 1.0 + 0j
    eta = 1e6
    SIX = np.int64(6)  # not a literal: one specialisation of _newton_m
    while eta > 1e-300:
        m, A2, st = _newton_m(complex(x, eta), m, alpha, beta, v, d, lam, c2, T1, T2, gen, SIX,
                              em)
        if eta < 1e-18 * x:
            break
        eta *= 0.7
    return _newton_m(complex(x, 0.0), m, alpha, beta, v, d, lam, c2, T1, T2, gen, np.int64(60),
                     em)


@njit(nogil=True)
def _densities_kernel(x, a, b, alpha, beta, v, d, lam, c2, gen, em, m_out, mu_f, rho, status):
    """m(x+i0) and densities at sorted ``x`` inside one spectral component [a, b].

    Marches outwards from the middle node (warm-started Newton), so that the edges, where m
    becomes real, are approached from inside.  ``mu_f = Im G_F / pi`` (F-measure),
    ``rho = -d Im m / (pi x)`` (eigenvalue density).  ``status[i]``: 0 ok, 1 Newton failed,
    2 overflow, 3 only a real (unphysical) root found.
    """
    T1 = np.zeros(_N_SERIES + 1)
    T2 = np.zeros(_N_SERIES)
    n = x.size
    mid = n // 2
    order = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(mid, n):
        order[k] = i
        k += 1
    for i in range(mid - 1, -1, -1):
        order[k] = i
        k += 1
    m = 0j
    A2 = 0j
    for k in range(n):
        i = order[k]
        if k == 0:
            use = False
        elif i == mid - 1:
            m = m_out[mid]
            use = status[mid] == 0
        else:
            use = status[order[k - 1]] == 0
        # m(x+i0): Newton from the neighbour's m, else continuation.  At real x, m and
        # conj(m) solve the same equation; the physical root has Im m <= 0.  A (numerically)
        # real root away from the edges is a spurious real solution: rejected (status 3).
        # (Written out here rather than as a function: one level less for Numba to compile.)
        near_edge = (x[i] - a) <= 1e-8 * (b - a) or (b - x[i]) <= 1e-8 * (b - a)
        st = 3
        for attempt in range(2):
            if attempt == 0:
                if not use:
                    continue
                m, A2, st = _newton_m(complex(x[i], 0.0), m, alpha, beta, v, d, lam, c2,
                                      T1, T2, gen, np.int64(60), em)
            else:
                m, A2, st = _continuation(x[i], alpha, beta, v, d, lam, c2, T1, T2, gen, em)
            if st != 0:
                continue
            if m.imag > 0.0:
                m = m.conjugate()
                A2 = A2.conjugate()
            if abs(m.imag) <= 1e-13 * abs(m) and not near_edge:
                st = 3
                continue
            break
        m_out[i] = m
        status[i] = st
        mu_f[i] = max((A2 / x[i]).imag / math.pi, 0.0)
        rho[i] = max(-d * m.imag / (math.pi * x[i]), 0.0)
    return 0


@njit(nogil=True)
def _m_real_kernel(x, alpha, beta, v, d, lam, c2, gen, em, out):
    """m(x + i0) at one real ``x`` outside the spectrum, by the continuation of the densities.

    ``out = [Re m, Im m, error]``, error the first-order relative error bound
    ``(|phi| + 4 eps (1 + |m| + |A0|/d)) / |m phi'(m)|`` of the fixed point
    ``phi(m) = m + A0/d - 1``.  Returns the status of :func:`_densities_kernel` (4: the
    table of lambda_j is too short).
    """
    T1 = np.zeros(_N_SERIES + 1)
    T2 = np.zeros(_N_SERIES)
    m, A2, st = _continuation(x, alpha, beta, v, d, lam, c2, T1, T2, gen, em)
    if st != 0:
        return st
    z = complex(x, 0.0)
    w = m / z
    J, lamJ, cJ2 = _prepare(4.0 * abs(w) + 1.0, alpha, beta, v, lam, T1, T2, gen)
    if J < 0:
        return 4
    A0, A1, A2 = _sums_complex(w, lam, c2, J, lamJ, cJ2, T1, T2, v, alpha, beta, em)
    phi = m + A0 / d - 1.0
    dphi = 1.0 - A1 / (d * z)
    out[0] = m.real
    out[1] = m.imag
    out[2] = (abs(phi) + 8.9e-16 * (1.0 + abs(m) + abs(A0) / d)) / abs(m * dphi)
    return 0


def _em_arg(lam: np.ndarray, gen: np.ndarray) -> float | None:
    """The kernels' ``em``: :data:`EM_MIN_HEAD`, or ``None`` when no head can be longer.

    Heads are at most ``lam.size`` terms and the Euler--Maclaurin head serves PLRF only (no
    rows in ``gen``), so with ``None`` the kernels compile (and run) without it: a first
    small problem does not pay its compilation.
    """
    if gen.shape[0] > 0 or not lam.size > EM_MIN_HEAD:
        return None
    return float(EM_MIN_HEAD)


def _m_real(model: PLRF | SpectralModel, x: float) -> tuple[complex, float, int]:
    """``(m(x + i0), relative error estimate, status)`` at real ``x`` above the spectrum.

    Uses the Newton solver of the spectral measure (:func:`_m_real_kernel`), so it adds
    almost no compilation to a computation that needed the measure anyway.
    """
    out = np.zeros(3)
    scale = 8.0 / x + 8.0
    while True:
        lam, c2 = _lam_c2(model, _j_needed(model, scale))
        st = _m_real_kernel(float(x), *_alpha_beta(model), float(model.v), float(model.d),
                            lam, c2, _gen(model), _em_arg(lam, _gen(model)), out)
        if st != 4 or lam.size >= model.v or isinstance(model, SpectralModel):
            break
        scale *= 16.0
    return complex(out[0], out[1]), float(out[2]), int(st)


# ----------------------------------------------------------------------- public objects
@dataclass(frozen=True)
class SpectralSupport:
    r"""Support of the deterministic spectral measure (docs/theory.md, Eqs. (6.11), (6.13)).

    Attributes
    ----------
    lower_edge : float
        :math:`\lambda_{min}`, the lower edge of the bulk.
    upper_edge : float
        The top of the spectrum.
    bulk : tuple of float
        The bulk interval :math:`[\lambda_{min}, x_b]` (absolutely continuous part).
    outliers : ndarray, shape (n, 2)
        Intervals of the isolated components above the bulk, top first (pure-point part).
    bulk_gaps : ndarray, shape (k, 2), optional
        Gaps inside the bulk interval, descending (general spectra, e.g. one with a jump;
        ``None`` for power laws).  :attr:`bulk_components` is the bulk without them.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> s = vs.spectral_support(vs.PLRF(1.0, 0.7, 2000, 200))
    >>> s.bulk[0] == s.lower_edge, s.outliers.shape, bool(s.upper_edge == s.outliers[0, 1])
    (True, (8, 2), True)
    """

    lower_edge: float
    upper_edge: float
    bulk: tuple
    outliers: np.ndarray
    bulk_gaps: np.ndarray | None = None

    @property
    def bulk_components(self) -> np.ndarray:
        """The bulk as disjoint intervals ``[a, b]`` (ascending): ``bulk`` minus ``bulk_gaps``."""
        a, b = self.bulk
        if self.bulk_gaps is None or len(self.bulk_gaps) == 0:
            return np.array([[a, b]])
        g = np.asarray(self.bulk_gaps)[::-1]  # ascending
        return np.column_stack([np.r_[a, g[:, 1]], np.r_[g[:, 0], b]])

    @property
    def n_outliers(self) -> int:
        """Number of isolated outlier components."""
        return int(self.outliers.shape[0])


def _require_deterministic(model) -> PLRF:
    check_model(model)
    if model.v <= model.d:
        raise ValueError(
            f"the deterministic equivalent needs v > d, more eigenvalues than features (a "
            f"spectral gap at 0); got v={model.v}, d={model.d}")
    return model


_NO_GEN = np.empty((0, 2 + 2 * _N_SERIES))


def _gen(model) -> np.ndarray:
    """Packed general tables of a SpectralModel (no rows for a PLRF)."""
    if isinstance(model, SpectralModel):
        return _general_tables(model).gen
    return _NO_GEN


def _alpha_beta(model) -> tuple[float, float]:
    """``(alpha, beta)`` of a PLRF; placeholders (unused by the kernels) for a SpectralModel."""
    if isinstance(model, SpectralModel):
        return 1.0, 0.0
    return float(model.alpha), float(model.beta)


def _lam_c2(model: PLRF | SpectralModel, J: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(model, SpectralModel):  # the whole (sorted) head; J is ignored
        t = _general_tables(model)
        return t.lam, t.cf
    n = int(min(J, model.v))
    j = np.arange(1, n + 1, dtype=np.float64)
    return j ** (-2.0 * model.alpha), j ** (-2.0 * (model.alpha + model.beta))


def _j_needed(model: PLRF | SpectralModel, scale: float) -> int:
    if isinstance(model, SpectralModel):
        return int(model.n_explicit)
    return int(_cutoff_for(float(scale), 2.0 * model.alpha, float(model.v)))


def spectral_support(model: PLRF | SpectralModel) -> SpectralSupport:
    r"""Edges of the deterministic spectrum: lower edge, outlier components, bulk, top.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model (``v > d``; ``v = inf`` allowed when :math:`2\alpha > 1`).

    Returns
    -------
    SpectralSupport
        The edges.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> s = vs.spectral_support(vs.PLRF(1.0, 0.7, 2000, 200))
    >>> f"{s.lower_edge:.4e}", s.n_outliers
    ('1.2897e-05', 8)
    """
    model = _require_deterministic(model)
    v, d = float(model.v), float(model.d)
    a = _alpha_beta(model)[0]
    gen = _gen(model)
    # |u| at the lower edge is about tau, i.e. up to ~ v^(2 alpha); J from that scale
    from .resolvent import tau as _tau

    scale = 8.0 * _tau(model) + 8.0
    max_out = int(min(model.d, 4.0 * math.sqrt(model.d) + 20))
    edges = np.empty((max_out + 1, 2))
    while True:  # |u| at the lower edge exceeds tau by a model-dependent factor
        lam, _ = _lam_c2(model, _j_needed(model, scale))
        n = _support_kernel(a, v, d, lam, max_out, edges, gen)
        if n > 0:
            break
        if gen.shape[0] > 0:
            from .resolvent import _head_too_short

            raise _head_too_short(model)
        scale *= 16.0
    edges = edges[:n].copy()
    gaps = None
    if gen.shape[0] > 0:
        gaps = np.empty((lam.size, 2))
        k = _bulk_gaps_kernel(float(edges[-1, 1]), d, v, lam, gen, gaps)
        gaps = gaps[:k].copy()
    return SpectralSupport(lower_edge=float(edges[-1, 0]), upper_edge=float(edges[0, 1]),
                           bulk=(float(edges[-1, 0]), float(edges[-1, 1])),
                           outliers=edges[:-1], bulk_gaps=gaps)


@dataclass(frozen=True)
class SpectralMeasure:
    r"""Discretized deterministic spectral measures (docs/theory.md, Eqs. (6.3), (6.5)).

    Node ``i`` at :math:`x_i` carries F-mass ``forcing_weights[i]``
    (:math:`\approx\mu_F(x_i)\,\Delta x_i`) and eigenvalue count ``eigen_weights[i]``
    (:math:`\approx\rho(x_i)\,\Delta x_i`); the K-measure is :math:`x^2\rho`.  ``component[i]``
    is 0 for the bulk and ``k >= 1`` for the k-th outlier (top first).  The ``coarse_*``
    arrays are the 7-point Gauss rule on the same panels (``panel`` / ``coarse_panel`` give
    each node's panel) and serve as the error estimate.

    Attributes
    ----------
    model : PLRF or SpectralModel
    support : SpectralSupport
    nodes, forcing_weights, eigen_weights, component, panel : ndarray
    coarse_nodes, coarse_forcing_weights, coarse_eigen_weights, coarse_panel : ndarray
    limit_loss : float
        :math:`F_0` (point mass at 0, from the tau equation).
    outlier_masses : ndarray
        F-mass of each outlier component ("residues").
    outlier_counts : ndarray
        Eigenvalue count of each outlier component (1 up to quadrature error).
    outlier_locations : ndarray
        F-mass-weighted mean position of each outlier component.
    mass_defect : float
        :math:`P(0) - F_0 - \sum_i` forcing_weights: total quadrature + truncation error of
        the F-measure (should be ~1e-12 relative).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(1.0, 0.7, 2000, 200)
    >>> meas = vs.spectral_measure(model)
    >>> meas.nodes.shape == meas.forcing_weights.shape == meas.eigen_weights.shape
    True
    >>> bool(abs(meas.mass_defect) < 1e-10 * model.initial_loss)
    True
    >>> round(float(meas.eigen_weights.sum()), 6)       # the eigenvalue measure integrates to d
    200.0
    """

    model: PLRF | SpectralModel
    support: SpectralSupport
    nodes: np.ndarray
    forcing_weights: np.ndarray
    eigen_weights: np.ndarray
    component: np.ndarray
    panel: np.ndarray
    coarse_nodes: np.ndarray
    coarse_forcing_weights: np.ndarray
    coarse_eigen_weights: np.ndarray
    coarse_panel: np.ndarray
    limit_loss: float
    outlier_masses: np.ndarray
    outlier_counts: np.ndarray
    outlier_locations: np.ndarray
    mass_defect: float

    @property
    def kernel_weights(self) -> np.ndarray:
        r"""K-measure weights :math:`x_i^2 \rho_i` (multiply by :math:`\gamma^2 B`)."""
        return self.nodes ** 2 * self.eigen_weights


_GL15 = leggauss(15)
_GL7 = leggauss(7)


def _panel_nodes(lo, hi, a, b, rule):
    """Nodes x and weights (including dx/dtheta) of ``rule`` on theta panels [lo, hi] of [a, b]."""
    t, w = rule
    lo = np.asarray(lo)[:, None]
    hi = np.asarray(hi)[:, None]
    th = lo + (hi - lo) * (t[None, :] + 1.0) / 2.0
    wt = (hi - lo) / 2.0 * w[None, :]
    # x = a + (b - a)(1 - cos th)/2, written without cancellation near both ends
    x = np.where(th < np.pi / 2, a + (b - a) * np.sin(th / 2) ** 2,
                 b - (b - a) * np.cos(th / 2) ** 2)
    return x, wt * (b - a) / 2.0 * np.sin(th)


def _run_densities(model, a, b, xs):
    """m(x+i0), mu_F, rho and status at sorted ``xs`` inside the component [a, b].

    The table of lambda_j must reach the tail cut-off of every node; it is sized for
    ``|m| <= 2`` first and enlarged (status 4) when a node needs more.  Large components are
    split into contiguous chunks marched in parallel threads (the kernel releases the GIL).
    """
    scale = 8.0 / xs[0] + 8.0
    nthreads = min(os.cpu_count() or 1, 8)
    while True:
        lam, c2 = _lam_c2(model, _j_needed(model, scale))
        m = np.empty(xs.size, dtype=np.complex128)
        mu = np.empty(xs.size)
        rho = np.empty(xs.size)
        st = np.empty(xs.size, dtype=np.int64)
        args = (float(a), float(b), *_alpha_beta(model), float(model.v),
                float(model.d), lam, c2, _gen(model), _em_arg(lam, _gen(model)))
        if xs.size < 2000 or nthreads == 1:
            _densities_kernel(xs, *args, m, mu, rho, st)
        else:
            from concurrent.futures import ThreadPoolExecutor

            e = np.linspace(0, xs.size, nthreads + 1).astype(int)
            with ThreadPoolExecutor(nthreads) as pool:
                list(pool.map(lambda k: _densities_kernel(
                    xs[e[k]:e[k + 1]], *args, m[e[k]:e[k + 1]], mu[e[k]:e[k + 1]],
                    rho[e[k]:e[k + 1]], st[e[k]:e[k + 1]]), range(nthreads)))
        if not np.any(st == 4) or lam.size >= model.v or isinstance(model, SpectralModel):
            break
        scale *= 16.0
    if np.any(st != 0):
        from .exceptions import ConvergenceError

        i = int(np.flatnonzero(st != 0)[0])
        if st[i] == 4 and isinstance(model, SpectralModel):
            from .resolvent import _head_too_short

            raise _head_too_short(model)
        raise ConvergenceError(f"m(x + i0) failed at x = {xs[i]!r} (status {st[i]}) for {model}")
    return m, mu, rho


def _eval_component(model, a, b, x):
    """Densities at x in (a, b) (one component, any order); raises if m(x+i0) fails."""
    x = np.ascontiguousarray(x)
    order = np.argsort(x)
    _, mu, rho = _run_densities(model, a, b, x[order])
    out_mu = np.empty_like(mu)
    out_rho = np.empty_like(rho)
    out_mu[order] = mu
    out_rho[order] = rho
    return out_mu, out_rho


def _adaptive_component(model, a, b, theta_edges, rtol, totals, max_panels=20000):
    """Adaptive GL15/GL7 on theta panels of component [a, b]; returns node arrays."""
    edges = np.asarray(theta_edges, dtype=np.float64)
    todo = list(zip(edges[:-1], edges[1:]))
    done = []  # (theta_lo, x15, F-weights15, eigen-weights15, x7, F-weights7, eigen-weights7)
    while todo:
        if len(done) + len(todo) > max_panels:
            from .exceptions import ConvergenceError

            raise ConvergenceError(f"spectral_measure: more than {max_panels} panels needed")
        lo = np.array([p[0] for p in todo])
        hi = np.array([p[1] for p in todo])
        x15, w15 = _panel_nodes(lo, hi, a, b, _GL15)
        x7, w7 = _panel_nodes(lo, hi, a, b, _GL7)
        mu, rho = _eval_component(model, a, b, np.r_[x15.ravel(), x7.ravel()])
        n15 = x15.size
        mu15 = mu[:n15].reshape(x15.shape)
        rho15 = rho[:n15].reshape(x15.shape)
        mu7 = mu[n15:].reshape(x7.shape)
        rho7 = rho[n15:].reshape(x7.shape)
        I15 = [np.sum(w15 * mu15, axis=1), np.sum(w15 * rho15, axis=1),
               np.sum(w15 * rho15 * x15 ** 2, axis=1)]
        I7 = [np.sum(w7 * mu7, axis=1), np.sum(w7 * rho7, axis=1),
              np.sum(w7 * rho7 * x7 ** 2, axis=1)]
        err = np.max([np.abs(u - v) / t for u, v, t in zip(I15, I7, totals)], axis=0)
        new = []
        for k in range(len(todo)):
            if err[k] > rtol and (hi[k] - lo[k]) > 1e-13 * hi[k]:
                mid = 0.5 * (lo[k] + hi[k])
                new += [(lo[k], mid), (mid, hi[k])]
            else:
                done.append((lo[k], x15[k], w15[k] * mu15[k], w15[k] * rho15[k],
                             x7[k], w7[k] * mu7[k], w7[k] * rho7[k]))
        todo = new
    done.sort(key=lambda p: p[0])
    return done



def spectral_measure(model: PLRF | SpectralModel, *, rtol: float = 1e-11,
                     max_cost: float | None = None) -> SpectralMeasure:
    r"""Discretize the deterministic F- and K-measures on the real axis (docs/theory.md, Sec. 6).

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model (``v > d``).
    rtol : float, default 1e-11
        Panels are bisected until the 15- and 7-point Gauss rules agree to ``rtol`` relative
        to the total F-mass, eigenvalue count and K-mass.
    max_cost : float, optional
        Limit on the estimated kernel steps (default ``10**9``; about ``250 J`` for tables of
        length ``J``, a few ``d`` for a PLRF, ``n_explicit`` for a SpectralModel); larger
        requests raise ``ValueError`` up front, ``math.inf`` removes the limit (the memory
        check stays).  See docs/curves.md, "Cost limits".

    Returns
    -------
    SpectralMeasure
        Nodes and weights of the bulk and of each outlier component, :math:`F_0`, the outlier
        masses and the mass defect.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> meas = vs.spectral_measure(vs.PLRF(1.0, 0.7, 2000, 200))
    >>> [round(float(c), 9) for c in meas.outlier_counts[:3]]
    [1.0, 1.0, 1.0]
    """
    model = _require_deterministic(model)
    from ._validation import as_real, check_budget, cost_limit, measure_cost

    rtol = as_real(rtol, "rtol", lower=0.0, upper=1.0)
    check_budget(*measure_cost(model), what="spectral_measure", parameter="d (or n_explicit)",
                 max_cost=max_cost)
    _warn_slow_tail(model)
    with cost_limit(max_cost):
        return _spectral_measure(model, rtol)


def _spectral_measure(model, rtol):
    support = spectral_support(model)
    f0 = limit_loss(model)
    p0 = model.initial_loss
    totals = (max(p0 - f0, 1e-300), float(model.d), _trace_d2(model))
    comps = [(k + 1, a, b) for k, (a, b) in enumerate(support.outliers)]
    comps += [(0, a, b) for a, b in support.bulk_components[::-1]]  # general spectra: pieces
    # bulk: theta panels graded geometrically towards both edges, down to 1e-7 (x - a ~ 1e-14 L)
    g = np.pi / 2 * 0.5 ** np.arange(0, 24)
    bulk_edges = np.r_[0.0, g[::-1], np.pi - g[1:], np.pi]
    cols = {k: [] for k in range(8)}
    masses, counts, locs = [], [], []
    pidx = 0
    for comp, a, b in comps:
        # graded panels for the bulk piece at the lower edge (the boundary layer of q(x)^r at
        # late times); the other pieces of a split bulk are treated like outlier components
        edges = bulk_edges if comp == 0 and a == support.bulk[0] else np.linspace(0.0, np.pi, 5)
        panels = _adaptive_component(model, a, b, edges, rtol, totals)
        for (_, x15, f15, e15, x7, f7, e7) in panels:
            for key, arr in enumerate((x15, f15, e15, np.full(x15.size, comp),
                                       np.full(x15.size, pidx), x7, f7, e7)):
                cols[key].append(arr)
            cols.setdefault(8, []).append(np.full(x7.size, pidx))
            pidx += 1
        if comp > 0:
            fm = sum(float(np.sum(p[2])) for p in panels)
            masses.append(fm)
            counts.append(sum(float(np.sum(p[3])) for p in panels))
            locs.append(sum(float(np.sum(p[1] * p[2])) for p in panels) / fm)
    c = {k: np.concatenate(v) for k, v in cols.items()}
    return SpectralMeasure(
        model=model, support=support, nodes=c[0], forcing_weights=c[1], eigen_weights=c[2],
        component=c[3].astype(np.int64), panel=c[4].astype(np.int64), coarse_nodes=c[5],
        coarse_forcing_weights=c[6], coarse_eigen_weights=c[7],
        coarse_panel=c[8].astype(np.int64), limit_loss=f0,
        outlier_masses=np.array(masses), outlier_counts=np.array(counts),
        outlier_locations=np.array(locs), mass_defect=float(p0 - f0 - np.sum(c[1])),
    )


# ------------------------------------------------------------------- mode compression
def _lanczos_gauss(t, s, n):
    """n-point Gauss rule of the discrete measure ``sum_i s_i delta(t_i)`` (t in [-1, 1]).

    Lanczos with full reorthogonalisation on ``diag(t)`` from ``sqrt(s / S)``.  Returns the
    nodes, the eigenvectors ``V`` of the Jacobi matrix and the Lanczos vectors ``Q``
    (``Q[i, j] = sqrt(s_i / S) p_j(t_i)``, :math:`p_j` orthonormal for ``s / S``); ``None``
    if the measure has fewer than ``n`` numerically distinct points.
    """
    S = s.sum()
    Q = np.zeros((t.size, n))
    a = np.zeros(n)
    b = np.zeros(n)
    q = np.sqrt(s / S)
    for j in range(n):
        Q[:, j] = q
        w = t * q
        a[j] = q @ w
        for _ in range(2):  # full reorthogonalisation, twice is enough
            w -= Q[:, :j + 1] @ (Q[:, :j + 1].T @ w)
        if j == n - 1:
            break
        b[j] = math.sqrt(w @ w)
        if not b[j] > 1e-12:
            return None
        q = w / b[j]
    y, V = np.linalg.eigh(np.diag(a) + np.diag(b[:n - 1], 1) + np.diag(b[:n - 1], -1))
    return y, V, Q


def _compress_bin(x, weights, n):
    """Common n nodes and interpolatory weights of each measure in ``weights`` (Eq. (15.2)).

    The nodes are the Gauss nodes of the sum of the normalised measures; each measure gets
    the weights of the interpolatory rule on them (exact for its moments up to ``n - 1``,
    for the sum's moments up to ``2n - 1``).  ``None`` if a weight is not positive.
    """
    lo, hi = x[0], x[-1]
    c, h = 0.5 * (lo + hi), 0.5 * (hi - lo)
    t = (x - c) / h
    s = sum(w / w.sum() for w in weights)
    g = _lanczos_gauss(t, s, n)
    if g is None:
        return None
    y, V, Q = g
    inv = np.sqrt(s.sum() / s)
    out = []
    for w in weights:
        cj = (w * inv) @ Q
        W = V[0] * (V.T @ cj)
        if not np.all(W > 0.0):
            return None
        out.append(W)
    return np.clip(c + h * y, lo, hi), out


def _bins(meas, bins_per_decade):
    """Bin label of every panel: consecutive panels of one component (bulk piece) with the
    same ``floor(bins_per_decade * log10(y))`` at the panel's mean node, ``y = x`` except on
    the lowest bulk piece, where ``y = x - lambda_min`` (the boundary layer of Eq. (15.1))."""
    x, panel, comp = meas.nodes, meas.panel, meas.component
    starts = np.flatnonzero(np.r_[True, panel[1:] != panel[:-1]])
    xmid = np.add.reduceat(x, starts) / np.diff(np.r_[starts, x.size])
    pcomp = comp[starts]
    lo = meas.support.bulk_components[:, 0]
    piece = np.searchsorted(lo, xmid, side="right")
    y = np.where((pcomp == 0) & (piece <= 1), xmid - lo[0], xmid)
    level = np.floor(bins_per_decade * np.log10(np.maximum(y, 1e-300)))
    key = np.stack([pcomp, np.where(pcomp > 0, -1, piece), level], axis=1)
    new = np.r_[True, np.any(key[1:] != key[:-1], axis=1)]
    return panel[starts], np.cumsum(new) - 1


def compress_measure(meas: SpectralMeasure, *, order: int = 12, coarse_order: int = 8,
                     bins_per_decade: int = 4, outlier_order: int = 8) -> SpectralMeasure:
    r"""Fewer nodes for the same spectral measure: common Gauss rules per bin (Sec. 15).

    The panels of each spectral component are grouped into bins of ``1/bins_per_decade``
    decade in :math:`x` (in :math:`x - \lambda_{min}` on the lowest bulk piece, to keep the
    boundary layer of :math:`q(x)^r` at the lower edge resolved at every ``r``).  In every bin with
    more than ``order`` nodes, the F-measure and the K-measure (:math:`x^2\rho`) move to
    ``order`` common nodes: the Gauss nodes of the sum of the two normalised measures, with
    each measure's interpolatory weights (Eqs. (15.1)-(15.3); both keep their mass exactly,
    the eigenvalue weights are the K-weights over :math:`x^2`).  The coarse (7-point) rule is compressed the same way
    to ``coarse_order`` nodes, so the 15- vs 7-point error estimate of the consumers also
    covers the compression error (Eq. (15.4)).  A bin whose weights would not all be
    positive is left as it is.

    Parameters
    ----------
    meas : SpectralMeasure
        The measure (from :func:`spectral_measure`).
    order, coarse_order : int
        Nodes per bin of the fine and of the coarse rule (``order > coarse_order >= 1``).
    bins_per_decade : int
        Bins per decade.

    Returns
    -------
    SpectralMeasure
        Same fields; ``panel``/``coarse_panel`` number the bins (a compressed bin is one
        panel); ``limit_loss``, the outlier fields and ``mass_defect`` are those of ``meas``.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> meas = vs.spectral_measure(vs.PLRF(1.0, 0.7, 2000, 200))
    >>> small = vs.compress_measure(meas)
    >>> bool(small.nodes.size < meas.nodes.size / 3)
    True
    >>> bool(np.isclose(small.kernel_weights.sum(), meas.kernel_weights.sum(), rtol=1e-13))
    True
    """
    from ._validation import as_int

    order = as_int(order, "order")
    coarse_order = as_int(coarse_order, "coarse_order")
    bins_per_decade = as_int(bins_per_decade, "bins_per_decade")
    if coarse_order >= order:
        raise ValueError(f"coarse_order must be smaller than order; got {coarse_order} >= {order}")
    pids, label = _bins(meas, bins_per_decade)
    bin_of = dict(zip(pids.tolist(), label.tolist()))
    # outlier components are narrow: fewer nodes reach the same accuracy
    n_out = min(order, outlier_order)
    n_out = (n_out, max(1, min(n_out - 1, -(-n_out * coarse_order // order))))
    fine = _compress_rule(meas.nodes, meas.forcing_weights, meas.eigen_weights, meas.component,
                          meas.panel, bin_of, (order, n_out[0]))
    coarse = _compress_rule(meas.coarse_nodes, meas.coarse_forcing_weights,
                            meas.coarse_eigen_weights, meas.component[0:0], meas.coarse_panel,
                            bin_of, (coarse_order, n_out[1]), keep=fine[4], comp_of=fine[6])
    import dataclasses

    return dataclasses.replace(
        meas, nodes=fine[0], forcing_weights=fine[1], eigen_weights=fine[2], component=fine[3],
        panel=fine[5], coarse_nodes=coarse[0], coarse_forcing_weights=coarse[1],
        coarse_eigen_weights=coarse[2], coarse_panel=coarse[5])


def _compress_rule(x, wf, we, comp, panel, bin_of, orders, keep=None, comp_of=None):
    """Compress one rule bin by bin.

    Fine rule (``keep is None``): bins with more than ``n`` nodes are compressed; the others
    keep their panels and are returned in ``kept``.  Coarse rule: the bins in ``keep`` keep
    their panels, every other bin becomes one panel (compressed when it has more than ``n``
    nodes), so that fine and coarse rules have the same sequence of panels.
    """
    b = np.array([bin_of[p] for p in panel.tolist()], dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    ends = np.r_[starts[1:], x.size]
    cols = ([], [], [], [], [])
    kept = set() if keep is None else keep
    comp_of = {} if comp_of is None else comp_of
    for s0, s1 in zip(starts, ends):
        label = int(b[s0])
        if keep is None:
            comp_of[label] = int(comp[s0])
        n = orders[1] if comp_of[label] > 0 else orders[0]
        sl = slice(s0, s1)
        res = None
        if s1 - s0 > n and not (keep is not None and label in keep):
            res = _compress_bin(x[sl], (wf[sl], we[sl] * x[sl] ** 2), n)
        if res is not None:
            y, (Wf, Wk) = res
            # the eigenvalue weights follow from the K-measure's (x^2 rho) at the nodes
            parts = (y, Wf, Wk / y ** 2, np.full(y.size, -1 - label))
        elif keep is None or label in keep:
            if keep is None:
                kept.add(label)
            parts = (x[sl], wf[sl], we[sl], panel[sl])
        else:
            parts = (x[sl], wf[sl], we[sl], np.full(s1 - s0, -1 - label))
        parts += (np.full(parts[0].size, comp_of[label]),)
        for col, arr in zip(cols, parts):
            col.append(arr)
    xs, f, e, p, c = (np.concatenate(c) for c in cols)
    # renumber panels 0, 1, ... in order of appearance (compressed bins and kept panels)
    pnew = np.cumsum(np.r_[True, p[1:] != p[:-1]]) - 1
    return xs, f, e, c.astype(np.int64), kept, pnew.astype(np.int64), comp_of


#: Measured wall time of spectral_measure(PLRF(alpha, 0.7, inf, 100)) on a loaded 2-core
#: machine, by 2*alpha - 1: the panels multiply as the tail power approaches 1.
_SLOW_TAIL_TIMES = ((1e-3, 2.0), (6e-4, 5.0), (4e-4, 14.0), (2e-4, 545.0))


def _warn_slow_tail(model) -> None:
    """Warn up front when an infinite spectrum's tail power p is within 1e-3 of 1 (slow)."""
    if model.finite:
        return
    p = 2.0 * model.alpha if isinstance(model, PLRF) else float(model.tail_power)
    eps = p - 1.0
    if eps >= _SLOW_TAIL_TIMES[0][0]:
        return
    import warnings

    est = next((t for e, t in reversed(_SLOW_TAIL_TIMES) if eps <= e * 1.0000001), None)
    est = "more than 10 minutes" if est is None or eps < _SLOW_TAIL_TIMES[-1][0] else (
        f"about {est:.0f} s or more")
    name = "2*alpha" if isinstance(model, PLRF) else "tail_power"
    warnings.warn(
        f"{name} = {p!r} is within {eps:.2g} of 1 with v = inf: the tail sums converge like "
        f"1/({name} - 1) and the spectral measure needs many panels; expect {est} "
        f"(measured at d = 100: {name} - 1 = 1e-3: 2 s, 4e-4: 14 s, 2e-4: 545 s).  A finite "
        "v (e.g. v = 100 * d) is fast.", RuntimeWarning, stacklevel=3)


def _trace_d2(model: PLRF | SpectralModel) -> float:
    """Return the K-mass scale tr D^2 = sum_j lambda_j^2 (no length-v array for a PLRF)."""
    return model.trace_data_covariance_squared


@dataclass(frozen=True)
class SpectralDensities:
    r"""Densities of the deterministic spectral measures at ``x`` (docs/theory.md, Eq. (6.3)).

    Attributes
    ----------
    x : ndarray
        Evaluation points.
    eigenvalue : ndarray
        :math:`\rho(x) = -\frac{d}{\pi x}\mathrm{Im}\,m(x+i0)`; integrates to ``d`` over the
        support (the number of nonzero eigenvalues of :math:`D^{1/2}WW^TD^{1/2}`).
    forcing : ndarray
        :math:`\mu_F(x) = \frac1\pi\mathrm{Im}\,G_F(x+i0)` (target-weighted measure); together
        with the point mass :math:`F_0` at 0 it integrates to :math:`P(0)`.
    kernel : ndarray
        :math:`x^2 \rho(x)` (multiply by :math:`\gamma^2 B` for the K-measure).
    m : ndarray
        :math:`m(x + i0)` (``nan`` outside the support, where the densities are 0).
    component : ndarray of int
        0 bulk, ``k >= 1`` k-th outlier, -1 outside the support.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> model = vs.PLRF(1.0, 0.7, 2000, 200)
    >>> dens = vs.spectral_densities(model, np.array([1e-4, 1e-3, 0.5, 10.0]))
    >>> dens.component.tolist()                # bulk, bulk, in a gap, above the spectrum
    [0, 0, -1, -1]
    >>> bool(np.all(dens.eigenvalue[:2] > 0) and np.all(dens.eigenvalue[2:] == 0))
    True
    """

    x: np.ndarray
    eigenvalue: np.ndarray
    forcing: np.ndarray
    kernel: np.ndarray
    m: np.ndarray
    component: np.ndarray


def spectral_densities(model: PLRF | SpectralModel, x) -> SpectralDensities:
    r"""Deterministic eigenvalue, forcing and kernel densities at real points ``x``.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model (``v > d``).
    x : array_like of float
        Points on the real axis (any order; outside the support the densities are 0).

    Returns
    -------
    SpectralDensities
        The densities and :math:`m(x+i0)`.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> dens = vs.spectral_densities(vs.PLRF(1.0, 0.7, 2000, 200), np.array([1e-4, 1e-3]))
    >>> bool(np.all(dens.eigenvalue > 0))
    True
    """
    model = _require_deterministic(model)
    from ._validation import as_real_array

    x = np.atleast_1d(as_real_array(x, "x"))
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("x must be a 1-D array of finite real numbers")
    sup = spectral_support(model)
    comps = [(k + 1, a, b) for k, (a, b) in enumerate(sup.outliers)]
    comps += [(0, a, b) for a, b in sup.bulk_components[::-1]]
    rho = np.zeros(x.size)
    mu = np.zeros(x.size)
    m = np.full(x.size, np.nan + 0j)
    comp = np.full(x.size, -1, dtype=np.int64)
    for k, a, b in comps:
        sel = np.flatnonzero((x > a) & (x < b))
        if sel.size == 0:
            continue
        xs = x[sel]
        order = np.argsort(xs)
        mm, mf, rr = _run_densities(model, a, b, np.ascontiguousarray(xs[order]))
        idx = sel[order]
        rho[idx], mu[idx], m[idx], comp[idx] = rr, mf, mm, k
    return SpectralDensities(x=x, eigenvalue=rho, forcing=mu, kernel=x * x * rho, m=m,
                             component=comp)
