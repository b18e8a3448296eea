r"""Deterministic equivalent of the resolvent of the PLRF model (THEORY.md §3.3).

The random resolvent :math:`R(z) = (\hat K - z)^{-1}` of
:math:`\hat K = D^{1/2} W W^T D^{1/2}` is replaced by its deterministic equivalent
:math:`\mathrm{diag}\big(1/(\lambda_j m(z) - z)\big)_{j\le v}`, :math:`\lambda_j = j^{-2\alpha}`,
where :math:`m(z)` solves

.. math::

    m(z) = \frac{1}{1 + \frac1d \sum_{j=1}^{v} \frac{\lambda_j}{\lambda_j m(z) - z}},
    \qquad m(\infty) = 1,

on the branch analytic in :math:`\mathbb C \setminus [0, \infty)`.  This module provides

* :func:`tau` and :func:`limit_loss`: the scale :math:`\tau` of :math:`m(z) \approx -\tau z`
  near :math:`z = 0` and the limit level :math:`F_0` (THEORY.md §3.3 "Limit level F0");

Sums over ``j`` are split at a cut-off ``J``: ``j <= J`` is summed term by term and the
tail ``j > J`` is expanded in a geometric series whose coefficients are power sums
:math:`\sum_{j=J+1}^{v} (J/j)^s`, evaluated by Euler--Maclaurin (THEORY.md §B.5).  The cost
therefore does not grow with ``v`` beyond ``J``, and ``v = inf`` works when
:math:`2\alpha > 1`.
"""

from __future__ import annotations

import math

import numpy as np

from ._numba import njit
from .exceptions import ConvergenceError
from .model import PLRF

__all__ = [
    "tau",
    "limit_loss",
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
    Jf = math.ceil(math.exp(math.log(max(scale, 1e-300) / _RHO) / two_alpha))
    Jf = max(Jf, float(_J_MIN))
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
def _tau_kernel(alpha, v, d):
    """Solve the tau equation (THEORY.md §3.3) in ``log tau``; return ``(tau, status)``.

    Status 0: converged; 1: no solution because ``v <= d`` (``tau = inf``);
    2: no convergence in 200 iterations.
    """
    if v <= d:
        return math.inf, 1
    work = np.empty(_N_TAIL)
    # bracket: g < 0 at tau = d / tr D proxy; expand upwards until g > 0
    lo = math.log(d) - 2.0 * alpha * math.log(2.0)  # g(lo) < 0 is checked below
    glo, _ = _tau_equation(lo, alpha, v, d, work)
    while glo >= 0.0:
        lo -= 2.0
        glo, _ = _tau_equation(lo, alpha, v, d, work)
    hi = lo + 2.0
    ghi, _ = _tau_equation(hi, alpha, v, d, work)
    while ghi <= 0.0:
        lo = hi
        glo = ghi
        hi += 2.0
        ghi, _ = _tau_equation(hi, alpha, v, d, work)
    # safeguarded Newton in t = log tau (g is increasing and convex-concave)
    t = 0.5 * (lo + hi)
    for _ in range(200):
        g, gp = _tau_equation(t, alpha, v, d, work)
        if g == 0.0:
            return math.exp(t), 0
        if g < 0.0:
            lo = t
        else:
            hi = t
        step = g / gp if gp > 0.0 else math.inf
        tn = t - step
        if not (lo < tn < hi):
            tn = 0.5 * (lo + hi)
        if abs(tn - t) <= 4e-16 * max(1.0, abs(t)) or hi - lo <= 4e-16 * max(1.0, abs(t)):
            return math.exp(tn), 0
        t = tn
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
    if not isinstance(model, PLRF):
        raise TypeError(f"model must be a PLRF; got {type(model).__name__}")
    return model


def tau(model: PLRF) -> float:
    r"""Scale :math:`\tau` of the deterministic equivalent at :math:`z \to 0` (THEORY.md §3.3).

    Near the origin :math:`m(z) \approx -\tau z`, where :math:`\tau` solves the
    "effective dimension = d" equation

    .. math:: \sum_{j=1}^{v} \frac{\tau}{j^{2\alpha} + \tau} = d .

    Parameters
    ----------
    model : PLRF
        The model; ``v = inf`` is allowed (it requires :math:`2\alpha > 1`).

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
    t, status = _tau_kernel(float(model.alpha), float(model.v), float(model.d))
    if status == 2:  # pragma: no cover - never observed
        raise ConvergenceError(f"tau: root finding did not converge for {model}")
    return float(t)


def limit_loss(model: PLRF) -> float:
    r"""Limit level :math:`F_0`, the deterministic irreducible loss (THEORY.md §3.3).

    .. math:: F_0 = \sum_{j=1}^{v} \frac{j^{-2(\alpha+\beta)}}{1 + \tau j^{-2\alpha}},

    with :math:`\tau` from :func:`tau`; no factor 1/2 (THEORY.md §A).  It is the mass of
    the F-measure at :math:`z = 0` and the limit :math:`F(r \to \infty)`.

    Parameters
    ----------
    model : PLRF
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
    by Euler--Maclaurin (THEORY.md §B.5); relative accuracy about 1e-15.

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
    return float(_limit_loss_kernel(float(model.alpha), float(model.beta), float(model.v), t))
