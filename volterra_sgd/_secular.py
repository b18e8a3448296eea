r"""Closed-form solution of the Volterra equation with sum-of-exponentials F and K.

docs/theory.md, Eqs. (7.1)-(7.3).  With :math:`F(r) = f_0 + \sum_k f_k q_k^r` and
:math:`K(r) = \sum_k \kappa_k q_k^r` (:math:`0 < q_k < 1`, :math:`\kappa_k > 0`), the
generating function of :math:`P(r) = F(r) + \sum_{s<r} K(r-1-s) P(s)` is
:math:`\hat P(w) = \hat F(w) / (1 - w \hat K(w))`.  Its poles :math:`w = 1/\nu_i` solve the
secular equation

.. math:: \sum_k \frac{\kappa_k}{\nu - q_k} = 1
          \quad\Longleftrightarrow\quad
          \sum_k \frac{\kappa_k}{p_k - \mu} = 1, \qquad p_k = 1 - q_k,\ \mu = 1 - \nu,

and partial fractions give, exactly,

.. math:: P(r) = P(\infty) + \sum_i R_i \nu_i^r, \qquad
          P(\infty) = \frac{f_0}{1 - \|K\|}, \qquad
          R_i = \frac{-f_0/\mu_i + \sum_k f_k/(p_k - \mu_i)}{\sum_k \kappa_k/(p_k - \mu_i)^2}.

The roots interlace with the poles, :math:`0 < \mu_1 < p_1 < \mu_2 < p_2 < \dots`, when
:math:`\|K\| = \sum_k \kappa_k / p_k < 1`.  Everything is computed in the "p-space" of
:math:`1 - q` with each root stored as an offset :math:`\tau_i` from its nearest pole, so the
differences :math:`p_k - \mu_i` and :math:`1 - \nu_i = \mu_i` keep full relative accuracy even
when :math:`1 - q \approx 10^{-12}`; :math:`\nu_i^r = \exp(r\,\mathrm{log1p}(-\mu_i))` is then
accurate for :math:`r` up to :math:`10^{12}` and beyond.
"""

from __future__ import annotations

import math

import numpy as np

from numba import prange

from ._numba import njit

STATUS = {
    0: "success",
    1: "kernel norm >= 1 (unstable)",
    2: "invalid input (poles must be increasing, in (0, 1], kernel weights positive)",
    3: "root finding did not converge",
}


@njit
def _secular_sums(p, kappa, po, tau, kl):
    """f(mu) - 1 and the split sums of the "middle way" model at mu = po + tau.

    Poles with index <= kl are "left" of mu, the others "right".  Returns
    (f - 1, hL, hL', hR, hR') with h = sum kappa/(p - mu) and h' = sum kappa/(p - mu)^2.
    """
    hl = 0.0
    dl = 0.0
    hr = 0.0
    dr = 0.0
    for k in range(kl + 1):  # two branch-free loops, so that they vectorize
        inv = 1.0 / ((p[k] - po) - tau)
        a = kappa[k] * inv
        hl += a
        dl += a * inv
    for k in range(kl + 1, p.shape[0]):
        inv = 1.0 / ((p[k] - po) - tau)
        a = kappa[k] * inv
        hr += a
        dr += a * inv
    return hl + hr - 1.0, hl, dl, hr, dr


@njit
def _one_root(p, kappa, i, norm):
    """Root of sum kappa/(p - mu) = 1 in (p[i-1], p[i]) (p[-1] := 0): (origin, tau, status).

    The root is measured from the nearer pole (``origin``; -1 means 0) so that p_k - mu keeps
    full relative accuracy.  Iteration: the "middle way" rational model (Li 1993; LAPACK
    dlaed4), which fits a + b/(p_left - mu) and a + b/(p_right - mu) to the two partial sums
    and solves the resulting quadratic, safeguarded by bisection on a sign bracket.
    """
    n = p.shape[0]
    left = 0.0 if i == 0 else p[i - 1]
    mid = 0.5 * (left + p[i])
    fm = _secular_sums(p, kappa, 0.0, mid, i - 1)[0]
    if fm > 0.0:
        o = i - 1
        po = left
        a = 0.0
        b = mid - left
        fa = norm - 1.0 if o < 0 else -math.inf
        fb = fm
        tau = 0.5 * b
    else:
        o = i
        po = p[i]
        a = mid - p[i]
        b = 0.0
        fa = fm
        fb = math.inf
        tau = 0.5 * a
    for _ in range(200):
        fv, hl, dl, hr, dr = _secular_sums(p, kappa, po, tau, i - 1)
        if fv == 0.0:
            return o, tau, 0
        if fv < 0.0:
            a = tau
            fa = fv
        else:
            b = tau
            fb = fv
        # model: A + bl/(el - s) + br/(er - s) = 0, with el/er the distances to the poles
        er = (p[i] - po) - tau
        if i > 0:
            el = (p[i - 1] - po) - tau
            bl = dl * el * el
            al = hl - bl / el
        else:
            el = -math.inf
            bl = 0.0
            al = hl
        br = dr * er * er
        ar = hr - br / er
        A = al + ar - 1.0
        if i > 0:
            qa = A
            qb = -(A * (el + er) + bl + br)
            qc = A * el * er + bl * er + br * el
            if qa == 0.0:
                s = -qc / qb if qb != 0.0 else 0.0
            else:
                disc = qb * qb - 4.0 * qa * qc
                if disc < 0.0:
                    disc = 0.0
                sq = math.sqrt(disc)
                qq = -0.5 * (qb + (sq if qb >= 0.0 else -sq))
                s1 = qq / qa
                s2 = qc / qq if qq != 0.0 else s1
                s = s1 if el < s1 < er else s2
        else:  # A + br/(er - s) = 0
            s = er + br / A if A != 0.0 else 0.5 * (a + b) - tau
        tn = tau + s
        if not (a < tn < b):
            if fa == -math.inf:  # bracket still open at the pole tau = a: approach it
                tn = a + (min(tau, b) - a) * 0.0625
            elif fb == math.inf:
                tn = b + (max(tau, a) - b) * 0.0625
            else:
                tn = 0.5 * (a + b)
        if abs(tn - tau) <= 4e-16 * abs(tn) or b - a <= 4e-16 * max(abs(a), abs(b)):
            return o, tn, 0
        tau = tn
    return o, tau, 3


@njit(parallel=True)
def secular_roots_kernel(p, kappa, origin, tau):
    """Roots of ``sum_k kappa_k / (p_k - mu) = 1``, one per interval (p_{i-1}, p_i).

    Parameters
    ----------
    p : float64[:]
        Poles :math:`p_k = 1 - q_k`, strictly increasing, in (0, 1].
    kappa : float64[:]
        Kernel weights :math:`\\kappa_k > 0`.
    origin : int64[:]
        Output: index of the pole each root is measured from (-1 means 0).
    tau : float64[:]
        Output: offsets, :math:`\\mu_i = p_{origin_i} + \\tau_i` (or :math:`\\tau_i`).

    Returns
    -------
    int
        Status (see ``STATUS``).

    Examples
    --------
    Two poles; each root lies in its own interval and solves the secular equation (7.2).

    >>> import numpy as np
    >>> from volterra_sgd.numba_api import secular_roots
    >>> p, kappa = np.array([0.2, 0.5]), np.array([0.05, 0.1])
    >>> origin, tau = np.empty(2, dtype=np.int64), np.empty(2)
    >>> secular_roots(p, kappa, origin, tau)
    0
    >>> mu = np.where(origin < 0, 0.0, p[np.maximum(origin, 0)]) + tau
    >>> bool(0 < mu[0] < p[0] < mu[1] < p[1])
    True
    >>> bool(np.allclose([(kappa / (p - m)).sum() for m in mu], 1.0, rtol=1e-13))
    True
    """
    n = p.shape[0]
    norm = 0.0
    for k in range(n):
        if not (kappa[k] > 0.0) or not (p[k] > 0.0) or p[k] > 1.0:
            return 2
        if k > 0 and not (p[k] > p[k - 1]):
            return 2
        norm += kappa[k] / p[k]
    if not (norm < 1.0):
        return 1
    st = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        o, t, s = _one_root(p, kappa, i, norm)
        origin[i] = o
        tau[i] = t
        st[i] = s
    return int(np.max(st)) if n else 0


@njit(parallel=True)
def secular_residues_kernel(p, kappa, f, f0, origin, tau, mu, resid):
    """Residues :math:`R_i` and :math:`\\mu_i = 1 - \\nu_i` from the roots (see module doc).

    Parameters
    ----------
    p, kappa : float64[:]
        Poles and kernel weights, as for :func:`secular_roots`.
    f : float64[:]
        Forcing weights :math:`f_k`.
    f0 : float
        Constant part :math:`F_0` of the forcing.
    origin, tau : int64[:], float64[:]
        The roots, as returned by :func:`secular_roots`.
    mu, resid : float64[:]
        Output: :math:`\\mu_i` and the residues :math:`R_i` (Eq. (7.3)).

    Returns
    -------
    int
        0.

    Examples
    --------
    At :math:`r = 0` the closed form must give :math:`P(0) = F(0) = F_0 + \\sum_k f_k`:

    >>> import numpy as np
    >>> from volterra_sgd.numba_api import secular_residues, secular_roots
    >>> p, kappa, f, f0 = np.array([0.2, 0.5]), np.array([0.05, 0.1]), np.array([1.0, 0.5]), 0.1
    >>> origin, tau, mu, resid = np.empty(2, dtype=np.int64), np.empty(2), np.empty(2), np.empty(2)
    >>> secular_roots(p, kappa, origin, tau), secular_residues(p, kappa, f, f0, origin, tau, mu, resid)
    (0, 0)
    >>> p_inf = f0 / (1 - (kappa / p).sum())                  # P(infinity), eq. (7.3)
    >>> round(float(p_inf + resid.sum()), 12), float(f0 + f.sum())
    (1.6, 1.6)
    """
    n = p.shape[0]
    for i in prange(n):
        o = origin[i]
        po = 0.0 if o < 0 else p[o]
        mu[i] = po + tau[i]
        num = 0.0
        den = 0.0
        for k in range(n):
            dk = (p[k] - po) - tau[i]  # p_k - mu_i, accurate
            num += f[k] / dk
            den += kappa[k] / (dk * dk)
        num -= f0 / mu[i]
        resid[i] = num / den
    return 0


@njit
def secular_evaluate_kernel(mu, resid, p_inf, r, out):
    """``out[j] = p_inf + sum_i resid_i (1 - mu_i)^r_j`` with ``exp(r log1p(-mu))``.

    Parameters
    ----------
    mu, resid : float64[:]
        :math:`\\mu_i` and residues :math:`R_i` from :func:`secular_residues`.
    p_inf : float
        :math:`P(\\infty) = F_0 / (1 - \\|K\\|)`.
    r : int64[:] or float64[:]
        Iterations.
    out : float64[:]
        Output, same length as ``r``.

    Returns
    -------
    int
        0.

    Examples
    --------
    The closed form agrees with the direct solution of the Volterra equation:

    >>> import numpy as np
    >>> from volterra_sgd.numba_api import (secular_evaluate, secular_residues, secular_roots,
    ...                                     volterra_direct)
    >>> p, kappa, f, f0 = np.array([0.2, 0.5]), np.array([0.05, 0.1]), np.array([1.0, 0.5]), 0.1
    >>> origin, tau, mu, resid = np.empty(2, dtype=np.int64), np.empty(2), np.empty(2), np.empty(2)
    >>> secular_roots(p, kappa, origin, tau), secular_residues(p, kappa, f, f0, origin, tau, mu, resid)
    (0, 0)
    >>> r, out = np.arange(20, dtype=np.int64), np.empty(20)
    >>> secular_evaluate(mu, resid, f0 / (1 - (kappa / p).sum()), r, out)
    0
    >>> q = (1 - p)[None, :] ** r[:, None]
    >>> P = np.empty(20)
    >>> volterra_direct(f0 + q @ f, q @ kappa, P)
    0
    >>> bool(np.allclose(out, P, rtol=1e-13, atol=0))
    True
    """
    n = mu.shape[0]
    for j in range(r.shape[0]):
        rj = float(r[j])
        s = 0.0
        for i in range(n):
            s += resid[i] * math.exp(rj * math.log1p(-mu[i]))
        out[j] = p_inf + s
    return 0


def solve_exponential_volterra(p, f, kappa, f0, r):
    """P(r) for F = f0 + sum f (1-p)^r and K = sum kappa (1-p)^r, exactly (closed form).

    Parameters
    ----------
    p : array_like
        :math:`p_k = 1 - q_k` in (0, 1], computed accurately by the caller.
    f, kappa : array_like
        Forcing and kernel weights (``kappa >= 0``; modes with ``kappa = 0`` are
        forcing-only).
    f0 : float
        Constant part of the forcing.
    r : array_like of int
        Iterations.

    Returns
    -------
    P : ndarray
        The solution at ``r``.
    info : dict
        ``mu`` (:math:`1-\\nu_i`), ``residues`` (:math:`R_i`), ``p_inf``, ``kernel_norm``.

    Raises
    ------
    ValueError
        On invalid input or kernel norm >= 1.
    """
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    p = p[order]
    f = np.asarray(f, dtype=np.float64)[order]
    kappa = np.asarray(kappa, dtype=np.float64)[order]
    # merge poles that coincide to ~1e-13 relative (e.g. quadrature nodes that round to the
    # same edge): their weights add; distinct roots between them could not be represented
    first = np.r_[True, p[1:] > p[:-1] * (1.0 + 1e-13)]
    if not np.all(first):
        idx = np.cumsum(first) - 1
        f = np.bincount(idx, weights=f)
        kappa = np.bincount(idx, weights=kappa)
        p = p[first]
    # modes without kernel weight are forcing-only: they are not poles of K, and enter P
    # through their own pole with residue f_k / (1 - sum_j kappa_j / (p_j - p_k)).
    keep = (kappa != 0.0) | (f != 0.0)  # modes with no weight at all contribute nothing
    p, f, kappa = p[keep], f[keep], kappa[keep]
    live = kappa > 0.0
    if np.any(kappa < 0.0) or np.any(~np.isfinite(kappa)) or np.any(~np.isfinite(f)):
        raise ValueError(f"secular equation: {STATUS[2]}")
    pk, fk, kk = (np.ascontiguousarray(x[live]) for x in (p, f, kappa))
    n = pk.size
    origin = np.empty(n, dtype=np.int64)
    tau = np.empty(n)
    st = secular_roots_kernel(pk, kk, origin, tau)
    if st != 0:
        raise ValueError(f"secular equation: {STATUS[st]}")
    mu = np.empty(n)
    resid = np.empty(n)
    secular_residues_kernel(pk, kk, fk, float(f0), origin, tau, mu, resid)
    if np.any(~live):
        pf, ff = p[~live], f[~live]
        # F-only poles contribute to the numerator of every R_i, and have residues of their own
        diff = pf[None, :] - mu[:, None]
        den = np.array([np.sum(kk / (pk - mu_i) ** 2) for mu_i in mu])
        resid = resid + (ff[None, :] / diff).sum(axis=1) / den
        extra = ff / (1.0 - np.array([np.sum(kk / (pk - x)) for x in pf]))
        mu = np.r_[mu, pf]
        resid = np.r_[resid, extra]
    knorm = float(np.sum(kk / pk))
    p_inf = float(f0) / (1.0 - knorm)
    r = np.ascontiguousarray(np.atleast_1d(r), dtype=np.int64)
    out = np.empty(r.size)
    secular_evaluate_kernel(np.ascontiguousarray(mu), np.ascontiguousarray(resid), p_inf, r, out)
    return out, {"mu": mu, "residues": resid, "p_inf": p_inf, "kernel_norm": knorm}
