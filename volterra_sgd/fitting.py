r"""Spectra and power laws estimated from data (docs/fitting.md; docs/theory.md, Sec. 14).

Given samples :math:`X \in R^{n\times v}` (rows = samples) and labels :math:`y \in R^n`,
:func:`empirical_spectrum` estimates what a :class:`~volterra_sgd.SpectralModel` needs:

* the eigenvalues :math:`\hat\lambda_1 \ge \hat\lambda_2 \ge \dots` of the sample covariance
  :math:`\hat S = X^TX/n` (after optional centring / standardisation; divided by ``n``, so
  that for the empirical distribution itself -- rows drawn with replacement -- it *is* the
  population covariance);
* the target coefficients :math:`\hat b_j = \langle \hat e_j, \hat\theta\rangle` of the
  least-squares predictor :math:`\hat\theta = \hat S^{+} X^Ty/n` in that eigenbasis, hence the
  forcing coefficients :math:`\hat c_j^2 = \hat\lambda_j \hat b_j^2 = \langle \hat e_j,
  X^Ty/n\rangle^2/\hat\lambda_j` (docs/theory.md, Eq. (1.4));
* the residual variance of the least-squares fit (label noise for the SGD model: the
  model's ``noise_variance``);
* which eigenvalues are *trusted*: the sample eigenvalue :math:`\hat\lambda_j` is biased, to
  second order in :math:`\hat S - S`, by the directions above it (pushed down by about
  :math:`j\lambda_j/n`) and below it (pushed up by about :math:`\sum_{k>j}\lambda_k/n`), so its
  relative bias is of order (docs/theory.md, Eq. (14.1))

  .. math:: \varepsilon_j = \frac{1}{n}\Big(j + \frac{1}{\hat\lambda_j}\sum_{k>j}\hat\lambda_k
            \Big),

  and :math:`\hat\lambda_j` is trusted while :math:`\varepsilon_j \le` ``trust`` (default
  0.03; measured bias below 2 % there for Gaussian power-law data, docs/fitting.md).
  Beyond the trusted eigenvalues (and beyond rank ``n - 1`` when ``n < v``), ``tail="power"``
  replaces the spectrum by the fitted power laws.

:func:`fit_power_laws` fits :math:`\lambda_j \approx C j^{-2\alpha}` and
:math:`c_j^2 = \lambda_j b_j^2 \approx C' j^{-2(\alpha+\beta)}` on sums over geometric bins of
``j`` (differences of the cumulative sums at geometrically spaced cut points, Eq. (14.2)),
with bootstrap intervals over the samples, and places :math:`(\hat\alpha, \hat\beta)` in the
phase diagram (docs/theory.md, Eq. (11.3)).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from ._validation import as_int, as_real, as_rng

__all__ = ["EmpiricalSpectrum", "SpectrumFit", "FittingWarning", "boundary_distance",
           "empirical_spectrum", "fit_power_laws"]

#: Eigenvalues below this fraction of the largest count as zero (rank deficiency).
_RANK_RTOL = 1e-12


class FittingWarning(UserWarning):
    """The data allow a fit, but with a caveat named in the message (dropped columns, ...).

    Examples
    --------
    >>> import warnings, numpy as np, volterra_sgd as vs
    >>> X = np.random.default_rng(0).standard_normal((200, 5)); X[:, 2] = 1.0
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     es = vs.empirical_spectrum(X, X[:, 0])
    >>> caught[0].category.__name__, es.dropped_columns
    ('FittingWarning', (2,))
    """


# ============================================================================ inputs
def _as_data(X, y):
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be a real array; got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be two-dimensional (samples x features); got shape {X.shape}")
    X = np.array(X, dtype=np.float64)
    n, v = X.shape
    bad = ~np.isfinite(X)
    if bad.any():
        i, k = map(int, np.argwhere(bad)[0])
        raise ValueError(f"X must be finite; got X[{i}, {k}] = {float(X[i, k])!r} "
                         f"({int(bad.sum())} non-finite entries)")
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must be a real array; got dtype {y.dtype}")
    y = np.array(y, dtype=np.float64).reshape(-1) if y.ndim == 2 and 1 in y.shape else \
        np.array(y, dtype=np.float64)
    if y.ndim != 1 or y.size != n:
        raise ValueError(f"y must be one-dimensional with one label per row of X ({n}); got "
                         f"shape {y.shape}")
    if not np.all(np.isfinite(y)):
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"y must be finite; got y[{i}] = {float(y[i])!r}")
    if n < 8:
        raise ValueError(f"too few samples: a spectrum needs n >= 8 rows of X; got n = {n}")
    return X, y


@dataclass(frozen=True)
class EmpiricalSpectrum:
    r"""Sample spectrum, target coefficients and trust diagnostics (:func:`empirical_spectrum`).

    Attributes
    ----------
    eigenvalues : ndarray
        :math:`\hat\lambda_j`, descending, the nonzero ones (``rank`` of them).
    target : ndarray
        :math:`\hat b_j = \langle\hat e_j, \hat\theta\rangle` (least squares, eigenbasis).
    forcing_coefficients : ndarray
        :math:`\hat c_j^2 = \hat\lambda_j\hat b_j^2`.
    eigenvectors : ndarray
        :math:`\hat e_j` as columns (``n_features x rank``).
    bias_scale : ndarray
        :math:`\varepsilon_j` of docs/theory.md, Eq. (14.1): the order of the relative
        sampling bias of :math:`\hat\lambda_j`.
    trust : float
        The threshold on ``bias_scale``.
    n_trusted : int
        Number of leading eigenvalues with :math:`\varepsilon_j \le` ``trust``.
    n_samples, n_features, rank : int
        :math:`n`, the number of (non-constant) features :math:`v`, and the rank.
    residual_variance : float
        :math:`\|y - X\hat\theta\|^2/n`: the label variance no linear predictor explains
        (the label noise of the model; 0 for exactly linear labels).
    noise_variance_estimate : float
        The unbiased estimate :math:`\|y - X\hat\theta\|^2/(n - \mathrm{rank} - c)`
        (``c = 1`` if centred), NaN when ``n <= rank + c``.
    target_variance : float
        Variance of the (centred) labels, :math:`\|y\|^2/n`.
    explained_variance : float
        :math:`\sum_j\hat c_j^2`, the initial loss of :meth:`model` with ``tail="none"``.
    centered, standardized : bool
    dropped_columns : tuple of int
        Constant columns of ``X`` (removed before everything else).
    mean, scale : ndarray
        Column means (zeros if not centred) and scales (ones if not standardised) used.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> rng = np.random.default_rng(0)
    >>> j = np.arange(1, 41.0)
    >>> X = rng.standard_normal((4000, 40)) * j**-1.0
    >>> es = vs.empirical_spectrum(X, X @ j**-0.5)
    >>> es.rank, es.n_trusted <= es.rank, es.residual_variance < 1e-20
    (40, True, True)
    """

    eigenvalues: np.ndarray
    target: np.ndarray
    forcing_coefficients: np.ndarray
    eigenvectors: np.ndarray = field(repr=False)
    bias_scale: np.ndarray = field(repr=False)
    trust: float
    n_trusted: int
    n_samples: int
    n_features: int
    rank: int
    residual_variance: float
    noise_variance_estimate: float
    target_variance: float
    explained_variance: float
    centered: bool
    standardized: bool
    dropped_columns: tuple
    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)

    def model_spectrum(self, tail: str = "auto", *, window=None):
        r"""Eigenvalues and targets for a model, with the untrusted part as power laws.

        Parameters
        ----------
        tail : {"auto", "power", "none"}
            ``"none"``: the sample spectrum as it is (right when the rows *are* the
            population, e.g. SGD that samples rows of the dataset); ``"power"``: keep the
            ``n_trusted`` leading eigenvalues and continue with the fitted
            :math:`C j^{-2\alpha}` and :math:`c_j^2 = C'j^{-2(\alpha+\beta)}` up to
            ``n_features`` (Eq. (14.2)); ``"auto"``: ``"power"`` if some eigenvalue is
            untrusted or ``rank < n_features``, else ``"none"``.
        window : (int, int), optional
            Fit window of the tail (default ``(1, n_trusted)``).

        Returns
        -------
        eigenvalues, target : ndarray

        Examples
        --------
        >>> import numpy as np, volterra_sgd as vs
        >>> rng = np.random.default_rng(1)
        >>> j = np.arange(1, 201.0)
        >>> X = rng.standard_normal((300, 200)) * j**-1.0       # n not >> v
        >>> es = vs.empirical_spectrum(X, X @ j**-0.6)
        >>> lam, b = es.model_spectrum("power")
        >>> lam.size, es.rank, es.n_trusted < 50
        (200, 200, True)
        """
        if tail not in ("auto", "power", "none"):
            raise ValueError(f"tail must be 'auto', 'power' or 'none'; got {tail!r}")
        if tail == "auto":
            tail = "power" if (self.n_trusted < self.rank
                               or self.rank < self.n_features) else "none"
        if tail == "none":
            return self.eigenvalues.copy(), self.target.copy()
        k1, k2 = _check_window(window, self.n_trusted, self.rank)
        if k2 - k1 < 3:
            raise ValueError(f"the power-law tail needs a fit window of >= 4 trusted "
                             f"eigenvalues; got {k1}..{k2} (n_trusted = {self.n_trusted})")
        p, logc = _fit_bins(self.eigenvalues, k1, k2, _bin_edges(k1, k2, 1.25))
        q, logcq = _fit_bins(self._signal(), k1, k2, _bin_edges(k1, k2, 1.25))
        k = self.n_trusted
        j = np.arange(k + 1, self.n_features + 1, dtype=np.float64)
        lam_t = np.exp(logc - p * np.log(j))
        c2_t = np.exp(logcq - q * np.log(j))
        sign = np.ones(j.size)
        m = min(self.rank, self.n_features) - k
        if m > 0:
            sign[:m] = np.where(self.target[k:k + m] < 0, -1.0, 1.0)
        lam = np.concatenate([self.eigenvalues[:k], lam_t])
        b = np.concatenate([self.target[:k], sign * np.sqrt(c2_t / lam_t)])
        return lam, b

    def _signal(self):
        """c_j^2 minus the expected noise floor sigma^2/n of each direction (>= 0)."""
        s2 = self.noise_variance_estimate
        floor = 0.0 if not np.isfinite(s2) else s2 / self.n_samples
        return np.maximum(self.forcing_coefficients - floor, 0.0)

    def model(self, d: int, *, tail: str = "auto", window=None):
        """Return the :class:`~volterra_sgd.SpectralModel` of this spectrum.

        Parameters
        ----------
        d : int
            Number of random features (``d <= n_features``; the deterministic equivalent
            needs ``d`` below the model's number of eigenvalues).
        tail, window
            See :meth:`model_spectrum`.

        Returns
        -------
        SpectralModel
            With ``noise_variance = residual_variance``: the label variance that no linear
            predictor on the features explains acts as label noise for SGD.

        Examples
        --------
        >>> import numpy as np, volterra_sgd as vs
        >>> rng = np.random.default_rng(0)
        >>> j = np.arange(1, 41.0)
        >>> X = rng.standard_normal((4000, 40)) * j**-1.0
        >>> vs.empirical_spectrum(X, X @ j**-0.5).model(10, tail="none").v
        40
        """
        from .model import SpectralModel

        lam, b = self.model_spectrum(tail, window=window)
        return SpectralModel(lam, b, d, noise_variance=self.residual_variance)


def empirical_spectrum(X, y, *, center: bool = True, standardize: bool = False,
                       trust: float = 0.03) -> EmpiricalSpectrum:
    r"""Sample covariance spectrum and least-squares target coefficients of a dataset.

    Parameters
    ----------
    X : array_like, shape (n, v)
        Features, one sample per row.
    y : array_like, shape (n,)
        Labels.
    center : bool, default True
        Subtract the column means of ``X`` and the mean of ``y`` (a free intercept).
    standardize : bool, default False
        Divide each column by its standard deviation (the spectrum then describes the
        correlation matrix).
    trust : float, default 0.03
        Threshold on the bias scale :math:`\varepsilon_j` (docs/theory.md, Eq. (14.1)).

    Returns
    -------
    EmpiricalSpectrum

    Raises
    ------
    TypeError
        If ``X`` or ``y`` is not a real array.
    ValueError
        Wrong shapes, non-finite entries (the message names the first one), fewer than 8
        samples, or all columns constant.

    Warns
    -----
    FittingWarning
        Constant columns (dropped), ``n <= v`` (rank at most ``n - 1``: the spectrum beyond
        it must come from the power-law tail), or fewer than 4 trusted eigenvalues.

    Notes
    -----
    Covariance divided by ``n`` (the empirical distribution's own covariance).  ``n >= v``:
    ``eigh`` of :math:`X^TX/n`; ``n < v``: SVD of ``X``.  Eigenvalues below ``1e-12``
    times the largest are dropped (rank deficiency).

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> rng = np.random.default_rng(0)
    >>> j = np.arange(1, 101.0)
    >>> X = rng.standard_normal((20000, 100)) * j**-0.8
    >>> es = vs.empirical_spectrum(X, X @ j**-0.4)
    >>> bool(abs(es.eigenvalues[0] - 1.0) < 0.05), es.n_trusted, es.rank
    (True, 100, 100)
    """
    X, y = _as_data(X, y)
    trust = as_real(trust, "trust", lower=0.0)
    n, v0 = X.shape
    ptp = np.ptp(X, axis=0)
    const = np.flatnonzero(ptp == 0.0)
    if const.size == v0:
        raise ValueError("every column of X is constant: there is no covariance to estimate")
    if const.size:
        warnings.warn(f"{const.size} constant column(s) of X dropped (no variance): "
                      f"{const[:10].tolist()}{' ...' if const.size > 10 else ''}",
                      FittingWarning, stacklevel=2)
        X = np.delete(X, const, axis=1)
    v = X.shape[1]
    mean = X.mean(axis=0) if center else np.zeros(v)
    if center:
        X -= mean
        y = y - y.mean()
    scale = np.ones(v)
    if standardize:
        scale = np.sqrt(np.mean(X * X, axis=0))
        X /= scale
    if n >= v:
        w, E = np.linalg.eigh(X.T @ X / n)
        w, E = w[::-1], E[:, ::-1]
    else:
        _, s, Vt = np.linalg.svd(X, full_matrices=False)
        w, E = s * s / n, Vt.T
    keep = w > _RANK_RTOL * w[0]
    w = np.ascontiguousarray(w[keep])
    E = np.ascontiguousarray(E[:, keep])
    rank = w.size
    if n - int(center) <= v:
        warnings.warn(f"n = {n} samples for v = {v} features: the sample covariance has rank "
                      f"{rank} and its small eigenvalues are unreliable; only the trusted "
                      "leading ones are used by fits (tail='power' continues them)",
                      FittingWarning, stacklevel=2)
    a = E.T @ (X.T @ y) / n
    b = a / w
    c2 = a * a / w
    res = y - X @ (E @ b)
    rss = float(res @ res)
    dof = n - rank - int(center)
    tail = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])
    eps = (np.arange(1, rank + 1) + tail / w) / n
    bad = np.flatnonzero(eps > trust)
    n_trusted = int(bad[0]) if bad.size else rank
    if n_trusted < 4:
        warnings.warn(f"only {n_trusted} eigenvalue(s) are trusted (bias scale <= {trust}); "
                      f"n = {n} is too small for a power-law fit", FittingWarning, stacklevel=2)
    return EmpiricalSpectrum(
        eigenvalues=w, target=b, forcing_coefficients=c2, eigenvectors=E, bias_scale=eps,
        trust=trust, n_trusted=n_trusted, n_samples=n, n_features=v, rank=rank,
        residual_variance=rss / n, noise_variance_estimate=rss / dof if dof > 0 else math.nan,
        target_variance=float(y @ y) / n, explained_variance=float(c2.sum()),
        centered=bool(center), standardized=bool(standardize),
        dropped_columns=tuple(int(k) for k in const), mean=mean, scale=scale)


# ========================================================================= power laws
def _check_window(window, n_trusted, size):
    if window is None:
        return 1, max(1, min(n_trusted, size))
    try:
        k1, k2 = window
    except (TypeError, ValueError):
        raise TypeError(f"window must be a pair (k_min, k_max); got {window!r}") from None
    k1 = as_int(k1, "window[0]", minimum=1)
    k2 = as_int(k2, "window[1]", minimum=k1)
    if k2 > size:
        raise ValueError(f"window[1] must be <= {size} (number of eigenvalues); got {k2}")
    return k1, k2


def _bin_edges(k1, k2, ratio):
    """Geometric cut points k1 = e_0 < e_1 < ... < e_m = k2 + 1 (bins [e_i, e_{i+1}))."""
    m = max(1, int(math.ceil(math.log((k2 + 1) / k1) / math.log(ratio))))
    e = np.unique(np.round(k1 * ((k2 + 1) / k1) ** (np.arange(m + 1) / m)).astype(np.int64))
    e[0], e[-1] = k1, k2 + 1
    return np.unique(e)


class _BinModel:
    """log of sum_{j in bin} j^-p for the bins of ``edges`` (one reduceat per p)."""

    def __init__(self, edges):
        self.logj = np.log(np.arange(edges[0], edges[-1], dtype=np.float64))
        self.starts = (edges[:-1] - edges[0]).astype(np.int64)

    def __call__(self, p):
        return np.log(np.add.reduceat(np.exp(-p * self.logj), self.starts))


def _profile_fit(logs, model, lo=-10.0, hi=40.0):
    """Minimise sum (logs - log C - model(p))^2 over p (log C profiled out)."""
    def sse(p):
        r = logs - model(p)
        return float(np.sum((r - r.mean()) ** 2))

    res = minimize_scalar(sse, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-10})
    p = float(res.x)
    return p, float(np.mean(logs - model(p)))


def _bin_sums(values, edges):
    """Sum values_j (1-based j) over the bins [e_i, e_{i+1})."""
    k1 = int(edges[0])
    return np.add.reduceat(values[k1 - 1:int(edges[-1]) - 1], (edges[:-1] - k1).astype(np.int64))


def _fit_sums(s, model):
    """Power p and log C of bin sums s ~ C sum_bin j^-p (bins with s <= 0 left out)."""
    ok = s > 0
    if ok.sum() < 2:
        return math.nan, math.nan
    if ok.all():
        return _profile_fit(np.log(s), model)
    return _profile_fit(np.log(s[ok]), lambda p: model(p)[ok])


def _fit_bins(values, k1, k2, edges):
    """Power p and log C of values_j ~ C j^-p from the bin sums over [k1, k2]."""
    p, logc = _fit_sums(_bin_sums(values, edges), _BinModel(edges))
    if not np.isfinite(p):
        raise ValueError(f"fewer than two bins with positive mass in the fit window "
                         f"j = {k1}..{k2}")
    return p, logc


def _eigenvalue_bias(lam, edges, n):
    r"""Second-order sampling bias of the eigenvalue bin sums (Gaussian plug-in).

    :math:`E\sum_{j\in B}\hat\lambda_j - \sum_{j\in B}\lambda_j \approx \frac1n
    \sum_{j\in B}\sum_{k\notin B}\lambda_j\lambda_k R_{jk}` (pairs inside a bin cancel),
    with the regularised :math:`R_{jk}` of :func:`_bootstrap_rows`, evaluated at the sample
    eigenvalues.
    """
    k1, k2 = int(edges[0]), int(edges[-1]) - 1
    jj = np.arange(k1 - 1, k2)
    delta = lam[jj][:, None] - lam[None, :]
    R = delta / (delta * delta + np.outer(lam[jj], lam) / n)
    jb = np.searchsorted(edges, jj + 1, side="right")
    kb = np.searchsorted(edges, np.arange(1, lam.size + 1), side="right")
    R[jb[:, None] == kb[None, :]] = 0.0
    per_j = lam[jj] * (R @ lam) / n
    return np.add.reduceat(per_j, (edges[:-1] - k1).astype(np.int64))


def _target_bias(lam, c2, tedges, n):
    r"""Second-order mixing bias of the bin sums of :math:`\hat c_j^2` (Gaussian plug-in).

    Eigenvectors of the bin :math:`B` take up the directions :math:`k \notin B` (and give
    theirs away) with weight :math:`\lambda_j\lambda_k/(n\Delta^2)`, so (second-order
    Daleckii-Krein expansion of :math:`\theta^T\hat S 1_B(\hat S)\theta`)
    :math:`E s_B - s_B \approx \frac1n\big(\sum_{j\notin B, k\in B} -
    \sum_{j\in B, k\notin B}\big) c_j^2\lambda_k^2/(\Delta_{jk}^2 +
    \lambda_j\lambda_k/n)`, :math:`\Delta_{jk} = \lambda_j - \lambda_k`, regularised
    like :func:`_bootstrap_rows`; evaluated at the sample values.
    """
    t1, t2 = int(tedges[0]), int(tedges[-1]) - 1
    kk = np.arange(t1 - 1, t2)                          # k in the window (0-based)
    lk = lam[kk]
    delta = lam[:, None] - lk[None, :]                  # (all j, window k)
    w = lk[None, :] ** 2 / (delta * delta + 2.0 * np.outer(lam, lk) / n)
    kb = np.searchsorted(tedges, kk + 1, side="right") - 1
    jb = np.searchsorted(tedges, np.arange(1, lam.size + 1), side="right") - 1
    jb[:t1 - 1] = -1
    jb[t2:] = -1
    out = np.zeros(tedges.size - 1)
    inflow = c2[:, None] * w                           # mass of j entering k's eigenvector
    same = jb[:, None] == kb[None, :]
    inflow[same] = 0.0
    np.add.at(out, kb, inflow.sum(axis=0))             # into bin of k from j outside it
    # out of bin B: j in B loses to every k outside B (k over all directions)
    lj = lam[kk]
    delta2 = lj[:, None] - lam[None, :]
    w2 = lam[None, :] ** 2 / (delta2 * delta2 + 2.0 * np.outer(lj, lam) / n)
    same2 = kb[:, None] == jb[None, :]
    w2[same2] = 0.0
    np.add.at(out, kb, -c2[kk] * w2.sum(axis=1))
    return out / n


def _bootstrap_rows(Xc, yc, es, edges, tedges, rows=2048):
    r"""Per-row first-order contributions to the bin sums (docs/theory.md, Eq. (14.3)).

    Returns ``L`` (n x eigenvalue bins) with :math:`\sum_{j\in B} (\hat e_j^Tx_i)^2` and
    ``T`` (n x target bins) such that the first-order bootstrap bin sum of
    :math:`\hat c_j^2` is :math:`s_B + \sum_i (w_i - 1) T_{iB}/n`:
    :math:`T_{iB} = u_{iB}^2 + 2h_{iB} + 2\hat\varepsilon_i u_{iB}` with
    :math:`u_{iB} = \sum_{j\in B}\hat b_j Y_{ij}` (rotation inside the bin and the
    coefficients' own noise) and
    :math:`h_{iB} = \sum_{j\in B}\hat\lambda_j\hat b_j Y_{ij}\sum_{k\notin B}
    \hat b_k Y_{ik}R_{jk}` (mixing across the bin edges), :math:`Y = X\hat E`,
    :math:`R_{jk} = \Delta/(\Delta^2 + \hat\lambda_j\hat\lambda_k/n)`,
    :math:`\Delta = \hat\lambda_j - \hat\lambda_k` (first-order eigenvector perturbation,
    regularised where the pair is closer than its sampling noise).
    """
    n = Xc.shape[0]
    lam, b, E = es.eigenvalues, es.target, es.eigenvectors
    k2, t1, t2 = int(edges[-1]) - 1, int(tedges[0]), int(tedges[-1]) - 1
    tb = np.searchsorted(tedges, np.arange(t1, t2 + 1), side="right") - 1   # bin of each j
    jj = np.arange(t1 - 1, t2)
    delta = lam[jj][None, :] - lam[:, None]                                  # (rank, nt)
    R = delta / (delta * delta + np.outer(lam, lam[jj]) / n)
    kb = np.searchsorted(tedges, np.arange(1, lam.size + 1), side="right") - 1
    R[(kb[:, None] == tb[None, :])] = 0.0            # same bin (and k = j): no cross term
    M = b[:, None] * R
    res = yc - Xc @ (E @ b)
    nb_e, nb_t = edges.size - 1, tedges.size - 1
    L = np.empty((n, nb_e))
    T = np.empty((n, nb_t))
    for r0 in range(0, n, rows):
        Y = Xc[r0:r0 + rows] @ E
        L[r0:r0 + rows] = np.add.reduceat(Y[:, edges[0] - 1:k2] ** 2,
                                          (edges[:-1] - edges[0]).astype(np.int64), axis=1)
        Yt = Y[:, jj]
        u = np.add.reduceat(Yt * b[jj], (tedges[:-1] - t1).astype(np.int64), axis=1)
        h = np.add.reduceat(Yt * (lam[jj] * b[jj]) * (Y @ M),
                            (tedges[:-1] - t1).astype(np.int64), axis=1)
        T[r0:r0 + rows] = u * u + 2.0 * h + 2.0 * res[r0:r0 + rows, None] * u
    return L, T


# Boundary lines of the phase diagram as segments (a0, b0) -> (a1, b1) where they separate
# two phases (docs/theory.md, Eq. (11.4)); inf = open end.
_BIG = 1e6
_SEGMENTS = (
    ("2*alpha = 1", (0.5, 0.0), (0.5, _BIG)),
    ("2*beta = 1", (0.0, 0.5), (_BIG, 0.5)),
    ("beta = alpha", (0.5, 0.5), (_BIG, _BIG)),
    ("alpha = 1/4", (0.25, 0.5), (0.25, _BIG)),
    ("alpha = 1 - 1/sqrt(2)", (1.0 - 1.0 / math.sqrt(2.0), 0.5),
     (1.0 - 1.0 / math.sqrt(2.0), _BIG)),
    ("alpha + beta = 1/2 (admissibility)", (0.0, 0.5), (0.5, 0.0)),
)


def boundary_distance(alpha: float, beta: float) -> tuple[float, str]:
    r"""Euclidean distance from :math:`(\alpha, \beta)` to the nearest phase boundary.

    Parameters
    ----------
    alpha, beta : float
        The point.

    Returns
    -------
    distance : float
        Distance in the :math:`(\alpha, \beta)` plane to the nearest line segment of
        docs/theory.md, Eq. (11.4) that separates two phases (or bounds the admissible
        region :math:`\alpha + \beta > 1/2`).
    name : str
        That boundary.

    Examples
    --------
    >>> from volterra_sgd.fitting import boundary_distance
    >>> d, name = boundary_distance(1.0, 0.7)
    >>> round(d, 12), name
    (0.2, '2*beta = 1')
    """
    a = as_real(alpha, "alpha")
    b = as_real(beta, "beta")
    best = (math.inf, "")
    p = np.array([a, b])
    for name, p0, p1 in _SEGMENTS:
        p0, p1 = np.array(p0), np.array(p1)
        t = np.clip(np.dot(p - p0, p1 - p0) / np.dot(p1 - p0, p1 - p0), 0.0, 1.0)
        dist = float(np.linalg.norm(p - (p0 + t * (p1 - p0))))
        if dist < best[0]:
            best = (dist, name)
    return best


@dataclass(frozen=True)
class SpectrumFit:
    r"""Power laws fitted to a spectrum and a target (:func:`fit_power_laws`).

    Attributes
    ----------
    alpha, beta : float
        :math:`\hat\alpha` from :math:`\lambda_j \approx C j^{-2\alpha}` and
        :math:`\hat\beta` from :math:`\lambda_j b_j^2 \approx C' j^{-2(\alpha+\beta)}`.
    alpha_ci, beta_ci : tuple of float
        Bootstrap percentile intervals at level ``ci_level``.
    eigenvalue_scale, target_scale : float
        :math:`C`, :math:`C'`.
    window, target_window : tuple of int
        1-based index ranges ``(k_min, k_max)`` of the two fits.
    n_trusted : int or None
        Trusted eigenvalues (data route); None for arrays.
    phase : str or None
        Phase of :math:`(\hat\alpha, \hat\beta)` (None outside the admissible region).
    phase_label : str or None
        The phase, or the neighbouring phases joined by "/" on a boundary.
    boundary_distance : float
        Distance to the nearest phase boundary (:func:`boundary_distance`).
    nearest_boundary : str
    phase_probability : float
        Fraction of bootstrap replicates in the same phase.
    exponents : PhaseExponents or None
        :func:`~volterra_sgd.phase_exponents` at the estimate.
    xi_ci, eta_ci : tuple of float
        Bootstrap intervals of the compute-optimal exponents (replicates outside the
        admissible region are left out).
    alpha_boot, beta_boot : ndarray
        The bootstrap replicates.
    method : str
        ``"bootstrap over samples"`` (data) or ``"residual bootstrap"`` (arrays/models).
    n_boot : int
    ci_level : float
    noise_floor : float
        :math:`\hat\sigma^2/n` subtracted from each :math:`\hat c_j^2` (0 for arrays).

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> j = np.arange(1, 501.0)
    >>> fit = vs.fit_power_laws(j**-2.0, j**-0.7, n_boot=20, rng=0)
    >>> round(fit.alpha, 6), round(fit.beta, 6), fit.phase
    (1.0, 0.7, 'II')
    """

    alpha: float
    alpha_ci: tuple
    beta: float
    beta_ci: tuple
    eigenvalue_scale: float
    target_scale: float
    window: tuple
    target_window: tuple
    n_trusted: int | None
    phase: str | None
    phase_label: str | None
    boundary_distance: float
    nearest_boundary: str
    phase_probability: float
    exponents: object
    xi_ci: tuple
    eta_ci: tuple
    alpha_boot: np.ndarray = field(repr=False)
    beta_boot: np.ndarray = field(repr=False)
    method: str = ""
    n_boot: int = 0
    ci_level: float = 0.95
    noise_floor: float = 0.0

    def summary(self) -> str:
        """Multi-line text: estimates with intervals, phase, boundary distance, exponents.

        Returns
        -------
        str

        Examples
        --------
        >>> import numpy as np, volterra_sgd as vs
        >>> j = np.arange(1, 501.0)
        >>> print(vs.fit_power_laws(j**-2.0, j**-0.7, n_boot=20, rng=0).summary())
        ... # doctest: +ELLIPSIS
        alpha = 1.0000  [1.0000, 1.0000] ...
        """
        pc = int(round(100 * self.ci_level))
        lines = [f"alpha = {self.alpha:.4f}  [{self.alpha_ci[0]:.4f}, {self.alpha_ci[1]:.4f}]"
                 f"  ({pc}% {self.method}, window j = {self.window[0]}..{self.window[1]})",
                 f"beta  = {self.beta:.4f}  [{self.beta_ci[0]:.4f}, {self.beta_ci[1]:.4f}]"
                 f"  (window j = {self.target_window[0]}..{self.target_window[1]})"]
        if self.phase is None:
            lines.append("phase: outside the admissible region 2(alpha + beta) > 1")
        else:
            lines.append(f"phase {self.phase_label}; distance {self.boundary_distance:.3f} to "
                         f"{self.nearest_boundary}; {100 * self.phase_probability:.0f}% of "
                         "bootstrap replicates in this phase")
            e = self.exponents
            lines.append(f"compute-optimal exponents: xi = {e.xi:.4f} [{self.xi_ci[0]:.4f}, "
                         f"{self.xi_ci[1]:.4f}], eta = {e.eta:.4f} [{self.eta_ci[0]:.4f}, "
                         f"{self.eta_ci[1]:.4f}]")
        return "\n".join(lines)


def _percentile(x, level):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan, math.nan)
    q = 50.0 * (1.0 - level)
    return (float(np.percentile(x, q)), float(np.percentile(x, 100.0 - q)))


def _target_window(signal, floor, k1, k2):
    """Shrink [k1, k2] to the leading bins whose signal exceeds 4 noise floors."""
    if floor <= 0.0:
        return k1, k2
    edges = _bin_edges(k1, k2, 1.25)
    s = np.add.reduceat(signal[k1 - 1:k2], (edges[:-1] - k1).astype(np.int64))
    weak = np.flatnonzero(s < 4.0 * floor * np.diff(edges))
    if weak.size:
        k2 = int(edges[weak[0]]) - 1
    return k1, max(k2, k1)


def fit_power_laws(X, y=None, *, window=None, trust: float = 0.03, center: bool = True,
                   standardize: bool = False, n_boot: int = 200, ci: float = 0.95,
                   bin_ratio: float = 1.25, rng=None) -> SpectrumFit:
    r"""Fit :math:`\alpha` and :math:`\beta` to a spectrum, with bootstrap intervals.

    Parameters
    ----------
    X : array_like or SpectralModel or EmpiricalSpectrum
        Samples (``n x v``, with labels ``y``), or eigenvalues (1-D, with the target
        coefficients :math:`b_j` as ``y``), or a model / empirical spectrum.
    y : array_like, optional
        Labels (data) or target coefficients (eigenvalues).
    window : (int, int), optional
        1-based range ``(k_min, k_max)`` of eigenvalue indices of the fit.  Default: ``1``
        to the number of trusted eigenvalues (data) or to the last eigenvalue (arrays).
    trust, center, standardize
        See :func:`empirical_spectrum` (data only).
    n_boot : int, default 200
        Bootstrap replicates (0: no intervals).
    ci : float, default 0.95
        Level of the percentile intervals.
    bin_ratio : float, default 1.25
        Ratio of consecutive cut points of the bins (Eq. (14.2)).
    rng : int, numpy.random.Generator or None
        Seed of the bootstrap (SPEC 7).

    Returns
    -------
    SpectrumFit

    Raises
    ------
    ValueError
        Bad shapes or values (see :func:`empirical_spectrum`), a window with fewer than 4
        eigenvalues, or no positive target mass in the window.
    TypeError
        If ``X`` is none of the accepted types.

    Notes
    -----
    Both fits minimise, over the power :math:`p` with the scale :math:`C` profiled out, the
    squared log-residuals of bin sums :math:`\sum_{j\in B_i} s_j \approx C\sum_{j\in B_i}
    j^{-p}` over geometric bins :math:`B_i = [e_i, e_{i+1})` of the window (docs/theory.md,
    Eq. (14.2)): differences of cumulative sums, so that the mixing of nearby sample
    eigenvectors (which scatters single :math:`\hat c_j^2` by tens of percent) cancels
    inside a bin, and exact finite sums, so that no continuum approximation biases small
    ``j``.  The target fit uses :math:`\hat c_j^2 - \hat\sigma^2/n` (the expected noise floor
    of each direction) and stops at the first bin below four noise floors.

    Intervals (data): a first-order bootstrap over samples -- multinomial weights
    :math:`w_i` on the rows; in the fixed sample eigenbasis the eigenvalues
    :math:`\hat\lambda_j^* = \sum_i w_i(\hat e_j^Tx_i)^2/n` (their first-order
    perturbation) and the least-squares coefficients
    :math:`\hat b_j^* = \hat b_j + \sum_i w_i(\hat e_j^Tx_i)\hat\varepsilon_i/(n\hat\lambda_j)`
    with the residuals :math:`\hat\varepsilon_i`, plus the first-order rotation of the
    eigenvectors across the bin edges (Eq. (14.3)), at :math:`O(n\,k\,B)` instead of
    :math:`B` eigendecompositions of size ``v``.  Arrays and models: a residual bootstrap
    of the bin fit (fit uncertainty only).  Coverage measured in docs/fitting.md.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> rng = np.random.default_rng(0)
    >>> j = np.arange(1, 201.0)
    >>> X = rng.standard_normal((20000, 200)) * j**-1.0
    >>> fit = vs.fit_power_laws(X, X @ j**-0.7, n_boot=50, rng=1)
    >>> abs(fit.alpha - 1.0) < 0.05, abs(fit.beta - 0.7) < 0.05, fit.phase
    (True, True, 'II')
    """
    from .model import PLRF, SpectralModel
    from .phases import _exponent_arrays, phase_exponents, phase_info

    n_boot = as_int(n_boot, "n_boot", minimum=0)
    ci = as_real(ci, "ci", lower=0.0, upper=1.0)
    bin_ratio = as_real(bin_ratio, "bin_ratio", lower=1.0)
    gen = np.random.default_rng(as_rng(rng))
    es = None
    if isinstance(X, EmpiricalSpectrum):
        es = X
    elif isinstance(X, (SpectralModel, PLRF)):
        m = X if isinstance(X, SpectralModel) else SpectralModel.from_plrf(X)
        order = np.argsort(-m.head_eigenvalues, kind="stable")
        lam, b = m.head_eigenvalues[order], m.head_target[order]
    else:
        if y is None:
            raise TypeError("fit_power_laws needs labels (or target coefficients) y, unless X "
                            "is a SpectralModel or an EmpiricalSpectrum")
        Xa = np.asarray(X)
        if Xa.ndim == 2:
            es = empirical_spectrum(Xa, y, center=center, standardize=standardize,
                                    trust=trust)
        elif Xa.ndim == 1:
            from .model import _check_values

            lam = _check_values(Xa, "eigenvalues", positive=True)
            b = _check_values(np.asarray(y), "target", positive=False)
            if b.size != lam.size:
                raise ValueError(f"target must have the length of eigenvalues ({lam.size}); "
                                 f"got {b.size}")
            order = np.argsort(-lam, kind="stable")
            lam, b = lam[order], b[order]
        else:
            raise ValueError(f"X must be samples (2-D) or eigenvalues (1-D); got shape "
                             f"{Xa.shape}")
    floor = 0.0
    if es is not None:
        lam, c2 = es.eigenvalues, es.forcing_coefficients
        k1, k2 = _check_window(window, es.n_trusted, es.rank)
        if np.isfinite(es.noise_variance_estimate):
            floor = es.noise_variance_estimate / es.n_samples
        n_trusted = es.n_trusted
        method = ("residual bootstrap" if isinstance(X, EmpiricalSpectrum)
                  else "bootstrap over samples")
    else:
        c2 = lam * b * b
        k1, k2 = _check_window(window, lam.size, lam.size)
        n_trusted = None
        method = "residual bootstrap"
    if k2 - k1 < 3:
        raise ValueError(f"the fit window must hold >= 4 eigenvalues; got j = {k1}..{k2}"
                         + (f" (only {n_trusted} trusted: too few samples)"
                            if n_trusted is not None and window is None else ""))
    edges = _bin_edges(k1, k2, bin_ratio)
    bias = np.zeros(edges.size - 1) if es is None else _eigenvalue_bias(lam, edges,
                                                                         es.n_samples)
    p, logc = _fit_sums(_bin_sums(lam, edges) - bias, _BinModel(edges))
    if not np.isfinite(p):
        raise ValueError(f"fewer than two bins with positive mass in the fit window "
                         f"j = {k1}..{k2}")
    sig = np.maximum(c2 - floor, 0.0)
    t1, t2 = _target_window(sig, floor, k1, k2)
    if t2 - t1 < 3:
        raise ValueError(f"the target coefficients are below the noise floor sigma^2/n = "
                         f"{floor:.3g} beyond j = {t2}: too few directions (< 4) constrain "
                         "beta")
    tedges = _bin_edges(t1, t2, bin_ratio)
    tbias = np.zeros(tedges.size - 1) if es is None else _target_bias(lam, sig, tedges,
                                                                      es.n_samples)
    q, logcq = _fit_sums(_bin_sums(sig, tedges) - tbias, _BinModel(tedges))
    if not np.isfinite(q):
        raise ValueError(f"fewer than two bins with positive target mass in the fit window "
                         f"j = {t1}..{t2}")
    alpha, beta = p / 2.0, q / 2.0 - p / 2.0

    # ------------------------------------------------------------------ bootstrap
    pb = np.full(n_boot, np.nan)
    qb = np.full(n_boot, np.nan)
    if n_boot:
        if es is not None and not isinstance(X, EmpiricalSpectrum):
            L, T = _bootstrap_rows(_prepared(X, es), _prepared_y(y, es), es, edges, tedges)
            n = es.n_samples
            s_sig = _bin_sums(es.forcing_coefficients, tedges)
            fl = floor * np.diff(tedges)
            mp, mq = _BinModel(edges), _BinModel(tedges)
            chunk = max(1, int(2**24 // max(n, 1)))
            for s in range(0, n_boot, chunk):
                cnt = gen.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_boot - s))
                lb = cnt @ L / n - bias
                sb = s_sig + (cnt - 1.0) @ T / n - fl - tbias
                for i in range(cnt.shape[0]):
                    pb[s + i] = _fit_sums(lb[i], mp)[0]
                    qb[s + i] = _fit_sums(sb[i], mq)[0]
        else:
            mp, mq = _BinModel(edges), _BinModel(tedges)
            for vals, mdl, pp, lc, e, kk, out in ((lam, mp, p, logc, edges, k1, pb),
                                                  (sig, mq, q, logcq, tedges, t1, qb)):
                s = np.add.reduceat(vals[kk - 1:e[-1] - 1], (e[:-1] - kk).astype(np.int64))
                ok = s > 0
                fitted = lc + mdl(pp)[ok]
                resid = np.log(s[ok]) - fitted
                for i in range(n_boot):
                    star = fitted + gen.choice(resid, resid.size, replace=True)
                    out[i] = _profile_fit(star, lambda x, m=mdl, o=ok: m(x)[o])[0]
    ab_, bb_ = pb / 2.0, qb / 2.0 - pb / 2.0
    alpha_ci, beta_ci = (_percentile(ab_, ci), _percentile(bb_, ci)) if n_boot else \
        ((math.nan,) * 2, (math.nan,) * 2)

    # ---------------------------------------------------------------- phase
    ph = label = expo = None
    xi_ci = eta_ci = (math.nan, math.nan)
    prob = math.nan
    if alpha > 0 and alpha + beta > 0.5:
        info = phase_info(alpha, beta, tol=1e-9)
        ph, label = info.phase, info.label
        expo = phase_exponents(alpha, beta, tol=1e-9)
        if n_boot:
            ok = np.isfinite(ab_) & np.isfinite(bb_) & (ab_ > 0)
            code, xi, eta = _exponent_arrays(np.where(ok, ab_, np.nan),
                                             np.where(ok, bb_, np.nan))
            from .phases import PHASES

            prob = float(np.mean(code[ok] == PHASES.index(ph))) if ok.any() else math.nan
            xi_ci, eta_ci = _percentile(xi, ci), _percentile(eta, ci)
    dist, near = boundary_distance(alpha, beta)
    return SpectrumFit(alpha=alpha, alpha_ci=alpha_ci, beta=beta, beta_ci=beta_ci,
                       eigenvalue_scale=math.exp(logc), target_scale=math.exp(logcq),
                       window=(k1, k2), target_window=(t1, t2), n_trusted=n_trusted,
                       phase=ph, phase_label=label, boundary_distance=dist,
                       nearest_boundary=near, phase_probability=prob, exponents=expo,
                       xi_ci=xi_ci, eta_ci=eta_ci, alpha_boot=ab_, beta_boot=bb_,
                       method=method, n_boot=n_boot, ci_level=ci, noise_floor=floor)


def _prepared(X, es):
    """X with the constant columns dropped, centred and scaled as in ``es``."""
    Xa = np.asarray(X, dtype=np.float64)
    if es.dropped_columns:
        Xa = np.delete(Xa, list(es.dropped_columns), axis=1)
    return (Xa - es.mean) / es.scale


def _prepared_y(y, es):
    ya = np.asarray(y, dtype=np.float64).reshape(-1)
    return ya - ya.mean() if es.centered else ya
