"""The power-law random features (PLRF) model (THEORY.md §A, §1).

Data ``x ~ N(0, D)`` with ``D = diag(j^(-2 alpha))``, ``j = 1..v``; target
coefficients ``b_j = j^(-beta)``; a random embedding ``W`` (``v x d``, entries
``N(0, 1/d)``); loss ``P(theta) = ||D^(1/2) (W theta - b)||^2`` (no factor 1/2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import zeta

from ._validation import as_int, as_real

__all__ = ["PLRF"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class PLRF:
    r"""Power-law random features model (THEORY.md §A and §1).

    Parameters
    ----------
    alpha : float
        Data exponent :math:`\alpha > 0`; the data covariance is
        :math:`D = \mathrm{diag}(j^{-2\alpha})`.
    beta : float
        Target exponent :math:`\beta`; :math:`b_j = j^{-\beta}`.  Negative values are
        allowed.  If ``v`` is infinite, :math:`2(\alpha+\beta) > 1` is required so that the
        initial loss :math:`\sum_j j^{-2(\alpha+\beta)}` is finite.
    v : int or math.inf
        Hidden (data) dimension.  ``math.inf`` is accepted when :math:`2\alpha > 1`
        (then :math:`D` is trace class); only the deterministic-equivalent routines
        accept it, anything that samples ``W`` needs a finite ``v``.
    d : int
        Model (parameter) dimension, the number of random features.

    Raises
    ------
    TypeError
        If ``v`` or ``d`` is not an integer (``v`` may also be ``math.inf``), or a
        exponent is not a real number.
    ValueError
        If an exponent is non-finite or out of range, or ``v, d < 1``.

    Notes
    -----
    The loss carries no factor 1/2, so :math:`P(\theta_0 = 0) = \sum_{j\le v}
    j^{-2(\alpha+\beta)}` (:attr:`initial_loss`).  The natural learning-rate scale is
    :math:`\gamma = g / \sum_j j^{-2\alpha}` (:meth:`reference_learning_rate`), which
    gives a kernel norm :math:`\|K\| \approx g/2` (THEORY.md §A, §3.4).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> round(model.initial_loss, 6)
    1.138664
    >>> W = model.sample_embedding(rng=0)
    >>> W.shape
    (2000, 200)
    """

    alpha: float
    beta: float
    v: int | float
    d: int

    def __post_init__(self):
        alpha = as_real(self.alpha, "alpha", lower=0.0)
        beta = as_real(self.beta, "beta")
        d = as_int(self.d, "d", minimum=1)
        if isinstance(self.v, float) and math.isinf(self.v) and self.v > 0:
            if not 2.0 * alpha > 1.0:
                raise ValueError(
                    f"v = inf requires 2*alpha > 1 (trace-class data covariance); got alpha={alpha}"
                )
            if not 2.0 * (alpha + beta) > 1.0:
                raise ValueError(
                    "v = inf requires 2*(alpha + beta) > 1 (finite initial loss); "
                    f"got alpha={alpha}, beta={beta}"
                )
            v = math.inf
        else:
            v = as_int(self.v, "v", minimum=1)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "d", d)

    # ----------------------------------------------------------------- spectrum
    @property
    def finite(self) -> bool:
        """Whether the hidden dimension ``v`` is finite."""
        return not math.isinf(self.v)

    def _require_finite(self, what: str) -> int:
        if not self.finite:
            raise ValueError(f"{what} needs a finite hidden dimension v; this model has v = inf")
        return int(self.v)

    @cached_property
    def _j(self) -> np.ndarray:
        return np.arange(1, self._require_finite("the explicit spectrum") + 1, dtype=np.float64)

    @cached_property
    def data_eigenvalues(self) -> np.ndarray:
        r"""Diagonal of :math:`D`: :math:`\lambda_j = j^{-2\alpha}`, ``j = 1..v`` (read-only)."""
        return _readonly(self._j ** (-2.0 * self.alpha))

    @cached_property
    def target(self) -> np.ndarray:
        r"""Target coefficients :math:`b_j = j^{-\beta}`, ``j = 1..v`` (read-only)."""
        return _readonly(self._j ** (-self.beta))

    @cached_property
    def scaled_target(self) -> np.ndarray:
        r""":math:`D^{1/2} b`, entries :math:`j^{-(\alpha+\beta)}` (read-only; THEORY.md §1 "checkb")."""
        return _readonly(self._j ** (-(self.alpha + self.beta)))

    def _power_sum(self, s: float) -> float:
        """:math:`\\sum_{j\\le v} j^{-s}` without building a length-v array when v is huge."""
        if not self.finite:
            return float(zeta(s, 1.0))
        if self.v <= 10**7 or s <= 1.0:
            j = np.arange(int(self.v), 0, -1, dtype=np.float64)  # small terms first
            return float(np.sum(j ** (-s)))
        return float(zeta(s, 1.0) - zeta(s, float(self.v) + 1.0))

    @cached_property
    def initial_loss(self) -> float:
        r"""Loss at initialization, :math:`P(0) = \sum_{j\le v} j^{-2(\alpha+\beta)}` (no 1/2)."""
        return self._power_sum(2.0 * (self.alpha + self.beta))

    @cached_property
    def trace_data_covariance(self) -> float:
        r""":math:`\mathrm{tr}\,D = \sum_{j\le v} j^{-2\alpha}`."""
        return self._power_sum(2.0 * self.alpha)

    def reference_learning_rate(self, g: float = 0.25) -> float:
        r"""The learning rate :math:`\gamma = g / \sum_{j\le v} j^{-2\alpha}` (THEORY.md §A).

        Parameters
        ----------
        g : float
            Scale in (0, 1).  It gives a kernel norm :math:`\|K\| \approx g/2`.

        Returns
        -------
        float
            The learning rate :math:`\gamma`.

        Examples
        --------
        >>> import volterra_sgd as vs
        >>> gamma = vs.PLRF(1.0, 0.7, 2000, 200).reference_learning_rate(0.5)
        """
        g = as_real(g, "g", lower=0.0, upper=1.0)
        return g / self.trace_data_covariance

    # ---------------------------------------------------------------- sampling
    def sample_embedding(self, rng=None) -> np.ndarray:
        """Draw an embedding ``W`` of shape ``(v, d)`` with iid ``N(0, 1/d)`` entries.

        Parameters
        ----------
        rng : int, numpy.random.Generator or None
            Seed or generator (SPEC 7), normalised with :func:`numpy.random.default_rng`.

        Returns
        -------
        numpy.ndarray
            ``W``, float64, C-contiguous, shape ``(v, d)``.

        Examples
        --------
        >>> import volterra_sgd as vs
        >>> W = vs.PLRF(1.0, 0.7, 100, 10).sample_embedding(rng=1)
        """
        v = self._require_finite("sample_embedding")
        gen = np.random.default_rng(rng)
        return gen.standard_normal((v, self.d)) / math.sqrt(self.d)

    def check_embedding(self, W) -> np.ndarray:
        """Return ``W`` as a finite float64 array of shape ``(v, d)`` or raise."""
        v = self._require_finite("an embedding W")
        arr = np.asarray(W)
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"W must be a real array; got dtype {arr.dtype}")
        if arr.shape != (v, self.d):
            raise ValueError(f"W must have shape (v, d) = ({v}, {self.d}); got {arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError("W must be finite; it contains NaN or inf")
        return arr
