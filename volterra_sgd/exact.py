r"""Exact expected loss of SGD for one fixed embedding ``W`` (docs/theory.md, Sec. 3).

For Gaussian data the expected loss :math:`P(r) = E[P(\theta_r) \mid W]` solves the
discrete convolution-type Volterra equation exactly,

.. math::

    P(r) = F(r) + \sum_{s=0}^{r-1} K(r-1-s) P(s), \qquad
    F(r) = F_0 + \sum_k w_k q_k^r, \qquad K(r) = \gamma^2 B \sum_k \lambda_k^2 q_k^r,

with :math:`\lambda_k` the nonzero eigenvalues of :math:`H = W^T D W`, weights
:math:`w_k = \langle u_k, D^{1/2} b\rangle^2` (:math:`u_k` the left singular vectors of
:math:`X = D^{1/2} W`), :math:`F_0 = \min_\theta P(\theta)` and
:math:`q_k = q(\lambda_k) = 1 - 2\gamma B\lambda_k + \gamma^2 B(B+1)\lambda_k^2`.
The per-mode form :math:`\rho_k(r+1) = q_k \rho_k(r) + \gamma^2 B \lambda_k^2 P(r)`,
:math:`P(r) = F_0 + \sum_k \rho_k(r)`, :math:`\rho_k(0) = w_k`, costs :math:`O(k)` per step
and is exact.

The spectrum comes from the SVD of :math:`X` (not from ``eigh`` of the Gram matrix):
small eigenvalues :math:`\lambda = \sigma^2` then carry relative error
:math:`\epsilon\,\sigma_{max}/\sigma` instead of :math:`\epsilon\,\lambda_{max}/\lambda`,
and :math:`F_0 = \|D^{1/2}b - U U^T D^{1/2} b\|^2` is a residual, computed without
cancellation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.optimize import brentq

from ._numba import njit
from ._secular import norm_perturbation, norm_sensitivity, solve_exponential_volterra
from ._validation import as_int, as_iterations, as_positive_real, as_real, as_real_array
from .exceptions import ConvergenceError, UnstableLearningRateError
from .model import PLRF, SpectralModel, check_model

__all__ = [
    "EmbeddingSpectrum",
    "ExpectedLoss",
    "embedding_spectrum",
    "expected_loss_given_w",
    "kernel_norm",
    "max_stable_learning_rate",
    "check_learning_rate",
    "generator_polynomial",
]

#: Status codes of the mode-recursion kernel.
STATUS = {0: "success", 1: "a non-finite value appeared in the recursion", 2: "invalid input"}


# ------------------------------------------------------------------- spectrum
@dataclass(frozen=True)
class EmbeddingSpectrum:
    r"""Spectral data of one embedding ``W`` (docs/theory.md, Eq. (3.2)).

    Attributes
    ----------
    eigenvalues : ndarray
        Nonzero eigenvalues :math:`\lambda_k` of :math:`W^T D W` (equivalently of
        :math:`D^{1/2} W W^T D^{1/2}`), descending, shape ``(k,)``, ``k = rank``.
    coefficients : ndarray
        :math:`a_k = \langle u_k, D^{1/2} b\rangle \ge 0`, :math:`u_k` the left singular
        vectors of :math:`X = D^{1/2} W`, each with its sign chosen so that :math:`a_k \ge 0`
        (singular vectors are defined up to sign, and LAPACK's choice depends on the
        BLAS build and thread count).
    weights : ndarray
        :math:`w_k = a_k^2`, the forcing weights.
    limit_loss : float
        :math:`F_0 = \min_\theta P(\theta)`, the mass of :math:`D^{1/2}b` in the kernel of
        :math:`D^{1/2} W W^T D^{1/2}` (no 1/2 factor).
    initial_loss : float
        :math:`P(0) = \|D^{1/2} b\|^2`.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30)
    >>> spec = vs.embedding_spectrum(model, model.sample_embedding(rng=0))
    >>> spec.eigenvalues.shape, bool(np.all(np.diff(spec.eigenvalues) <= 0))
    ((30,), True)
    >>> bool(np.allclose(spec.weights, spec.coefficients**2, rtol=1e-15, atol=0))
    True
    >>> bool(abs(spec.limit_loss + spec.weights.sum() - spec.initial_loss) < 1e-14)
    True
    """

    eigenvalues: np.ndarray
    coefficients: np.ndarray
    weights: np.ndarray
    limit_loss: float
    initial_loss: float

    @property
    def rank(self) -> int:
        """Number of nonzero eigenvalues ``k``."""
        return int(self.eigenvalues.size)


def embedding_spectrum(model: PLRF | SpectralModel, W, *, method: str = "svd") -> EmbeddingSpectrum:
    r"""Eigenvalues, forcing weights and irreducible loss of one embedding (Eqs. (3.2), (3.10)).

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model (finite ``v``).
    W : array_like, shape (v, d)
        The embedding.
    method : {"svd", "eigh"}, default "svd"
        ``"svd"``: singular values of :math:`X = D^{1/2}W` (small eigenvalues to relative
        accuracy :math:`\epsilon\sqrt{\lambda_{max}/\lambda}`).  ``"eigh"``: eigenvalues of
        the Gram matrix :math:`X^TX`, several times faster for :math:`v \gg d` but small
        eigenvalues only to :math:`\epsilon\lambda_{max}/\lambda` (fine for Monte Carlo).

    Returns
    -------
    EmbeddingSpectrum
        :math:`\lambda_k`, :math:`a_k`, :math:`w_k = a_k^2`, :math:`F_0` and :math:`P(0)`.

    Notes
    -----
    Singular values below ``max(v, d) * eps * sigma_max`` are treated as zero (their
    directions never move under SGD and their target mass is part of :math:`F_0`).

    Reproducibility: the decomposition runs with BLAS limited to one thread (threadpoolctl,
    while the call lasts), and the sign of each :math:`u_k` is fixed by :math:`a_k \ge 0`,
    so the result is bit-identical whatever the BLAS thread count (a multi-threaded
    LAPACK call rounds differently and flips eigenvector signs at will).  Across machines
    with different CPU kernels it agrees to rounding.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30)
    >>> spec = vs.embedding_spectrum(model, model.sample_embedding(rng=0))
    >>> bool(abs(spec.limit_loss + spec.weights.sum() - model.initial_loss) < 1e-14)
    True
    """
    from ._parallel import blas_single_thread

    check_model(model)
    W = model.check_embedding(W)
    if method not in ("svd", "eigh"):
        raise ValueError(f"method must be 'svd' or 'eigh'; got {method!r}")
    with blas_single_thread():
        return _embedding_spectrum(model, W, method)


def _embedding_spectrum(model, W, method: str) -> EmbeddingSpectrum:
    sqrt_d = np.sqrt(model.data_eigenvalues)
    X = W * sqrt_d[:, None]
    c = np.asarray(model.scaled_target, dtype=np.float64)
    if method == "eigh":
        lam, V = scipy.linalg.eigh(X.T @ X, check_finite=False)
        lam, V = lam[::-1], V[:, ::-1]
        s = np.sqrt(np.maximum(lam, 0.0))
    else:
        U, s, _ = scipy.linalg.svd(X, full_matrices=False, lapack_driver="gesdd",
                                   check_finite=False)
    if s.size and not np.all(np.isfinite(s)):  # pragma: no cover - LAPACK failure
        raise ConvergenceError("decomposition of D^(1/2) W failed to converge")
    tol = (max(X.shape) * np.finfo(np.float64).eps * s[0]) if s.size else 0.0
    keep = s > tol
    s = s[keep]
    if method == "eigh":
        V = V[:, keep]
        a = (V.T @ (X.T @ c)) / s  # <u_k, c> with u_k = X v_k / sigma_k
        resid = c - X @ (V @ (a / s))  # residual of the least-squares fit
    else:
        U = U[:, keep]
        a = U.T @ c
        resid = c - U @ a
    a = np.abs(a)  # the sign convention a_k >= 0 (u_k -> -u_k where a_k < 0)
    return EmbeddingSpectrum(
        eigenvalues=_ro(s * s),
        coefficients=_ro(a),
        weights=_ro(a * a),
        limit_loss=float(resid @ resid),
        initial_loss=float(model.initial_loss),
    )


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


# ---------------------------------------------------------- stability, ||K||
def generator_polynomial(lam, learning_rate: float, batch_size: int = 1):
    r""":math:`q(\lambda) = 1 - 2\gamma B\lambda + \gamma^2 B(B+1)\lambda^2`.

    The generator polynomial of docs/theory.md, Eq. (3.1).

    Parameters
    ----------
    lam : array_like
        Eigenvalues :math:`\lambda`.
    learning_rate : float
        :math:`\gamma`.
    batch_size : int
        :math:`B`.

    Returns
    -------
    ndarray
        :math:`q(\lambda)`.

    Examples
    --------
    >>> from volterra_sgd.exact import generator_polynomial
    >>> float(generator_polynomial(0.5, 1.0, 1))
    0.5
    """
    lam = np.asarray(lam, dtype=np.float64)
    g, B = float(learning_rate), float(batch_size)
    return 1.0 - 2.0 * g * B * lam + g * g * B * (B + 1.0) * lam * lam


def kernel_norm(eigenvalues, learning_rate: float, batch_size: int = 1, *,
                weights=None) -> float:
    r"""Kernel norm :math:`\|K\| = \sum_r K(r) = \frac{\gamma}{2}\sum_k \frac{\lambda_k}{1 -
    \gamma(B+1)\lambda_k/2}` (docs/theory.md, Eq. (3.7)).

    Returns ``inf`` when :math:`\gamma(B+1)\lambda_{max} \ge 2`.

    Parameters
    ----------
    eigenvalues : array_like or EmbeddingSpectrum
        Eigenvalues :math:`\lambda_k \ge 0`.
    learning_rate : float
        :math:`\gamma > 0`.
    batch_size : int
        :math:`B \ge 1`.
    weights : array_like, optional
        Multiplicities of the eigenvalues (e.g. quadrature weights of a spectral density);
        default 1 each.

    Returns
    -------
    float
        :math:`\|K\|`.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> vs.kernel_norm([0.5], 1.0, 1)
    0.5
    """
    lam, wts = _eigs(eigenvalues, weights)
    g = as_positive_real(learning_rate, "learning_rate")
    B = as_int(batch_size, "batch_size")
    return _kernel_norm(lam, g, B, wts)


def _kernel_norm(lam: np.ndarray, g: float, B: int, wts=None) -> float:
    h = g * (B + 1) * lam / 2.0
    if lam.size and np.max(h) >= 1.0:
        return math.inf
    terms = lam / (1.0 - h)
    # correctly rounded sum: 1 - ||K|| is then good to a few eps absolute (it decides
    # stability and sets P(inf) = F0 / (1 - ||K||) near the edge of stability)
    return float(g / 2.0 * math.fsum(terms if wts is None else wts * terms))


def _kernel_norm_error(lam: np.ndarray, g: float, B: int, wts=None) -> float:
    """Bound on the rounding error of :func:`_kernel_norm` (a few eps per term)."""
    h = g * (B + 1) * lam / 2.0
    terms = lam / (1.0 - h) ** 2  # 1 - h carries an absolute error eps
    return float(8.0 * np.finfo(float).eps * g / 2.0
                 * math.fsum(terms if wts is None else wts * terms))


def _eigs(eigenvalues, weights=None):
    if isinstance(eigenvalues, EmbeddingSpectrum):
        lam = eigenvalues.eigenvalues
    else:
        lam = np.atleast_1d(as_real_array(eigenvalues, "eigenvalues"))
        if lam.ndim != 1 or not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ValueError("eigenvalues must be a 1-D array of finite non-negative numbers")
    if weights is None:
        return lam, None
    wts = as_real_array(weights, "weights")
    if wts.shape != lam.shape or not np.all(np.isfinite(wts)) or np.any(wts < 0):
        raise ValueError("weights must be finite, non-negative and match the eigenvalues")
    return lam, wts


def max_stable_learning_rate(eigenvalues, batch_size: int = 1, *, weights=None) -> float:
    r"""Largest :math:`\gamma` with :math:`\|K\| < 1` (hence also :math:`\gamma(B+1)\lambda_{max} < 2`).

    :math:`\|K\|` increases with :math:`\gamma` from 0 to :math:`\infty` on
    :math:`(0, 2/((B+1)\lambda_{max}))`, so the stability region is
    :math:`0 < \gamma < \gamma^*` with :math:`\|K\|(\gamma^*) = 1`, found by bracketing.
    The returned value is the floating-point number just below that root: it is itself
    accepted by :func:`check_learning_rate` (computed :math:`\|K\| < 1`), while the next
    larger double is refused.  Near :math:`\gamma^*` the loss is ill-conditioned
    (:math:`P(\infty) = F_0/(1 - \|K\|)`); the solvers report their accuracy there.

    Parameters
    ----------
    eigenvalues : array_like, EmbeddingSpectrum, PLRF or SpectralModel
        Eigenvalues; for a model (:class:`PLRF`, :class:`SpectralModel`) its deterministic
        spectrum (the nodes of the
        spectral measure weighted by the eigenvalue density).
    batch_size : int
        :math:`B`.
    weights : array_like, optional
        Multiplicities of the eigenvalues.

    Returns
    -------
    float
        :math:`\gamma^*`: stable, like every smaller positive learning rate.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> round(vs.max_stable_learning_rate([0.5], 1), 12)   # (g/2) 0.5 / (1 - g/2) = 1
    1.333333333333
    """
    if isinstance(eigenvalues, (PLRF, SpectralModel)):  # the model's deterministic spectrum
        from .forcing import deterministic_measure

        meas = deterministic_measure(eigenvalues)
        eigenvalues, weights = meas.nodes, meas.eigen_weights
    lam, wts = _eigs(eigenvalues, weights)
    B = as_int(batch_size, "batch_size")
    lmax = float(np.max(lam)) if lam.size else 0.0
    if lmax <= 0.0:
        return math.inf
    # ||K|| is finite and increasing on (0, hi) and blows up at hi = 2/((B+1) lambda_max),
    # possibly only within a few ulps of hi when the top mode has little weight.  Bracket
    # on [0, b] with b the largest double at which ||K|| is still finite; if even there
    # ||K|| < 1, every double below hi is stable and b is the answer.
    b = 2.0 / ((B + 1) * lmax)
    while math.isfinite(_kernel_norm(lam, float(np.nextafter(b, math.inf)), B, wts)):
        b = float(np.nextafter(b, math.inf))  # hi itself may round to a finite ||K||
    while not math.isfinite(_kernel_norm(lam, b, B, wts)):
        b = float(np.nextafter(b, 0.0))
    if _kernel_norm(lam, b, B, wts) < 1.0:
        return b
    g = float(brentq(lambda x: _kernel_norm(lam, x, B, wts) - 1.0, 0.0, b, xtol=1e-300,
                     rtol=4 * np.finfo(float).eps, maxiter=500))
    while not _kernel_norm(lam, g, B, wts) < 1.0:  # the returned rate itself is stable
        g = float(np.nextafter(g, 0.0))
    while _kernel_norm(lam, float(np.nextafter(g, math.inf)), B, wts) < 1.0:
        g = float(np.nextafter(g, math.inf))  # and the next double is not
    return g


def check_learning_rate(eigenvalues, learning_rate: float, batch_size: int = 1, *,
                        weights=None) -> float:
    """Raise :class:`UnstableLearningRateError` unless the run is stable; return ``||K||``.

    Stable means :math:`\\gamma(B+1)\\lambda_{max} < 2` and :math:`\\|K\\| < 1`
    (docs/theory.md, Eq. (3.7)).  The error message names the largest stable learning rate.

    Parameters
    ----------
    eigenvalues : array_like or EmbeddingSpectrum
        Eigenvalues :math:`\\lambda_k`.
    learning_rate : float
        :math:`\\gamma`.
    batch_size : int
        :math:`B`.
    weights : array_like, optional
        Multiplicities of the eigenvalues.

    Returns
    -------
    float
        The kernel norm :math:`\\|K\\| < 1`.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> round(vs.check_learning_rate([1.0, 0.5], learning_rate=0.2), 12)  # eq. (3.7)
    0.180555555556
    >>> try:
    ...     vs.check_learning_rate([1.0], learning_rate=1.5)
    ... except vs.UnstableLearningRateError as err:
    ...     print(round(err.max_learning_rate, 6))
    0.666667
    """
    lam, wts = _eigs(eigenvalues, weights)
    g = as_positive_real(learning_rate, "learning_rate")
    B = as_int(batch_size, "batch_size")
    kn = _kernel_norm(lam, g, B, wts)
    if not kn < 1.0:
        gmax = max_stable_learning_rate(lam, B, weights=wts)
        lmax = float(np.max(lam))
        why = ("gamma*(B+1)*lambda_max = %.6g >= 2" % (g * (B + 1) * lmax)
               if g * (B + 1) * lmax >= 2 else "kernel norm ||K|| = %.6g >= 1" % kn)
        raise UnstableLearningRateError(
            f"learning_rate={g!r} is unstable for batch_size={B} ({why}); "
            f"the largest stable learning rate is {gmax:.10g}",
            gmax,
        )
    return kn


# ------------------------------------------------------------- the recursion
@njit
def _mode_recursion_kernel(q, c, f0, rho, r_start, r_out, out):
    """Advance the exact per-mode recursion and record P at the requested iterations.

    ``rho_k <- q_k rho_k + c_k P``, ``P = f0 + sum_k rho_k`` (docs/theory.md, Eq. (3.6)).

    Parameters
    ----------
    q, c : float64[:]
        Per-mode factors :math:`q_k` and :math:`\\gamma^2 B \\lambda_k^2`.
    f0 : float
        The constant part :math:`F_0` of the forcing.
    rho : float64[:]
        Mode state at iteration ``r_start``; advanced in place to iteration ``r_out[-1]``.
    r_start : int
        Iteration of the state in ``rho``.
    r_out : int64[:]
        Non-decreasing iterations ``>= r_start`` at which to record ``P``.
    out : float64[:]
        Output, ``out[i] = P(r_out[i])``.

    Returns
    -------
    int
        0 on success, 1 if a non-finite value appeared, 2 on invalid input.

    Examples
    --------
    One mode with :math:`q = 0.5`, :math:`c = 0.1`, :math:`F_0 = 0` and :math:`w = 1`:
    :math:`P = 1, 0.6, 0.36` (each step multiplies by :math:`q + c = 0.6`).

    >>> import numpy as np
    >>> from volterra_sgd.numba_api import mode_recursion
    >>> rho, out = np.array([1.0]), np.empty(3)
    >>> mode_recursion(np.array([0.5]), np.array([0.1]), 0.0, rho, 0,
    ...                np.array([0, 1, 2], dtype=np.int64), out)
    0
    >>> [round(float(x), 12) for x in out]
    [1.0, 0.6, 0.36]
    """
    n = rho.shape[0]
    m = r_out.shape[0]
    if q.shape[0] != n or c.shape[0] != n or out.shape[0] != m:
        return 2
    if m == 0:
        return 0
    if r_out[0] < r_start:
        return 2
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    n4 = n - n % 4
    for k in range(0, n4, 4):
        s0 += rho[k]
        s1 += rho[k + 1]
        s2 += rho[k + 2]
        s3 += rho[k + 3]
    for k in range(n4, n):
        s0 += rho[k]
    p = f0 + ((s0 + s1) + (s2 + s3))
    r = r_start
    i = 0
    while True:
        while i < m and r_out[i] == r:
            out[i] = p
            i += 1
        if i == m:
            break
        if r_out[i] < r:
            return 2
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for k in range(0, n4, 4):
            x0 = q[k] * rho[k] + c[k] * p
            x1 = q[k + 1] * rho[k + 1] + c[k + 1] * p
            x2 = q[k + 2] * rho[k + 2] + c[k + 2] * p
            x3 = q[k + 3] * rho[k + 3] + c[k + 3] * p
            rho[k] = x0
            rho[k + 1] = x1
            rho[k + 2] = x2
            rho[k + 3] = x3
            s0 += x0
            s1 += x1
            s2 += x2
            s3 += x3
        for k in range(n4, n):
            x0 = q[k] * rho[k] + c[k] * p
            rho[k] = x0
            s0 += x0
        p = f0 + ((s0 + s1) + (s2 + s3))
        if not math.isfinite(p):
            return 1
        r += 1
    return 0


def _powers(lam: np.ndarray, r: np.ndarray, g: float, B: int) -> np.ndarray:
    """``q(lam)^r`` as an array of shape (len(r), len(lam)), via exp(r log1p(.)) (accurate)."""
    logq = np.log1p(-2.0 * g * B * lam + g * g * B * (B + 1.0) * lam * lam)
    return np.exp(np.multiply.outer(r.astype(np.float64), logq))


def _sum_of_powers(lam, coef, r, g, B, const=0.0) -> np.ndarray:
    """``const + sum_k coef_k q(lam_k)^r`` for each r, in chunks to bound memory."""
    out = np.empty(r.size)
    step = max(1, (1 << 22) // max(1, lam.size))
    for i in range(0, r.size, step):
        out[i:i + step] = _powers(lam, r[i:i + step], g, B) @ coef + const
    return out


# ----------------------------------------------------------------- public API
@dataclass(frozen=True)
class ExpectedLoss:
    r"""Exact expected loss of SGD for a fixed embedding (see :func:`expected_loss_given_w`).

    Attributes
    ----------
    r : ndarray of int64
        Iterations.
    loss : ndarray
        :math:`E[P(\theta_r) \mid W]` (no 1/2 factor).
    forcing, kernel : ndarray
        :math:`F(r)` and :math:`K(r)` at the same iterations.
    kernel_norm : float
        :math:`\|K\| = \sum_r K(r)`.
    limit_loss : float
        :math:`P(\infty) = F_0/(1 - \|K\|)`.
    learning_rate : float
        :math:`\gamma`.
    batch_size : int
        :math:`B`.
    spectrum : EmbeddingSpectrum
        The embedding's spectral data.
    loss_error : ndarray
        Error estimate of ``loss`` (absolute): rounding of the closed form or of the
        recursion, amplified near the edge of stability by the conditioning of
        :math:`1 - \|K\|`; the integrator's :math:`|P_h - P_{h/2}|`.
    info : SolverInfo
        ``success`` iff ``max(loss_error / loss) <= tol``.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30)
    >>> g = model.reference_learning_rate(0.5)
    >>> res = vs.expected_loss_given_w(model, model.sample_embedding(rng=0), [0, 10, 100],
    ...                                learning_rate=g)
    >>> res.r.tolist(), bool(res.loss[0] > res.loss[1] > res.loss[2] > res.limit_loss)
    ([0, 10, 100], True)
    >>> bool(abs(res.limit_loss * (1 - res.kernel_norm) - res.spectrum.limit_loss) < 1e-15)
    True
    """

    r: np.ndarray
    loss: np.ndarray
    forcing: np.ndarray
    kernel: np.ndarray
    kernel_norm: float
    limit_loss: float
    learning_rate: float
    batch_size: int
    spectrum: EmbeddingSpectrum
    loss_error: np.ndarray | None = None
    info: object = None
    noise_variance: float = 0.0

    @property
    def total_loss(self) -> np.ndarray:
        """Population error ``loss + noise_variance`` (docs/theory.md, Eq. (9.1))."""
        return self.loss + self.noise_variance


def expected_loss_given_w(model: PLRF | SpectralModel, W, r, *, learning_rate=None, batch_size=1,
                          optimizer=None,
                          method: str = "auto", progress: bool = False, tol: float | None = None,
                          throw: bool = True) -> ExpectedLoss:
    r"""Exact :math:`E[P(\theta_r) \mid W]` of one-pass SGD (docs/theory.md, Eqs. (3.4), (7.3)).

    Solves the exact Volterra equation :math:`P(r) = F(r) + \sum_{s<r} K(r-1-s)P(s)` for
    the given embedding (docs/theory.md, Eqs. (3.3)-(3.6)), either by the
    :math:`O(k)`-per-step mode recursion
    :math:`\rho_k(r+1) = q_k\rho_k(r) + \gamma^2 B\lambda_k^2 P(r)` (``"recursion"``)
    or by its closed form :math:`P(r) = P(\infty) + \sum_i R_i \nu_i^r` from the secular
    equation :math:`\sum_k \gamma^2 B\lambda_k^2/(\nu - q_k) = 1` (``"closed_form"``,
    :math:`O(k^2)` once plus :math:`O(k)` per requested iteration, any horizon).  The two agree
    to about 1e-15 relative away from the edge of stability; ``loss_error`` bounds both.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model (finite ``v``).
    W : array_like of shape (v, d), or EmbeddingSpectrum
        The embedding, or its precomputed :func:`embedding_spectrum` (for sweeps over
        learning rates).
    r : array_like of int
        Non-decreasing, non-negative iterations at which to report the loss.  The cost is
        :math:`O(k \max r)`.
    learning_rate : float, array_like or callable
        :math:`\gamma > 0` (must be stable, :func:`check_learning_rate`), or a schedule
        :math:`\gamma(s)`: an array indexed by the step ``s`` (``max(r)`` entries) or a
        vectorized callable (see :func:`volterra_sgd.loss_curve`).
    batch_size : int, array_like or callable, default 1
        :math:`B` or a schedule :math:`B(s)`; gradients are summed over the batch.
    optimizer : SGD, HeavyBall, Nesterov, GeneralizedMomentum or DANA, optional
        Instead of ``learning_rate``/``batch_size``: any method of the generalized momentum
        family (docs/theory.md, Sec. 9), by the exact per-mode recursion (9.9), its closed
        form (9.16) or geometric blocks (9.18) (``method="integrator"``).  Plain SGD without
        label noise takes the solvers below unchanged; everything else (also SGD when
        ``model.noise_variance > 0``) takes :func:`volterra_sgd.momentum.optimizer_expected_loss`.
    method : {"auto", "closed_form", "recursion", "integrator"}
        Solver.  ``"auto"``: the closed form for constant hyper-parameters, the exact
        recursion for schedules.  The recursion costs :math:`O(k \max r)`; ``"integrator"``
        is the geometric-block integrator of :mod:`volterra_sgd.schedule` (docs/theory.md,
        Eq. (8.1)).  Under a schedule, ``forcing``, ``kernel`` and the stability check refer to
        the hyper-parameters at step 0.
    progress : bool, default False
        Show a ``tqdm`` progress bar for the recursion (needs the ``progress`` extra).
    tol : float, optional
        Relative accuracy asked of the loss: ``info.success`` is
        ``max(loss_error / loss) <= tol``.  Default 1e-10 for constant hyper-parameters with
        the closed form or the recursion, 1e-3 for schedules and the integrator.
    throw : bool, default True
        Raise :class:`ConvergenceError` when the estimate exceeds ``tol``; with ``False``,
        return the result with ``info.success = False`` and a :class:`ConvergenceWarning`.

    Returns
    -------
    ExpectedLoss
        Loss, forcing, kernel at ``r``, the kernel norm and :math:`P(\infty) = F_0/(1-\|K\|)`.

    Raises
    ------
    UnstableLearningRateError
        If :math:`\gamma(B+1)\lambda_{max} \ge 2` or :math:`\|K\| \ge 1`; the message
        names the largest stable learning rate.
    ConvergenceError
        If ``throw`` and the error estimate exceeds ``tol``.

    Notes
    -----
    Close to the largest stable learning rate, :math:`\delta = 1 - \|K\| \to 0`, the
    closed form is evaluated without cancellation (:mod:`volterra_sgd._secular`) and stays
    accurate while :math:`r\mu_0 \ll 1` (:math:`\mu_0 \approx \delta/S` the slowest
    rate); at later iterations the loss inherits the relative error
    :math:`\sim \epsilon/\delta` of :math:`\delta` itself, which ``loss_error`` reports.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=300, d=30)
    >>> W = model.sample_embedding(rng=0)
    >>> res = vs.expected_loss_given_w(model, W, [0, 10, 100], learning_rate=0.5)
    >>> bool(abs(res.loss[0] - model.initial_loss) < 1e-14)
    True
    >>> bool(res.loss[2] < res.loss[1] < res.loss[0])
    True
    """
    from .curve import _max_relative
    from .schedule import as_schedule, schedule_integrator, schedule_recursion

    if optimizer is not None or getattr(model, "noise_variance", 0.0) != 0.0:
        # momentum methods and label noise: the per-mode recursion of docs/theory.md, Sec. 9
        from .momentum import optimizer_expected_loss
        from .optimizers import SGD, as_optimizer

        opt = as_optimizer(optimizer, learning_rate, batch_size)
        if not (type(opt) is SGD and model.noise_variance == 0.0):
            return optimizer_expected_loss(model, W, r, opt, method=method, tol=tol,
                                           throw=throw)
        learning_rate, batch_size = opt.learning_rate, opt.batch_size  # plain SGD: as before
    spec = W if isinstance(W, EmbeddingSpectrum) else embedding_spectrum(model, W)
    r = as_iterations(r)
    gfun, gconst = as_schedule(learning_rate, "learning_rate")
    bfun, bconst = as_schedule(batch_size, "batch_size", integer=True)
    constant = gconst is not None and bconst is not None
    if method == "auto":
        method = "closed_form" if constant else "recursion"
    if method not in ("closed_form", "recursion", "integrator"):
        raise ValueError("method must be 'auto', 'closed_form', 'recursion' or 'integrator'; "
                         f"got {method!r}")
    if method == "closed_form" and not constant:
        raise ValueError("method='closed_form' needs a constant learning rate and batch size")
    g = float(gfun(np.zeros(1))[0])
    B = int(bfun(np.zeros(1))[0])
    kn = check_learning_rate(spec.eigenvalues, g, B)
    lam = spec.eigenvalues
    c = np.ascontiguousarray(g * g * B * lam * lam)
    if tol is None:
        tol = 1e-10 if constant and method != "integrator" else 1e-3
    tol = as_real(tol, "tol", lower=0.0)
    eps = np.finfo(float).eps
    wts = np.asarray(spec.weights, dtype=np.float64)
    if not constant:
        args = (lam, wts, np.ones(lam.size), spec.limit_loss, r, gfun, bfun)
        if method == "recursion":
            loss = schedule_recursion(*args)
            # per-step rounding (a few eps of P per mode sum), accumulated linearly
            err = 4.0 * eps * (lam.size / 4.0 + 4.0) * np.maximum.accumulate(loss) * (r + 1.0)
        else:
            loss, err = schedule_integrator(*args)
    elif method == "integrator":
        loss, err = schedule_integrator(lam, wts, np.ones(lam.size), spec.limit_loss, r, gfun,
                                        bfun)
    elif not lam.size:
        loss, err = np.full(r.size, spec.limit_loss), np.zeros(r.size)
    else:
        p = g * B * lam * (2.0 - g * (B + 1) * lam)  # 1 - q(lambda), without cancellation
        delta = 1.0 - kn
        dk = _kernel_norm_error(lam, g, B)  # rounding of ||K||, amplified by 1/(1 - ||K||)
        closed, sol = solve_exponential_volterra(p, wts, c, spec.limit_loss, r,
                                                 one_minus_norm=delta)
        closed_error = sol["rounding_error"] + norm_perturbation(p, wts, c, spec.limit_loss,
                                                                 r, closed, sol, dk)
        if method == "closed_form":
            loss, err = closed, closed_error
        else:
            q = np.ascontiguousarray(generator_polynomial(lam, g, B))
            loss = _recursion(spec, q, c, r, progress)
            err = _recursion_error(r, loss, sol, p, c, dk, q, wts, spec.limit_loss, closed,
                                   closed_error)
    info = _solver_info(_max_relative(err, loss), tol, f"expected_loss_given_w ({method})", throw,
                        lam.size)
    forcing = _sum_of_powers(lam, spec.weights, r, g, B, spec.limit_loss)
    kernel = _sum_of_powers(lam, c, r, g, B)
    return ExpectedLoss(
        r=r, loss=loss, forcing=forcing, kernel=kernel, kernel_norm=kn,
        limit_loss=spec.limit_loss / (1.0 - kn), learning_rate=g, batch_size=B, spectrum=spec,
        loss_error=err, info=info,
    )


def _recursion_error(r, loss, sol, p, c, dk, q, w, f0, closed, closed_error):
    """Error estimate of the mode recursion (docs/theory.md, Eq. (3.6)) at ``r``.

    (i) The recursion runs with ``q = fl(1 - p)``, i.e. exactly with the decay rates
    ``1 - q`` (exact for ``q >= 1/2``): a coherent shift that near the edge of stability
    moves ``||K||`` by ``sum kappa (p - (1 - q))/(p (1 - q))``, amplified by
    ``1/(1 - ||K||)``.  Its effect is the difference of the closed forms (7.3) with the two
    sets of rates, plus both closed forms' own error bounds.  If the shifted kernel norm is
    not safely below 1, the bound ``3 eps r sum_i |R_i| nu_i^r`` plus the slow-mode
    sensitivity (:func:`~volterra_sgd._secular.norm_sensitivity`) is used instead.  (ii) The
    other roundings (``k/4 + 5`` per step, all terms positive) have random signs:
    ``6 sqrt((k/4 + 5)(r + 1)) eps P(r)``, the probabilistic bound of Higham & Mary (2019)
    at 6 standard deviations.
    """
    eps = np.finfo(float).eps
    rf = r.astype(np.float64)
    random = 6.0 * eps * np.sqrt((p.size / 4.0 + 5.0) * (rf + 1.0)) * np.abs(loss)
    pt = 1.0 - q  # the rates the recursion uses
    delta = sol["one_minus_norm"]
    shift = math.fsum(c * (p - pt) / (p * pt)) if np.all(pt > 0) else math.inf
    if delta - shift > 0.5 * delta:
        shifted, sol_t = solve_exponential_volterra(pt, w, c, f0, r,
                                                    one_minus_norm=delta - shift)
        coherent = (np.abs(shifted - closed) + 2.0 * closed_error
                    + sol_t["rounding_error"])
        return coherent + random
    mu, res = sol["mu"], sol["residues"]
    amp = np.abs(res).copy()
    amp[0] = abs(sol["first_amplitude"])  # P(inf)(1 - nu_0^r): in norm_sensitivity
    decay = np.exp(np.multiply.outer(rf, np.log1p(-mu))) @ amp
    coherent = 3.0 * eps * rf * decay + norm_sensitivity(sol, r, dk + 3.0 * eps *
                                                         math.fsum(c / (p * p)))
    return coherent + random


def _solver_info(rel_error: float, tol: float, who: str, throw: bool, n_modes: int):
    """SolverInfo from an error estimate: success iff ``rel_error <= tol``; raise or warn."""
    import warnings

    from .curve import SolverInfo
    from .exceptions import ConvergenceWarning

    if rel_error <= tol:
        return SolverInfo(success=True, status=0, message="success",
                          error_estimate=rel_error, n_modes=n_modes)
    if math.isfinite(rel_error):
        status = 1
        message = (f"estimated relative error {rel_error:.3g} exceeds tol={tol:.3g}: pass a "
                   "larger tol or a smaller rtol; near the largest stable learning rate the "
                   "loss is ill-conditioned (P(inf) = F0/(1 - ||K||)), use a smaller one")
    else:
        status = 2
        message = (f"error estimate is not finite (tol={tol:.3g}): the kernel norm is within "
                   "its own uncertainty of 1")
    if throw:
        raise ConvergenceError(f"{who}: {message}")
    warnings.warn(f"{who}: {message}", ConvergenceWarning, stacklevel=3)
    return SolverInfo(success=False, status=status, message=message, error_estimate=rel_error,
                      n_modes=n_modes)


def _recursion(spec, q, c, r, progress):
    rho = np.array(spec.weights, dtype=np.float64)
    loss = np.empty(r.size)
    scratch = np.empty(1)
    r_now = 0
    stops = _progress_chunks(r, progress, rho.size)
    for stop, sl in stops:
        if sl is None:  # an intermediate stop: advance rho, record nothing
            status = _mode_recursion_kernel(q, c, spec.limit_loss, rho, r_now,
                                            np.array([stop], dtype=np.int64), scratch)
        else:
            status = _mode_recursion_kernel(q, c, spec.limit_loss, rho, r_now, r[sl], loss[sl])
        if status != 0:
            raise ConvergenceError(f"mode recursion failed: {STATUS.get(status, status)}")
        r_now = stop
        if hasattr(stops, "set_postfix"):
            stops.set_postfix(r=r_now)
    return loss


# Mode-steps (k times steps) per kernel call of the recursion: ~0.1-0.3 s, so that Ctrl-C
# (handled between calls) stops a long recursion within a fraction of a second.  The
# chunking does not change a bit: the kernel resumes from rho exactly where it stopped.
_RECURSION_CHUNK = 2**27


def _progress_chunks(r: np.ndarray, progress: bool, k: int = 0):
    """Kernel calls of :func:`_recursion`: ``(stop, slice of r or None)``, in order.

    The iterations ``r`` are split into one slice, or ~100 slices wrapped in a tqdm bar with
    ``progress``; a stretch longer than ``_RECURSION_CHUNK / k`` steps is cut by stops that
    record nothing (``None``), so that no kernel call runs for long.
    """
    if progress:
        n = max(1, min(100, r.size))
        edges = np.unique(np.linspace(0, r.size, n + 1).astype(int))[1:]
    else:
        edges = np.array([r.size])
    max_steps = max(1, _RECURSION_CHUNK // max(k, 1))
    calls = []
    r_now = 0
    i = 0
    e = 0
    while i < r.size:
        if int(r[i]) - r_now > max_steps:
            r_now += max_steps
            calls.append((r_now, None))
            continue
        while edges[e] <= i:
            e += 1
        j = int(np.searchsorted(r, r_now + max_steps, side="right"))
        j = max(i + 1, min(j, int(edges[e])))
        r_now = int(r[j - 1])
        calls.append((r_now, slice(i, j)))
        i = j
    if not progress:
        return calls
    from tqdm.auto import tqdm  # lazy: optional extra

    return tqdm(calls, desc="recursion", unit="chunk")
