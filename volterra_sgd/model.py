"""The power-law random features (PLRF) model (docs/theory.md, Sec. 1).

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

from ._validation import as_exponents, as_int, as_real, as_rng, check_budget

__all__ = ["PLRF", "SpectralModel"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class _DiagonalModel:
    """What every diagonal data model shares: the learning-rate scale and the embedding.

    Subclasses provide ``d``, ``v``, ``finite`` and ``trace_data_covariance``.
    """

    __slots__ = ()

    def _require_finite(self, what: str) -> int:
        if not self.finite:
            raise ValueError(f"{what} needs a finite hidden dimension v (a finite spectrum); "
                             "this model has v = inf")
        return int(self.v)

    def reference_learning_rate(self, g: float = 0.25) -> float:
        r"""Return the learning rate :math:`\gamma = g / \mathrm{tr}\,D`.

        This is docs/theory.md, Eq. (2.2); for a PLRF, :math:`\mathrm{tr}\,D = \sum_{j\le v}
        j^{-2\alpha}`.

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
        rng = as_rng(rng)
        check_budget(float(v) * self.d / 100.0, 2.0 * 8.0 * float(v) * self.d,
                     what=f"sample_embedding (a {v} x {self.d} matrix)", parameter="v or d")
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


#: Largest decimal exponent of any eigenvalue ratio, target or power sum a PLRF may need
#: (float64 holds 1e-308 .. 1e308; the margin keeps products like tau * lambda_j finite).
_LOG10_RANGE = 300.0


def _check_representable(alpha: float, beta: float, v, d: int) -> None:
    """Refuse (alpha, beta, v, d) whose spectrum, targets or initial loss leave float64."""
    n = 2.0 * d if math.isinf(v) else float(v)
    lg = math.log10(n)
    if 2.0 * alpha * lg > _LOG10_RANGE:
        where = "2*d (v = inf: tau ~ d^(2*alpha))" if math.isinf(v) else "v"
        raise ValueError(
            f"alpha is too large for this size: the eigenvalues j^(-2*alpha) reach "
            f"1e-{2.0 * alpha * lg:.0f} (n = {where}); accepted: 2*alpha*log10(n) <= "
            f"{_LOG10_RANGE:g}, i.e. alpha <= {_LOG10_RANGE / (2.0 * lg):.6g} here")
    if math.isinf(v):
        return
    if beta < 0.0 and -beta * lg > _LOG10_RANGE:
        raise ValueError(
            f"beta is too negative for v = {v}: the targets j^(-beta) reach 1e{-beta * lg:.0f}; "
            f"accepted: -beta*log10(v) <= {_LOG10_RANGE:g}, i.e. beta >= "
            f"{-_LOG10_RANGE / lg:.6g} here")
    s = 2.0 * (alpha + beta)
    if s < 0.0 and (1.0 - s) * lg > _LOG10_RANGE:
        raise ValueError(
            f"beta is too negative for v = {v}: the initial loss sum_j j^(-2*(alpha+beta)) "
            f"reaches 1e{(1.0 - s) * lg:.0f}; accepted: (1 - 2*(alpha+beta))*log10(v) <= "
            f"{_LOG10_RANGE:g}, i.e. beta >= {(1.0 - _LOG10_RANGE / lg) / 2.0 - alpha:.6g} here")


@dataclass(frozen=True)
class PLRF(_DiagonalModel):
    r"""Power-law random features model (docs/theory.md, Sec. 1).

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
    noise_variance : float, default 0
        Label-noise variance :math:`\sigma^2 \ge 0`: targets
        :math:`y = \langle x, b\rangle + \epsilon`, :math:`\epsilon \sim N(0, \sigma^2)`
        (docs/theory.md, Eq. (9.1)).  Losses stay the excess risk; curves also report
        ``total_loss = loss + noise_variance``.  At 0 every result is unchanged.

    Raises
    ------
    TypeError
        If ``v`` or ``d`` is not an integer (integral floats such as ``1e3`` are accepted;
        ``v`` may also be ``math.inf``), or an exponent is not a real number (complex
        values are refused).
    ValueError
        If an exponent is non-finite or out of range, or ``v, d < 1``.  Accepted ranges,
        so that every eigenvalue, target, power sum and :math:`\tau` is a finite float64:
        :math:`0 < \alpha \le 10^6`, :math:`|\beta| \le 10^6`,
        :math:`2\alpha\log_{10} n \le 300` with ``n = v`` (``n = 2 d`` for ``v = inf``,
        where :math:`\tau \sim d^{2\alpha}`), and for finite ``v``:
        :math:`-\beta\log_{10} v \le 300` and
        :math:`(1 - 2(\alpha+\beta))\log_{10} v \le 300`.  The message states the bound
        for the given size.

    Notes
    -----
    The loss carries no factor 1/2, so :math:`P(\theta_0 = 0) = \sum_{j\le v}
    j^{-2(\alpha+\beta)}` (:attr:`initial_loss`).  The natural learning-rate scale is
    :math:`\gamma = g / \sum_j j^{-2\alpha}` (:meth:`reference_learning_rate`), which
    gives a kernel norm :math:`\|K\| \approx g/2` (docs/theory.md, Eq. (3.9)).

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
    noise_variance: float = 0.0

    def __post_init__(self):
        alpha, beta = as_exponents(self.alpha, self.beta)
        d = as_int(self.d, "d", minimum=1)
        if isinstance(self.v, (float, np.floating)) and math.isinf(self.v) and self.v > 0:
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
        _check_representable(alpha, beta, v, d)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "noise_variance", as_real(
            self.noise_variance, "noise_variance", lower=0.0, lower_open=False))

    # ----------------------------------------------------------------- spectrum
    @property
    def finite(self) -> bool:
        """Whether the hidden dimension ``v`` is finite."""
        return not math.isinf(self.v)

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
        r""":math:`c = D^{1/2} b`, entries :math:`j^{-(\alpha+\beta)}` (read-only).

        Named :math:`c` in docs/theory.md, Eq. (1.4).
        """
        return _readonly(self._j ** (-(self.alpha + self.beta)))

    def _power_sum(self, s: float) -> float:
        """:math:`\\sum_{j\\le v} j^{-s}` without building a length-v array when v is huge."""
        if not self.finite:
            return float(zeta(s, 1.0))
        if self.v <= 10**7:
            j = np.arange(int(self.v), 0, -1, dtype=np.float64)  # small terms first
            return float(np.sum(j ** (-s)))
        if s > 1.0:
            return float(zeta(s, 1.0) - zeta(s, float(self.v) + 1.0))
        from .resolvent import _zeta_partial  # Euler-Maclaurin, O(1) in v; lazy (cycle)

        return float(_zeta_partial(float(s), float(self.v)))

    @cached_property
    def initial_loss(self) -> float:
        r"""Loss at initialization, :math:`P(0) = \sum_{j\le v} j^{-2(\alpha+\beta)}` (no 1/2)."""
        return self._power_sum(2.0 * (self.alpha + self.beta))

    @cached_property
    def trace_data_covariance(self) -> float:
        r""":math:`\mathrm{tr}\,D = \sum_{j\le v} j^{-2\alpha}`."""
        return self._power_sum(2.0 * self.alpha)

    @cached_property
    def trace_data_covariance_squared(self) -> float:
        r""":math:`\mathrm{tr}\,D^2 = \sum_{j\le v} j^{-4\alpha}` (no length-v array)."""
        return self._power_sum(4.0 * self.alpha)



# ============================================================================ general model
#: Default length of the explicitly evaluated head of an infinite (callable) spectrum.
_HEAD_MIN = 2**16
#: Columns of the tail tables (series terms; |ratio| <= 1/2 gives 0.5**72 ~ 2e-22).
_N_TABLE = 72
#: Smallest cut-off level and the ratio of consecutive levels (as in resolvent.py).
_LEVEL_MIN = 32
_LEVEL_RATIO = 2.0**0.25


def _array_or_callable(x, call: bool, v, name: str, positive: bool) -> np.ndarray:
    """Values of ``x`` (an array, or a callable of j = 1..v), checked by ``_check_values``."""
    if call:
        x = _evaluate(x, v, name)
    elif not isinstance(x, (np.ndarray, list, tuple)):
        raise TypeError(f"{name} must be an array or a callable; got {type(x).__name__}")
    return _check_values(x, name, positive=positive)


def _evaluate(fun, n: int, name: str) -> np.ndarray:
    """Evaluate ``fun`` at ``j = 1..n`` (vectorised if possible, else term by term)."""
    j = np.arange(1, n + 1, dtype=np.float64)
    try:
        out = np.asarray(fun(j), dtype=np.float64)
    except Exception:  # not vectorised: fall back to scalar calls
        out = None
    if out is None or out.shape != (n,):
        try:
            out = np.array([float(fun(int(k))) for k in range(1, n + 1)], dtype=np.float64)
        except Exception as exc:
            raise TypeError(f"{name}: calling it with an integer j failed ({exc})") from exc
    return out


def _check_values(arr, name: str, *, positive: bool) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype == object or a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real array (or a callable); got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty")
    a = np.array(a, dtype=np.float64)  # private copy
    bad = ~np.isfinite(a)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite; got {name}[{i}] = {a[i]!r} (j = {i + 1})")
    if positive and np.any(a <= 0.0):
        i = int(np.flatnonzero(a <= 0.0)[0])
        raise ValueError(f"{name} must be > 0; got {name}[{i}] = {a[i]!r} (j = {i + 1})")
    return a


class SpectralModel(_DiagonalModel):
    r"""Random features on a general diagonal data model (docs/theory.md, Sec. 1).

    Data ``x ~ N(0, D)`` with ``D = diag(lambda_j)``, target coefficients ``b_j``, embedding
    ``W`` (``v x d``, entries ``N(0, 1/d)``) and loss
    :math:`P(\theta) = \|D^{1/2}(W\theta - b)\|^2` (no factor 1/2), exactly as for
    :class:`PLRF`, which is the special case :math:`\lambda_j = j^{-2\alpha}`,
    :math:`b_j = j^{-\beta}` (see :meth:`from_plrf`).  Every routine that takes a ``PLRF``
    accepts a ``SpectralModel`` (docs/spectral_models.md).

    Parameters
    ----------
    eigenvalues : array_like or callable
        Data eigenvalues :math:`\lambda_j > 0`.  An array of length ``v`` (any order), or a
        callable ``j -> lambda_j`` (``j = 1, 2, ...``; called with a float64 array of ``j``
        if it accepts one, else with Python ints).  A callable describes an infinite
        spectrum (then ``tail_power`` and ``target_tail_power`` are required) unless ``v``
        is given.
    target : array_like or callable
        Target coefficients :math:`b_j` (finite reals, any sign; not all zero).  Same
        length as ``eigenvalues``, or a callable.
    d : int
        Number of random features, ``1 <= d <= v``.  The deterministic equivalent
        (``tau``, ``spectral_measure``, ``loss_curve``, ...) needs ``d < v``: then
        :math:`W^TDW` has a spectral gap above 0.
    v : int, optional
        Number of eigenvalues to take from callables (finite model).  Not allowed with
        arrays (the length is ``v``).
    tail_power : float, optional
        Infinite spectra only: :math:`p > 1` with :math:`\lambda_j \approx C j^{-p}`
        beyond the explicitly evaluated head ``j <= n_explicit``.  The model uses
        :math:`\lambda_j = \lambda_n (n/j)^p` for ``j > n = n_explicit``.
    target_tail_power : float, optional
        Infinite spectra only: :math:`q > 1` with
        :math:`b_j^2\lambda_j \approx C' j^{-q}`; used as
        :math:`b_j^2\lambda_j = b_n^2\lambda_n (n/j)^q` for ``j > n``.
    n_explicit : int, optional
        Infinite spectra only: length of the head evaluated from the callables
        (default ``max(2**16, 64 d)``).  The power-law continuation is exact for pure
        power laws; otherwise the head must reach the asymptotic regime.
    noise_variance : float, default 0
        Label-noise variance :math:`\sigma^2 \ge 0` (as for :class:`PLRF`; docs/theory.md
        Eq. (9.1)).

    Raises
    ------
    TypeError
        If an input has the wrong type (``d`` not an integer, eigenvalues not an array or
        callable, ...).
    ValueError
        If eigenvalues are non-positive or non-finite, targets non-finite or all zero,
        lengths differ, ``d > v``, a callable comes without ``v`` and without
        ``tail_power``/``target_tail_power``, or a tail power is ``<= 1``.

    Notes
    -----
    The order of the ``j`` is kept for the exact, sampling and SGD routines (row ``j`` of
    ``W`` belongs to :math:`\lambda_j`); the deterministic equivalent only depends on the
    multiset of pairs :math:`(\lambda_j, b_j^2)` and sorts them internally.  Models compare
    equal (and hash) by a SHA-256 of their arrays and parameters (:attr:`key`).

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> j = np.arange(1, 1001.0)
    >>> lam = np.where(j <= 50, j**-1.6, 50**-1.6 * (j / 50) ** -2.4)
    >>> sm = vs.SpectralModel(lam, j**-0.5, d=100)
    >>> sm.v, sm.d, sm.finite
    (1000, 100, True)
    >>> pl = vs.PLRF(1.0, 0.7, 2000, 200)
    >>> bool(vs.SpectralModel.from_plrf(pl).initial_loss == pl.initial_loss)
    True
    >>> inf = vs.SpectralModel(lambda j: j**-2.0, lambda j: j**-0.7, d=200,
    ...                        tail_power=2.0, target_tail_power=3.4)
    >>> inf.finite, abs(inf.trace_data_covariance - np.pi**2 / 6) < 1e-14
    (False, True)
    """

    __slots__ = ("_lam", "_b", "_d", "_v", "_p", "_q", "_n", "_fun", "_cache", "_sigma2")

    def __init__(self, eigenvalues, target, d, *, v=None, tail_power=None,
                 target_tail_power=None, n_explicit=None, noise_variance=0.0):
        set_ = object.__setattr__
        d = as_int(d, "d", minimum=1)
        lam_call = callable(eigenvalues)
        b_call = callable(target)
        fun = None
        if lam_call and v is None:  # infinite spectrum
            if tail_power is None:
                raise ValueError("tail_power is required when eigenvalues is a callable and v "
                                 "is not given (infinite spectrum: lambda_j ~ C j^-tail_power)")
            if not b_call:
                raise TypeError("target must be a callable when eigenvalues is a callable of an "
                                "infinite spectrum; got an array")
            if target_tail_power is None:
                raise ValueError("target_tail_power is required for an infinite spectrum "
                                 "(b_j^2 lambda_j ~ C' j^-target_tail_power)")
            p = as_real(tail_power, "tail_power", lower=1.0)
            q = as_real(target_tail_power, "target_tail_power", lower=1.0)
            n = _HEAD_MIN if n_explicit is None else as_int(n_explicit, "n_explicit", minimum=2)
            if n_explicit is None:
                n = max(n, 64 * d)
            if n <= d:
                raise ValueError(f"n_explicit must be > d = {d}; got {n}")
            lam = _check_values(_evaluate(eigenvalues, n, "eigenvalues"), "eigenvalues",
                                positive=True)
            b = _check_values(_evaluate(target, n, "target"), "target", positive=False)
            vv = math.inf
            fun = (eigenvalues, target)
        else:
            for name, val in (("tail_power", tail_power), ("target_tail_power",
                                                           target_tail_power),
                              ("n_explicit", n_explicit)):
                if val is not None:
                    raise ValueError(f"{name} applies only to an infinite spectrum (eigenvalues "
                                     "a callable and v not given)")
            if v is not None:
                if not (lam_call or b_call):
                    raise ValueError("v must not be given with arrays: it is their length")
                vv = as_int(v, "v", minimum=1)
            else:
                vv = None
            lam = _array_or_callable(eigenvalues, lam_call, vv, "eigenvalues", positive=True)
            if vv is None:
                vv = lam.size
            b = _array_or_callable(target, b_call, vv, "target", positive=False)
            if b.size != lam.size:
                raise ValueError(f"target must have the length of eigenvalues ({lam.size}); "
                                 f"got {b.size}")
            if d > vv:
                raise ValueError(f"d must be <= v, the number of eigenvalues; got d = {d}, "
                                 f"v = {vv}")
            p = q = None
            n = lam.size
        if not np.any(b != 0.0):
            raise ValueError("target must not be identically zero (the initial loss would be 0)")
        lam.flags.writeable = False
        b.flags.writeable = False
        set_(self, "_lam", lam)
        set_(self, "_b", b)
        set_(self, "_d", d)
        set_(self, "_v", vv)
        set_(self, "_p", p)
        set_(self, "_q", q)
        set_(self, "_n", n)
        set_(self, "_fun", fun)
        set_(self, "_cache", {})
        set_(self, "_sigma2", as_real(noise_variance, "noise_variance", lower=0.0,
                                      lower_open=False))

    def __setattr__(self, name, value):
        raise AttributeError("SpectralModel is immutable")

    def __delattr__(self, name):
        raise AttributeError("SpectralModel is immutable")

    # ------------------------------------------------------------ construction helpers
    @classmethod
    def from_plrf(cls, model: PLRF, *, n_explicit: int | None = None) -> SpectralModel:
        r"""Convert a PLRF (finite ``v``: arrays; ``v = inf``: exact power tails).

        Parameters
        ----------
        model : PLRF
            The model; ``v >= d`` is required (see the class).
        n_explicit : int, optional
            Head length for ``v = inf`` (the continuation :math:`j^{-2\alpha}`,
            :math:`j^{-2(\alpha+\beta)}` is exact there).

        Returns
        -------
        SpectralModel

        Examples
        --------
        >>> import volterra_sgd as vs
        >>> vs.SpectralModel.from_plrf(vs.PLRF(1.0, 0.7, 300, 30)).v
        300
        """
        if not isinstance(model, PLRF):
            raise TypeError(f"model must be a PLRF; got {type(model).__name__}")
        if model.finite:
            return cls(model.data_eigenvalues, model.target, model.d,
                       noise_variance=model.noise_variance)
        a, b = model.alpha, model.beta
        return cls(lambda j: j ** (-2.0 * a), lambda j: j ** (-b), model.d,
                   tail_power=2.0 * a, target_tail_power=2.0 * (a + b), n_explicit=n_explicit,
                   noise_variance=model.noise_variance)

    @classmethod
    def from_file(cls, path, d: int) -> SpectralModel:
        """Read eigenvalues and targets from a CSV or NPZ file (see ``io.load_spectrum``).

        Parameters
        ----------
        path : str or os.PathLike
            Two-column CSV (header optional) or NPZ with arrays ``eigenvalues``, ``target``.
        d : int
            Number of random features.

        Returns
        -------
        SpectralModel

        Examples
        --------
        >>> import os, tempfile, numpy as np, volterra_sgd as vs
        >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
        >>> np.savez(path, eigenvalues=np.arange(1, 51.0) ** -1.5, target=np.ones(50))
        >>> vs.SpectralModel.from_file(path, d=10).v
        50
        """
        from .io import load_spectrum

        lam, b = load_spectrum(path)
        return cls(lam, b, d)

    @classmethod
    def from_data(cls, X, y, d: int, *, center: bool = True, standardize: bool = False,
                  trust: float = 0.03, tail: str = "auto", window=None) -> SpectralModel:
        r"""Build the model from samples: sample spectrum and least-squares target.

        The eigenvalues of the sample covariance of ``X`` and the coordinates of the
        least-squares predictor of ``y`` in its eigenbasis; beyond the trusted eigenvalues
        (docs/theory.md, Eq. (14.1)) a fitted power-law tail (``tail``).  Details and the
        residual variance: :func:`volterra_sgd.empirical_spectrum` (docs/fitting.md).

        Parameters
        ----------
        X : array_like, shape (n, v)
            Features, one sample per row.
        y : array_like, shape (n,)
            Labels.
        d : int
            Number of random features.
        center, standardize, trust
            See :func:`volterra_sgd.empirical_spectrum`.
        tail, window
            See :meth:`volterra_sgd.EmpiricalSpectrum.model_spectrum`.

        Returns
        -------
        SpectralModel

        Examples
        --------
        >>> import numpy as np, volterra_sgd as vs
        >>> rng = np.random.default_rng(0)
        >>> j = np.arange(1, 101.0)
        >>> X = rng.standard_normal((5000, 100)) * j**-1.0
        >>> sm = vs.SpectralModel.from_data(X, X @ j**-0.5, d=20)
        >>> sm.v, sm.d
        (100, 20)
        """
        from .fitting import empirical_spectrum

        es = empirical_spectrum(X, y, center=center, standardize=standardize, trust=trust)
        return es.model(d, tail=tail, window=window)

    # ----------------------------------------------------------------------- basics
    @property
    def d(self) -> int:
        """Number of random features (model dimension)."""
        return self._d

    @property
    def v(self) -> int | float:
        """Number of eigenvalues (``math.inf`` for an infinite spectrum)."""
        return self._v

    @property
    def finite(self) -> bool:
        """Whether the spectrum is a finite list."""
        return not math.isinf(self._v)

    @property
    def noise_variance(self) -> float:
        r"""Label-noise variance :math:`\sigma^2` (docs/theory.md, Eq. (9.1))."""
        return self._sigma2

    @property
    def tail_power(self) -> float | None:
        """Declared tail power :math:`p` of an infinite spectrum (``None`` if finite)."""
        return self._p

    @property
    def target_tail_power(self) -> float | None:
        r"""Declared tail power :math:`q` of :math:`b_j^2\lambda_j` (``None`` if finite)."""
        return self._q

    @property
    def n_explicit(self) -> int:
        """Number of explicitly stored eigenvalues (``v`` if finite)."""
        return self._n

    @property
    def head_eigenvalues(self) -> np.ndarray:
        r"""The explicitly stored :math:`\lambda_j`, ``j <= n_explicit`` (read-only)."""
        return self._lam

    @property
    def head_target(self) -> np.ndarray:
        """The explicitly stored :math:`b_j`, ``j <= n_explicit`` (read-only)."""
        return self._b

    @property
    def data_eigenvalues(self) -> np.ndarray:
        r"""Diagonal of :math:`D`, :math:`\lambda_j`, ``j = 1..v`` (finite models; read-only)."""
        self._require_finite("the explicit spectrum")
        return self._lam

    @property
    def target(self) -> np.ndarray:
        r"""Target coefficients :math:`b_j`, ``j = 1..v`` (finite models; read-only)."""
        self._require_finite("the explicit spectrum")
        return self._b

    @property
    def scaled_target(self) -> np.ndarray:
        r""":math:`D^{1/2} b`, entries :math:`\lambda_j^{1/2} b_j` (finite models; read-only)."""
        self._require_finite("the explicit spectrum")
        c = self._cache.get("scaled_target")
        if c is None:
            c = _readonly(np.sqrt(self._lam) * self._b)
            self._cache["scaled_target"] = c
        return c

    @property
    def forcing_coefficients(self) -> np.ndarray:
        r""":math:`c_j = \lambda_j b_j^2` of the head ``j <= n_explicit`` (read-only)."""
        c = self._cache.get("c")
        if c is None:
            c = _readonly(self._lam * self._b**2)
            self._cache["c"] = c
        return c

    def _tail_sum(self, s: float, first: float) -> float:
        r""":math:`\sum_{j>n} first\,(n/j)^s` (the power-law continuation; 0 if finite)."""
        if self.finite:
            return 0.0
        from .resolvent import _scaled_power_sum  # lazy: resolvent imports this module

        return float(first) * float(_scaled_power_sum(float(s), float(self._n), math.inf))

    def _full_sum(self, key: str, head: np.ndarray, s: float) -> float:
        """Cached sum of ``head`` (smallest first) plus its power-law tail of exponent ``s``."""
        c = self._cache.get(key)
        if c is None:
            c = float(np.sum(np.sort(head))) + self._tail_sum(s, head[-1])
            self._cache[key] = c
        return c

    @property
    def initial_loss(self) -> float:
        r"""Loss at initialization, :math:`P(0) = \sum_j \lambda_j b_j^2` (no 1/2)."""
        return self._full_sum("initial_loss", self.forcing_coefficients, self._q)

    @property
    def trace_data_covariance(self) -> float:
        r""":math:`\mathrm{tr}\,D = \sum_j \lambda_j`."""
        return self._full_sum("trace", self._lam, self._p)

    @property
    def trace_data_covariance_squared(self) -> float:
        r""":math:`\mathrm{tr}\,D^2 = \sum_j \lambda_j^2`."""
        p2 = None if self._p is None else 2.0 * self._p
        return self._full_sum("trace2", self._lam**2, p2)

    # ---------------------------------------------------------------------- identity
    @property
    def key(self) -> str:
        """SHA-256 (hex) of the spectrum, targets, ``d`` and the tail parameters."""
        c = self._cache.get("key")
        if c is None:
            import hashlib

            h = hashlib.sha256()
            h.update(b"SpectralModel/1")
            h.update(np.ascontiguousarray(self._lam, dtype="<f8").tobytes())
            h.update(np.ascontiguousarray(self._b, dtype="<f8").tobytes())
            h.update(repr((self._d, str(self._v), self._p, self._q, self._n)).encode())
            if self._sigma2 != 0.0:  # keys of noiseless models are unchanged
                h.update(repr(("noise_variance", self._sigma2)).encode())
            c = h.hexdigest()
            self._cache["key"] = c
        return c

    def __eq__(self, other):
        if not isinstance(other, SpectralModel):
            return NotImplemented
        return self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        kind = f"v={self._v}" if self.finite else (
            f"v=inf, tail_power={self._p}, target_tail_power={self._q}, n_explicit={self._n}")
        noise = f", noise_variance={self._sigma2!r}" if self._sigma2 != 0.0 else ""
        return f"SpectralModel({kind}, d={self._d}{noise}, key={self.key[:12]})"

    def __reduce__(self):
        if self.finite:
            if self._sigma2 != 0.0:
                from functools import partial

                return (partial(SpectralModel, noise_variance=self._sigma2),
                        (self._lam, self._b, self._d))
            return (SpectralModel, (self._lam, self._b, self._d))
        raise TypeError("an infinite SpectralModel (callables) cannot be pickled")

    def metadata(self) -> dict:
        """JSON-serialisable description (used in saved curves and SGD metadata)."""
        out = {"kind": "SpectralModel", "v": "inf" if not self.finite else int(self._v),
               "d": self._d, "sha256": self.key}
        if not self.finite:
            out.update(tail_power=self._p, target_tail_power=self._q, n_explicit=self._n)
        if self._sigma2 != 0.0:
            out["noise_variance"] = self._sigma2
        return out



def check_model(model, name: str = "model"):
    """Return ``model`` if it is a :class:`PLRF` or :class:`SpectralModel`, else raise TypeError."""
    if not isinstance(model, (PLRF, SpectralModel)):
        raise TypeError(f"{name} must be a PLRF or a SpectralModel; got {type(model).__name__}")
    return model


def model_metadata(model) -> dict:
    """JSON-serialisable description of a PLRF or SpectralModel."""
    if isinstance(model, SpectralModel):
        return model.metadata()
    out = {"alpha": model.alpha, "beta": model.beta,
           "v": "inf" if not model.finite else int(model.v), "d": model.d}
    if model.noise_variance != 0.0:
        out["noise_variance"] = model.noise_variance
    return out
