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
def _one_root(p, kappa, i, delta):
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
        fa = -delta if o < 0 else -math.inf
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
        if kappa[k] > 0.0 and p[k] > 0.0:
            norm += kappa[k] / p[k]
    return _roots_kernel(p, kappa, 1.0 - norm, origin, tau)


@njit
def _first_root(p, kappa, delta, mu):
    """Root of ``phi(mu) = delta - mu S(mu) = 0`` in (0, p_0), ``S = sum kappa/(p (p - mu))``.

    This is the secular equation (docs/theory.md, Eq. (7.2)) minus its value at 0,
    ``1 - sum kappa/(p - mu) = (1 - ||K||) - mu S(mu)``: every term is positive, so phi is
    evaluated to a relative accuracy ~eps of ``delta = 1 - ||K||`` even when ``delta`` is
    1e-15, and the root ``mu_0 ~ delta / S(0)`` keeps full relative accuracy (the form
    ``sum kappa/(p - mu) - 1`` loses ``eps/delta``).  phi is concave and decreasing
    (``phi' = -sum kappa/(p - mu)^2``), so Newton from the first-order guess ``delta/S(0)``
    (right of the root) decreases monotonically; bisection on the bracket (0, p_0) guards it.
    Returns ``(mu_0, status)``.
    """
    n = p.shape[0]
    lo = 0.0
    hi = p[0]
    s0 = 0.0
    for k in range(n):
        s0 += kappa[k] / (p[k] * p[k])
    guess = delta / s0
    if 0.0 < guess < hi:
        mu = guess
    elif not (0.0 < mu < hi):
        mu = 0.5 * hi
    for _ in range(200):
        s = 0.0
        d = 0.0
        for k in range(n):
            inv = 1.0 / (p[k] - mu)
            a = kappa[k] * inv
            s += a / p[k]
            d += a * inv
        phi = delta - mu * s
        if phi == 0.0:
            return mu, 0
        if phi > 0.0:
            lo = mu
        else:
            hi = mu
        mn = mu + phi / d
        if not (lo < mn < hi):
            mn = 0.5 * (lo + hi)
        if abs(mn - mu) <= 2.5e-16 * mn or hi - lo <= 4.5e-16 * hi:
            return mn, 0
        mu = mn
    return mu, 3


@njit
def _roots_check(p, kappa, delta):
    """Status of the input of :func:`_roots_kernel`: 2 invalid poles or weights, 1 unstable."""
    for k in range(p.shape[0]):
        if not (kappa[k] > 0.0) or not (p[k] > 0.0) or p[k] > 1.0:
            return 2
        if k > 0 and not (p[k] > p[k - 1]):
            return 2
    return 0 if delta > 0.0 else 1


@njit
def _roots_range(p, kappa, delta, lo, hi, origin, tau):
    """Roots ``lo <= i < hi`` (:func:`_one_root`); returns the largest status."""
    status = 0
    for i in range(lo, hi):
        o, t, s = _one_root(p, kappa, i, delta)
        origin[i] = o
        tau[i] = t
        status = max(status, s)
    return status


@njit
def _roots_first(p, kappa, delta, origin, tau):
    """Root 0; polished by :func:`_first_root` when it is measured from 0.  Returns its status."""
    if p.shape[0] == 0:
        return 0
    status = _roots_range(p, kappa, delta, np.int64(0), np.int64(1), origin, tau)
    if origin[0] < 0:
        tau[0], status = _first_root(p, kappa, delta, tau[0])
    return status


@njit
def _roots_kernel(p, kappa, delta, origin, tau):
    """:func:`secular_roots_kernel` with ``delta = 1 - ||K||`` given (accurately) by the caller.

    The root in (0, p_0) is polished by :func:`_first_root` when it lies below p_0/2
    (``origin = -1``), which is always the case near the edge of stability.  Serial; the
    Python solver spreads large problems over threads (:func:`_roots`).
    """
    status = _roots_check(p, kappa, delta)
    if status != 0:
        return status
    status = _roots_range(p, kappa, delta, np.int64(1), p.shape[0], origin, tau)
    return max(status, _roots_first(p, kappa, delta, origin, tau))


#: Below this many poles the roots and residues are computed in one thread.
PARALLEL_MIN = 2048


def _chunks(n):
    """Index ranges for the package's worker threads (none below :data:`PARALLEL_MIN`)."""
    from ._parallel import default_workers

    workers = default_workers() if n >= PARALLEL_MIN else 1
    if workers == 1:
        return [], 1
    edges = np.linspace(0, n, 4 * workers + 1).astype(np.int64)
    return list(zip(edges[:-1], edges[1:], strict=True)), workers


def _roots(p, kappa, delta, origin, tau):
    """:func:`_roots_kernel`, over threads for large problems (the kernels release the GIL).

    Its parts are called from here, also in one thread, so that a first solve compiles each
    of them once and not again inside :func:`_roots_kernel`.
    """
    status = _roots_check(p, kappa, delta)
    if status != 0:
        return status
    st = [_roots_first(p, kappa, delta, origin, tau)]
    chunks, workers = _chunks(p.shape[0])
    if not chunks:
        return max(st[0], _roots_range(p, kappa, delta, 1, p.shape[0], origin, tau))
    from ._parallel import run_tasks

    run_tasks(lambda c: _roots_range(p, kappa, delta, max(c[0], 1), c[1], origin, tau), chunks,
              workers, lambda i, s: st.append(s))
    return max(st)


@njit
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
    return _residues_range(p, kappa, f, f0, origin, tau, 0, p.shape[0], mu, resid)


@njit
def _residues_range(p, kappa, f, f0, origin, tau, lo, hi, mu, resid):
    """:func:`secular_residues_kernel` for the roots ``lo <= i < hi``."""
    n = p.shape[0]
    for i in range(lo, hi):
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
def _first_amplitude(p, kappa, f, f0, delta, origin0, tau0):
    """``A_0 = P(inf) + R_0`` of the root nearest 0, without cancellation; returns (A_0, S, D).

    With ``S = sum kappa/(p (p - mu_0))``, ``T = sum kappa/(p (p - mu_0)^2)`` and
    ``D = sum kappa/(p - mu_0)^2``, the root equation ``delta = mu_0 S`` turns
    ``F_0/delta - F_0/(mu_0 D)`` into ``F_0 T/(S D)``, so
    ``A_0 = (F_0 T/S + sum_k f_k/(p_k - mu_0)) / D``: a sum of positive terms (Eq. (7.3)).
    """
    po = 0.0 if origin0 < 0 else p[origin0]
    s = 0.0
    t = 0.0
    d = 0.0
    num = 0.0
    for k in range(p.shape[0]):
        dk = (p[k] - po) - tau0
        inv = 1.0 / dk
        a = kappa[k] * inv
        s += a / p[k]
        t += a * inv / p[k]
        d += a * inv
        num += f[k] * inv
    return (f0 * t / s + num) / d, s, d


#: Recurrence steps between exact re-evaluations in :func:`_split_evaluate_kernel`.
ANCHOR = 64
#: A term is dropped once ``|R_i nu_i^r|`` is below ``DROP * eps`` times the sum of magnitudes.
DROP = 2.0 ** -20


@njit
def _split_evaluate_kernel(mu, resid, a0, p_inf, r, out, err):
    """``out = p_inf (1 - nu_0^r) + a0 nu_0^r + sum_{i>0} resid_i nu_i^r`` and its rounding error.

    ``1 - nu_0^r = -expm1(r log1p(-mu_0))`` is accurate when ``r mu_0`` is tiny, and
    ``a0 = P(inf) + R_0`` is computed without cancellation (:func:`_first_amplitude`), so the
    sum no longer cancels when ``P(inf) = F_0/(1 - ||K||)`` dwarfs ``P(r)``.  ``r`` must be
    non-decreasing.

    Cost.  Each term ``t_i = resid_i nu_i^r`` is evaluated as ``resid_i exp(r log1p(-mu_i))``,
    except along runs of equally spaced ``r`` (spacing ``h``, e.g. every iteration), where it
    is advanced by one multiplication, ``t_i <- t_i nu_i^h``, and re-evaluated exactly every
    :data:`ANCHOR` points.  A term is dropped for good once ``|t_i|`` falls below
    ``DROP * eps`` times the sum of the magnitudes (terms only shrink as ``r`` grows; ``mu``
    sorted increasingly after index 0 drops them from the end); the dropped magnitude,
    decayed at the slowest dropped rate, is added to ``err``.

    ``err`` gets ``8 eps`` times the sum of the terms' magnitudes plus ``r mu_i |t_i|``
    (rounding of the terms and of the exponents), ``eps (2 + h mu_i) k |t_i|`` after ``k``
    multiplications since the last exact evaluation, and the dropped magnitude.
    """
    n = mu.shape[0]
    m = r.shape[0]
    eps = 2.220446049250313e-16
    lg = np.empty(n)
    for i in range(n):
        lg[i] = math.log1p(-mu[i])
    t = np.zeros(n)
    fac = np.zeros(n)
    n_act = n  # terms 1..n_act-1 are live
    dropped = 0.0  # magnitude bound of the dropped terms at the current r
    lg_drop = -math.inf  # slowest decay rate among them
    h_fac = -1  # spacing for which fac = nu^h holds (-1: none)
    k = ANCHOR  # multiplications since the last exact evaluation
    r_prev = 0
    h_last = -1  # spacing of the previous step
    for j in range(m):
        rj = r[j]
        if j > 0 and rj == r_prev:
            out[j] = out[j - 1]
            err[j] = err[j - 1]
            continue
        h = rj - r_prev
        if j > 0:
            dropped *= math.exp(float(h) * lg_drop)
        x = float(rj)
        recur = j > 0 and h == h_fac and k < ANCHOR
        if recur:
            k += 1
            for i in range(1, n_act):
                t[i] *= fac[i]
        else:
            if j > 1 and h == h_last:
                hf = float(h)
                for i in range(1, n_act):
                    fac[i] = math.exp(hf * lg[i])
                h_fac = h
            else:
                h_fac = -1
            k = 0
            for i in range(1, n_act):
                t[i] = resid[i] * math.exp(x * lg[i])
        # four partial sums (fixed order, no reassociation by the compiler)
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        a0_ = 0.0
        a1_ = 0.0
        a2_ = 0.0
        a3_ = 0.0
        b0 = 0.0
        b1 = 0.0
        b2 = 0.0
        b3 = 0.0
        i = 1
        while i + 3 < n_act:
            u0 = t[i]
            u1 = t[i + 1]
            u2 = t[i + 2]
            u3 = t[i + 3]
            s0 += u0
            s1 += u1
            s2 += u2
            s3 += u3
            a0_ += abs(u0)
            a1_ += abs(u1)
            a2_ += abs(u2)
            a3_ += abs(u3)
            b0 += abs(u0) * mu[i]
            b1 += abs(u1) * mu[i + 1]
            b2 += abs(u2) * mu[i + 2]
            b3 += abs(u3) * mu[i + 3]
            i += 4
        while i < n_act:
            s0 += t[i]
            a0_ += abs(t[i])
            b0 += abs(t[i]) * mu[i]
            i += 1
        mag = (a0_ + a1_) + (a2_ + a3_)
        magmu = (b0 + b1) + (b2 + b3)
        lg0 = x * lg[0]
        e0 = math.exp(lg0)
        v0 = -p_inf * math.expm1(lg0)
        v1 = a0 * e0
        total = abs(v0) + abs(v1) + mag
        out[j] = (v0 + v1) + ((s0 + s1) + (s2 + s3))
        bound = (total + (abs(p_inf) + abs(a0)) * e0 * x * mu[0] + x * magmu
                 + 0.125 * k * (2.0 * mag + float(h) * magmu))
        err[j] = 8.0 * eps * bound + dropped
        # drop the terms that no longer matter, from the fast end
        cut = DROP * eps * total
        while n_act > 1 and abs(t[n_act - 1]) <= cut:
            n_act -= 1
            dropped += abs(t[n_act])
            if lg[n_act] > lg_drop:
                lg_drop = lg[n_act]
        r_prev = rj
        h_last = h
    return 0


@njit
def _power_sums_kernel(lg, w, part, group, r, out):
    """Two weighted sums of powers ``q_k^r = exp(r lg_k)``, split in parts and groups.

    For ``c = 0, 1`` (the rows of ``w``) and non-decreasing ``r``:
    ``out[j, 2c + p] = sum_{k: part_k = p} w[c, k] q_k^{r_j}`` (``p = 0, 1``; modes with
    ``part_k = -1`` enter only the group sums) and
    ``out[j, 4 + c] = sum_g |sum_{k: group_k = g} w[c, k] q_k^{r_j}|``.
    Powers are advanced by one multiplication along runs of equally spaced ``r`` and
    re-evaluated exactly every :data:`ANCHOR` points, as in :func:`_split_evaluate_kernel`.
    With ``lg`` sorted decreasingly, a mode is dropped for good (from the end) once its terms
    are below ``DROP * eps`` times the sums of magnitudes of the parts it belongs to.
    """
    n = lg.shape[0]
    ng = 1
    for k in range(n):
        if group[k] + 1 > ng:
            ng = group[k] + 1
    gf = np.zeros(ng)
    gk = np.zeros(ng)
    t = np.zeros(n)
    fac = np.zeros(n)
    eps = 2.220446049250313e-16
    n_act = n
    h_fac = -1
    h_last = -1
    k_rec = ANCHOR
    r_prev = 0
    for j in range(r.shape[0]):
        rj = r[j]
        if j > 0 and rj == r_prev:
            for c in range(6):
                out[j, c] = out[j - 1, c]
            continue
        h = rj - r_prev
        exact = not (j > 0 and h == h_fac and k_rec < ANCHOR)
        if exact:
            if j > 1 and h == h_last:
                for k in range(n_act):
                    fac[k] = math.exp(float(h) * lg[k])
                h_fac = h
            else:
                h_fac = -1
            k_rec = 0
            x = float(rj)
            for k in range(n_act):
                t[k] = math.exp(x * lg[k])
        else:
            k_rec += 1
            for k in range(n_act):
                t[k] *= fac[k]
        f0 = 0.0
        f1 = 0.0
        k0 = 0.0
        k1 = 0.0
        gf[:] = 0.0
        gk[:] = 0.0
        cur = group[0] if n_act else 0
        sf = 0.0
        sk = 0.0
        for k in range(n_act):
            a = w[0, k] * t[k]
            b = w[1, k] * t[k]
            p = part[k]
            if p == 0:
                f0 += a
                k0 += b
            elif p == 1:
                f1 += a
                k1 += b
            g = group[k]
            if g != cur:  # group sums in registers while the group does not change
                gf[cur] += sf
                gk[cur] += sk
                cur = g
                sf = 0.0
                sk = 0.0
            sf += a
            sk += b
        gf[cur] += sf
        gk[cur] += sk
        ef = 0.0
        ek = 0.0
        for g in range(ng):
            ef += abs(gf[g])
            ek += abs(gk[g])
        out[j, 0] = f0
        out[j, 1] = f1
        out[j, 2] = k0
        out[j, 3] = k1
        out[j, 4] = ef
        out[j, 5] = ek
        if exact and n_act > 0:  # drop the modes that no longer matter, from the fast end
            m00 = 0.0
            m01 = 0.0
            m10 = 0.0
            m11 = 0.0
            for k in range(n_act):
                if part[k] == 0:
                    m00 += abs(w[0, k]) * t[k]
                    m10 += abs(w[1, k]) * t[k]
                elif part[k] == 1:
                    m01 += abs(w[0, k]) * t[k]
                    m11 += abs(w[1, k]) * t[k]
            while n_act > 0:
                k = n_act - 1
                p = part[k]
                mf = m00 if p == 0 else (m01 if p == 1 else m00 + m01)
                mk = m10 if p == 0 else (m11 if p == 1 else m10 + m11)
                cut = DROP * eps
                if abs(w[0, k]) * t[k] > cut * mf or abs(w[1, k]) * t[k] > cut * mk:
                    break
                n_act -= 1
        r_prev = rj
        h_last = h
    return 0


def power_sums(logq, weights, part, group, r):
    r"""Two weighted sums of powers :math:`q_k^r`, by part and by group, at many ``r``.

    Parameters
    ----------
    logq : array_like
        :math:`\log q_k \le 0`.
    weights : array_like, shape (2, n)
        Weights :math:`w_{ck}` of the two sums (e.g. forcing and kernel).
    part : array_like of int
        0 or 1: the part of the sums each mode belongs to; -1: only in the group sums.
    group : array_like of int
        Group of each mode (``>= 0``).
    r : array_like of int
        Iterations (any order; equally spaced runs, e.g. every iteration, are cheapest).

    Returns
    -------
    ndarray, shape (len(r), 6)
        Columns :math:`\sum_{part\,0} w_0 q^r`, :math:`\sum_{part\,1} w_0 q^r`, the same for
        :math:`w_1`, then :math:`\sum_g |\sum_{k \in g} w_{ck} q_k^r|` for ``c = 0, 1``.
        Modes below ``DROP * eps`` of their part's sum of magnitudes are dropped.
    """
    lg = np.asarray(logq, dtype=np.float64)
    order = np.argsort(-lg, kind="stable")  # slow to fast decay
    r = np.ascontiguousarray(np.atleast_1d(r), dtype=np.int64)
    rs = None if np.all(r[1:] >= r[:-1]) else np.argsort(r, kind="stable")
    out = np.empty((r.size, 6))
    _power_sums_kernel(np.ascontiguousarray(lg[order]),
                       np.ascontiguousarray(np.asarray(weights, dtype=np.float64)[:, order]),
                       np.ascontiguousarray(np.asarray(part, dtype=np.int64)[order]),
                       np.ascontiguousarray(np.asarray(group, dtype=np.int64)[order]),
                       r if rs is None else np.ascontiguousarray(r[rs]), out)
    if rs is not None:  # back to the caller's order
        out[rs] = out.copy()
    return out


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


def solve_exponential_volterra(p, f, kappa, f0, r, *, one_minus_norm=None, roots=None):
    r"""P(r) for F = f0 + sum f (1-p)^r and K = sum kappa (1-p)^r, exactly (closed form).

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
    one_minus_norm : float, optional
        :math:`\delta = 1 - \|K\|`, if the caller has it more accurately than
        ``1 - sum(kappa / p)`` (e.g. from the learning-rate check, so that the accepted
        learning rates and the solver agree up to :math:`\gamma^*` itself).
    roots : dict, optional
        The ``info`` of an earlier call with the same ``p``, ``kappa`` and
        ``one_minus_norm`` (only ``f`` and ``f0`` differ): its roots are reused.

    Returns
    -------
    P : ndarray
        The solution at ``r``.
    info : dict
        ``mu`` (:math:`1-\nu_i`, the root nearest 0 first), ``residues`` (:math:`R_i`),
        ``p_inf``, ``kernel_norm``, ``one_minus_norm``, ``first_amplitude``
        (:math:`A_0 = P(\infty) + R_0`), ``slope`` (:math:`S = \delta/\mu_0`) and
        ``rounding_error`` (a bound on the rounding error of ``P`` for the given
        :math:`\delta`; the effect of an error in :math:`\delta` itself is
        :func:`norm_sensitivity`).

    Raises
    ------
    ValueError
        On invalid input or kernel norm >= 1.

    Notes
    -----
    Near the edge of stability, :math:`\delta \to 0`, the root :math:`\mu_0 \approx
    \delta/S` carries a residue :math:`R_0 \approx -P(\infty)` and the plain form
    :math:`P(\infty) + \sum_i R_i \nu_i^r` cancels catastrophically.  Here :math:`\mu_0`
    solves :math:`\delta - \mu S(\mu) = 0` (no cancellation), :math:`A_0 = P(\infty) +
    R_0` is a sum of positive terms, and :math:`P(r) = P(\infty)(1 - \nu_0^r) + A_0\nu_0^r
    + \sum_{i>0} R_i\nu_i^r` with :math:`1 - \nu_0^r = -\mathrm{expm1}(r\,
    \mathrm{log1p}(-\mu_0))` (docs/theory.md, Sec. 7).
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
    knorm = math.fsum(kk / pk)
    delta = 1.0 - knorm if one_minus_norm is None else float(one_minus_norm)
    if not delta > 0.0:
        raise ValueError(f"secular equation: {STATUS[1]}")
    if (roots is not None and roots.get("one_minus_norm") == delta
            and np.array_equal(roots.get("poles"), pk)):
        origin, tau = roots["origin"], roots["tau"]
    else:
        origin = np.empty(n, dtype=np.int64)
        tau = np.empty(n)
        st = _roots(pk, kk, delta, origin, tau)
        if st != 0:
            raise ValueError(f"secular equation: {STATUS[st]}")
    mu = np.empty(n)
    resid = np.empty(n)
    chunks, workers = _chunks(n)
    if chunks:
        from ._parallel import run_tasks

        run_tasks(lambda c: _residues_range(pk, kk, fk, float(f0), origin, tau, c[0], c[1], mu,
                                            resid), chunks, workers, lambda i, s: None)
    else:
        _residues_range(pk, kk, fk, float(f0), origin, tau, 0, n, mu, resid)
    p_inf = float(f0) / delta
    a0, slope, d0 = (_first_amplitude(pk, kk, fk, float(f0), delta, int(origin[0]),
                                      float(tau[0])) if n else (0.0, 1.0, 1.0))
    if np.any(~live):
        pf, ff = p[~live], f[~live]
        # F-only poles contribute to the numerator of every R_i, and have residues of their own
        diff = pf[None, :] - mu[:, None]
        den = np.array([np.sum(kk / (pk - mu_i) ** 2) for mu_i in mu])
        resid = resid + (ff[None, :] / diff).sum(axis=1) / den
        if n:
            a0 += float(np.sum(ff / (pf - mu[0]))) / d0
        # 1 - sum kappa/(p - x) = delta - x sum kappa/(p (p - x)): no cancellation near 0
        gap = np.array([delta - x * np.sum(kk / (pk * (pk - x))) for x in pf])
        extra = ff / gap
        mu = np.r_[mu, pf]
        resid = np.r_[resid, extra]
    if n:
        resid[0] = a0 - p_inf
    else:  # no kernel: P = F, P(inf) = f0
        mu, resid = np.r_[0.0, mu], np.r_[0.0, resid]
        a0 = 0.0
    r = np.ascontiguousarray(np.atleast_1d(r), dtype=np.int64)
    order = np.r_[0, 1 + np.argsort(mu[1:], kind="stable")]  # slow to fast: see the kernel
    rs = None if np.all(r[1:] >= r[:-1]) else np.argsort(r, kind="stable")
    out = np.empty(r.size)
    err = np.empty(r.size)
    _split_evaluate_kernel(np.ascontiguousarray(mu[order]), np.ascontiguousarray(resid[order]),
                           float(a0), p_inf, r if rs is None else np.ascontiguousarray(r[rs]),
                           out, err)
    if rs is not None:  # the kernel needs non-decreasing r: back to the caller's order
        out[rs], err[rs] = out.copy(), err.copy()
    return out, {"mu": mu, "residues": resid, "p_inf": p_inf, "kernel_norm": 1.0 - delta,
                 "one_minus_norm": delta, "first_amplitude": float(a0),
                 "slope": float(slope), "rounding_error": err, "poles": pk, "origin": origin,
                 "tau": tau}


def norm_sensitivity(info, r, norm_error):
    r"""Bound on the change of :math:`P(r)` when :math:`\|K\|` is off by ``norm_error``.

    Near the edge of stability :math:`P(r)` is dominated by the slow mode
    :math:`P_0(r;\delta) = F_0(1 - e^{-r\delta/S})/\delta`, :math:`\delta = 1 - \|K\|`,
    whose derivative in :math:`\delta` is :math:`F_0 (r/S)^2 G(r\delta/S)` with
    :math:`G(y) = (1 - (1+y)e^{-y})/y^2` (decreasing, :math:`G(0) = 1/2`).  The bound takes
    the worst :math:`\delta' \in [\delta - \Delta, \delta]`: it is finite at every
    ``r`` even when :math:`\Delta \ge \delta` (a finite sum does not care about the sign
    of :math:`\delta`), and tends to :math:`\Delta P(\infty)/\delta` at large ``r``.

    Parameters
    ----------
    info : dict
        The ``info`` of :func:`solve_exponential_volterra`.
    r : ndarray
        Iterations.
    norm_error : float
        :math:`\Delta \ge 0`, the uncertainty of :math:`\|K\|` (quadrature or rounding).

    Returns
    -------
    ndarray
        The bound at ``r`` (``inf`` where it overflows).
    """
    f0 = info["p_inf"] * info["one_minus_norm"]
    s = info["slope"]
    if not (norm_error > 0.0 and f0 > 0.0):
        return np.zeros(np.shape(r))
    x = np.asarray(r, dtype=np.float64) / s
    y = x * (info["one_minus_norm"] - norm_error)
    with np.errstate(over="ignore", invalid="ignore"):
        small = np.abs(y) < 1e-3
        ys = np.where(small, 1.0, y)
        g = np.where(small, 0.5 - y / 3.0 + y * y / 8.0,
                     (-np.expm1(-ys) - ys * np.exp(-ys)) / (ys * ys))
        out = 2.0 * norm_error * f0 * x * x * g
    return np.where(np.isfinite(out), out, np.inf)


def norm_perturbation(p, f, kappa, f0, r, P, info, norm_error):
    r"""Bound on the change of :math:`P(r)` when :math:`\|K\|` is off by ``norm_error``.

    The exact changes under the kernel scaled to :math:`\|K\| - \Delta` and, if
    :math:`\Delta <` half of :math:`\delta = 1 - \|K\|`, to :math:`\|K\| + \Delta` (one or
    two more closed-form solves; the larger of the two, times 1.25; below
    :math:`\Delta = 10^{-3}\delta` the response is linear and the first suffices).  When
    :math:`\Delta \ge \delta/2` the side towards instability cannot be solved; the
    slow-mode bound :func:`norm_sensitivity` (finite even when :math:`\Delta \ge \delta`)
    is added to the stable side's change, which carries the transient's (linear)
    dependence on :math:`\|K\|` that the slow-mode bound misses.

    Parameters
    ----------
    p, f, kappa, f0, r
        As for :func:`solve_exponential_volterra`.
    P, info : ndarray, dict
        Its solution and ``info``.
    norm_error : float
        :math:`\Delta \ge 0`.

    Returns
    -------
    ndarray
        The bound at ``r``.
    """
    delta = info["one_minus_norm"]
    norm = info["kernel_norm"]
    if not norm_error > 0.0 or not norm > 0.0:
        return np.zeros(np.shape(P))
    kappa = np.asarray(kappa, dtype=np.float64)
    step = min(norm_error, 0.5 * norm)
    lower, _ = solve_exponential_volterra(p, f, kappa * (1.0 - step / norm), f0, r,
                                          one_minus_norm=delta + step)
    out = np.abs(lower - P)
    if norm_error < 1e-3 * delta:  # linear regime: the other side moves P by the same
        return 1.25 * (1.0 + 4.0 * norm_error / delta) * out  # to O(Delta/delta)
    if norm_error < 0.5 * delta:
        upper, _ = solve_exponential_volterra(p, f, kappa * (1.0 + norm_error / norm), f0, r,
                                              one_minus_norm=delta - norm_error)
        return 1.25 * np.maximum(out, np.abs(upper - P))
    return 1.25 * out + norm_sensitivity(info, r, norm_error)
