r"""Optimizers of the generalized momentum family: SGD, heavy ball, Nesterov, DANA.

Every optimizer is a frozen dataclass that describes one member of the generalized momentum
update (Eq. (9.3))

.. math::

    y_{r+1} = (1 - \Delta_r) y_r + \gamma_1(r) G_r, \qquad
    \theta_{r+1} = \theta_r - \gamma_2(r) G_r - \gamma_3(r) y_{r+1},

with :math:`G_r` the gradient **summed** over a fresh batch of ``batch_size`` samples,
:math:`\theta_0 = 0`, :math:`y_0 = 0`.  The objects only hold hyperparameters: they evaluate
them on int64 step arrays (:meth:`hyperparameters`), say which loss is reported
(:attr:`readout`, Eq. (9.10)) and decide stability (Eqs. (9.11)-(9.14)).  The dynamics live in
:mod:`volterra_sgd.momentum`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

import numpy as np

from ._validation import as_int, as_real
from .exceptions import UnstableLearningRateError

__all__ = ["SGD", "HeavyBall", "Nesterov", "GeneralizedMomentum", "DANA", "check_optimizer",
           "as_optimizer"]


# ------------------------------------------------------------------ helpers
def _hyper(value, name: str, *, lower: float | None = None, upper: float | None = None,
           lower_open: bool = True, upper_open: bool = True):
    """Return a checked constant float, or the callable ``r -> value`` unchanged."""
    if callable(value):
        return value
    return as_real(value, name, lower=lower, upper=upper, lower_open=lower_open,
                   upper_open=upper_open)


def _evaluate(value, name: str, r: np.ndarray, *, lower=None, upper=None) -> np.ndarray:
    """``value`` at the int64 steps ``r`` as a float64 array, checked finite and in range."""
    if not callable(value):
        return np.full(r.shape, float(value))
    out = np.asarray(value(r), dtype=np.float64)
    if out.shape == ():
        out = np.full(r.shape, float(out))
    if out.shape != r.shape:
        raise ValueError(f"{name}: the callable returned shape {out.shape} for steps of shape "
                         f"{r.shape}; it must be vectorized over int64 arrays")
    bad = ~np.isfinite(out)
    if lower is not None:
        bad |= out < lower
    if upper is not None:
        bad |= out > upper
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        rng = f" in [{lower}, {upper}]" if upper is not None else (
            f" >= {lower}" if lower is not None else "")
        raise ValueError(f"{name}(r) must be finite{rng}; got {name}({int(r.flat[i])}) = "
                         f"{out.flat[i]!r}")
    return out


def _steps(r) -> np.ndarray:
    arr = np.asarray(r)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"r must be an integer array; got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _eigs(eigenvalues, weights):
    lam = np.atleast_1d(np.asarray(eigenvalues, dtype=np.float64))
    if lam.ndim != 1 or not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError("eigenvalues must be a 1-D array of finite non-negative numbers")
    if weights is None:
        return lam, np.ones_like(lam)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != lam.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite, non-negative and match the eigenvalues")
    return lam, w


def mode_noise_response(lam, g1, g2, g3, delta, batch_size):
    r"""Per-mode self-noise response :math:`h_k` (Eq. (9.12)) and stability flag.

    Returns ``(h, stable)``: :math:`h_k = e_1^T(I - \Sigma(T_k))^{-1}\omega_k` in closed form
    and whether mode ``k`` is mean-square stable (:math:`\rho(T_k) < 1` by the Jury
    conditions and :math:`h_k < 1`, Eq. (9.11)).  Works on arrays (broadcasting).
    """
    lam = np.asarray(lam, dtype=np.float64)
    B = float(batch_size)
    p = g1 * g3
    one_m = 1.0 - delta
    det_t = one_m * (1.0 - g2 * B * lam)            # det T
    tr_t = 2.0 - delta - (g2 + p) * B * lam         # tr T
    jury = (np.abs(det_t) < 1.0) & (np.abs(tr_t) < 1.0 + det_t)
    num = lam * ((2.0 - delta) * (p + delta * g2)
                 + B * lam * one_m * g2 * ((2.0 - delta) * g2 + p))
    den1 = delta + B * g2 * lam * one_m             # 1 - det T
    den2 = 4.0 - 2.0 * delta - B * lam * (p + (2.0 - delta) * g2)   # p_T(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = num / (den1 * den2)
    stable = jury & np.isfinite(h) & (h < 1.0) & (h >= 0.0)
    return h, stable


def _frozen_norm(lam, w, g1, g2, g3, delta, B):
    """``(||K||, all modes stable)`` for frozen hyperparameters (Eq. (9.13))."""
    pos = lam > 0
    h, ok = mode_noise_response(lam[pos], g1, g2, g3, delta, B)
    if not np.all(ok):
        return math.inf, False
    kn = float(np.sum(w[pos] * h / (1.0 - h)))
    return kn, kn < 1.0


def _largest_stable_scale(stable, start: float = 1.0) -> float:
    """Largest ``c > 0`` with ``stable(c)`` (the stable set is assumed to be ``(0, c*)``)."""
    lo, hi = 0.0, start
    while stable(hi):
        lo, hi = hi, 2.0 * hi
        if hi > 1e300:
            return math.inf
    while not stable(lo) and lo > 0:  # pragma: no cover - defensive
        lo /= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if stable(mid):
            lo = mid
        else:
            hi = mid
    return lo


class _Optimizer:
    """Shared behaviour: hyperparameters, kernel norm, stability checks."""

    __slots__ = ()

    # subclasses implement hyperparameters(r), readout, is_constant, _scaled(c)
    def kernel_norm(self, eigenvalues, *, weights=None, step: int = 0) -> float:
        r"""Kernel norm :math:`\|K\| = \sum_k w_k h_k/(1 - h_k)` (Eq. (9.13)).

        Parameters
        ----------
        eigenvalues : array_like
            Eigenvalues :math:`\lambda_k \ge 0` (or deterministic nodes).
        weights : array_like, optional
            Multiplicities :math:`w_k` (default 1; eigenvalue weights of nodes).
        step : int, default 0
            Step at which time-varying hyperparameters are frozen.

        Returns
        -------
        float
            :math:`\|K\|`, or ``inf`` if some mode is unstable (Eq. (9.11)).

        Examples
        --------
        >>> import volterra_sgd as vs
        >>> round(vs.SGD(learning_rate=1.0).kernel_norm([0.5]), 12)     # Eq. (9.14): 0.5/(2 - 1)
        0.5
        """
        lam, w = _eigs(eigenvalues, weights)
        g1, g2, g3, dl = (float(a[0]) for a in self.hyperparameters(np.array([int(step)])))
        return _frozen_norm(lam, w, g1, g2, g3, dl, self.batch_size)[0]

    def is_stable(self, eigenvalues, *, weights=None, steps=(0,)) -> bool:
        """Whether every mode is stable and ``||K|| < 1`` at each of ``steps`` (frozen).

        Parameters
        ----------
        eigenvalues : array_like
            Eigenvalues or nodes.
        weights : array_like, optional
            Multiplicities.
        steps : sequence of int
            Steps at which time-varying hyperparameters are frozen and checked.

        Returns
        -------
        bool

        Examples
        --------
        >>> import volterra_sgd as vs
        >>> vs.HeavyBall(learning_rate=0.05, momentum=0.9).is_stable([1.0])
        True
        >>> vs.HeavyBall(learning_rate=0.1, momentum=0.9).is_stable([1.0])   # ||K|| > 1
        False
        """
        lam, w = _eigs(eigenvalues, weights)
        hp = self.hyperparameters(np.asarray(steps, dtype=np.int64))
        return all(_frozen_norm(lam, w, *(float(a[i]) for a in hp), self.batch_size)[1]
                   for i in range(len(hp[0])))

    def max_stable_scale(self, eigenvalues, *, weights=None, steps=(0,)) -> float:
        r"""Return the largest factor ``c`` for which all step sizes scaled by ``c`` are stable.

        For :class:`SGD`, :class:`HeavyBall` and :class:`Nesterov` the learning rate is
        scaled at fixed momentum; for :class:`GeneralizedMomentum` and :class:`DANA`,
        :math:`\gamma_2` and :math:`\gamma_3` are scaled together.

        Parameters
        ----------
        eigenvalues : array_like
            Eigenvalues or nodes.
        weights : array_like, optional
            Multiplicities.
        steps : sequence of int
            Steps at which time-varying hyperparameters are frozen and checked.

        Returns
        -------
        float
        """
        lam, w = _eigs(eigenvalues, weights)
        return _largest_stable_scale(
            lambda c: c > 0 and self._scaled(c).is_stable(lam, weights=w, steps=steps))

    def check_stable(self, eigenvalues, *, weights=None, steps=(0,)) -> float:
        """Return ``||K||`` at ``steps[0]``, or raise unless stable at every step of ``steps``.

        Parameters
        ----------
        eigenvalues : array_like
            Eigenvalues or nodes.
        weights : array_like, optional
            Multiplicities.
        steps : sequence of int
            Steps at which time-varying hyperparameters are frozen and checked.

        Returns
        -------
        float
            The kernel norm (Eq. (9.13)).

        Raises
        ------
        UnstableLearningRateError
            The message names the largest stable learning rate at the given momentum
            (``max_learning_rate`` attribute of the error).

        Examples
        --------
        >>> import volterra_sgd as vs
        >>> try:
        ...     vs.HeavyBall(learning_rate=0.1, momentum=0.9).check_stable([1.0])
        ... except vs.UnstableLearningRateError as err:
        ...     print(round(err.max_learning_rate, 6))
        0.097436
        """
        lam, w = _eigs(eigenvalues, weights)
        if self.is_stable(lam, weights=w, steps=steps):
            return self.kernel_norm(lam, weights=w, step=int(np.asarray(steps).flat[0]))
        c = self.max_stable_scale(lam, weights=w, steps=steps)
        gmax = c * self._reference_rate()
        raise UnstableLearningRateError(
            f"{self!r} is unstable (a mode has rho(T) >= 1 or h >= 1, or ||K|| >= 1 at one of "
            f"the steps {list(np.asarray(steps).tolist())}); {self._rate_name()} must be below "
            f"{gmax:.10g} (all step sizes scaled by {c:.6g})", gmax)

    def _reference_rate(self) -> float:
        return float(self.learning_rate)

    def _rate_name(self) -> str:
        return "the learning rate at this momentum"

    @property
    def readout(self) -> tuple[float, float, float]:
        r"""Coefficients :math:`(c_A, c_C, c_E)` of the reported loss (Eq. (9.10)): (1, 0, 0)."""
        return (1.0, 0.0, 0.0)


# ------------------------------------------------------------------ SGD-like optimizers
class _RateOptimizer(_Optimizer):
    """Constant learning rate (and momentum, if the class has one) and batch size."""

    is_constant = True

    def __post_init__(self):
        object.__setattr__(self, "learning_rate",
                           as_real(self.learning_rate, "learning_rate", lower=0.0))
        if hasattr(self, "momentum"):
            object.__setattr__(self, "momentum", as_real(self.momentum, "momentum", lower=0.0,
                                                         lower_open=False, upper=1.0))
        object.__setattr__(self, "batch_size", as_int(self.batch_size, "batch_size"))

    def _scaled(self, c):
        return dataclasses.replace(self, learning_rate=self.learning_rate * c)

    def max_stable_learning_rate(self, eigenvalues, *, weights=None) -> float:
        r"""Return the largest stable :math:`\gamma` (at this momentum), Eqs. (9.11)-(9.14).

        Parameters
        ----------
        eigenvalues : array_like
            Mode eigenvalues :math:`\lambda_k` (or deterministic nodes).
        weights : array_like, optional
            Multiplicities of the nodes (deterministic spectral measure).

        Returns
        -------
        float
            The learning rate at which :math:`\|K\| = 1` or a mode reaches its edge.
        """
        return self.max_stable_scale(eigenvalues, weights=weights) * self.learning_rate


@dataclass(frozen=True)
class SGD(_RateOptimizer):
    r"""Plain one-pass SGD, :math:`\theta_{r+1} = \theta_r - \gamma G_r` (Eq. (2.1)).

    In the generalized momentum form (Eq. (9.3)): :math:`(\gamma_1, \gamma_2, \gamma_3, \Delta)
    = (0, \gamma, 0, 1)`.

    Parameters
    ----------
    learning_rate : float
        :math:`\gamma > 0`.
    batch_size : int, default 1
        :math:`B`; the gradient is summed over the batch.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> opt = vs.SGD(learning_rate=0.3, batch_size=2)
    >>> round(opt.max_stable_learning_rate([1.0]), 10)    # ||K|| = g/(2 - 3g) = 1
    0.5
    """

    learning_rate: float
    batch_size: int = 1

    def hyperparameters(self, r):
        """``(gamma1, gamma2, gamma3, delta)`` at the int64 steps ``r`` (float64 arrays)."""
        r = _steps(r)
        return (np.zeros(r.shape), np.full(r.shape, self.learning_rate), np.zeros(r.shape),
                np.ones(r.shape))


@dataclass(frozen=True)
class HeavyBall(_RateOptimizer):
    r"""SGD with heavy-ball momentum.

    :math:`\theta_{r+1} = \theta_r - \gamma G_r + \mu(\theta_r - \theta_{r-1})`,
    :math:`\theta_{-1} = \theta_0`.

    In the generalized momentum form (Eq. (9.3)): :math:`(1, 0, \gamma, 1 - \mu)`.

    Parameters
    ----------
    learning_rate : float
        :math:`\gamma > 0`.
    momentum : float
        :math:`\mu \in [0, 1)`.
    batch_size : int, default 1
        :math:`B` (gradient summed over the batch).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> opt = vs.HeavyBall(learning_rate=0.01, momentum=0.9)
    >>> [float(a[0]) for a in opt.hyperparameters([0])]
    [1.0, 0.0, 0.01, 0.09999999999999998]
    >>> round(opt.kernel_norm([1.0]), 6)                 # Eq. (9.14)
    0.052778
    """

    learning_rate: float
    momentum: float
    batch_size: int = 1

    def hyperparameters(self, r):
        """``(gamma1, gamma2, gamma3, delta)`` at the int64 steps ``r`` (float64 arrays)."""
        r = _steps(r)
        return (np.ones(r.shape), np.zeros(r.shape), np.full(r.shape, self.learning_rate),
                np.full(r.shape, 1.0 - self.momentum))



@dataclass(frozen=True)
class Nesterov(_RateOptimizer):
    r"""Nesterov momentum with the gradient at the look-ahead point.

    :math:`\tilde\theta_r = \theta_r + \mu(\theta_r - \theta_{r-1})`,
    :math:`\theta_{r+1} = \tilde\theta_r - \gamma G(\tilde\theta_r)`,
    :math:`\theta_{-1} = \theta_0`.

    The gradient and the fresh batch are taken at the look-ahead point :math:`\tilde\theta_r`,
    which follows the generalized momentum update (Eq. (9.3)) with :math:`(1, \gamma, \gamma\mu,
    1 - \mu)`; the reported loss is that of the iterates :math:`\theta_r = \tilde\theta_r +
    \gamma\mu y_r` (readout Eq. (9.10)), while the look-ahead loss drives the gradient noise.

    Parameters
    ----------
    learning_rate : float
        :math:`\gamma > 0`.
    momentum : float
        :math:`\mu \in [0, 1)`.
    batch_size : int, default 1
        :math:`B` (gradient summed over the batch).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> opt = vs.Nesterov(learning_rate=0.1, momentum=0.5)
    >>> opt.readout                                       # (1, 2 gamma mu, gamma^2 mu^2)
    (1.0, 0.1, 0.0025000000000000005)
    """

    learning_rate: float
    momentum: float
    batch_size: int = 1

    def hyperparameters(self, r):
        """``(gamma1, gamma2, gamma3, delta)`` at the int64 steps ``r`` (float64 arrays)."""
        r = _steps(r)
        g, mu = self.learning_rate, self.momentum
        return (np.ones(r.shape), np.full(r.shape, g), np.full(r.shape, g * mu),
                np.full(r.shape, 1.0 - mu))

    @property
    def readout(self) -> tuple[float, float, float]:
        r""":math:`(1, 2\gamma\mu, \gamma^2\mu^2)`: the loss of :math:`\theta_r` (Eq. (9.10))."""
        gm = self.learning_rate * self.momentum
        return (1.0, 2.0 * gm, gm * gm)


# ------------------------------------------------------------------ general family
@dataclass(frozen=True)
class GeneralizedMomentum(_Optimizer):
    r"""The generalized momentum update (Eq. (9.3)).

    .. math::

        y_{r+1} = (1 - \Delta_r) y_r + \gamma_1(r) G_r, \qquad
        \theta_{r+1} = \theta_r - \gamma_2(r) G_r - \gamma_3(r) y_{r+1}.

    Parameters
    ----------
    gamma1, gamma2, gamma3 : float or callable
        Step sizes (:math:`\ge 0`).  A callable is evaluated on int64 arrays of steps
        ``r = 0, 1, ...`` and must be vectorized; the value at ``r`` acts on the step
        ``r -> r + 1``.
    delta : float or callable
        Momentum parameter :math:`\Delta \in [0, 1]` (``1 - delta`` multiplies the buffer).
    batch_size : int, default 1
        :math:`B`; the gradient :math:`G_r` is summed over the batch.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> opt = vs.GeneralizedMomentum(1.0, 0.2, lambda r: 0.1 / (1.0 + r), 0.1)
    >>> opt.is_constant
    False
    >>> opt.hyperparameters(np.array([0, 1]))[2].tolist()
    [0.1, 0.05]
    """

    gamma1: float
    gamma2: float
    gamma3: float
    delta: float
    batch_size: int = 1

    def __post_init__(self):
        for name in ("gamma1", "gamma2", "gamma3"):
            object.__setattr__(self, name, _hyper(getattr(self, name), name, lower=0.0,
                                                  lower_open=False))
        object.__setattr__(self, "delta", _hyper(self.delta, "delta", lower=0.0,
                                                 lower_open=False, upper=1.0,
                                                 upper_open=False))
        object.__setattr__(self, "batch_size", as_int(self.batch_size, "batch_size"))
        if not any(callable(getattr(self, n)) for n in ("gamma2", "gamma1", "gamma3")) and \
                self.gamma2 + self.gamma1 * self.gamma3 <= 0.0:
            raise ValueError("gamma2 + gamma1*gamma3 must be > 0 (otherwise nothing moves)")

    @property
    def is_constant(self) -> bool:
        """Whether no hyperparameter is a callable."""
        return not any(callable(getattr(self, n))
                       for n in ("gamma1", "gamma2", "gamma3", "delta"))

    def hyperparameters(self, r):
        """``(gamma1, gamma2, gamma3, delta)`` at the int64 steps ``r`` (float64 arrays)."""
        r = _steps(r)
        return (_evaluate(self.gamma1, "gamma1", r, lower=0.0),
                _evaluate(self.gamma2, "gamma2", r, lower=0.0),
                _evaluate(self.gamma3, "gamma3", r, lower=0.0),
                _evaluate(self.delta, "delta", r, lower=0.0, upper=1.0))

    def _scaled(self, c):
        def scale(v):
            return (lambda r, v=v: c * np.asarray(v(r), dtype=np.float64)) if callable(v) \
                else c * v
        return GeneralizedMomentum(self.gamma1, scale(self.gamma2), scale(self.gamma3),
                                   self.delta, self.batch_size)

    def _reference_rate(self) -> float:
        g1, g2, g3, _ = (float(a[0]) for a in self.hyperparameters(np.zeros(1, dtype=np.int64)))
        return g2 + g1 * g3

    def _rate_name(self) -> str:
        return "the step gamma2 + gamma1*gamma3 at r = 0 (gamma2 and gamma3 scaled together)"


@dataclass(frozen=True)
class DANA(GeneralizedMomentum):
    r"""Dimension-adapted Nesterov acceleration (Sec. 9, Eq. (9.17)).

    Generalized momentum (Eq. (9.3)) with :math:`\gamma_1 = 1/B`, a constant SGD-sized
    :math:`\gamma_2`, momentum :math:`\Delta_r = \delta/(\delta + r)` and either
    :math:`\gamma_3 = c_3/(d\,\mathrm{tr}\,D)` (:meth:`constant`) or
    :math:`\gamma_3(r) = (c_3/\mathrm{tr}\,D)(1 + r)^{-\kappa}`, :math:`\kappa = 1/(2\alpha)`
    (:meth:`decaying`).  Build it with :meth:`decaying` or :meth:`constant`; the fields are
    the resulting numbers.

    Parameters
    ----------
    gamma1, gamma2 : float
        :math:`\gamma_1`, :math:`\gamma_2`.
    gamma3_scale : float
        :math:`\gamma_3(0)`.
    kappa : float
        Decay exponent of :math:`\gamma_3(r) = \gamma_3(0)(1 + r)^{-\kappa}` (0: constant).
    delta_scale : float
        :math:`\delta` in :math:`\Delta_r = \delta/(\delta + r)`.
    batch_size : int
        :math:`B`.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=200, d=50)
    >>> opt = vs.DANA.decaying(model)
    >>> round(opt.gamma2 * model.trace_data_covariance, 12), opt.kappa, opt.delta_scale
    (0.5, 0.5, 5.7)
    >>> [round(float(x), 6) for x in opt.hyperparameters([0, 3])[3]]   # Delta_r
    [1.0, 0.655172]
    """

    gamma3_scale: float = 0.0
    kappa: float = 0.0
    delta_scale: float = 1.0

    def __init__(self, gamma1, gamma2, gamma3_scale, kappa, delta_scale, batch_size=1):
        set_ = object.__setattr__
        set_(self, "gamma1", as_real(gamma1, "gamma1", lower=0.0, lower_open=False))
        set_(self, "gamma2", as_real(gamma2, "gamma2", lower=0.0))
        set_(self, "gamma3_scale", as_real(gamma3_scale, "gamma3_scale", lower=0.0,
                                           lower_open=False))
        set_(self, "kappa", as_real(kappa, "kappa", lower=0.0, lower_open=False))
        set_(self, "delta_scale", as_real(delta_scale, "delta_scale", lower=0.0))
        set_(self, "batch_size", as_int(batch_size, "batch_size"))
        g3, k, ds = self.gamma3_scale, self.kappa, self.delta_scale
        set_(self, "gamma3", (lambda r: g3 * (1.0 + np.asarray(r, dtype=np.float64)) ** -k)
             if k > 0 else g3)
        set_(self, "delta", lambda r: ds / (ds + np.asarray(r, dtype=np.float64)))

    def __repr__(self):
        return (f"DANA(gamma1={self.gamma1!r}, gamma2={self.gamma2!r}, gamma3_scale="
                f"{self.gamma3_scale!r}, kappa={self.kappa!r}, delta_scale={self.delta_scale!r}, "
                f"batch_size={self.batch_size!r})")

    def __eq__(self, other):
        if not isinstance(other, DANA):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def _key(self):
        return (self.gamma1, self.gamma2, self.gamma3_scale, self.kappa, self.delta_scale,
                self.batch_size)

    @property
    def is_constant(self) -> bool:
        """Always False (the momentum parameter decays)."""
        return False

    def _scaled(self, c):
        return DANA(self.gamma1, c * self.gamma2, c * self.gamma3_scale, self.kappa,
                    self.delta_scale, self.batch_size)

    @staticmethod
    def _rules(model, batch_size, c2, delta, alpha, beta):
        B = as_int(batch_size, "batch_size")
        trd = float(model.trace_data_covariance)
        a = getattr(model, "alpha", None) if alpha is None else alpha
        b = getattr(model, "beta", None) if beta is None else beta
        c2 = as_real(c2, "c2", lower=0.0, upper=2.0)
        g2 = c2 * min(1.0 / trd, 2.0 / (B + 1))
        if delta is None:
            if a is None or b is None:
                raise ValueError("delta (or alpha and beta) must be given for a model without "
                                 "power-law exponents (delta = 4 + (alpha + beta)/alpha)")
            a = as_real(a, "alpha", lower=0.0)
            b = as_real(b, "beta")
            delta = 4.0 + (a + b) / a
        return B, trd, a, g2, as_real(delta, "delta", lower=0.0)

    @classmethod
    def decaying(cls, model, batch_size: int = 1, *, c2: float = 0.5, c3: float = 0.25,
                 kappa: float | None = None, delta: float | None = None,
                 alpha: float | None = None, beta: float | None = None) -> DANA:
        r"""DANA-decaying with the documented default rules (Eq. (9.17)).

        :math:`\gamma_1 = 1/B`, :math:`\gamma_2 = c_2\min(1/\mathrm{tr}D, 2/(B+1))`,
        :math:`\gamma_3(r) = (c_3/\mathrm{tr}D)(1 + r)^{-\kappa}` with
        :math:`\kappa = 1/(2\alpha)`, :math:`\Delta_r = \delta/(\delta + r)` with
        :math:`\delta = 4 + (\alpha + \beta)/\alpha`.

        Parameters
        ----------
        model : PLRF or SpectralModel
            Supplies :math:`\mathrm{tr}\,D`, :math:`\alpha`, :math:`\beta`.  A
            :class:`SpectralModel` needs ``kappa`` and ``delta`` (or ``alpha``, ``beta``).
        batch_size : int, default 1
            :math:`B`.
        c2, c3 : float
            Scales of :math:`\gamma_2` and :math:`\gamma_3` (defaults 0.5 and 0.25).
        kappa, delta, alpha, beta : float, optional
            Overrides of :math:`\kappa`, :math:`\delta` and the exponents used by the rules.

        Returns
        -------
        DANA

        Examples
        --------
        >>> import volterra_sgd as vs
        >>> opt = vs.DANA.decaying(vs.PLRF(alpha=1.0, beta=0.7, v=200, d=50), c3=0.1)
        >>> round(opt.gamma3_scale / opt.gamma2, 12)
        0.2
        """
        B, trd, a, g2, dl = cls._rules(model, batch_size, c2, delta, alpha, beta)
        if kappa is None:
            if a is None:
                raise ValueError("kappa (or alpha) must be given for a model without a "
                                 "power-law exponent (kappa = 1/(2 alpha))")
            kappa = 1.0 / (2.0 * a)
        c3 = as_real(c3, "c3", lower=0.0)
        return cls(1.0 / B, g2, c3 / trd, kappa, dl, B)

    @classmethod
    def constant(cls, model, batch_size: int = 1, *, c2: float = 0.5, c3: float = 0.1,
                 delta: float | None = None, alpha: float | None = None,
                 beta: float | None = None) -> DANA:
        r"""DANA-constant with the documented default rules (Eq. (9.17)).

        As :meth:`decaying` but :math:`\gamma_3 = c_3/(d\,\mathrm{tr}D)` (default
        :math:`c_3 = 0.1`), constant in time.

        Parameters
        ----------
        model : PLRF or SpectralModel
            Supplies :math:`d`, :math:`\mathrm{tr}\,D`, :math:`\alpha`, :math:`\beta`.
        batch_size : int, default 1
            :math:`B`.
        c2, c3 : float
            Scales of :math:`\gamma_2` and :math:`\gamma_3`.
        delta, alpha, beta : float, optional
            Overrides (``delta`` is required for a :class:`SpectralModel`).

        Returns
        -------
        DANA

        Examples
        --------
        >>> import volterra_sgd as vs
        >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=200, d=50)
        >>> opt = vs.DANA.constant(model)
        >>> round(opt.gamma3_scale * model.d * model.trace_data_covariance, 12), opt.kappa
        (0.1, 0.0)
        """
        B, trd, _, g2, dl = cls._rules(model, batch_size, c2, delta, alpha, beta)
        c3 = as_real(c3, "c3", lower=0.0)
        return cls(1.0 / B, g2, c3 / (model.d * trd), 0.0, dl, B)


def check_optimizer(optimizer, name: str = "optimizer"):
    """Return ``optimizer`` if it is one of this module's optimizers, else raise TypeError.

    Parameters
    ----------
    optimizer : object
        The candidate.
    name : str
        Parameter name for the error message.

    Returns
    -------
    SGD, HeavyBall, Nesterov, GeneralizedMomentum or DANA
        ``optimizer`` itself.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> from volterra_sgd.optimizers import check_optimizer
    >>> check_optimizer(vs.SGD(0.1))
    SGD(learning_rate=0.1, batch_size=1)
    """
    if not isinstance(optimizer, _Optimizer):
        raise TypeError(f"{name} must be vs.SGD, vs.HeavyBall, vs.Nesterov, "
                        f"vs.GeneralizedMomentum or vs.DANA; got {type(optimizer).__name__}")
    return optimizer


def as_optimizer(optimizer, learning_rate, batch_size):
    """Return the optimizer a public routine should run (``optimizer=`` or SGD from the rates).

    Parameters
    ----------
    optimizer : optimizer object or None
        Given by the caller; then ``learning_rate`` must be None and ``batch_size`` 1.
    learning_rate : float, array_like, callable or None
        SGD learning rate (constant or schedule) when no optimizer is given.
    batch_size : int, array_like or callable
        SGD batch size (constant; schedules only without an optimizer and without noise).

    Returns
    -------
    SGD or GeneralizedMomentum or the given optimizer
        A learning-rate schedule becomes ``GeneralizedMomentum(0, schedule, 0, 1, B)``.

    Raises
    ------
    TypeError
        If both or neither of ``optimizer`` and ``learning_rate`` are given.
    ValueError
        For a batch-size schedule (not expressible as one optimizer object).

    Examples
    --------
    >>> from volterra_sgd.optimizers import as_optimizer
    >>> as_optimizer(None, 0.1, 2)
    SGD(learning_rate=0.1, batch_size=2)
    """
    from .schedule import as_schedule

    if optimizer is not None:
        if learning_rate is not None:
            raise TypeError("give either optimizer= or learning_rate= (the optimizer carries "
                            "its own learning rate), not both")
        if not (isinstance(batch_size, numbers.Integral) and batch_size == 1):
            raise TypeError("batch_size belongs to the optimizer: use e.g. "
                            f"vs.HeavyBall(..., batch_size={batch_size!r})")
        return check_optimizer(optimizer)
    if learning_rate is None:
        raise TypeError("learning_rate (or optimizer=) is required")
    gfun, gconst = as_schedule(learning_rate, "learning_rate")
    bfun, bconst = as_schedule(batch_size, "batch_size", integer=True)
    if bconst is None:
        raise ValueError("a batch-size schedule is only supported for plain SGD without label "
                         "noise; use a constant batch_size")
    if gconst is not None:
        return SGD(gconst, int(bconst))
    return GeneralizedMomentum(0.0, lambda r: gfun(np.asarray(r, dtype=np.float64)), 0.0, 1.0,
                               int(bconst))
