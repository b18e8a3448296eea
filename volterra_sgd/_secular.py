r"""Closed-form solution of the Volterra equation with sum-of-exponentials F and K.

THEORY.md §B.2.  With :math:`F(r) = f_0 + \sum_k f_k q_k^r` and
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

from ._numba import njit

STATUS = {
    0: "success",
    1: "kernel norm >= 1 (unstable)",
    2: "invalid input (poles must be increasing, in (0, 1], kernel weights positive)",
    3: "root finding did not converge",
}


@njit
def _secular_value(p, kappa, origin, tau):
    """f(mu) - 1 with mu = p[origin] + tau (origin = -1: mu = tau), differences shifted."""
    s = 0.0
    po = 0.0 if origin < 0 else p[origin]
    for k in range(p.shape[0]):
        s += kappa[k] / ((p[k] - po) - tau)
    return s - 1.0


@njit
def _brent(p, kappa, origin, a, b, fa, fb):
    """Brent's root finder for _secular_value on the bracket (a, b) with fa < 0 < fb."""
    c = a
    fc = fa
    d = b - a
    e = d
    for _ in range(300):
        if (fb > 0.0) == (fc > 0.0):
            c = a
            fc = fa
            d = b - a
            e = d
        if abs(fc) < abs(fb):
            a = b
            b = c
            c = a
            fa = fb
            fb = fc
            fc = fa
        tol = 2.0 * 2.220446049250313e-16 * abs(b) + 1e-300
        m = 0.5 * (c - b)
        if abs(m) <= tol or fb == 0.0:
            return b, 0
        if abs(e) >= tol and abs(fa) > abs(fb):
            s = fb / fa
            if a == c:
                pp = 2.0 * m * s
                qq = 1.0 - s
            else:
                qa = fa / fc
                rr = fb / fc
                pp = s * (2.0 * m * qa * (qa - rr) - (b - a) * (rr - 1.0))
                qq = (qa - 1.0) * (rr - 1.0) * (s - 1.0)
            if pp > 0.0:
                qq = -qq
            else:
                pp = -pp
            if 2.0 * pp < min(3.0 * m * qq - abs(tol * qq), abs(e * qq)):
                e = d
                d = pp / qq
            else:
                d = m
                e = d
        else:
            d = m
            e = d
        a = b
        fa = fb
        if abs(d) > tol:
            b += d
        else:
            b += tol if m > 0 else -tol
        fb = _secular_value(p, kappa, origin, b)
    return b, 3


@njit
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
    worst = 0
    for i in range(n):
        # root i lies in (p[i-1], p[i]) with p[-1] := 0
        left = 0.0 if i == 0 else p[i - 1]
        mid = 0.5 * (left + p[i])
        if _secular_value(p, kappa, -1, mid) > 0.0:
            # root in the lower half, measured from the lower pole (or from 0 when i = 0)
            o = i - 1
            a = 0.0
            b = mid - left
            fb = _secular_value(p, kappa, o, b)
            if o < 0:
                fa = norm - 1.0
            else:  # f -> -inf as tau -> 0+: walk towards the pole until f < 0
                fa = 1.0
                while fa >= 0.0 and b > 1e-300:
                    t = b * 0.00390625
                    fa = _secular_value(p, kappa, o, t)
                    if fa >= 0.0:
                        b = t
                        fb = fa
                    else:
                        a = t
        else:
            # root in the upper half, measured from the upper pole: tau in (mid - p_i, 0)
            o = i
            a = mid - p[o]
            b = 0.0
            fa = _secular_value(p, kappa, o, a)
            fb = -1.0  # f -> +inf as tau -> 0-: walk towards the pole until f > 0
            while fb <= 0.0 and -a > 1e-300:
                t = a * 0.00390625
                fb = _secular_value(p, kappa, o, t)
                if fb <= 0.0:
                    a = t
                    fa = fb
                else:
                    b = t
        if fa >= 0.0:
            t = a
            st = 0
        elif fb <= 0.0:
            t = b
            st = 0
        else:
            t, st = _brent(p, kappa, o, a, b, fa, fb)
        if st != 0:
            worst = st
        origin[i] = o
        tau[i] = t
    return worst


@njit
def secular_residues_kernel(p, kappa, f, f0, origin, tau, mu, resid):
    """Residues :math:`R_i` and :math:`\\mu_i = 1 - \\nu_i` from the roots (see module doc).

    Returns 0 on success.
    """
    n = p.shape[0]
    for i in range(n):
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
    """``out[j] = p_inf + sum_i resid_i (1 - mu_i)^r_j`` with ``exp(r log1p(-mu))``."""
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
