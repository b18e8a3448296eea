r"""Deterministic equivalent of the resolvent of the PLRF model (docs/theory.md, Sec. 6).

The random resolvent :math:`R(z) = (\hat K - z)^{-1}` of
:math:`\hat K = D^{1/2} W W^T D^{1/2}` is replaced by its deterministic equivalent
:math:`\mathrm{diag}\big(1/(\lambda_j m(z) - z)\big)_{j\le v}`, :math:`\lambda_j = j^{-2\alpha}`,
where :math:`m(z)` solves

.. math::

    m(z) = \frac{1}{1 + \frac1d \sum_{j=1}^{v} \frac{\lambda_j}{\lambda_j m(z) - z}},
    \qquad m(\infty) = 1,

on the branch analytic in :math:`\mathbb C \setminus [0, \infty)`.  This module provides

* :func:`tau` and :func:`limit_loss`: the scale :math:`\tau` of :math:`m(z) \approx -\tau z`
  near :math:`z = 0` and the limit level :math:`F_0` (docs/theory.md, Eqs. (6.4), (6.9));
* :func:`resolvent` / :func:`resolvent_m`: :math:`m(z)` at arrays of complex ``z`` with
  residuals, error estimates and status codes, and the derived Stieltjes transforms
  :math:`G_K = d z (1 - m)`, :math:`\mathrm{tr}(W^TDW - z)^{-1} \approx -d m/z` and
  :math:`\mathrm{tr}\,R`; :func:`forcing_transform`: :math:`G_F(z)`;
* :func:`lower_spectral_edge` and :func:`support_bands`: the edges of the support (lower
  edge, outlier bands, top edge) from the critical points of the real inverse map.

See docs/resolvent.md for the algorithms, accuracy and timings.

Sums over ``j`` are split at a cut-off ``J``: ``j <= J`` is summed term by term and the
tail ``j > J`` is expanded in a geometric series whose coefficients are power sums
:math:`\sum_{j=J+1}^{v} (J/j)^s`, evaluated by Euler--Maclaurin (docs/theory.md, Eq. (6.12)).
The cost therefore does not grow with ``v`` beyond ``J``, and ``v = inf`` works when
:math:`2\alpha > 1`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ._numba import njit
from ._validation import check_budget, tau_cost
from .exceptions import ConvergenceError, ConvergenceWarning
from .model import PLRF, SpectralModel, check_model

__all__ = [
    "STATUS",
    "ResolventResult",
    "forcing_transform",
    "limit_loss",
    "lower_spectral_edge",
    "resolvent",
    "resolvent_m",
    "support_bands",
    "tau",
]

# ----------------------------------------------------------------------------------------
# Tail machinery: scaled power sums by Euler--Maclaurin
# ----------------------------------------------------------------------------------------

#: Bernoulli numbers B_2, B_4, ..., B_20 divided by (2p)!.
_BERNOULLI_OVER_FACTORIAL = np.array([
    1.0 / 6.0 / 2.0,
    -1.0 / 30.0 / 24.0,
    1.0 / 42.0 / 720.0,
    -1.0 / 30.0 / 40320.0,
    5.0 / 66.0 / 3628800.0,
    -691.0 / 2730.0 / 479001600.0,
    7.0 / 6.0 / 87178291200.0,
    -3617.0 / 510.0 / 20922789888000.0,
    43867.0 / 798.0 / 6402373705728000.0,
    -174611.0 / 330.0 / 2432902008176640000.0,
])

#: Ratio bound of the tail series: |lambda_j u| <= _RHO for every j > J.
_RHO = 0.5
#: Number of terms of the tail series (_RHO**_N_TAIL < 1e-17).
_N_TAIL = 60
#: Smallest cut-off J.
_J_MIN = 32


@njit
def _scaled_power_sum(s, J, v):
    r"""Return :math:`\sum_{j=J+1}^{v} (J/j)^s` (``v`` a float, possibly ``inf``).

    Terms up to ``j < A = max(J + 1, 1.6 (s + 20))`` are summed explicitly; the rest by
    Euler--Maclaurin with ten Bernoulli corrections, whose remainder is below
    ``(0.1)**19`` times the first term.  ``v = inf`` requires ``s > 1``.
    """
    if v <= J:
        return 0.0
    A = max(J + 1.0, math.ceil(1.6 * (s + 20.0)))
    total = 0.0
    jend = min(v, A - 1.0)
    # explicit part, summed from small terms to large ones
    j = jend
    while j >= J + 1.0:
        total += math.exp(-s * math.log(j / J))
        j -= 1.0
    if v <= A - 1.0:
        return total
    a = A
    fa = math.exp(-s * math.log(a / J))
    if math.isinf(v):
        integral = a * fa / (s - 1.0)
        fb = 0.0
    else:
        b = v
        L = math.log1p((b - a) / a)  # accurate when b/a is close to 1
        t = (1.0 - s) * L
        if t == 0.0:
            ratio = L
        else:
            ratio = -math.expm1(t) / (s - 1.0)
        integral = a * fa * ratio
        fb = math.exp(-s * math.log(b / J))
    em = 0.0
    # f^(2p-1)(x) = -(s)_{2p-1} x^{-(2p-1)} f(x)
    poch = s  # (s)_{2p-1}
    ia = 1.0 / a
    pa = fa * ia  # x^{-(2p-1)} f(x) at a
    if fb != 0.0:
        ib = 1.0 / v
        pb = fb * ib
    else:
        ib = 0.0
        pb = 0.0
    for p in range(_BERNOULLI_OVER_FACTORIAL.size):
        em += _BERNOULLI_OVER_FACTORIAL[p] * poch * (pa - pb)
        poch *= (s + 2.0 * p + 1.0) * (s + 2.0 * p + 2.0)
        pa *= ia * ia
        pb *= ib * ib
    return total + integral + 0.5 * (fa + fb) + em


@njit
def _zeta_partial(s, v):
    r"""Return :math:`\sum_{j=1}^{v} j^{-s}` (``v`` may be ``inf`` if ``s > 1``)."""
    n = min(v, float(_J_MIN))
    total = 0.0
    j = n
    while j >= 1.0:
        total += math.exp(-s * math.log(j))
        j -= 1.0
    if v > n:
        total += math.exp(-s * math.log(n)) * _scaled_power_sum(s, n, v)
    return total


@njit
def _power_sum_table(s0, ds, J, v, out):
    """Fill ``out[k] = sum_{j=J+1}^{v} (J/j)^(s0 + k ds)`` for ``k = 0..len(out)-1``."""
    for k in range(out.size):
        out[k] = _scaled_power_sum(s0 + k * ds, J, v)


# ----------------------------------------------------------------------------------------
# tau and the limit level F0
# ----------------------------------------------------------------------------------------

@njit
def _cutoff_for(scale, two_alpha, v):
    """Smallest admissible cut-off ``J`` with ``scale * J^(-2 alpha) <= _RHO`` (capped at v)."""
    log_j = math.log(max(scale, 1e-300) / _RHO) / two_alpha
    if log_j >= math.log(v):  # also guards exp overflow (tiny alpha)
        return v
    Jf = max(float(math.ceil(math.exp(log_j))), float(_J_MIN))
    if Jf >= v:
        return v
    return Jf


@njit
def _tau_equation(t, alpha, v, d, work):
    r"""Return ``(g, dg/dt)`` of the tau equation at ``tau = exp(t)``.

    :math:`g(t) = \sum_j \tau\lambda_j/(1+\tau\lambda_j) - d`; ``work`` holds
    ``_N_TAIL`` floats.
    """
    two_alpha = 2.0 * alpha
    tau = math.exp(t)
    J = _cutoff_for(tau, two_alpha, v)
    g = 0.0
    gp = 0.0
    j = J
    while j >= 1.0:
        y = tau * math.exp(-two_alpha * math.log(j))
        w = 1.0 / (1.0 + y)
        g += y * w
        gp += y * w * w
        j -= 1.0
    if J < v:
        x = tau * math.exp(-two_alpha * math.log(J))
        _power_sum_table(two_alpha, two_alpha, J, v, work)
        tail = 0.0
        tailp = 0.0
        for k in range(work.size - 1, -1, -1):  # Horner in x for sum_{k>=1} (-1)^{k+1} x^k P_k
            tail = work[k] - x * tail
            tailp = (k + 1.0) * work[k] - x * tailp
        g += x * tail
        gp += x * tailp
    return g - d, gp


@njit
def _bracketed_newton_step(t, g, gp, lo, hi, rtol=4e-16):
    """One safeguarded Newton step for an increasing g(t) with the root in (lo, hi).

    Returns the new iterate, the updated bracket and whether the step or the bracket is
    below ``rtol * max(1, |t|)``.  Also used by :mod:`volterra_sgd.ridge`.
    """
    if g < 0.0:
        lo = t
    else:
        hi = t
    tn = t - g / gp if gp > 0.0 else math.inf
    if not (lo < tn < hi):
        tn = 0.5 * (lo + hi)
    tol = rtol * max(1.0, abs(t))
    return tn, lo, hi, (abs(tn - t) <= tol or hi - lo <= tol)


@njit
def _tau_kernel(alpha, v, d):
    """Solve the tau equation (docs/theory.md, Eq. (6.4)) in ``log tau``; return ``(tau, status)``.

    Status 0: converged; 1: no solution because ``v <= d`` (``tau = inf``);
    2: no convergence in 200 iterations.
    """
    if v <= d:
        return math.inf, 1
    work = np.empty(_N_TAIL)
    # bracket: g < 0 at tau = d / tr D proxy; expand upwards until g > 0
    lo = math.log(d) - 2.0 * alpha * math.log(2.0)  # g(lo) < 0 is checked below
    # steps of 2 in log(tau), doubling after the 8th: log(tau) ~ 2 alpha log(d) can be ~700
    # for large alpha, where 300 evaluations of the tail table took seconds
    glo, _ = _tau_equation(lo, alpha, v, d, work)
    step = 2.0
    k = 0
    while glo >= 0.0:
        lo -= step
        k += 1
        if k >= 8:
            step *= 2.0
        glo, _ = _tau_equation(lo, alpha, v, d, work)
    hi = lo + 2.0
    step = 2.0
    k = 0
    ghi, _ = _tau_equation(hi, alpha, v, d, work)
    while ghi <= 0.0:
        if hi >= 705.0:  # tau would overflow float64 (PLRF refuses such alpha, d)
            return math.inf, 2
        lo = hi
        glo = ghi
        hi = min(hi + step, 705.0)
        k += 1
        if k >= 8:
            step *= 2.0
        ghi, _ = _tau_equation(hi, alpha, v, d, work)
    # safeguarded Newton in t = log tau (g is increasing and convex-concave)
    t = 0.5 * (lo + hi)
    for _ in range(200):
        g, gp = _tau_equation(t, alpha, v, d, work)
        if g == 0.0:
            return math.exp(t), 0
        t, lo, hi, done = _bracketed_newton_step(t, g, gp, lo, hi)
        if done:
            return math.exp(t), 0
    return math.exp(t), 2


@njit
def _limit_loss_kernel(alpha, beta, v, tau):
    r""":math:`F_0 = \sum_j j^{-2(\alpha+\beta)}/(1+\tau j^{-2\alpha})` with the tail series."""
    two_alpha = 2.0 * alpha
    s_c = 2.0 * (alpha + beta)
    J = _cutoff_for(tau, two_alpha, v)
    total = 0.0
    if J < v:
        work = np.empty(_N_TAIL)
        x = tau * math.exp(-two_alpha * math.log(J))
        _power_sum_table(s_c, two_alpha, J, v, work)
        tail = 0.0
        for k in range(work.size - 1, -1, -1):  # sum_k (-x)^k P(s_c + 2 alpha k)
            tail = work[k] - x * tail
        total = math.exp(-s_c * math.log(J)) * tail
    j = J
    while j >= 1.0:
        lj = math.log(j)
        total += math.exp(-s_c * lj) / (1.0 + tau * math.exp(-two_alpha * lj))
        j -= 1.0
    return total


def _check_model(model) -> PLRF:
    return check_model(model)


# ----------------------------------------------------------------------------------------
# General diagonal spectra (SpectralModel): tables from the explicit head + power tail
# ----------------------------------------------------------------------------------------

#: Columns of the general tail tables (contour.py uses 72 terms, the kernels here 60).
_N_GENERAL = 72


@njit
def _general_tables_kernel(lam, c, levels, infinite, t1, c1, p, q, pow_m, tail_m, tail_f):
    r"""Tail tables of a general spectrum, from the last level down (O(72 n) in total).

    ``lam`` (descending) and ``c`` (:math:`\lambda_j b_j^2`, same order) hold the head
    ``j = 1..n``; ``levels`` are cut-offs ``J`` (ascending, last = n).  For level ``J``:
    ``pow_m = P_J`` = the largest eigenvalue with ``j > J`` and
    ``tail_m[k] = sum_{j>J} (lambda_j/P_J)^(k+1)``, ``tail_f[k] = sum_{j>J} c_j
    (lambda_j/P_J)^k``.  If ``infinite``, ``j > n`` continues as
    ``lambda_j = t1 ((n+1)/j)^p``, ``c_j = c1 ((n+1)/j)^q`` (Euler--Maclaurin power sums).
    """
    nl = levels.size
    ncol = tail_m.shape[1]
    n = lam.size
    top = nl - 1
    if infinite:
        pow_m[top] = t1
        for k in range(ncol):
            tail_m[top, k] = 1.0 + _scaled_power_sum(p * (k + 1.0), n + 1.0, math.inf)
            tail_f[top, k] = c1 * (1.0 + _scaled_power_sum(q + p * k, n + 1.0, math.inf))
    else:
        pow_m[top] = lam[n - 1]
        tail_m[top, :] = 0.0
        tail_f[top, :] = 0.0
    for i in range(top - 1, -1, -1):
        J = int(levels[i])
        Jn = int(levels[i + 1])
        P = lam[J]
        if infinite and t1 > P:
            P = t1
        pow_m[i] = P
        ratio = pow_m[i + 1] / P  # <= 1
        rk = ratio
        for k in range(ncol):
            tail_m[i, k] = rk * tail_m[i + 1, k]
            tail_f[i, k] = (rk / ratio) * tail_f[i + 1, k]
            rk *= ratio
        for idx in range(Jn - 1, J - 1, -1):  # smallest terms first
            r = lam[idx] / P
            pw = r
            pf = c[idx]
            for k in range(ncol):
                tail_m[i, k] += pw
                tail_f[i, k] += pf
                pf *= r
                pw *= r
                if pw < 1e-300 and pf < 1e-300:
                    break


class _GeneralTables:
    """Tables of a :class:`~volterra_sgd.SpectralModel` in the layout of :class:`_Tables`.

    ``lam``/``cf`` are the head sorted by decreasing eigenvalue; levels are the progression
    of :class:`_Tables` up to the head length ``n`` (for a finite list the last level is
    ``v``: no tail); ``pow_f`` is 1.  ``requested`` is infinite (the tables never grow: a
    point needing more than the head reports status 3).  ``gen`` packs, per level,
    ``[J, P_J, tail_m (72), tail_f (72)]`` for contour.py.
    """

    __slots__ = ("lam", "cf", "levels", "pow_m", "pow_f", "tail_m", "tail_f", "jmax",
                 "requested", "gen", "trd")

    def __init__(self, model: SpectralModel):
        lam0 = np.asarray(model.head_eigenvalues)
        c0 = np.asarray(model.forcing_coefficients)
        order = np.argsort(-lam0, kind="stable")
        lam = np.ascontiguousarray(lam0[order])
        cf = np.ascontiguousarray(c0[order])
        n = lam.size
        levels = []
        J = float(min(_J_MIN, n))
        while J < n:
            levels.append(J)
            J = float(math.ceil(J * _LEVEL_RATIO))
        levels.append(float(n))
        self.levels = np.array(levels)
        nl = self.levels.size
        infinite = not model.finite
        if infinite:
            p, q = float(model.tail_power), float(model.target_tail_power)
            t1 = float(lam0[-1]) * (n / (n + 1.0)) ** p
            c1 = float(c0[-1]) * (n / (n + 1.0)) ** q
        else:
            p = q = t1 = c1 = 0.0
        pow_m = np.empty(nl)
        tm = np.empty((nl, _N_GENERAL))
        tf = np.empty((nl, _N_GENERAL))
        _general_tables_kernel(lam, cf, self.levels, infinite, t1, c1, p, q, pow_m, tm, tf)
        self.lam = lam
        self.cf = cf
        self.pow_m = pow_m
        self.pow_f = np.ones(nl)
        self.tail_m = np.ascontiguousarray(tm[:, :_N_TAIL])
        self.tail_f = np.ascontiguousarray(tf[:, :_N_TAIL])
        self.gen = np.ascontiguousarray(np.column_stack([self.levels, pow_m, tm, tf]))
        self.jmax = n
        self.requested = math.inf
        self.trd = float(model.trace_data_covariance)
        for a in (self.levels, self.lam, self.cf, self.pow_m, self.pow_f, self.tail_m,
                  self.tail_f, self.gen):
            a.flags.writeable = False


_GENERAL_CACHE: dict = {}


def _general_tables(model: SpectralModel) -> _GeneralTables:
    """Return the cached :class:`_GeneralTables` of ``model`` (keyed by its SHA-256)."""
    key = model.key
    t = _GENERAL_CACHE.get(key)
    if t is None:
        if len(_GENERAL_CACHE) >= 8:
            _GENERAL_CACHE.pop(next(iter(_GENERAL_CACHE), None), None)  # thread-safe eviction
        t = _GeneralTables(model)
        _GENERAL_CACHE[key] = t
    return t


@njit
def _tau_equation_tab(t, d, v, lam, levels, pow_m, tail_m):
    """``(g, dg/dt, status)`` of the tau equation at ``tau = exp(t)`` from general tables."""
    tau = math.exp(t)
    level = _pick_level(tau, v, levels, pow_m)
    if level < 0:
        return math.nan, math.nan, _NEED_LARGER_TABLE
    J = int(levels[level])
    g = 0.0
    gp = 0.0
    for j in range(J - 1, -1, -1):
        y = tau * lam[j]
        w = 1.0 / (1.0 + y)
        g += y * w
        gp += y * w * w
    if levels[level] < v:
        x = tau * pow_m[level]
        row = tail_m[level]
        tail = 0.0
        tailp = 0.0
        for k in range(row.size - 1, -1, -1):
            tail = row[k] - x * tail
            tailp = (k + 1.0) * row[k] - x * tailp
        g += x * tail
        gp += x * tailp
    return g - d, gp, 0


@njit
def _tau_kernel_tab(d, v, trd, lam, levels, pow_m, tail_m):
    """Solve the tau equation from general tables; return ``(tau, status)``.

    Status codes as in ``_tau_kernel``, plus 3: the head is too short for the tail series.
    """
    if v <= d:
        return math.inf, 1
    lo = math.log(0.5 * d / trd)  # g <= tau tr D - d < 0 there
    glo, _, st = _tau_equation_tab(lo, d, v, lam, levels, pow_m, tail_m)
    if st != 0:
        return math.nan, 3
    hi = lo + 2.0
    ghi, _, st = _tau_equation_tab(hi, d, v, lam, levels, pow_m, tail_m)
    while st == 0 and ghi <= 0.0:
        lo = hi
        hi += 2.0
        ghi, _, st = _tau_equation_tab(hi, d, v, lam, levels, pow_m, tail_m)
    if st != 0:
        return math.nan, 3
    t = 0.5 * (lo + hi)
    for _ in range(200):
        g, gp, st = _tau_equation_tab(t, d, v, lam, levels, pow_m, tail_m)
        if st != 0:
            return math.nan, 3
        if g == 0.0:
            return math.exp(t), 0
        t, lo, hi, done = _bracketed_newton_step(t, g, gp, lo, hi)
        if done:
            return math.exp(t), 0
    return math.exp(t), 2


@njit
def _limit_loss_tab(tau, v, lam, cf, levels, pow_m, tail_f):
    r""":math:`F_0 = \sum_j c_j/(1 + \tau\lambda_j)` from general tables (NaN: head too short)."""
    level = _pick_level(tau, v, levels, pow_m)
    if level < 0:
        return math.nan
    J = int(levels[level])
    total = 0.0
    if levels[level] < v:
        x = tau * pow_m[level]
        row = tail_f[level]
        tail = 0.0
        for k in range(row.size - 1, -1, -1):
            tail = row[k] - x * tail
        total = tail
    for j in range(J - 1, -1, -1):
        total += cf[j] / (1.0 + tau * lam[j])
    return total


def _head_too_short(model) -> ConvergenceError:
    return ConvergenceError(
        f"the explicit head of {model} is too short for the tail series at this scale; "
        "build the model with a larger n_explicit")


def tau(model: PLRF | SpectralModel, *, max_cost: float | None = None) -> float:
    r"""Scale :math:`\tau` of :math:`m(z) \approx -\tau z` near 0 (docs/theory.md, Eq. (6.4)).

    Near the origin :math:`m(z) \approx -\tau z`, where :math:`\tau` solves the
    "effective dimension = d" equation

    .. math:: \sum_{j=1}^{v} \frac{\tau}{j^{2\alpha} + \tau} = d .

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model; ``v = inf`` is allowed (it requires :math:`2\alpha > 1`).
    max_cost : float, optional
        Limit on the estimated kernel steps (default ``10**9``, about ``6 J`` steps for a
        cut-off ``J`` of a few ``d``); ``math.inf`` removes it (docs/curves.md, "Cost
        limits").

    Returns
    -------
    float
        :math:`\tau > 0`, or ``math.inf`` when ``v <= d``: the left-hand side is below
        ``v`` for every finite :math:`\tau`, the Gram matrix :math:`W^T D W` is singular and
        all of the target is learnable (:func:`limit_loss` is then 0).

    Raises
    ------
    TypeError
        If ``model`` is not a :class:`~volterra_sgd.PLRF`.
    ValueError
        If the estimated cost exceeds ``max_cost``.
    ConvergenceError
        If the root finder fails (not observed in practice).

    Notes
    -----
    The equation is solved by safeguarded Newton in :math:`\log\tau` (the left-hand side
    is increasing in :math:`\tau`).  Terms with :math:`j \le J`,
    :math:`J = \max(32, \lceil (2\tau)^{1/(2\alpha)} \rceil)`, are summed directly; the
    tail is the alternating series
    :math:`\sum_{k\ge1} (-1)^{k+1}\tau^k \sum_{j>J} j^{-2\alpha k}` with the power sums
    by Euler--Maclaurin, so the relative accuracy is about 1e-15 for any ``v``.
    For :math:`2\alpha > 1` and :math:`v/d \to \infty`,
    :math:`\tau/d^{2\alpha} \to \kappa = \big((\pi/2\alpha)/\sin(\pi/2\alpha)\big)^{-2\alpha}`.

    Examples
    --------
    >>> from volterra_sgd import PLRF
    >>> from volterra_sgd.resolvent import tau
    >>> round(tau(PLRF(1.0, 0.7, 2000, 200)) / 200**2, 5)
    0.44414
    """
    model = _check_model(model)
    check_budget(*tau_cost(model), what="tau", parameter="d (the cut-off J grows like d)",
                 max_cost=max_cost)
    if isinstance(model, SpectralModel):
        g = _general_tables(model)
        t, status = _tau_kernel_tab(float(model.d), float(model.v), g.trd, g.lam, g.levels,
                                    g.pow_m, g.tail_m)
        if status == 3:
            raise _head_too_short(model)
    else:
        t, status = _tau_kernel(float(model.alpha), float(model.v), float(model.d))
    if status == 2:  # pragma: no cover - never observed
        raise ConvergenceError(f"tau: root finding did not converge for {model}")
    return float(t)


def limit_loss(model: PLRF | SpectralModel) -> float:
    r"""Limit level :math:`F_0`, the deterministic irreducible loss (docs/theory.md, Eq. (6.4)).

    .. math:: F_0 = \sum_{j=1}^{v} \frac{j^{-2(\alpha+\beta)}}{1 + \tau j^{-2\alpha}},

    with :math:`\tau` from :func:`tau`; no factor 1/2 (docs/theory.md, Eq. (1.2)).  It is the mass
    of the F-measure at :math:`z = 0` and the limit :math:`F(r \to \infty)`.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model; ``v = inf`` is allowed (it requires :math:`2\alpha > 1`).

    Returns
    -------
    float
        :math:`F_0 \ge 0`.  It is exactly 0 when ``v <= d`` (then :math:`\tau = \infty`:
        the embedding has full rank ``v`` and every target is learnable).

    Raises
    ------
    TypeError
        If ``model`` is not a :class:`~volterra_sgd.PLRF`.

    Notes
    -----
    The tail :math:`j > J` is summed as
    :math:`\sum_k (-\tau)^k \sum_{j>J} j^{-2(\alpha+\beta) - 2\alpha k}` with the power sums
    by Euler--Maclaurin (docs/theory.md, Eq. (6.12)); relative accuracy about 1e-15.

    Examples
    --------
    >>> from volterra_sgd import PLRF
    >>> from volterra_sgd.resolvent import limit_loss
    >>> f"{limit_loss(PLRF(1.0, 0.7, 2000, 200)):.4e}"
    '1.5355e-04'
    """
    model = _check_model(model)
    t = tau(model)
    if math.isinf(t):
        return 0.0
    if isinstance(model, SpectralModel):
        g = _general_tables(model)
        f0 = _limit_loss_tab(t, float(model.v), g.lam, g.cf, g.levels, g.pow_m, g.tail_f)
        if math.isnan(f0):
            raise _head_too_short(model)
        return float(f0)
    return float(_limit_loss_kernel(float(model.alpha), float(model.beta), float(model.v), t))


# ----------------------------------------------------------------------------------------
# Tables for the fixed point m(z): explicit eigenvalues up to J_max, tail coefficients
# ----------------------------------------------------------------------------------------

#: Cut-off levels grow by this factor (overshoot of the needed J at most 19%).
_LEVEL_RATIO = 2.0**0.25
#: Initial and largest size of the explicit part (number of j summed term by term).
_JMAX_MIN = 4096
_JMAX_CAP = 2**24

#: Status codes of the fixed-point kernels (``ResolventResult.status``).
STATUS = {
    0: "converged: fixed-point residual <= 1e-12 on the branch analytic off [0, inf)",
    1: "Newton iteration and continuation did not converge",
    2: "converged, but the fixed-point residual is above 1e-12",
    3: "the cut-off J needed for the tail series exceeds the largest table (2**24 terms)",
    4: "a non-finite value appeared",
}
_OK, _NO_CONVERGENCE, _INACCURATE, _NEED_LARGER_TABLE, _NONFINITE = 0, 1, 2, 3, 4
# internal Newton outcome (not a public status): converged on a wrong branch
_WRONG_BRANCH = 10

#: Residual required for status 0.
RESIDUAL_TOL = 1e-12


@njit
def _fill_tables(alpha, beta, v, levels, lam, cf, pow_m, pow_f, tail_m, tail_f):
    """Fill the eigenvalue arrays and, per cut-off level, the tail-series coefficients.

    ``lam[j-1] = j^(-2a)``, ``cf[j-1] = j^(-2(a+b))``; ``pow_m[i] = J_i^(-2a)``,
    ``pow_f[i] = J_i^(-2(a+b))``; ``tail_m[i, k] = sum_{j>J_i} (J_i/j)^(2a(k+1))`` and
    ``tail_f[i, k] = sum_{j>J_i} (J_i/j)^(2(a+b) + 2ak)`` (zero rows when ``J_i = v``).
    """
    two_alpha = 2.0 * alpha
    s_c = 2.0 * (alpha + beta)
    for j in range(lam.size):
        lj = math.log(j + 1.0)
        lam[j] = math.exp(-two_alpha * lj)
        cf[j] = math.exp(-s_c * lj)
    for i in range(levels.size):
        J = levels[i]
        pow_m[i] = math.exp(-two_alpha * math.log(J))
        pow_f[i] = math.exp(-s_c * math.log(J))
        if J < v:
            _power_sum_table(two_alpha, two_alpha, J, v, tail_m[i])
            _power_sum_table(s_c, two_alpha, J, v, tail_f[i])
        else:
            tail_m[i, :] = 0.0
            tail_f[i, :] = 0.0


class _Tables:
    """Precomputed data of one (alpha, beta, v) for the kernels (not public)."""

    __slots__ = ("lam", "cf", "levels", "pow_m", "pow_f", "tail_m", "tail_f", "jmax",
                 "requested")

    def __init__(self, alpha: float, beta: float, v: float, jmax: int):
        # the cut-off levels are a fixed progression (independent of jmax, so results do
        # not depend on the call history), ending with v itself if v <= jmax
        jmax = int(min(v, jmax))
        self.requested = jmax
        levels = [float(min(_J_MIN, jmax))]
        while levels[-1] < v:
            nxt = float(math.ceil(levels[-1] * _LEVEL_RATIO))
            if nxt >= v and v <= jmax:
                levels.append(float(v))
                break
            if nxt > jmax:
                break
            levels.append(nxt)
        if levels[-1] >= v:
            levels[-1] = float(v)
        self.levels = np.array(levels)
        jmax = int(levels[-1])
        self.jmax = jmax
        n = self.levels.size
        self.lam = np.empty(jmax)
        self.cf = np.empty(jmax)
        self.pow_m = np.empty(n)
        self.pow_f = np.empty(n)
        self.tail_m = np.empty((n, _N_TAIL))
        self.tail_f = np.empty((n, _N_TAIL))
        _fill_tables(alpha, beta, v, self.levels, self.lam, self.cf, self.pow_m, self.pow_f,
                     self.tail_m, self.tail_f)
        for a in (self.levels, self.lam, self.cf, self.pow_m, self.pow_f, self.tail_m,
                  self.tail_f):
            a.flags.writeable = False


_TABLE_CACHE: dict = {}


def _tables(model: PLRF | SpectralModel, jmax: int) -> _Tables:
    """Tables for ``model`` with an explicit part of at least ``jmax`` terms (cached)."""
    if isinstance(model, SpectralModel):
        return _general_tables(model)
    v = float(model.v)
    jmax = int(min(v, jmax))
    key = (float(model.alpha), float(model.beta), v)
    t = _TABLE_CACHE.get(key)
    if t is None or t.requested < jmax:
        if len(_TABLE_CACHE) >= 8:
            _TABLE_CACHE.pop(next(iter(_TABLE_CACHE), None), None)  # thread-safe eviction
        t = _Tables(float(model.alpha), float(model.beta), v, jmax)
        _TABLE_CACHE[key] = t
    return t


# ----------------------------------------------------------------------------------------
# Kernels: sums over j with the tail series, Newton, continuation
# ----------------------------------------------------------------------------------------

@njit
def _pick_level(absu, v, levels, pow_m):
    """Index of the smallest cut-off ``J`` with ``|u| J^(-2a) <= _RHO`` (or ``J = v``), else -1."""
    n = levels.size
    for i in range(n):
        if absu * pow_m[i] <= _RHO or levels[i] >= v:
            return i
    return -1


@njit
def _sums_m(u, level, v, lam, levels, pow_m, tail_m):
    r"""Return the sums over ``j`` at ``u = m/z`` with cut-off ``levels[level]``.

    Returns ``(S1, S2, A)`` with :math:`S_1 = \sum_j \lambda_j/(\lambda_j u - 1)`,
    :math:`S_2 = \sum_j \lambda_j/(\lambda_j u - 1)^2` and
    :math:`A = \sum_j |\lambda_j/(\lambda_j u - 1)|` (up to a factor :math:`\le\sqrt2`), the
    scale of the rounding error of :math:`S_1`.  Terms are added from large to small ``j``
    (smallest first), :math:`S_1` with Kahan compensation; the tail ``j > J`` is the
    series :math:`-J^{-2\alpha}\sum_k x^k T_k`, :math:`x = u J^{-2\alpha}`.
    """
    J = int(levels[level])
    ur = u.real
    ui = u.imag
    s1r = 0.0
    s1i = 0.0
    c1r = 0.0  # Kahan compensations of S1 (it sets the residual floor)
    c1i = 0.0
    s2r = 0.0
    s2i = 0.0
    sab = 0.0
    for j in range(J - 1, -1, -1):
        lj = lam[j]
        ar = lj * ur - 1.0
        ai = lj * ui
        inv = 1.0 / (ar * ar + ai * ai)
        br = ar * inv  # 1/a = br + i bi
        bi = -ai * inv
        y = lj * br - c1r
        t = s1r + y
        c1r = (t - s1r) - y
        s1r = t
        y = lj * bi - c1i
        t = s1i + y
        c1i = (t - s1i) - y
        s1i = t
        s2r += lj * (br * br - bi * bi)
        s2i += lj * (2.0 * br * bi)
        sab += lj * (abs(br) + abs(bi))
    S1 = complex(s1r, s1i)
    S2 = complex(s2r, s2i)
    if levels[level] < v:
        p = pow_m[level]
        x = u * p
        t0 = 0j
        t1 = 0j
        row = tail_m[level]
        for k in range(row.size - 1, -1, -1):
            t0 = t0 * x + row[k]
            t1 = t1 * x + (k + 1.0) * row[k]
        S1 -= p * t0
        S2 += p * t1
        sab += p * abs(t0)
    return S1, S2, sab


@njit
def _branch_ok(z, m, S1, S2, d):
    r"""Whether ``m`` is on the branch analytic in :math:`\mathbb C\setminus[0,\infty)`.

    For :math:`\mathrm{Im}\,z > 0` the Gram-matrix Stieltjes transform :math:`-u = -m/z`
    has :math:`\mathrm{Im}(-u) > 0`, the unique such root (Silverstein--Choi).  When
    :math:`\mathrm{Im}\,u` is at rounding level (``z`` off the support and very close to
    the real axis, or ``z < 0``) the root must lie on a decreasing branch of the real
    inverse :math:`z(u) = 1/u - \frac1d\sum_j \lambda_j/(\lambda_j u - 1)`, i.e.
    :math:`z'(u) < 0`; every spurious real root has :math:`z'(u) > 0`.
    """
    u = m / z
    au = abs(u)
    if z.imag > 0.0:
        if u.imag < -1e-13 * au:
            return True
        if u.imag > 1e-13 * au:
            return False
    elif u.real >= 0.0:  # z < 0: u in (-tau, 0)
        return False
    zp = -1.0 / (u * u) + (S1 + S2) / (d * u)  # z'(u); sum_j l^2/(lu-1)^2 = (S1+S2)/u
    return zp.real <= 0.0


@njit
def _newton(z, m, d, maxit, final, v, lam, levels, pow_m, tail_m):
    r"""Solve :math:`F(m) = m(1 + \delta(m)) - 1 = 0` by Newton's method from ``m``.

    :math:`\delta = \frac1d\sum_j \lambda_j/(\lambda_j m - z)`.

    Returns ``(m, residual, code, sweeps, error_estimate)``: ``code`` 0 (converged on the
    right branch), ``_NO_CONVERGENCE``, ``_WRONG_BRANCH``, ``_NEED_LARGER_TABLE`` or
    ``_NONFINITE``.  ``residual = |F(m)|`` is evaluated at the returned ``m``.  With
    ``final`` the iteration runs until the Newton step is below 4 ulp of ``m`` or the
    residual stagnates at its rounding floor; otherwise it stops when the Newton step is
    below ``1e-6 |m|`` and returns ``m`` after that (unevaluated) correction
    (continuation steps).
    ``error_estimate`` bounds the relative error of ``m``: (residual + rounding floor of
    F) / (|F'(m)| |m|).
    """
    eps = 2.220446049250313e-16
    res = math.inf
    prev_res = math.inf
    res0 = math.inf
    if z.imag == 0.0:  # z < 0: the root is real; keep the iterates real
        m = complex(m.real, 0.0)
    for it in range(maxit):
        u = m / z
        level = _pick_level(abs(u), v, levels, pow_m)
        if level < 0:
            return m, res, _NEED_LARGER_TABLE, it, math.inf
        S1, S2, sab = _sums_m(u, level, v, lam, levels, pow_m, tail_m)
        dz = d * z
        delta = S1 / dz
        F = m * (1.0 + delta) - 1.0
        Fp = 1.0 - S2 / dz
        res = abs(F)
        if not (math.isfinite(res) and math.isfinite(abs(Fp))):
            return m, res, _NONFINITE, it + 1, math.inf
        if Fp == 0.0:
            return m, res, _NO_CONVERGENCE, it + 1, math.inf
        step = F / Fp
        am = abs(m)
        if final:
            # stop when the Newton step no longer changes m, or when the residual has
            # stagnated at the rounding floor (ill-conditioned points near spectral edges)
            floor = 4.0 * eps * (1.0 + am + am * sab / abs(dz))
            done = abs(step) <= 4.0 * eps * am or (
                res <= floor and res >= 0.25 * prev_res and res <= RESIDUAL_TOL)
        else:
            # continuation points: the step bounds the error of m (the residual does not,
            # near a spectral edge where F' -> 0)
            done = abs(step) <= 1e-6 * am
        if done:
            # first-order bound of the relative error of m from the residual and the
            # rounding floor of F (uncompensated-sum bound, pessimistic)
            err = (res + 4.0 * eps * (1.0 + am + am * sab / abs(dz))) / (abs(Fp) * am)
            code = _OK if _branch_ok(z, m, S1, S2, d) else _WRONG_BRANCH
            if not final:
                # continuation points: apply the last (quadratically small) correction so
                # that errors do not accumulate along the path; the residual then refers to
                # the point before it
                m = m - step
            return m, res, code, it + 1, err
        if it == 0:
            res0 = res
        elif it >= 8 and res > 0.5 * res0:
            # no progress: a far start or a wrong basin (near a double root Newton still
            # gains a factor ~4 in the residual per step)
            return m, res, _NO_CONVERGENCE, it + 1, math.inf
        m = m - step
        prev_res = res
    return m, res, _NO_CONVERGENCE, maxit, math.inf


@njit
def _path_point(kind, s, za, zb, x, s0, s1):
    """Point of a continuation path at parameter ``s``.

    kind 0: segment ``za -> zb`` for ``s`` in ``[s0, s1]``; kind 1: vertical line
    ``x + i exp(s)`` (log-height parameter).
    """
    if kind == 0:
        if s1 == s0:
            return zb
        return za + (s - s0) / (s1 - s0) * (zb - za)
    return complex(x, math.exp(s))


@njit
def _track(kind, za, zb, x, s0, s1, h0, hmin, maxit, m, final, budget, d, v, lam, levels,
           pow_m, tail_m):
    """Follow the root along a path from parameter ``s0`` (where the root is ``m``) to ``s1``.

    Adaptive steps (doubled after easy steps, quartered after failures) with a linear
    predictor; ``s0 == s1`` is a single Newton solve at the end point.  ``maxit`` bounds
    the Newton iterations at the end point (8 at intermediate points).  Returns
    ``(m, residual, code, sweeps, error_estimate)``.
    """
    direction = 1.0 if s1 > s0 else -1.0
    single = s1 == s0
    h = min(abs(h0), abs(s1 - s0)) * direction
    table_hit = False
    s = s0
    s_prev = s0
    m_prev = m
    have_prev = False
    sweeps = 0
    res = math.inf
    while True:
        s_new = s + h
        last = single or (s_new - s1) * direction >= 0.0
        if last:
            s_new = s1
        zt = _path_point(kind, s_new, za, zb, x, s0, s1)
        if have_prev:
            m_pred = m + (m - m_prev) * ((s_new - s) / (s - s_prev))
        else:
            m_pred = m
        m_new, res, code, sw, err = _newton(zt, m_pred, d, maxit if last else 8,
                                            last and final, v, lam, levels, pow_m, tail_m)
        sweeps += sw
        if code == _OK:
            m_prev = m
            s_prev = s
            m = m_new
            s = s_new
            have_prev = True
            if last:
                return m, res, _OK, sweeps, err
            if sw <= 3:
                h *= 2.0
        elif code == _NONFINITE:
            return m, res, code, sweeps, math.inf
        else:
            # a table failure may be a transient (an overshooting predictor or Newton
            # iterate): shrink the step; report it only if it persists at the smallest step
            table_hit = code == _NEED_LARGER_TABLE
            h *= 0.25
            if single or abs(h) < hmin:
                return m, res, _NEED_LARGER_TABLE if table_hit else _NO_CONVERGENCE, sweeps, \
                    math.inf
        if sweeps > budget:
            return m, res, _NO_CONVERGENCE, sweeps, math.inf


@njit
def _set_vertical(legs, cz, k, x, eta_a, eta_b, final):
    """Leg ``k``: from ``x + i eta_a`` to ``x + i eta_b`` (log steps; linear to/from 0)."""
    if eta_a > 0.0 and eta_b > 0.0:
        legs[k, 0] = 1.0
        legs[k, 2] = math.log(eta_a)
        legs[k, 3] = math.log(eta_b)
        legs[k, 4] = 2.0
        legs[k, 5] = 1e-7
    else:
        legs[k, 0] = 0.0
        legs[k, 2] = 0.0
        legs[k, 3] = 1.0 if eta_a != eta_b else 0.0
        legs[k, 4] = 0.5
        legs[k, 5] = 1e-9
    legs[k, 1] = x
    legs[k, 6] = 1.0 if final else 0.0
    legs[k, 7] = 40.0
    cz[k, 0] = complex(x, eta_a)
    cz[k, 1] = complex(x, eta_b)


@njit
def _set_segment(legs, cz, k, za, zb, final, maxit):
    """Leg ``k``: the segment ``za -> zb`` (a single Newton solve if ``za == zb``)."""
    legs[k, 0] = 0.0
    legs[k, 1] = 0.0
    legs[k, 2] = 0.0
    legs[k, 3] = 1.0 if za != zb else 0.0
    legs[k, 4] = 0.5
    legs[k, 5] = 1e-6
    legs[k, 6] = 1.0 if final else 0.0
    legs[k, 7] = maxit
    cz[k, 0] = za
    cz[k, 1] = zb


@njit
def _solve_point(z, have_guess, z_prev, m_prev, d, trd, v, lam, levels, pow_m, tail_m):
    """Solve for ``m(z)``, ``Im z >= 0``; warm start from ``(z_prev, m_prev)`` if available.

    Order of attempts: (1) Newton from ``m_prev``; (2) a detour ``z_prev -> z_prev + iH ->
    z + iH -> z`` (``H`` the largest of the distance and the two heights); (3) continuation
    from ``x + i eta0``, ``eta0 = 1e3 max(1, |x|, tr D/d)``, ``m = 1 + tr D/(d z)``, down
    the vertical line (for ``z < 0``: to ``x + i|x|``, then straight to ``x``).  Each
    attempt is a list of legs run by :func:`_track` (a single call site keeps the
    compiled code small).  Returns ``(m, residual, status, sweeps, error_estimate)``.
    """
    budget = 400
    x = z.real
    eta = z.imag
    sweeps = 0
    # legs[k] = kind, x, s0, s1, h0, hmin, final, maxit ; cz[k] = za, zb
    legs = np.empty((3, 8))
    cz = np.empty((3, 2), dtype=np.complex128)
    m = m_prev
    res = math.inf
    code = _NO_CONVERGENCE
    err = math.inf
    # typed (not literal) leg indices and flags: Numba compiles the helpers once each
    I0, I1, I2 = np.int64(0), np.int64(1), np.int64(2)
    YES, NO = np.bool_(True), np.bool_(False)
    for attempt in range(3):
        if attempt < 2 and not have_guess:
            continue
        if attempt == 0:
            n_legs = 1
            _set_segment(legs, cz, I0, z, z, YES, 40.0)
            m = m_prev
        elif attempt == 1:
            n_legs = 3
            H = max(abs(z - z_prev), eta, z_prev.imag)
            _set_vertical(legs, cz, I0, z_prev.real, z_prev.imag, H, NO)
            _set_segment(legs, cz, I1, complex(z_prev.real, H), complex(x, H), NO, 40.0)
            _set_vertical(legs, cz, I2, x, H, eta, YES)
            m = m_prev
        else:
            eta0 = 1e3 * max(1.0, abs(x), trd / d)
            z0 = complex(x, eta0)
            _set_segment(legs, cz, I0, z0, z0, NO, 20.0)
            if eta > 0.0:
                n_legs = 2
                _set_vertical(legs, cz, I1, x, eta0, eta, YES)
            else:
                n_legs = 3
                _set_vertical(legs, cz, I1, x, eta0, abs(x), NO)
                _set_vertical(legs, cz, I2, x, abs(x), 0.0, YES)
            m = 1.0 + trd / (d * z0)
        for k in range(n_legs):
            m, res, code, sw, err = _track(int(legs[k, 0]), cz[k, 0], cz[k, 1], legs[k, 1],
                                           legs[k, 2], legs[k, 3], legs[k, 4], legs[k, 5],
                                           int(legs[k, 7]), m, legs[k, 6] > 0.0,
                                           2 * budget if attempt == 2 else budget, d, v,
                                           lam, levels, pow_m, tail_m)
            sweeps += sw
            if code != _OK:
                break
        if code == _OK or code == _NONFINITE:
            return m, res, code, sweeps, err
    if code == _WRONG_BRANCH:
        code = _NO_CONVERGENCE
    return m, res, code, sweeps, err


@njit
def _m_path_kernel(z, d, trd, v, lam, levels, pow_m, tail_m, m_out, res_out, err_out,
                   status_out, sweeps_out):
    """Solve the fixed point at every ``z[k]`` in order, warm-starting from the last success.

    ``z`` is complex128 (``Im z < 0`` handled by conjugation; ``z`` must not lie on
    ``[0, inf)``), ``d, trd = tr D, v`` floats, the rest are the :class:`_Tables` arrays.
    Fills ``m_out`` (complex128), ``res_out`` and ``err_out`` (float64: residual and
    relative error estimate), ``status_out`` and ``sweeps_out`` (int64; sweeps = passes
    over ``j <= J``).  Returns the number of points with nonzero status.
    """
    have = np.bool_(False)  # not a literal: one specialisation of _solve_point
    zp = 0j
    mp_ = 0j
    nbad = 0
    for k in range(z.size):
        zk = z[k]
        flip = zk.imag < 0.0
        zc = zk.conjugate() if flip else zk
        m, res, st, sw, err = _solve_point(zc, have, zp, mp_, d, trd, v, lam, levels, pow_m,
                                           tail_m)
        if st == _OK and res > RESIDUAL_TOL:
            st = _INACCURATE
        if st == _OK:
            have = np.bool_(True)
            zp = zc
            mp_ = m
        else:
            nbad += 1
        m_out[k] = m.conjugate() if flip else m
        res_out[k] = res
        err_out[k] = err
        status_out[k] = st
        sweeps_out[k] = sw
    return nbad


@njit
def _forcing_transform_kernel(z, m, v, lam, cf, levels, pow_m, pow_f, tail_f, out):
    r"""Fill ``out`` with :math:`G_F(z) = \sum_j j^{-2(\alpha+\beta)}/(j^{-2\alpha} m - z)`.

    ``z, m`` complex128 arrays (``m = m(z)``); the cut-off per point is chosen from
    ``|m/z|`` as in the fixed-point kernel and the tail ``j > J`` is
    :math:`-(J^{-2(\alpha+\beta)}/z)\sum_k x^k T^F_k`, :math:`x = (m/z) J^{-2\alpha}`.
    Returns the number of points whose cut-off exceeded the tables (``out`` is NaN there).
    """
    nbad = 0
    for k in range(z.size):
        zk = z[k]
        u = m[k] / zk
        level = _pick_level(abs(u), v, levels, pow_m)
        if level < 0:
            out[k] = complex(math.nan, math.nan)
            nbad += 1
            continue
        J = int(levels[level])
        ur = u.real
        ui = u.imag
        sr = 0.0
        si = 0.0
        cr = 0.0
        ci = 0.0
        for j in range(J - 1, -1, -1):
            lj = lam[j]
            ar = lj * ur - 1.0
            ai = lj * ui
            inv = cf[j] / (ar * ar + ai * ai)
            y = ar * inv - cr
            t = sr + y
            cr = (t - sr) - y
            sr = t
            y = -ai * inv - ci
            t = si + y
            ci = (t - si) - y
            si = t
        total = complex(sr, si)
        if levels[level] < v:
            x = u * pow_m[level]
            row = tail_f[level]
            t0 = 0j
            for i in range(row.size - 1, -1, -1):
                t0 = t0 * x + row[i]
            total -= pow_f[level] * t0
        out[k] = total / zk
    return nbad


# ----------------------------------------------------------------------------------------
# Spectral edges: critical points of the real inverse map z(u), u = m/z
# ----------------------------------------------------------------------------------------

@njit
def _real_sums(u, v, lam, levels, pow_m, tail_m):
    r"""Real-``u`` sums for the edge equations (docs/theory.md, Eq. (6.11)).

    Returns ``(A, B, C, status)`` with :math:`A = \sum_j \lambda_j/(\lambda_j u - 1)`,
    :math:`B = \sum_j (\lambda_j u/(\lambda_j u - 1))^2` and
    :math:`C = \sum_j \lambda_j^2 u/(\lambda_j u - 1)^3`; then
    :math:`z(u) = 1/u - A/d`, :math:`u^2 z'(u) = B/d - 1` and
    :math:`\frac{d}{du}(B/d) = -2C/d`.  ``status`` is 3 if the tables are too small.
    """
    level = _pick_level(abs(u), v, levels, pow_m)
    if level < 0:
        return math.nan, math.nan, math.nan, _NEED_LARGER_TABLE
    J = int(levels[level])
    A = 0.0
    B = 0.0
    C = 0.0
    for j in range(J - 1, -1, -1):
        lj = lam[j]
        a = 1.0 / (lj * u - 1.0)
        A += lj * a
        y = lj * u * a
        B += y * y
        C += lj * y * a * a
    if levels[level] < v:
        p = pow_m[level]
        x = u * p
        row = tail_m[level]
        # A_tail = -p sum_{k>=0} x^k T_k ; B_tail = sum_{n>=2} (n-1) x^n T_{n-1} ;
        # C_tail = -p sum_{n>=0} (n+1)(n+2)/2 x^(n+1) T_{n+1}
        ta = 0.0
        tb = 0.0
        tc = 0.0
        for k in range(row.size - 1, -1, -1):
            ta = ta * x + row[k]
            tb = tb * x + k * row[k]  # coefficient of x^(k+1): k T_k
            tc = tc * x + 0.5 * k * (k + 1.0) * row[k]  # coefficient of x^k: k(k+1)/2 T_k
        A -= p * ta
        B += x * tb
        C -= p * tc
    return A, B, C, 0

# ----------------------------------------------------------------------------------------
# Public layer
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolventResult:
    r"""Fixed point :math:`m(z)` of the deterministic equivalent at an array of ``z``.

    Attributes
    ----------
    z : ndarray of complex128
        The evaluation points (shape of the input).
    m : ndarray of complex128
        :math:`m(z)` (docs/theory.md, Eq. (6.1)), same shape as ``z``.
    residual : ndarray of float64
        Relative fixed-point residual :math:`|m(1 + \delta(m)) - 1|`,
        :math:`\delta = \frac1d \sum_j \lambda_j/(\lambda_j m - z)`, at the returned ``m``.
    error_estimate : ndarray of float64
        First-order bound of the relative error :math:`|\Delta m|/|m|` from the residual
        and the rounding floor of the sums: (residual + floor) / :math:`|m F'(m)|`.  It
        grows like :math:`|z - \lambda_{edge}|^{-1/2}` near spectral edges, where
        :math:`F'(m) \to 0`.
    status : ndarray of int64
        Per-point status code, decoded by :data:`STATUS` (0 = success).
    success : bool
        Whether every point has status 0.
    message : str
        Summary of the status codes.
    n_sweeps : ndarray of int64
        Work per point: number of passes over the explicit part ``j <= J`` of the sums.
    model : PLRF or SpectralModel
        The model.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> from volterra_sgd.resolvent import resolvent
    >>> res = resolvent(vs.PLRF(1.0, 0.7, 2000, 200), [-1e-3, 1e-3 + 1e-2j])
    >>> res.success, res.status.tolist(), bool(np.all(res.residual < 1e-12))
    (True, [0, 0], True)
    >>> bool(0 < res.m[0].real < 1 and res.m[1].imag < 0)
    True
    """

    z: np.ndarray
    m: np.ndarray
    residual: np.ndarray
    error_estimate: np.ndarray
    status: np.ndarray
    success: bool
    message: str
    n_sweeps: np.ndarray
    model: PLRF | SpectralModel

    @property
    def k_transform(self) -> np.ndarray:
        r""":math:`G_K(z) = d\,z\,(1 - m(z))` (docs/theory.md, Eqs. (6.2), (6.7))."""
        return self.model.d * self.z * (1.0 - self.m)

    @property
    def gram_trace(self) -> np.ndarray:
        r""":math:`\mathrm{tr}(W^T D W - z)^{-1} \approx -d\,m(z)/z` (finite for ``v = inf``)."""
        return -self.model.d * self.m / self.z

    @property
    def trace_resolvent(self) -> np.ndarray:
        r""":math:`\mathrm{tr}\,R(z) \approx d(1 - m)/z - v/z` (finite ``v`` only)."""
        v = self.model._require_finite("trace_resolvent")
        return (self.model.d * (1.0 - self.m) - v) / self.z


def _as_z(z) -> np.ndarray:
    from ._validation import _as_array

    arr = _as_array(z, "z", complex_ok=True)
    if arr.dtype == object or arr.dtype.kind not in "iufc":
        raise TypeError(f"z must be a real or complex array; got dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.complex128, order="C")  # copy, C order
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.ravel()))[0]
        raise ValueError(f"z must be finite; got z.flat[{bad}] = {arr.ravel()[bad]!r}")
    on_cut = (arr.imag == 0.0) & (arr.real >= 0.0)
    if np.any(on_cut):
        bad = np.flatnonzero(on_cut.ravel())[0]
        raise ValueError(
            "z must not lie on [0, inf), the support of the spectrum and branch cut of m(z); "
            f"give points on the spectrum a nonzero imaginary part: got z.flat[{bad}] = "
            f"{arr.ravel()[bad]!r}"
        )
    return arr


def _status_message(status: np.ndarray) -> str:
    if status.size == 0 or not np.any(status):
        return STATUS[0]
    codes, counts = np.unique(status[status != 0], return_counts=True)
    parts = [f"{n} of {status.size} points: {STATUS[int(c)]}"
             for c, n in zip(codes, counts, strict=True)]
    return "; ".join(parts)


def _solve(model: PLRF | SpectralModel, zf: np.ndarray):
    """Run the path kernel on the flat array ``zf``; grow the tables if a point needs it."""
    n = zf.size
    m = np.empty(n, dtype=np.complex128)
    res = np.empty(n)
    err = np.empty(n)
    status = np.zeros(n, dtype=np.int64)
    sweeps = np.zeros(n, dtype=np.int64)
    jmax = max(_JMAX_MIN, 16 * model.d)
    idx = np.arange(n)
    d = float(model.d)
    v = float(model.v)
    if isinstance(model, SpectralModel):
        trd = float(model.trace_data_covariance)
    else:
        trd = _zeta_partial(2.0 * model.alpha, v)  # tr D without forming j = 1..v
    while True:
        t = _tables(model, jmax)
        zz = np.ascontiguousarray(zf[idx])
        mm = np.empty(idx.size, dtype=np.complex128)
        rr = np.empty(idx.size)
        ee = np.empty(idx.size)
        ss = np.empty(idx.size, dtype=np.int64)
        ww = np.empty(idx.size, dtype=np.int64)
        _m_path_kernel(zz, d, trd, v, t.lam, t.levels, t.pow_m, t.tail_m, mm, rr, ee, ss, ww)
        m[idx] = mm
        res[idx] = rr
        err[idx] = ee
        status[idx] = ss
        sweeps[idx] += ww
        retry = ss == _NEED_LARGER_TABLE
        if not np.any(retry) or t.requested >= min(v, _JMAX_CAP):
            break
        idx = idx[retry]
        jmax = min(8 * t.requested, _JMAX_CAP)
    return m, res, err, status, sweeps


def resolvent(model: PLRF | SpectralModel, z, *, throw: bool = True) -> ResolventResult:
    r"""Deterministic-equivalent fixed point :math:`m(z)` with residuals and status.

    Solves (docs/theory.md, Eq. (6.1))

    .. math:: m = \Big(1 + \frac1d\sum_{j=1}^{v}\frac{j^{-2\alpha}}{j^{-2\alpha} m - z}\Big)^{-1}

    on the branch analytic in :math:`\mathbb C\setminus[0,\infty)` with
    :math:`m(\infty) = 1`.  For :math:`\mathrm{Im}\,z > 0`: :math:`\mathrm{Im}\,m < 0` and
    :math:`\mathrm{Im}(m/z) < 0`, so that :math:`-m/z`, :math:`G_F`, :math:`G_K` and
    :math:`\mathrm{tr}\,R` are Stieltjes transforms of positive measures; for real
    :math:`z < 0`, :math:`0 < m < 1`; and :math:`m(\bar z) = \overline{m(z)}`.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model; ``v = inf`` is allowed (it requires :math:`2\alpha > 1`).
    z : array_like of complex
        Evaluation points, any shape, not on :math:`[0, \infty)`.  They are processed in
        C order and each solve is warm-started from the previous point's solution, so
        pass points along a path (e.g. contour nodes in order) for speed.
    throw : bool, default True
        Raise :class:`~volterra_sgd.ConvergenceError` if any point fails; otherwise emit a
        :class:`~volterra_sgd.ConvergenceWarning` and return the result with its status.

    Returns
    -------
    ResolventResult
        ``m``, ``residual``, ``status``, ``success``, ``message``, ``n_sweeps`` and the
        derived transforms ``k_transform``, ``gram_trace``, ``trace_resolvent``.

    Raises
    ------
    TypeError
        If ``model`` is not a PLRF or ``z`` is not numeric.
    ValueError
        If ``z`` has a non-finite entry or an entry on :math:`[0, \infty)` (a real
        :math:`z \ge 0` needs a nonzero imaginary part).
    ConvergenceError
        If ``throw`` and some point did not reach a residual of 1e-12.

    Notes
    -----
    Newton's method on :math:`F(m) = m(1+\delta(m)) - 1`, warm-started from the previous
    point; if it fails or lands on a wrong root, a detour through the upper half-plane
    from the previous point, and finally continuation in :math:`\log\mathrm{Im}\,z` from
    :math:`\mathrm{Im}\,z = 10^3\max(1, |\mathrm{Re}\,z|)` (docs/theory.md, Eqs. (6.8)-(6.9)).  The
    branch test uses :math:`\mathrm{Im}(m/z) < 0` (uniqueness of the Stieltjes root) or,
    at rounding level, :math:`z'(u) < 0` for the real inverse map.  Each sum over ``j``
    runs term by term up to a cut-off ``J`` with :math:`|m/z|\,J^{-2\alpha} \le 1/2`, and
    the rest as a 60-term series in :math:`(m/z)J^{-2\alpha}` with Euler--Maclaurin
    coefficients, so the cost per sweep is :math:`O(J)` whatever ``v``.

    Examples
    --------
    >>> import numpy as np
    >>> from volterra_sgd import PLRF
    >>> from volterra_sgd.resolvent import resolvent
    >>> model = PLRF(1.0, 0.7, 2000, 200)
    >>> res = resolvent(model, np.array([-1.0, 1e-3 + 1e-6j]))
    >>> res.success, bool(np.all(res.residual <= 1e-12))
    (True, True)
    >>> bool(res.m[1].imag < 0)
    True
    """
    model = _check_model(model)
    zarr = _as_z(z)
    m, res, err, status, sweeps = _solve(model, zarr.ravel())
    shape = zarr.shape
    success = bool(np.all(status == 0))
    message = _status_message(status)
    if not success:
        if throw:
            raise ConvergenceError(f"resolvent: {message}")
        warnings.warn(f"resolvent: {message}", ConvergenceWarning, stacklevel=2)
    return ResolventResult(
        z=zarr, m=m.reshape(shape), residual=res.reshape(shape),
        error_estimate=err.reshape(shape), status=status.reshape(shape), success=success,
        message=message, n_sweeps=sweeps.reshape(shape), model=model,
    )


def resolvent_m(model: PLRF | SpectralModel, z, *, throw: bool = True) -> np.ndarray:
    r"""Return the fixed point :math:`m(z)` of docs/theory.md, Eq. (6.1).

    Thin wrapper of :func:`resolvent` returning only ``m`` (same shape as ``z``).

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model.
    z : array_like of complex
        Points off :math:`[0, \infty)`, processed in order with warm starts.
    throw : bool, default True
        Raise :class:`~volterra_sgd.ConvergenceError` on failure (else warn).

    Returns
    -------
    ndarray of complex128
        :math:`m(z)`.

    Examples
    --------
    >>> from volterra_sgd import PLRF
    >>> from volterra_sgd.resolvent import resolvent_m
    >>> m = resolvent_m(PLRF(1.0, 0.7, 2000, 200), [-1e-9])
    >>> bool(0 < m.real[0] < 1)
    True
    """
    return resolvent(model, z, throw=throw).m


class _EdgeMap:
    """The real inverse map ``z(u)`` and ``phi(u) = u^2 z'(u) = B(u)/d - 1`` of one model."""

    def __init__(self, model: PLRF | SpectralModel):
        self.model = model
        self.d = float(model.d)
        self.v = float(model.v)
        self.jmax = max(_JMAX_MIN, 16 * model.d)

    def sums(self, u: float):
        while True:
            t = _tables(self.model, self.jmax)
            A, B, C, st = _real_sums(float(u), self.v, t.lam, t.levels, t.pow_m, t.tail_m)
            if st == 0:
                return A, B, C
            if t.requested >= min(self.v, _JMAX_CAP):
                raise ConvergenceError(f"spectral edges: {STATUS[_NEED_LARGER_TABLE]}")
            self.jmax = min(8 * t.requested, _JMAX_CAP)

    def z(self, u: float) -> float:
        A, _, _ = self.sums(u)
        return 1.0 / u - A / self.d

    def phi(self, u: float) -> float:
        _, B, _ = self.sums(u)
        return B / self.d - 1.0

    def dphi(self, u: float) -> float:
        _, _, C = self.sums(u)
        return -2.0 * C / self.d


def _require_gap(model: PLRF | SpectralModel, what: str) -> None:
    if model.v <= model.d:
        raise ValueError(
            f"{what} needs v > d (then W^T D W is invertible and the spectrum has a gap "
            f"above 0); got v = {model.v}, d = {model.d}"
        )


def lower_spectral_edge(model: PLRF | SpectralModel) -> float:
    r"""Lower edge :math:`\lambda_{min}` of the deterministic spectrum (docs/theory.md, Eq. (6.11)).

    With :math:`u = m/z`, the real inverse map is
    :math:`z(u) = 1/u - \frac1d\sum_j \lambda_j/(\lambda_j u - 1)`; spectral edges are its
    critical points, :math:`\frac1d\sum_j \lambda_j^2u^2/(\lambda_j u - 1)^2 = 1`.  The
    lower edge is :math:`z(u_*)` at the unique root :math:`u_* < 0` (it satisfies
    :math:`u_* < -\tau`).

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model, with ``v > d`` (``v = inf`` allowed).

    Returns
    -------
    float
        :math:`\lambda_{min} > 0`.  It scales like :math:`d^{-2\alpha}` with an
        :math:`\alpha`- and :math:`v/d`-dependent constant: 0.52 at :math:`\alpha = 1,
        v = 10d`; 0.62, 1.89, 0.26 at :math:`\alpha = 1, 0.7, 1.5` and :math:`v = \infty`.

    Raises
    ------
    ValueError
        If ``v <= d`` (no gap above 0).

    Examples
    --------
    >>> from volterra_sgd import PLRF
    >>> from volterra_sgd.resolvent import lower_spectral_edge
    >>> f"{lower_spectral_edge(PLRF(1.0, 0.7, 2000, 200)):.3e}"
    '1.290e-05'
    """
    model = _check_model(model)
    _require_gap(model, "lower_spectral_edge")
    emap = _EdgeMap(model)
    w_lo = tau(model)  # phi(-tau) < 0

    def f(t):
        return emap.phi(-math.exp(t))

    lo = math.log(w_lo)
    hi = lo + 1.0
    while f(hi) <= 0.0:
        lo, hi = hi, hi + 1.0
    t = brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
    return float(emap.z(-math.exp(t)))


def support_bands(model: PLRF | SpectralModel, *, max_outliers: int | None = None) -> np.ndarray:
    r"""Intervals whose union is the support of the deterministic-equivalent spectrum.

    Outside the support the real inverse map :math:`z(u)` (see
    :func:`lower_spectral_edge`) is decreasing; its critical points are the edges.  The
    function finds the lower edge (:math:`u < 0`), the upper edge :math:`\lambda_{max}`
    (:math:`0 < u < 1`) and, between consecutive poles :math:`j^{2\alpha} < u <
    (j+1)^{2\alpha}` where :math:`u^2 z'(u)` is convex, the gap (if any) separating the
    outlier band of :math:`j` from the rest (docs/theory.md, Eq. (6.13): outliers survive
    for :math:`j \lesssim \sqrt d`).  The scan stops after five consecutive ``j`` without a gap.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model, with ``v > d``.
    max_outliers : int, optional
        Scan at most this many ``j`` (default: no limit).

    Returns
    -------
    ndarray, shape (n, 2)
        Disjoint intervals ``[a_k, b_k]``, ascending; ``a_0`` is :math:`\lambda_{min}`,
        ``b_{n-1}`` is :math:`\lambda_{max}`.  Interval ``n-1-j`` (``j < n - 1``) is the
        band of the outlier near :math:`j^{-2\alpha}` (``j = 1`` the largest); each band
        holds the mass of one eigenvalue.

    Raises
    ------
    ValueError
        If ``v <= d``.

    Examples
    --------
    >>> from volterra_sgd import PLRF
    >>> from volterra_sgd.resolvent import support_bands
    >>> bands = support_bands(PLRF(1.0, 0.7, 2000, 200))
    >>> bands.shape[1], bool(bands[-1, 1] > 1.0)
    (2, True)
    """
    model = _check_model(model)
    _require_gap(model, "support_bands")
    emap = _EdgeMap(model)
    if isinstance(model, SpectralModel):  # poles at 1/lambda_j, lambda sorted descending
        lam_sorted = _general_tables(model).lam
        u_pole = 1.0 / lam_sorted[0]

        def poles(j):
            return 1.0 / lam_sorted[j - 1], 1.0 / lam_sorted[j]
    else:
        a2 = 2.0 * model.alpha
        u_pole = 1.0

        def poles(j):
            return j**a2, (j + 1) ** a2
    # upper edge: phi increases from -1 (u -> 0+) to +inf (u -> first pole)
    u_top = brentq(emap.phi, 1e-300 * u_pole, u_pole * (1.0 - 1e-15), xtol=1e-300,
                   rtol=4 * np.finfo(float).eps, maxiter=400)
    edges_hi = [emap.z(u_top)]  # descending list of band edges: top, ..., then bottom
    gaps = []
    misses = 0
    j = 1
    jlimit = int(model.v) - 1 if model.finite else None
    while misses < 5 and (jlimit is None or j <= jlimit):
        if max_outliers is not None and j > max_outliers:
            break
        lo, hi = poles(j)
        if not hi > lo:  # tied eigenvalues: one band holds both
            j += 1
            continue
        eps = 1e-12 * (hi - lo)
        try:
            u_min = brentq(emap.dphi, lo + eps, hi - eps, xtol=1e-14 * lo, maxiter=200)
        except ValueError:  # pragma: no cover - dphi has no sign change (cannot happen)
            u_min = None
        if u_min is not None and emap.phi(u_min) < 0.0:
            ua = brentq(emap.phi, lo + eps, u_min, xtol=1e-15 * lo, maxiter=200)
            ub = brentq(emap.phi, u_min, hi - eps, xtol=1e-15 * lo, maxiter=200)
            gaps.append((emap.z(ub), emap.z(ua)))  # (lower end, upper end) of the gap
            misses = 0
        else:
            misses += 1
        j += 1
    lmin = lower_spectral_edge(model)
    bounds = [lmin]
    for g_lo, g_hi in reversed(gaps):
        bounds.extend([g_lo, g_hi])
    bounds.append(edges_hi[0])
    return np.array(bounds).reshape(-1, 2)


def forcing_transform(model: PLRF | SpectralModel, z, m=None, *, throw: bool = True) -> np.ndarray:
    r"""Stieltjes transform :math:`G_F(z)` of the F-measure (docs/theory.md, Eq. (6.2)).

    .. math:: G_F(z) = \sum_{j=1}^{v} \frac{j^{-2(\alpha+\beta)}}{j^{-2\alpha} m(z) - z}
              \approx \langle R(z) D^{1/2}b, D^{1/2}b\rangle .

    Its density on the real axis is :math:`\mathrm{Im}\,G_F(x + i0)/\pi`; it has a point
    mass :math:`F_0` (:func:`limit_loss`) at 0, so :math:`G_F(z) \approx -F_0/z` as
    :math:`z \to 0`, and total mass :math:`\sum_j j^{-2(\alpha+\beta)}` (the initial loss).
    The loss forcing is :math:`F(r) = F_0 + \frac1\pi\mathrm{Im}\int q(z)^r G_F(z)\,dz`
    over the upper path (docs/theory.md, Eqs. (6.3), (6.6)).

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model.
    z : array_like of complex
        Points off :math:`[0, \infty)`.
    m : array_like of complex, optional
        :math:`m(z)` if already computed (e.g. ``resolvent(model, z).m``); otherwise it is
        computed with :func:`resolvent`.
    throw : bool, default True
        Passed to :func:`resolvent` when ``m`` is computed here.

    Returns
    -------
    ndarray of complex128
        :math:`G_F(z)`, same shape as ``z``.

    Raises
    ------
    ValueError
        If ``m`` does not have the shape of ``z`` or ``z`` is invalid.

    Examples
    --------
    >>> from volterra_sgd import PLRF
    >>> from volterra_sgd.resolvent import forcing_transform, limit_loss
    >>> model = PLRF(1.0, 0.7, 2000, 200)
    >>> z = -1e-12
    >>> g = forcing_transform(model, [z])
    >>> bool(abs(-z * g[0].real / limit_loss(model) - 1) < 1e-5)
    True
    """
    model = _check_model(model)
    zarr = _as_z(z)
    if m is None:
        marr = resolvent(model, zarr, throw=throw).m
    else:
        marr = np.asarray(m, dtype=np.complex128)
        if marr.shape != zarr.shape:
            raise ValueError(f"m must have the shape of z {zarr.shape}; got {marr.shape}")
    zf = np.ascontiguousarray(zarr.ravel())
    mf = np.ascontiguousarray(marr.ravel())
    out = np.empty(zf.size, dtype=np.complex128)
    jmax = max(_JMAX_MIN, 16 * model.d)
    todo = np.arange(zf.size)
    while True:
        t = _tables(model, jmax)
        part = np.empty(todo.size, dtype=np.complex128)
        nbad = _forcing_transform_kernel(zf[todo], mf[todo], float(model.v), t.lam, t.cf,
                                         t.levels, t.pow_m, t.pow_f, t.tail_f, part)
        out[todo] = part
        if nbad == 0 or t.requested >= min(float(model.v), _JMAX_CAP):
            break
        todo = todo[np.isnan(part.real)]
        jmax = min(8 * t.requested, _JMAX_CAP)
    return out.reshape(zarr.shape)


def _warmup() -> None:
    """Compile (or load from the Numba cache) every kernel of this module on a tiny model.

    Meant for :func:`volterra_sgd.warmup` (``_warmup.run``); about 15 s of compilation on
    first use, well under a second once the on-disk cache is filled.
    """
    for model in (PLRF(1.0, 0.7, 40, 8), SpectralModel.from_plrf(PLRF(1.0, 0.7, 40, 8))):
        z = np.array([1e-2 + 1e-3j, -1.0])
        res = resolvent(model, z)
        forcing_transform(model, z, res.m)
        limit_loss(model)
        lower_spectral_edge(model)
