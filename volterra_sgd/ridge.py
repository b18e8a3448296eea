r"""Data-limited random-features regression: ridge and min-norm least squares on T samples.

The model's data :math:`x \sim N(0, D)`, :math:`D = \mathrm{diag}(\lambda_j)_{j\le v}`, target
:math:`y = \langle x, b\rangle + \epsilon` (label noise :math:`\epsilon \sim N(0, \sigma^2)`,
``model.noise_variance``, docs/theory.md, Eq. (9.1)) and the random embedding
:math:`W \in R^{v\times N}` with iid :math:`N(0, 1/N)` entries are those of the SGD model
(docs/theory.md, Sec. 1); :math:`N` is the model's ``d``.  Instead of one-pass SGD the
coefficients are fitted on :math:`T` samples :math:`z_i = W^T x_i`, :math:`y_i`:

.. math::

    \hat\theta = \arg\min_\theta \frac1T \|Z\theta - y\|^2 + \lambda \|\theta\|^2
      = Z^T (Z Z^T + T\lambda)^{-1} y,

and at :math:`\lambda = 0` the minimum-norm least-squares solution :math:`Z^+ y`.  The test
loss is the population loss (excess risk) :math:`P(\hat\theta) =
\|D^{1/2}(W\hat\theta - b)\|^2` (no factor 1/2, docs/theory.md, Eq. (1.2)); the error on a
fresh noisy sample is :math:`P(\hat\theta) + \sigma^2` (``total_loss``).

Deterministic equivalent (docs/ridge.md, derived there).  Two levels:

1. *Samples* (Gaussian design given :math:`W`): the effective regularisation
   :math:`\kappa` solves :math:`\lambda = \kappa\,(1 - \mathrm{df}_1(\kappa)/T)` and
   :math:`P(\hat\theta) \approx P(\theta_\kappa) / (1 - \mathrm{df}_2(\kappa)/T)`, with
   :math:`\mathrm{df}_p = \mathrm{tr}\,\hat K^p(\hat K+\kappa)^{-p}`,
   :math:`\hat K = D^{1/2}WW^TD^{1/2}`, and :math:`P(\theta_\kappa) =
   \kappa^2\langle u, (\hat K+\kappa)^{-2}u\rangle`, :math:`u = D^{1/2}b`, the population loss
   of the population ridge solution (it includes the misspecification :math:`F_0`).
2. *Features*: the traces and the quadratic form are those of the resolvent
   :math:`R(z) = (\hat K - z)^{-1}` and its derivative at :math:`z = -\kappa`, replaced by the
   deterministic equivalent :math:`\mathrm{diag}(1/(\lambda_j m(z) - z))` of docs/theory.md,
   Eq. (6.1).
   Writing :math:`m(-\kappa) = \kappa s`, :math:`s > 0` solves

   .. math:: \kappa s + \frac1N \sum_j \frac{\lambda_j s}{1 + \lambda_j s} = 1,

   and with :math:`S_A = \sum_j \lambda_j/(1+\lambda_j s)^2`,
   :math:`\mu = s S_A/(N\kappa + S_A)` (that is :math:`-m'(-\kappa)`):

   .. math::

       \mathrm{df}_1 = \sum_j \frac{\lambda_j s}{1+\lambda_j s},\quad
       \mathrm{df}_2 = \mathrm{df}_1 - N\kappa\mu,\quad
       P(\theta_\kappa) = \sum_j \lambda_j b_j^2 \frac{1 + \lambda_j \mu}{(1+\lambda_j s)^2}.

   Label noise adds :math:`\sigma^2\mathrm{df}_2/(T - \mathrm{df}_2)` (docs/theory.md,
   Eq. (19.1)).  At :math:`\kappa \to 0` (:math:`N < T`, :math:`\lambda = 0`),
   :math:`s \to \tau` and
   :math:`\mu \to \tau` (docs/theory.md, Eq. (6.4)), so :math:`P(\theta_\kappa) \to F_0` and the
   loss is :math:`F_0/(1 - N/T)`; at :math:`N \to \infty`, :math:`s = 1/\kappa`, :math:`\mu = 0`
   (ridge on :math:`x` directly); at :math:`T = \infty`, :math:`\kappa = \lambda`.

The scalar equations are solved in a Numba kernel by safeguarded Newton in logarithmic
variables (all functions involved are monotone), so the cost is :math:`O(v)` per iteration.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from ._numba import njit
from ._validation import as_exponents, as_int, as_real, check_budget
from .exceptions import ConvergenceError
from .model import PLRF
from .resolvent import _bracketed_newton_step

__all__ = [
    "RidgeEquivalent",
    "RidgeRun",
    "RidgeSurface",
    "BestFeatures",
    "RidgeExponents",
    "ridge_equivalent",
    "ridge_test_loss",
    "ridge_loss_surface",
    "best_n_features",
    "ridge_scaling_exponents",
    "simulate_ridge",
    "OptimalRidge",
    "optimal_ridge",
    "STATUS",
    "OPTIMAL_RIDGE_STATUS",
]

#: Status codes of the deterministic-equivalent kernel.
STATUS = {
    0: "converged",
    1: "the inner fixed point (s) did not converge",
    2: "the effective-regularisation equation (kappa) did not converge",
    3: "interpolation peak: min(N, v) == T at ridge = 0, the loss is infinite",
    4: "a non-finite value appeared",
    5: "the tail series needs a larger explicit part (internal: retried with a larger J)",
}

_MAXIT = 200
_RTOL = 1e-14
#: Infinite spectra: terms of the tail series and the largest x = lambda_J s allowed
#: (truncation error about _X_MAX**_N_TAIL relative to the tail).
_N_TAIL = 48
_X_MAX = 0.5


# ======================================================================== Numba kernels
@njit
def _sums(lam, lam_j, ta, s, out):
    """``out[0] = sum lam s/(1+lam s)`` (df1), ``out[1] = sum lam/(1+lam s)^2`` (S_A).

    ``lam`` are the explicit eigenvalues; the tail ``j > J`` (``lam_j`` = its first
    eigenvalue scale, ``ta[k] = sum_{j>J} (lam_j'/lam_j)^(k+1)``) is summed as the series in
    ``x = lam_j s``; ``out[2]`` is set to 1 when ``x > _X_MAX`` (series too slow).
    """
    a = 0.0
    c = 0.0
    for j in range(lam.shape[0]):
        t = 1.0 / (1.0 + lam[j] * s)
        a += lam[j] * s * t
        c += lam[j] * t * t
    if lam_j > 0.0:
        x = lam_j * s
        if x > _X_MAX:
            out[2] = 1.0
        ta_ = 0.0
        tc = 0.0
        xk = 1.0
        sign = 1.0
        for k in range(ta.shape[0]):
            ta_ += sign * xk * x * ta[k]
            tc += sign * (k + 1) * xk * ta[k]
            xk *= x
            sign = -sign
        a += ta_
        c += lam_j * tc
    out[0] = a
    out[1] = c


@njit
def _p_sum(lam, u2, lam_j, tb, s, mu):
    """``sum u2 (1 + lam mu)/(1 + lam s)^2`` with the tail series (``tb[k] = sum u2 lam^k``)."""
    p = 0.0
    for j in range(lam.shape[0]):
        t = 1.0 / (1.0 + lam[j] * s)
        p += u2[j] * (1.0 + lam[j] * mu) * t * t
    if lam_j > 0.0:
        x = lam_j * s
        xk = 1.0
        sign = 1.0
        for k in range(tb.shape[0] - 1):
            p += sign * (k + 1) * xk * (tb[k] + mu * lam_j * tb[k + 1])
            xk *= x
            sign = -sign
    return p


@njit
def _p0_sum(lam, u2, lam_j, tb, s):
    """``sum u2/(1 + lam s)`` (the limit loss F0 at s = tau) with the tail series."""
    p = 0.0
    for j in range(lam.shape[0]):
        p += u2[j] / (1.0 + lam[j] * s)
    if lam_j > 0.0:
        x = lam_j * s
        xk = 1.0
        sign = 1.0
        for k in range(tb.shape[0]):
            p += sign * xk * tb[k]
            xk *= x
            sign = -sign
    return p


@njit
def _solve_s(lam, lam_j, ta, kappa, n, work):
    r"""Solve ``kappa s + (1/n) sum lam s/(1+lam s) = 1`` for ``s > 0``: ``(s, status)``.

    ``n = inf`` gives ``s = 1/kappa``.  ``kappa = 0`` needs ``v > n`` (else status 1:
    no finite root).  Safeguarded Newton in ``log s``; the left-hand side is increasing.
    """
    if math.isinf(n):
        return 1.0 / kappa, 0
    trd = lam_j * ta[0] if lam_j > 0.0 else 0.0
    for j in range(lam.shape[0]):
        trd += lam[j]
    lo = 1.0 / (kappa + trd / n)  # G(lo) <= 0
    _sums(lam, lam_j, ta, lo, work)
    g = kappa * lo + work[0] / n - 1.0
    if g >= 0.0:
        return lo, 0
    hi = lo
    for _ in range(2000):
        hi *= 2.0
        _sums(lam, lam_j, ta, hi, work)
        g = kappa * hi + work[0] / n - 1.0
        if g > 0.0:
            break
    if not g > 0.0:
        return math.nan, 1
    tlo = math.log(lo)
    thi = math.log(hi)
    t = 0.5 * (tlo + thi)
    for _ in range(_MAXIT):
        s = math.exp(t)
        _sums(lam, lam_j, ta, s, work)
        g = kappa * s + work[0] / n - 1.0
        if g > 0.0:
            thi = t
        else:
            tlo = t
        # dG/dt = kappa s + (1/n) sum lam s/(1+lam s)^2
        dg = kappa * s + s * work[1] / n
        tn = t - g / dg if dg > 0.0 else 0.5 * (tlo + thi)
        if not (tlo < tn < thi):
            tn = 0.5 * (tlo + thi)
        if abs(tn - t) <= _RTOL or thi - tlo <= _RTOL:
            return math.exp(tn), 0
        t = tn
    return math.exp(t), 1


@njit
def _at_kappa(lam, u2, lam_j, ta, tb, kappa, n, work, res):
    r"""Evaluate ``s, df1, df2, P(theta_kappa), mu`` at ``kappa`` into ``res``; return status."""
    s, st = _solve_s(lam, lam_j, ta, kappa, n, work)
    if st != 0:
        return 1
    _sums(lam, lam_j, ta, s, work)
    df1 = work[0]
    sa = work[1]
    if math.isinf(n):
        mu = 0.0
        df2 = df1 - s * sa  # the N -> inf limit of N kappa mu
    else:
        mu = s * sa / (n * kappa + sa)
        df2 = df1 - n * kappa * mu
    p = _p_sum(lam, u2, lam_j, tb, s, mu)
    res[0] = s
    res[1] = df1
    res[2] = df2
    res[3] = p
    res[4] = mu
    return 0


@njit
def _df1_at(lam, lam_j, ta, kappa, n, work):
    s, st = _solve_s(lam, lam_j, ta, kappa, n, work)
    if st != 0:
        return math.nan
    _sums(lam, lam_j, ta, s, work)
    return work[0]


@njit
def _ridge_kernel(lam, u2, lam_j, ta, tb, n, t_samples, ridge, out):
    """Run :func:`_ridge_core`; status 5 whenever the tail series was used beyond ``_X_MAX``."""
    work = np.zeros(3)
    status = _ridge_core(lam, u2, lam_j, ta, tb, n, t_samples, ridge, out, work)
    if work[2] != 0.0:
        return 5
    return status


@njit
def _ridge_core(lam, u2, lam_j, ta, tb, n, t_samples, ridge, out, work):
    r"""Deterministic equivalent of the ridge test loss (module docstring).

    ``lam``: explicit data eigenvalues; ``u2 = lam * b**2``; ``lam_j, ta, tb``: the tail
    beyond the explicit part (``lam_j = 0`` for none; see :func:`_sums`, :func:`_p_sum`;
    status 5 asks for a larger explicit part); ``n``: number of features (may be inf);
    ``t_samples``: number of samples (may be inf); ``ridge >= 0``.  Writes
    ``out = [loss, kappa, s, df1, df2, P(theta_kappa), mu]``; returns a status code.
    """
    res = np.empty(5)
    for i in range(out.shape[0]):
        out[i] = math.nan
    v = math.inf if lam_j > 0.0 else float(lam.shape[0])
    d0 = v if v < n else n  # df1 at kappa -> 0+
    # ---- kappa_0: smallest admissible kappa (df1(kappa_0) = T when d0 >= T)
    kappa0 = 0.0
    if d0 == t_samples and ridge == 0.0:
        out[0] = math.inf
        out[1] = 0.0
        return 3
    if d0 > t_samples:  # (d0 == T with ridge > 0: kappa0 = 0, df1 -> T as kappa -> 0)
        trd = lam_j * ta[0] if lam_j > 0.0 else 0.0
        for j in range(lam.shape[0]):
            trd += lam[j]
        hi = 2.0 * trd / t_samples  # df1 <= trd/kappa < T
        lo = hi
        found = False
        for _ in range(500):  # 0.25^500 ~ 1e-301: stays a normal float
            lo *= 0.25
            f = _df1_at(lam, lam_j, ta, lo, n, work)
            if not math.isfinite(f):
                return 1
            if f > t_samples:
                found = True
                break
        if not found:
            return 2
        tlo = math.log(lo)
        thi = math.log(hi)
        t = 0.5 * (tlo + thi)
        conv = False
        for _ in range(_MAXIT):
            k = math.exp(t)
            st = _at_kappa(lam, u2, lam_j, ta, tb, k, n, work, res)
            if st != 0:
                return st
            # T - df1 increases with log kappa, d/dlog kappa = df1 - df2 > 0
            t, tlo, thi, conv = _bracketed_newton_step(t, t_samples - res[1], res[1] - res[2],
                                                       tlo, thi, _RTOL)
            if conv:
                break
        if not conv:
            return 2
        kappa0 = math.exp(t)
    # ---- kappa: lambda = kappa (1 - df1(kappa)/T), increasing in kappa >= kappa0
    if ridge == 0.0:
        kappa = kappa0
    elif math.isinf(t_samples):
        kappa = ridge
    else:
        lo = kappa0
        hi = max(ridge, kappa0)
        for _ in range(4000):
            hi *= 2.0
            st = _at_kappa(lam, u2, lam_j, ta, tb, hi, n, work, res)
            if st != 0:
                return st
            if hi * (1.0 - res[1] / t_samples) >= ridge:
                break
        if lo > 0.0:
            tlo = math.log(lo)
        else:
            # h(kappa) <= kappa, so the root is >= ridge
            tlo = math.log(ridge)
        thi = math.log(hi)
        t = 0.5 * (tlo + thi)
        conv = False
        for _ in range(_MAXIT):
            k = math.exp(t)
            st = _at_kappa(lam, u2, lam_j, ta, tb, k, n, work, res)
            if st != 0:
                return st
            # h = kappa (1 - df1/T) - ridge, dh/dlog kappa = kappa (1 - df2/T) > 0
            t, tlo, thi, conv = _bracketed_newton_step(
                t, k * (1.0 - res[1] / t_samples) - ridge, k * (1.0 - res[2] / t_samples),
                tlo, thi, _RTOL)
            if conv:
                break
        if not conv:
            return 2
        kappa = math.exp(t)
    # ---- evaluate at kappa
    if kappa == 0.0:
        # N < T (or v < T), ridge = 0: kappa -> 0+ limit
        if v <= n:
            # W^T D W has rank v: every target is representable, F0 = 0
            p = 0.0
            s = math.inf
            df1 = v
            df2 = v
            mu = math.inf
        else:
            s, st = _solve_s(lam, lam_j, ta, 0.0, n, work)
            if st != 0:
                return 1
            p = _p0_sum(lam, u2, lam_j, tb, s)
            df1 = n
            df2 = n
            mu = s
    else:
        st = _at_kappa(lam, u2, lam_j, ta, tb, kappa, n, work, res)
        if st != 0:
            return st
        s = res[0]
        df1 = res[1]
        df2 = res[2]
        p = res[3]
        mu = res[4]
    denom = 1.0 - df2 / t_samples
    out[0] = p / denom
    out[1] = kappa
    out[2] = s
    out[3] = df1
    out[4] = df2
    out[5] = p
    out[6] = mu
    if not (math.isfinite(out[0]) and denom > 0.0):
        return 4
    return 0


@njit
def _ridge_kappa_kernel(lam, u2, lam_j, ta, tb, n, t_samples, kappa, out):
    r"""Evaluate the equivalent at a given effective regularisation ``kappa > 0``.

    The ridge is :math:`\lambda = \kappa(1 - \mathrm{df}_1/T)`; the caller keeps ``kappa``
    at or above the ``kappa`` of ``ridge = 0`` so that it is ``>= 0``.  Writes
    ``out = [P(theta_kappa)/(1 - df2/T), ridge, df1, df2, P(theta_kappa)]``; returns a status
    (5 when the tail series needs a larger explicit part).
    """
    work = np.zeros(3)
    res = np.empty(5)
    for i in range(out.shape[0]):
        out[i] = math.nan
    st = _at_kappa(lam, u2, lam_j, ta, tb, kappa, n, work, res)
    if work[2] != 0.0:
        return 5
    if st != 0:
        return st
    if math.isinf(t_samples):
        denom = 1.0
        ridge = kappa
    else:
        denom = 1.0 - res[2] / t_samples
        ridge = kappa * (1.0 - res[1] / t_samples)
    out[0] = res[3] / denom
    out[1] = ridge
    out[2] = res[1]
    out[3] = res[2]
    out[4] = res[3]
    if not (math.isfinite(out[0]) and denom > 0.0):
        return 4
    return 0


# ====================================================================== friendly layer
def _check_model(model) -> bool:
    """Return whether the model's spectrum is finite; raise TypeError for other objects."""
    finite = getattr(model, "finite", None)
    if finite is None or not hasattr(model, "d"):
        raise TypeError(
            f"model must be a PLRF or SpectralModel (with data_eigenvalues, target, d); "
            f"got {type(model).__name__}")
    return bool(finite)


def _spectrum(model) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(lambda_j, lambda_j b_j^2)`` of a finite model as float64 arrays."""
    if not _check_model(model):
        raise ValueError(
            "simulate_ridge needs a finite spectrum (finite v); this model has v = inf. "
            "Use a finite v much larger than N and T (e.g. v = 20 * max(N, T)).")
    lam = np.ascontiguousarray(model.data_eigenvalues, dtype=np.float64)
    b = np.ascontiguousarray(model.target, dtype=np.float64)
    return lam, np.ascontiguousarray(lam * b * b)


class _Spectrum:
    r"""Explicit eigenvalues, plus a power-law tail beyond ``J`` for infinite spectra.

    Infinite models: :class:`PLRF` with ``v = inf`` (:math:`\lambda_j = j^{-2\alpha}`,
    :math:`\lambda_j b_j^2 = j^{-2(\alpha+\beta)}`) or a ``SpectralModel`` with declared tail
    powers (:math:`\lambda_j = \lambda_n (n/j)^p`, :math:`\lambda_j b_j^2 = \lambda_n b_n^2
    (n/j)^q` beyond its explicit head).  Sums over ``j > J`` are the series of
    :func:`_sums` with the power sums :math:`\sum_{j>J}(J/j)^\sigma` by Euler--Maclaurin
    (``resolvent._scaled_power_sum``, docs/theory.md, Eq. (6.12)); ``J`` grows by 4x until
    :math:`\lambda_J s \le 1/2` at every evaluated point.
    """

    _J_MIN = 4096
    _J_MAX = 2**24

    def __init__(self, model):
        self.finite = _check_model(model)
        self.sigma2 = float(getattr(model, "noise_variance", 0.0))
        self._cache: dict[int, tuple] = {}
        if self.finite:
            lam, u2 = _spectrum(model)
            self._finite = (lam, u2, 0.0, np.zeros(_N_TAIL), np.zeros(_N_TAIL + 1))
            self.v = float(lam.size)
            self._descending = np.sort(lam)[::-1]
            return
        self.v = math.inf
        if isinstance(model, PLRF):
            self._head_lam = np.ones(1)
            self._head_u2 = np.ones(1)
            self._p = 2.0 * model.alpha
            self._q = 2.0 * (model.alpha + model.beta)
        else:
            lam = np.asarray(model.head_eigenvalues, dtype=np.float64)
            b = np.asarray(model.head_target, dtype=np.float64)
            self._head_lam = lam
            self._head_u2 = lam * b * b
            self._p = float(model.tail_power)
            self._q = float(model.target_tail_power)
        self._descending = np.sort(self._head_lam)[::-1]

    def _tables(self, J: int):
        if J not in self._cache:
            from .resolvent import _scaled_power_sum

            n0 = self._head_lam.size
            j = np.arange(n0 + 1, J + 1, dtype=np.float64)
            lam_n, u2_n = self._head_lam[-1], self._head_u2[-1]
            lam = np.concatenate([self._head_lam, lam_n * (n0 / j) ** self._p])
            u2 = np.concatenate([self._head_u2, u2_n * (n0 / j) ** self._q])
            lam_j = lam_n * (n0 / J) ** self._p
            u2_j = u2_n * (n0 / J) ** self._q
            ta = np.array([_scaled_power_sum(self._p * (k + 1), float(J), math.inf)
                           for k in range(_N_TAIL)])
            tb = np.array([u2_j * _scaled_power_sum(self._q + self._p * k, float(J), math.inf)
                           for k in range(_N_TAIL + 1)])
            self._cache[J] = (np.ascontiguousarray(lam), np.ascontiguousarray(u2),
                              float(lam_j), ta, tb)
        return self._cache[J]

    def run(self, n: float, t: float, ridge: float, out: np.ndarray, *,
            ladder: bool = False) -> int:
        """Evaluate the kernel into ``out``; return its status (never 5).

        ``ladder=True`` starts from the smallest table and grows it 4x while the tail series
        asks for more (tables ``_J_MIN * 4**k`` only, so a few are cached whatever ``n`` and
        ``t``); the default sizes the first table from ``4 max(N, T)``.
        """
        if self.finite:
            return int(_ridge_kernel(*self._finite, n, t, ridge, out))
        if math.isinf(n) and math.isinf(t) and ridge == 0.0:
            out[:] = [0.0, 0.0, math.inf, math.inf, math.inf, 0.0, 0.0]
            return 0
        return self._grow(_ridge_kernel, (n, t, ridge, out), n, t, ladder)

    def run_kappa(self, n: float, t: float, kappa: float, out: np.ndarray) -> int:
        """Evaluate :func:`_ridge_kappa_kernel` into ``out`` (table ladder); return its status."""
        if self.finite:
            return int(_ridge_kappa_kernel(*self._finite, n, t, kappa, out))
        return self._grow(_ridge_kappa_kernel, (n, t, kappa, out), n, t, True)

    def _grow(self, kernel, args, n, t, ladder):
        if ladder:
            J = self._J_MIN
            while J < self._head_lam.size:
                J *= 4
        else:
            # cap before sizing the table: 4 N or 4 T may be far beyond _J_MAX (N = 1e15)
            want = [min(self._J_MAX, 4 * int(x)) for x in (n, t) if math.isfinite(x)]
            J = max(self._J_MIN, self._head_lam.size, *want)
        while True:
            status = int(kernel(*self._tables(J), *args))
            if status != 5:
                return status
            if J >= self._J_MAX:
                return 5
            J = min(4 * J, self._J_MAX)

    def eigenvalue(self, k: float) -> float:
        """Return the ``k``-th largest data eigenvalue (``k >= 1``; clipped to ``v``)."""
        n0 = self._descending.size
        if self.finite or k <= n0:
            return float(self._descending[max(1, min(int(k), n0)) - 1])
        return float(self._head_lam[-1] * (n0 / k) ** self._p)

def _as_count(x, name: str, *, allow_inf: bool = False) -> float:
    """Return an integer >= 1 (or ``math.inf`` when allowed) as a float."""
    if allow_inf and isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) \
            and math.isinf(float(x)) and float(x) > 0:
        return math.inf
    return float(as_int(x, name, minimum=1))


def _as_ridge(ridge) -> float:
    return as_real(ridge, "ridge", lower=0.0, lower_open=False)


@dataclass(frozen=True)
class RidgeEquivalent:
    r"""Deterministic equivalent of the ridge / least-squares test loss (:func:`ridge_equivalent`).

    Attributes
    ----------
    loss : float
        The predicted excess risk :math:`E\,P(\hat\theta)` (no 1/2):
        :math:`P(\theta_\kappa)/(1 - \mathrm{df}_2/T)` plus, with label noise, ``noise_loss``
        (docs/theory.md, Eq. (19.1)); ``inf`` at the interpolation peak.
    kappa : float
        Effective regularisation :math:`\kappa` (0 for :math:`\lambda = 0`, :math:`N < T`).
    s : float
        :math:`m(-\kappa)/\kappa` (the resolvent scale; :math:`\tau` at :math:`\kappa = 0`).
    df1, df2 : float
        Degrees of freedom :math:`\mathrm{tr}\,\hat K^p(\hat K+\kappa)^{-p}`, ``p = 1, 2``.
    population_loss : float
        :math:`P(\theta_\kappa)`, the loss of the population ridge solution at :math:`\kappa`.
    variance_factor : float
        :math:`1/(1 - \mathrm{df}_2/T)`.
    n_features, n_samples : float
        :math:`N` and :math:`T` (either may be ``inf``).
    ridge : float
        :math:`\lambda`.
    status : int
        0 on success (see :data:`STATUS`); 3 at the interpolation peak.
    message : str
    noise_variance : float
        The model's label-noise variance :math:`\sigma^2`.
    noise_loss : float
        :math:`\sigma^2\,\mathrm{df}_2/(T - \mathrm{df}_2)`, the part of ``loss`` due to the
        label noise (0 at :math:`\sigma^2 = 0` or :math:`T = \infty`), Eq. (19.1).
    total_loss : float
        ``loss + noise_variance``, the expected squared error on a fresh noisy sample.

    Examples
    --------
    Least squares (``ridge = 0``) with :math:`N = 100` features and :math:`T = 400` samples:
    the loss is the population loss times :math:`1/(1 - N/T)`.

    >>> import volterra_sgd as vs
    >>> eq = vs.ridge_equivalent(vs.PLRF(alpha=1.0, beta=0.7, v=4000, d=100), n_samples=400)
    >>> eq.status, eq.n_features, eq.n_samples, round(eq.variance_factor, 6)
    (0, 100.0, 400.0, 1.333333)
    >>> bool(abs(eq.loss - eq.population_loss * eq.variance_factor) < 1e-15)
    True
    """

    loss: float
    kappa: float
    s: float
    df1: float
    df2: float
    population_loss: float
    variance_factor: float
    n_features: float
    n_samples: float
    ridge: float
    status: int
    message: str
    noise_variance: float
    noise_loss: float
    total_loss: float

    @property
    def success(self) -> bool:
        """Whether the kernel converged (status 0, or 3 = the exact peak, loss = inf)."""
        return self.status in (0, 3)


def _noise_loss(sigma2: float, df2: float, t: float) -> float:
    """Label-noise part of the excess risk, sigma^2 df2/(T - df2) (docs/theory.md, Eq. (19.1))."""
    if sigma2 == 0.0 or math.isinf(t):
        return 0.0
    return sigma2 * df2 / (t - df2)


def _evaluate(spec: _Spectrum, n, t, ridge) -> RidgeEquivalent:
    out = np.empty(7)
    status = spec.run(float(n), float(t), float(ridge), out)
    if status not in (0, 3):
        raise ConvergenceError(
            f"ridge deterministic equivalent failed (N={n}, T={t}, ridge={ridge}): "
            f"{STATUS[status]}")
    loss = float(out[0])
    sigma2 = spec.sigma2
    if status == 3:
        vf = math.inf
        noise = math.inf if sigma2 > 0.0 else 0.0
    else:
        vf = 1.0 if math.isinf(t) else 1.0 / (1.0 - out[4] / t)
        noise = _noise_loss(sigma2, float(out[4]), float(t))
    if sigma2 > 0.0:  # no addition at all without noise: the noiseless bits are unchanged
        loss = loss + noise
    return RidgeEquivalent(loss=loss, kappa=float(out[1]), s=float(out[2]), df1=float(out[3]),
                           df2=float(out[4]), population_loss=float(out[5]),
                           variance_factor=float(vf), n_features=float(n),
                           n_samples=float(t), ridge=float(ridge), status=status,
                           message=STATUS[status], noise_variance=sigma2, noise_loss=noise,
                           total_loss=loss + sigma2)


def ridge_equivalent(model, n_samples, ridge: float = 0.0, *,
                     n_features=None) -> RidgeEquivalent:
    r"""Deterministic equivalent of ridge / min-norm least squares on random features.

    Parameters
    ----------
    model : PLRF or SpectralModel
        Supplies the data eigenvalues :math:`\lambda_j`, the target :math:`b_j`, the label-noise
        variance :math:`\sigma^2` = ``model.noise_variance`` and the
        number of random features :math:`N` = ``model.d``.  Infinite spectra (``PLRF`` with
        ``v = inf``, ``SpectralModel`` with declared tail powers) are summed exactly up to a
        cut-off and by a convergent series beyond it.
    n_samples : int or math.inf
        Number of training samples :math:`T \ge 1`; ``math.inf`` gives the population
        ridge solution (:math:`\kappa = \lambda`; at ``ridge = 0`` the limit loss
        :math:`F_0`).
    ridge : float
        :math:`\lambda \ge 0` in :math:`\frac1T\|Z\theta-y\|^2 + \lambda\|\theta\|^2`;
        0 means the minimum-norm least-squares solution.
    n_features : int, math.inf or None
        Overrides ``model.d``; ``math.inf`` is ridge directly on :math:`x` (the
        :math:`N = \infty` limit, one-level equivalent).

    Returns
    -------
    RidgeEquivalent
        ``loss`` and the intermediate quantities (``kappa``, ``df1``, ``df2``, ...).

    Raises
    ------
    TypeError
        If ``model`` has no explicit spectrum or a count is not an integer.
    ValueError
        If ``n_samples < 1`` or ``ridge < 0`` or non-finite.
    ConvergenceError
        If a root finder fails (not observed).

    Notes
    -----
    Equations in the module docstring and docs/ridge.md; label noise adds
    :math:`\sigma^2\mathrm{df}_2/(T-\mathrm{df}_2)` to ``loss`` (Eq. (19.1)), so the total
    error is :math:`(P(\theta_\kappa) + \sigma^2)/(1 - \mathrm{df}_2/T)`.  The feature-level
    equivalent is
    the fixed point of docs/theory.md, Eq. (6.1), evaluated at :math:`z = -\kappa < 0`, where it is
    monotone and has a unique root.  At ``ridge = 0`` and :math:`\min(N, v) = T` the loss is
    infinite (the interpolation peak) and ``status = 3``.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=4000, d=100)
    >>> eq = vs.ridge_equivalent(model, n_samples=400)
    >>> abs(eq.loss - vs.limit_loss(model) / (1 - 100 / 400)) < 1e-12
    True
    """
    spec = _Spectrum(model)
    n = _as_count(model.d if n_features is None else n_features, "n_features", allow_inf=True)
    t = _as_count(n_samples, "n_samples", allow_inf=True)
    return _evaluate(spec, n, t, _as_ridge(ridge))


def ridge_test_loss(model, n_samples, ridge: float = 0.0) -> float:
    r"""Deterministic-equivalent test loss of ridge regression on ``model.d`` random features.

    Parameters
    ----------
    model : PLRF or SpectralModel
        Finite or infinite spectrum; ``model.d`` is the number of random features :math:`N`.
    n_samples : int or math.inf
        Number of training samples :math:`T`.
    ridge : float
        Ridge :math:`\lambda \ge 0` (objective :math:`\frac1T\|Z\theta - y\|^2 +
        \lambda\|\theta\|^2`); 0 is min-norm least squares.

    Returns
    -------
    float
        Predicted excess risk :math:`E\,P(\hat\theta)` (no factor 1/2; with label noise it
        includes :math:`\sigma^2\mathrm{df}_2/(T-\mathrm{df}_2)`, Eq. (19.1), but not
        :math:`\sigma^2` itself); ``inf`` at the interpolation peak (``ridge = 0``,
        :math:`N = T`).

    Raises
    ------
    TypeError, ValueError, ConvergenceError
        As :func:`ridge_equivalent`.

    See Also
    --------
    ridge_equivalent : the same with the intermediate quantities.
    simulate_ridge : Monte-Carlo check.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> f"{vs.ridge_test_loss(model, n_samples=1000, ridge=1e-3):.4e}"
    '5.5456e-04'
    """
    return ridge_equivalent(model, n_samples, ridge).loss


# ---------------------------------------------------------------------------- surfaces
@dataclass(frozen=True)
class RidgeSurface:
    r"""Deterministic loss surface :math:`L(N, T)` (:func:`ridge_loss_surface`).

    Attributes
    ----------
    n_features : ndarray
        :math:`N` values (rows; may contain ``inf``).
    n_samples : ndarray
        :math:`T` values (columns; may contain ``inf``).
    loss : ndarray, shape (len(n_features), len(n_samples))
        :math:`L(N, T)`; ``inf`` at the interpolation peak.
    kappa : ndarray
        Effective regularisation at each point.
    ridge : float
    noise_variance : float
        The model's :math:`\sigma^2`; ``loss`` is the excess risk, ``loss + noise_variance``
        the total error.

    Examples
    --------
    >>> import math, numpy as np, volterra_sgd as vs
    >>> surf = vs.ridge_loss_surface(vs.PLRF(1.0, 0.7, 2000, 1), [50, 100, math.inf],
    ...                              [100, 400, math.inf])
    >>> surf.loss.shape, bool(np.isinf(surf.loss[1, 0]))   # N = T = 100: interpolation peak
    ((3, 3), True)
    >>> float(surf.loss[2, 2])                             # N = T = infinity: no error left
    0.0
    """

    n_features: np.ndarray
    n_samples: np.ndarray
    loss: np.ndarray
    kappa: np.ndarray
    ridge: float
    noise_variance: float = 0.0


def _as_count_array(x, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {arr.shape}")
    fin = np.isfinite(arr)
    if np.any(np.isnan(arr)) or np.any(arr[~fin] < 0):
        raise ValueError(f"{name} must hold integers >= 1 or inf; got {arr!r}")
    if np.any(arr[fin] < 1) or np.any(arr[fin] != np.round(arr[fin])):
        raise ValueError(f"{name} must hold integers >= 1 or inf; got {arr!r}")
    return arr


def ridge_loss_surface(model, n_features, n_samples, ridge: float = 0.0) -> RidgeSurface:
    r"""Deterministic test loss :math:`L(N, T)` on a grid (``model.d`` is ignored).

    Parameters
    ----------
    model : PLRF or SpectralModel
        Supplies the spectrum and target (finite or infinite).
    n_features : array_like
        Numbers of features :math:`N` (integers >= 1 or ``inf``).
    n_samples : array_like
        Numbers of samples :math:`T` (integers >= 1 or ``inf``).
    ridge : float
        :math:`\lambda \ge 0`.

    Returns
    -------
    RidgeSurface
        ``loss[i, k]`` is :math:`L(N_i, T_k)`.  Row :math:`N = \infty` is ridge on
        :math:`x`; column :math:`T = \infty` is the population ridge loss (at ``ridge = 0``
        the limit loss :func:`~volterra_sgd.limit_loss`).

    Examples
    --------
    >>> import math, numpy as np, volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=1)
    >>> surf = vs.ridge_loss_surface(model, [50, 100, math.inf], [100, 400, math.inf])
    >>> bool(np.isinf(surf.loss[1, 0]))   # N = T = 100: the interpolation peak
    True
    """
    spec = _Spectrum(model)
    ns = _as_count_array(n_features, "n_features")
    ts = _as_count_array(n_samples, "n_samples")
    ridge = _as_ridge(ridge)
    loss = np.empty((ns.size, ts.size))
    kap = np.empty_like(loss)
    for i, n in enumerate(ns):
        for k, t in enumerate(ts):
            eq = _evaluate(spec, n, t, ridge)
            loss[i, k] = eq.loss
            kap[i, k] = eq.kappa
    return RidgeSurface(ns, ts, loss, kap, ridge, spec.sigma2)


@dataclass(frozen=True)
class BestFeatures:
    r"""Result of :func:`best_n_features`.

    Attributes
    ----------
    n_features : float
        The :math:`N` of the grid with the smallest deterministic loss (may be ``inf`` when
        the grid contains it and it wins).
    loss : float
        The loss there.
    grid : ndarray
        The :math:`N` values tried.
    losses : ndarray
        :math:`L(N, T)` on the grid.
    n_samples : float
    ridge : float

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=1)
    >>> best = vs.best_n_features(model, n_samples=200, n_features=np.arange(1, 200))
    >>> best.grid.shape, bool(best.loss == best.losses.min())
    ((199,), True)
    """

    n_features: float
    loss: float
    grid: np.ndarray
    losses: np.ndarray
    n_samples: float
    ridge: float


def best_n_features(model, n_samples, ridge: float = 0.0, n_features=None) -> BestFeatures:
    r"""Find the number of features :math:`N` minimising the deterministic loss at fixed :math:`T`.

    Parameters
    ----------
    model : PLRF or SpectralModel
        Supplies the spectrum; ``model.d`` is ignored.
    n_samples : int
        :math:`T`.
    ridge : float
        :math:`\lambda \ge 0`.
    n_features : array_like or None
        Candidate :math:`N`; default: 200 log-spaced integers from 1 to ``v`` (infinite
        spectra: to ``100 T``) plus ``inf``.

    Returns
    -------
    BestFeatures

    Notes
    -----
    Without label noise and at ``ridge = 0`` the loss keeps decreasing past the peak for
    power-law spectra, so the best :math:`N` is often the largest one tried (or
    ``inf``); the under-parameterised optimum is ``argmin`` over :math:`N < T`
    (use ``n_features=range(1, T)``).  A positive ridge removes the peak.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=1)
    >>> best = vs.best_n_features(model, n_samples=200, n_features=np.arange(1, 200))
    >>> 1 <= best.n_features < 200
    True
    """
    spec = _Spectrum(model)
    t = _as_count(n_samples, "n_samples", allow_inf=True)
    if n_features is None:
        top = spec.v if spec.finite else 100.0 * (t if math.isfinite(t) else 1000.0)
        grid = np.unique(np.round(np.logspace(0, math.log10(top), 200)))
        grid = np.append(grid, math.inf)
    else:
        grid = _as_count_array(n_features, "n_features")
    surf = ridge_loss_surface(model, grid, [t], ridge)
    losses = surf.loss[:, 0]
    i = int(np.argmin(losses))
    return BestFeatures(float(grid[i]), float(losses[i]), grid, losses, t, surf.ridge)


# ------------------------------------------------------------------------ optimal ridge
#: Status codes of :func:`optimal_ridge`.
OPTIMAL_RIDGE_STATUS = {
    0: "interior minimum in the ridge",
    1: "ridge = 0 is optimal (the loss does not decrease from ridge = 0)",
    2: "the minimum is at the upper end of the search range (the loss approaches that of "
       "the zero predictor)",
}
#: Search range of the effective regularisation above its ridge-0 value, relative to the
#: min(N, T, v)-th and the largest data eigenvalue, and scan points per decade.
_KAPPA_LO = 1e-4
_KAPPA_HI = 1e2
_SCAN_PER_DECADE = 2


def _as_model(model_or_params, name: str = "model_or_params"):
    """Return the model, or ``PLRF(alpha, beta, v=inf, d=1)`` for a pair ``(alpha, beta)``."""
    if isinstance(model_or_params, (tuple, list)):
        if len(model_or_params) != 2:
            raise ValueError(f"{name} must be a PLRF, a SpectralModel or a pair "
                             f"(alpha, beta); got a sequence of length {len(model_or_params)}")
        alpha, beta = model_or_params
        alpha = as_real(alpha, "alpha", lower=0.5)
        beta = as_real(beta, "beta")
        return PLRF(alpha, beta, math.inf, 1)
    _check_model(model_or_params)
    return model_or_params


@dataclass(frozen=True)
class OptimalRidge:
    r"""The ridge minimising the deterministic test loss at :math:`(N, T)` (:func:`optimal_ridge`).

    Attributes
    ----------
    ridge : float
        :math:`\lambda^\star \ge 0` (0 when no positive ridge lowers the loss).
    loss : float
        The excess risk at :math:`\lambda^\star` (with label noise, Eq. (19.1)).
    total_loss : float
        ``loss + noise_variance``.
    kappa : float
        Effective regularisation at :math:`\lambda^\star`.
    loss_at_zero : float
        The loss at :math:`\lambda = 0` (``inf`` at the interpolation peak).
    n_features, n_samples : float
        :math:`N` and :math:`T`.
    noise_variance : float
        The model's :math:`\sigma^2`.
    n_evaluations : int
        Evaluations of the deterministic equivalent.
    status : int
        See :data:`OPTIMAL_RIDGE_STATUS`: 0 interior minimum, 1 :math:`\lambda^\star = 0`,
        2 at the upper end of the search range.
    message : str

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> opt = vs.optimal_ridge((1.0, 0.7), 100, 1000)
    >>> opt.status, opt.ridge > 0, opt.loss < opt.loss_at_zero
    (0, True, True)
    """

    ridge: float
    loss: float
    total_loss: float
    kappa: float
    loss_at_zero: float
    n_features: float
    n_samples: float
    noise_variance: float
    n_evaluations: int
    status: int
    message: str

    @property
    def success(self) -> bool:
        """Always True: every status is a located minimum over the search range."""
        return True


def _loss_at_kappa(spec: _Spectrum, n: float, t: float, kappa: float, out: np.ndarray) -> float:
    """Excess risk at the effective regularisation ``kappa`` (ridge in ``out[1]``)."""
    status = spec.run_kappa(n, t, kappa, out)
    if status != 0:
        raise ConvergenceError(f"ridge deterministic equivalent failed (N={n}, T={t}, "
                               f"kappa={kappa}): {STATUS[status]}")
    return float(out[0]) + _noise_loss(spec.sigma2, float(out[3]), t)


def _optimal_ridge(spec: _Spectrum, n: float, t: float, xtol: float = 1e-7) -> OptimalRidge:
    """Minimise the equivalent over the ridge by a scan and Brent in ``log(kappa - kappa_0)``."""
    from scipy.optimize import minimize_scalar

    out = np.empty(7)
    status = spec.run(n, t, 0.0, out, ladder=True)
    if status not in (0, 3) and abs(min(n, spec.v) - t) <= 1e-9 * t:
        # within 1e-9 of the peak (non-integer N, T only): the ridge-0 equations are
        # ill-conditioned; kappa_0 is below 1e-9 of the scan's lower end and the loss at
        # ridge 0 is above 1e4 times the noiseless loss, so treat the point as the peak
        status = 3
        out[1] = 0.0
    if status not in (0, 3):
        raise ConvergenceError(f"ridge deterministic equivalent failed (N={n}, T={t}, "
                               f"ridge=0): {STATUS[status]}")
    kappa0 = float(out[1])
    if status == 3:
        loss0 = math.inf
    else:
        loss0 = float(out[0]) + _noise_loss(spec.sigma2, float(out[4]), t)

    def result(ridge, loss, kappa, code, n_eval):
        return OptimalRidge(ridge=ridge, loss=loss, total_loss=loss + spec.sigma2,
                            kappa=kappa, loss_at_zero=loss0, n_features=n, n_samples=t,
                            noise_variance=spec.sigma2, n_evaluations=n_eval, status=code,
                            message=OPTIMAL_RIDGE_STATUS[code])

    if math.isinf(t):  # kappa = ridge and P(theta_kappa) increases with kappa
        return result(0.0, loss0, kappa0, 1, 1)
    k = min(n, t, spec.v)
    lo = math.log(_KAPPA_LO * spec.eigenvalue(k))
    hi = math.log(_KAPPA_HI * spec.eigenvalue(1))
    grid = np.linspace(lo, hi, max(3, int(math.ceil((hi - lo) / math.log(10.0)
                                                    * _SCAN_PER_DECADE)) + 1))
    kout = np.empty(5)
    count = [1]

    def f(u):
        count[0] += 1
        return math.log(_loss_at_kappa(spec, n, t, kappa0 + math.exp(u), kout))

    vals = np.array([f(u) for u in grid])
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": xtol})
    u = float(res.x) if res.fun <= vals[i] else float(grid[i])
    best = _loss_at_kappa(spec, n, t, kappa0 + math.exp(u), kout)
    count[0] += 1
    if loss0 <= best:
        return result(0.0, loss0, kappa0, 1, count[0])
    code = 2 if u >= hi - 2.0 * xtol else 0
    return result(float(kout[1]), best, kappa0 + math.exp(u), code, count[0])


def optimal_ridge(model_or_params, n_features, n_samples) -> OptimalRidge:
    r"""Find the ridge :math:`\lambda^\star(N, T)` minimising the deterministic test loss.

    Parameters
    ----------
    model_or_params : PLRF, SpectralModel or (alpha, beta)
        The data model (``model.d`` is ignored; its ``noise_variance`` counts); a pair
        ``(alpha, beta)`` means ``PLRF(alpha, beta, v=inf, d=1)``.
    n_features : int or math.inf
        Number of random features :math:`N`.
    n_samples : int or math.inf
        Number of training samples :math:`T`.

    Returns
    -------
    OptimalRidge
        :math:`\lambda^\star`, the loss there and at :math:`\lambda = 0`, the effective
        regularisation and a status.

    Raises
    ------
    TypeError
        If the model is not a model or a pair, or a count is not an integer.
    ValueError
        If a count is below 1 or an exponent is out of range.
    ConvergenceError
        If the equivalent fails at a point of the search (not observed).

    Notes
    -----
    Eq. (19.2): the ridge enters the equivalent only through the effective regularisation
    :math:`\kappa`, and :math:`\lambda = \kappa(1 - \mathrm{df}_1(\kappa)/T)` increases with
    :math:`\kappa \ge \kappa_0` (:math:`\kappa_0` the value at :math:`\lambda = 0`), so the
    search runs over :math:`\log(\kappa - \kappa_0)` without solving for :math:`\kappa` at each
    point: a scan with two points per decade from :math:`10^{-4}\lambda_k`,
    :math:`k = \min(N, T, v)`, to :math:`10^{2}\lambda_1`, then Brent's method between the
    neighbours of the best scan point (to ``1e-7`` in :math:`\log(\kappa-\kappa_0)`), then a
    comparison with the exact value at :math:`\lambda = 0`.  So :math:`\lambda \to 0` is handled
    by that comparison (status 1) and an infinite loss there (the peak :math:`N = T`) just
    moves the minimum inward.  A minimum below :math:`\kappa_0 + 10^{-4}\lambda_k` is reported
    as :math:`\lambda = 0` (the loss there differs by a relative :math:`O(10^{-4})` at most).
    At :math:`T = \infty` the loss :math:`P(\theta_\lambda)` increases with :math:`\lambda`, so
    :math:`\lambda^\star = 0`.  Cost: about 40 evaluations, each :math:`O(v)` (finite spectra)
    or :math:`O(\min(N, T))` (infinite ones).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> m = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=1, noise_variance=1e-4)
    >>> opt = vs.optimal_ridge(m, 100, 400)
    >>> opt.status, f"{opt.ridge:.3e}", f"{opt.loss:.4e}", f"{opt.loss_at_zero:.4e}"
    (0, '5.966e-05', '7.8665e-04', '8.4644e-04')
    """
    model = _as_model(model_or_params)
    spec = _Spectrum(model)
    n = _as_count(n_features, "n_features", allow_inf=True)
    t = _as_count(n_samples, "n_samples", allow_inf=True)
    return _optimal_ridge(spec, n, t)


# -------------------------------------------------------------------- scaling exponents
@dataclass(frozen=True)
class RidgeExponents:
    r"""Closed-form scaling exponents of the power-law model (docs/ridge.md).

    :math:`\lambda_j = j^{-2\alpha}`, :math:`b_j = j^{-\beta}`, :math:`v = \infty`.

    Attributes
    ----------
    features : float
        :math:`L(N, T=\infty, \lambda=0) = F_0(N) \asymp N^{-a}`,
        :math:`a = \min(2\alpha, 2\alpha + 2\beta - 1)`.
    samples : float
        :math:`L(N=\infty, T, \lambda=0) \asymp T^{-c}`,
        :math:`c = \min(4\alpha, 2\alpha + 2\beta - 1)`.
    ridge : float
        :math:`L(N=\infty, T=\infty, \lambda) \asymp \lambda^{c/(2\alpha)}`.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> ex = vs.ridge_scaling_exponents(1.0, 0.3)
    >>> ex.features, ex.samples, ex.ridge
    (1.6, 1.6, 0.8)
    """

    features: float
    samples: float
    ridge: float


def ridge_scaling_exponents(alpha: float, beta: float) -> RidgeExponents:
    r"""Closed-form exponents of :math:`L(N)`, :math:`T=\infty`, and :math:`L(T)`, :math:`N=\infty`.

    Parameters
    ----------
    alpha, beta : float
        Power-law exponents, :math:`2\alpha > 1`, :math:`2(\alpha+\beta) > 1`.

    Returns
    -------
    RidgeExponents

    Notes
    -----
    Derived in docs/ridge.md: at :math:`T = \infty`, min-norm,
    :math:`L = F_0(N) \asymp N^{-\min(2\alpha,\,2\alpha+2\beta-1)}` (the second branch for
    :math:`2\beta < 1`); at :math:`N = \infty`, min-norm,
    :math:`L(T) \asymp T^{-\min(4\alpha,\,2\alpha+2\beta-1)}` (bias saturation at
    :math:`4\alpha` for :math:`2\beta > 2\alpha + 1`).  A fixed ridge :math:`\lambda > 0` does
    not change these exponents; it ends them in a plateau at
    :math:`N, T \approx \lambda^{-1/(2\alpha)}` whose height scales as
    :math:`\lambda^{\min(2,\,(2\alpha+2\beta-1)/(2\alpha))}`.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> vs.ridge_scaling_exponents(1.0, 0.3)
    RidgeExponents(features=1.6, samples=1.6, ridge=0.8)
    """
    alpha = as_real(alpha, "alpha", lower=0.5)
    beta = as_real(beta, "beta")
    alpha, beta = as_exponents(alpha, beta)
    if not 2.0 * (alpha + beta) > 1.0:
        raise ValueError(f"need 2*(alpha + beta) > 1; got alpha={alpha}, beta={beta}")
    g = 2.0 * alpha + 2.0 * beta - 1.0
    a = min(2.0 * alpha, g)
    c = min(4.0 * alpha, g)
    return RidgeExponents(features=round(a, 12), samples=round(c, 12),
                          ridge=round(c / (2.0 * alpha), 12))


# -------------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class RidgeRun:
    r"""Result of :func:`simulate_ridge`.

    Attributes
    ----------
    loss : float
        Mean over runs of the exact test loss (excess risk) :math:`P(\hat\theta)` (no 1/2).
    stderr : float
        Standard error of ``loss`` (``ddof=1``); NaN for one run.
    losses : ndarray
        Test loss of each run.
    n_features : int
    n_samples : int
    ridge : float
    n_runs : int
    seed : int or None
        The ``rng`` argument when it was an int.
    entropy : int
        Root entropy: run ``i`` used ``SeedSequence(entropy, spawn_key=(i,))``.
    seconds : float
        Wall time.
    noise_variance : float
        Label-noise variance :math:`\sigma^2` of the training targets.
    total_loss : float
        ``loss + noise_variance``.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> run = vs.simulate_ridge(vs.PLRF(alpha=1.0, beta=0.7, v=500, d=40), n_samples=200,
    ...                         ridge=1e-3, n_runs=4, rng=0)
    >>> run.n_runs, run.losses.shape, bool(np.isclose(run.loss, run.losses.mean()))
    (4, (4,), True)
    >>> bool(np.isclose(run.stderr, run.losses.std(ddof=1) / 2))
    True
    """

    loss: float
    stderr: float
    losses: np.ndarray
    n_features: int
    n_samples: int
    ridge: float
    n_runs: int
    seed: int | None
    entropy: int
    seconds: float
    noise_variance: float
    total_loss: float


def _fit_ridge(Z: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge / min-norm solution of ``(1/T)||Z th - y||^2 + ridge ||th||^2``."""
    import scipy.linalg as sla

    t, n = Z.shape
    if ridge == 0.0:
        return np.linalg.lstsq(Z, y, rcond=None)[0]
    if n <= t:
        A = Z.T @ Z
        A[np.diag_indices_from(A)] += t * ridge
        return sla.cho_solve(sla.cho_factor(A, lower=True), Z.T @ y)
    G = Z @ Z.T
    G[np.diag_indices_from(G)] += t * ridge
    return Z.T @ sla.cho_solve(sla.cho_factor(G, lower=True), y)


def _ridge_losses(lam, b, n, t, ridges, runs, entropy, noise_variance=0.0) -> np.ndarray:
    """Exact test losses, shape ``(runs, len(ridges))``; every ridge uses the same draws.

    The label noise (``noise_variance > 0``) is drawn after ``W`` and ``X``, so those are
    the noiseless run's.
    """
    sd = np.sqrt(lam)
    u = sd * b
    out = np.empty((runs, len(ridges)))
    for i in range(runs):
        gen = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i,)))
        W = gen.standard_normal((lam.size, n)) / math.sqrt(n)
        X = gen.standard_normal((t, lam.size)) * sd
        Z = X @ W
        y = X @ b
        if noise_variance > 0.0:
            y += math.sqrt(noise_variance) * gen.standard_normal(t)
        for k, ridge in enumerate(ridges):
            r = sd * (W @ _fit_ridge(Z, y, ridge)) - u
            out[i, k] = float(r @ r)
    return out


def simulate_ridge(model, n_samples: int, ridge: float = 0.0, n_runs: int = 20,
                   rng=None, *, max_cost: float | None = None) -> RidgeRun:
    r"""Monte-Carlo test loss of ridge / min-norm least squares on random features.

    Each run draws its own embedding :math:`W` (``v x N``, iid :math:`N(0, 1/N)`, as
    :meth:`PLRF.sample_embedding`) and :math:`T` samples :math:`x_i = D^{1/2} g_i` with
    targets :math:`y_i = \langle x_i, b\rangle + \epsilon_i`, :math:`\epsilon_i \sim
    N(0, \sigma^2)` (``model.noise_variance``; drawn after :math:`W` and :math:`X`, so a
    noiseless model with the same seed sees the same :math:`W` and :math:`X`), fits
    :math:`\hat\theta` (module docstring) and records the exact population loss
    :math:`\|D^{1/2}(W\hat\theta - b)\|^2` (the excess risk).

    Parameters
    ----------
    model : PLRF or SpectralModel
        Finite ``v``; ``model.d`` is :math:`N`.
    n_samples : int
        :math:`T \ge 1`.
    ridge : float
        :math:`\lambda \ge 0`; 0 is min-norm least squares (``numpy.linalg.lstsq``).
    n_runs : int
        Number of independent draws of :math:`(W, X)`, ``>= 1``.
    rng : int, numpy.random.Generator or None
        Seed (SPEC 7).  Run ``i`` uses ``SeedSequence(entropy, spawn_key=(i,))``, so the
        first runs do not depend on ``n_runs``.
    max_cost : float, optional
        Limit on the estimated kernel steps (default ``10**9``, in units of 3000 flops:
        ``n_runs`` times :math:`T v N` for the features plus the solve); larger requests
        raise ``ValueError`` before any work, ``math.inf`` removes the limit (the memory
        check stays).  docs/curves.md, "Cost limits".

    Returns
    -------
    RidgeRun
        ``.loss`` (mean), ``.stderr``, ``.losses`` per run.

    Raises
    ------
    TypeError
        If a count is not an integer or the model has no explicit spectrum.
    ValueError
        If ``n_samples < 1``, ``n_runs < 1``, ``ridge`` is negative or non-finite, or
        ``v`` is infinite.

    Notes
    -----
    Cost per run :math:`O(T v N)` (the product :math:`XW`) plus the solve on the smaller
    side: the :math:`N\times N` normal equations when :math:`N \le T`, the :math:`T\times T`
    kernel system :math:`\hat\theta = Z^T(ZZ^T + T\lambda)^{-1}y` otherwise (Cholesky), or
    an SVD least-squares solve at ``ridge = 0``.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=500, d=40)
    >>> run = vs.simulate_ridge(model, n_samples=200, ridge=1e-3, n_runs=4, rng=0)
    >>> run.losses.shape
    (4,)
    """
    t0 = time.perf_counter()
    _check_model(model)
    t = as_int(n_samples, "n_samples", minimum=1)
    runs = as_int(n_runs, "n_runs", minimum=1)
    if model.finite:  # per run: W (v x N), samples (T x v), features Z (T x N), one solve
        v, n_f = float(model.v), float(model.d)
        flops = runs * (t * v * n_f + min(t, n_f) ** 2 * max(t, n_f))
        check_budget(flops / 3000.0, 8.0 * 2.0 * (v * n_f + t * v + t * n_f + v),
                     what="simulate_ridge", parameter="n_samples, n_runs or the model size "
                     "(v, d)", max_cost=max_cost)
    lam, _ = _spectrum(model)
    b = np.ascontiguousarray(model.target, dtype=np.float64)
    ridge = _as_ridge(ridge)
    n = as_int(model.d, "model.d", minimum=1)
    from .sgd import _root_entropy

    seed, entropy = _root_entropy(rng)
    sigma2 = float(model.noise_variance)
    losses = _ridge_losses(lam, b, n, t, (ridge,), runs, entropy, sigma2)[:, 0]
    stderr = float(np.std(losses, ddof=1) / math.sqrt(runs)) if runs > 1 else math.nan
    mean = float(np.mean(losses))
    return RidgeRun(loss=mean, stderr=stderr, losses=losses,
                    n_features=n, n_samples=t, ridge=ridge, n_runs=runs,
                    seed=seed, entropy=entropy, seconds=time.perf_counter() - t0,
                    noise_variance=sigma2, total_loss=mean + sigma2)
