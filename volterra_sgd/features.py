r"""Covariance spectra and target coefficients of nonlinear random features (docs/ridge.md).

Latent data :math:`x \sim N(0, D)`, :math:`D = \mathrm{diag}(j^{-2\alpha})_{j\le v}`, target
:math:`y = \langle x, b\rangle`, :math:`b_j = j^{-\beta}` (docs/theory.md, Eqs. (1.1)-(1.2)), are
mapped to :math:`p` features

.. math::  \phi(x) = \frac{1}{\sqrt p}\bigl(\sigma(F^T x) - E\,\sigma(F^T x)\bigr),\qquad
           F \in R^{v\times p},\ F_{jk} \sim N(0, 1/\mathrm{tr}\,D),

so that every pre-activation :math:`h_k = (F^Tx)_k` has variance close to 1 and
:math:`\mathrm{tr}\,E[\phi\phi^T] = O(1)` whatever :math:`p` (for ``linear`` it is close to
1 and the top eigenvalues are close to :math:`\lambda_j/\mathrm{tr}\,D`), and
:math:`\sigma` is ``relu``, ``tanh``, ``erf``, ``linear`` or a vectorised callable.  The
features are centred (equivalently: the linear model on the features has a free intercept,
whose optimal value is 0 because :math:`E y = 0`).

Definitions (the returned :class:`~volterra_sgd.SpectralModel` uses them):

* :math:`C = E[\phi\phi^T] = \sum_k \mu_k e_k e_k^T`, eigenvalues :math:`\mu_1 \ge \mu_2 \ge
  \dots` (the *data eigenvalues* of the new model);
* :math:`c = E[\phi\, y]`, :math:`a_k = \langle e_k, c\rangle` and the *target
  coefficients* :math:`\tilde b_k = a_k/\mu_k`, i.e. the coordinates of the best linear
  predictor :math:`\theta^* = C^{-1}c` of :math:`y` from :math:`\phi` in the eigenbasis
  scaled like the PLRF target: :math:`\langle\phi,\theta^*\rangle = \sum_k \tilde b_k
  \xi_k` with :math:`\xi_k = \langle e_k,\phi\rangle`, :math:`E\xi_k^2 = \mu_k`.

Hence the model's initial loss :math:`\sum_k \mu_k \tilde b_k^2 = E\langle\phi,
\theta^*\rangle^2` is the *linearly explainable* variance of :math:`y`, and the rest,
``unexplained_variance`` :math:`= E y^2 - \sum_k \mu_k\tilde b_k^2`, acts as label noise
that no linear model on the features removes.  Treating :math:`\xi` as Gaussian is the
Gaussian-equivalence (universality) assumption used for random-features models.

Two estimators:

``method="exact"`` (``relu``, ``erf``, ``linear``)
    given :math:`F`, :math:`C` and :math:`c` in closed form: the arc-cosine kernel of
    degree 1 for ReLU, the arcsine kernel for erf, and Stein's lemma
    :math:`E[\sigma(h_k) y] = E[\sigma'(h_k)]\,(F^TDb)_k`.  No sampling error.
``method="sample"`` (any activation)
    :math:`n` samples; :math:`C` and :math:`c` are the sample moments (centred with the
    sample mean).  Error: each eigenvalue is also computed from the two halves of the
    sample; ``eigenvalue_spread`` is half their difference (about one standard error of the
    full-sample value).  Sample eigenvalues are biased: the bulk spreads by a relative
    amount of order :math:`\sqrt{p/n}` and eigenvalues below about :math:`(p/n)\,\mu_1` are
    unreliable (``p_over_n``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from ._validation import as_exponents, as_int, as_rng, check_budget
from .model import _check_representable

__all__ = ["FeatureSpectrum", "feature_spectrum", "tail_exponent", "ACTIVATIONS"]

#: Built-in activations.
ACTIVATIONS = ("relu", "tanh", "erf", "linear")
_EXACT = ("relu", "erf", "linear")
_CHUNK_BYTES = 64 * 2**20


def _activation(name):
    if callable(name):
        return name
    return {"relu": lambda h: np.maximum(h, 0.0), "tanh": np.tanh, "erf": erf,
            "linear": lambda h: h}[name]


@dataclass(frozen=True)
class FeatureSpectrum:
    r"""Estimated spectrum and target of a nonlinear random-feature map (:func:`feature_spectrum`).

    Attributes
    ----------
    eigenvalues : ndarray
        :math:`\mu_k`, descending (numerically zero ones, below ``1e-12 mu_1``, dropped).
    target : ndarray
        :math:`\tilde b_k = \langle e_k, E[\phi y]\rangle/\mu_k`.
    eigenvalue_spread : ndarray or None
        ``method="sample"``: half the difference of the split-half estimates (one standard
        error scale); None for ``method="exact"``.
    target_variance : float
        :math:`E y^2 = \sum_j \lambda_j b_j^2`.
    explained_variance : float
        :math:`\sum_k \mu_k \tilde b_k^2`, the variance of the best linear predictor (the
        initial loss of :meth:`model`).
    unexplained_variance : float
        ``target_variance - explained_variance`` (acts as label noise).
    activation : str
    method : str
    alpha, beta : float
    v, n_features : int
        Latent dimension and number of features :math:`p`.
    n_samples : int or None
    p_over_n : float
        :math:`p/n` (0 for the exact method): the scale of the sample-eigenvalue bias.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> fs = vs.feature_spectrum(1.0, 0.7, v=50, n_features=200, activation="relu",
    ...                          method="exact", rng=0)
    >>> fs.eigenvalues.size == fs.target.size, fs.activation, fs.method
    (True, 'relu', 'exact')
    >>> bool(abs(fs.explained_variance + fs.unexplained_variance - fs.target_variance)
    ...      < 1e-12 * fs.target_variance)
    True
    """

    eigenvalues: np.ndarray
    target: np.ndarray
    eigenvalue_spread: np.ndarray | None
    target_variance: float
    explained_variance: float
    unexplained_variance: float
    activation: str
    method: str
    alpha: float
    beta: float
    v: int
    n_features: int
    n_samples: int | None
    p_over_n: float

    def model(self, d: int):
        """Return the :class:`~volterra_sgd.SpectralModel` with these eigenvalues and target.

        Parameters
        ----------
        d : int
            Number of random features of the model (``1 <= d <= len(eigenvalues)``).

        Returns
        -------
        SpectralModel
        """
        from .model import SpectralModel

        return SpectralModel(self.eigenvalues, self.target, d=d)


def _moments_exact(act, F, lam, b):
    """Closed-form centred covariance and E[phi y] given F (relu, erf, linear)."""
    G = F.T @ (lam[:, None] * F)          # covariance of the pre-activations
    g = F.T @ (lam * b)                   # Cov(h, y)
    s = np.sqrt(np.diag(G))
    if act == "linear":
        return G, g
    if act == "relu":
        rho = np.clip(G / np.outer(s, s), -1.0, 1.0)
        th = np.arccos(rho)
        second = np.outer(s, s) / (2 * math.pi) * (np.sin(th) + (math.pi - th) * rho)
        mean = s / math.sqrt(2 * math.pi)
        return second - np.outer(mean, mean), 0.5 * g
    # erf: E erf(a) erf(b) = (2/pi) arcsin(2 G_ab / sqrt((1 + 2 G_aa)(1 + 2 G_bb))); mean 0
    q = 1.0 + 2.0 * s * s
    C = (2.0 / math.pi) * np.arcsin(np.clip(2.0 * G / np.sqrt(np.outer(q, q)), -1.0, 1.0))
    return C, (2.0 / math.sqrt(math.pi)) / np.sqrt(q) * g


def _moments_sample(fn, F, lam, b, n, gen):
    """Sample moments from two halves: lists of (C, c) and the pooled (C, c)."""
    v, p = F.shape
    sd = np.sqrt(lam)
    rows = max(1, int(_CHUNK_BYTES // (8 * (v + p))))
    halves = []
    for m in (n // 2, n - n // 2):
        s1 = np.zeros(p)
        s2 = np.zeros((p, p))
        sy = np.zeros(p)
        ysum = 0.0
        done = 0
        while done < m:
            k = min(rows, m - done)
            X = gen.standard_normal((k, v)) * sd
            P = fn(X @ F)
            if P.shape != (k, p):
                raise ValueError(f"activation must map an array to one of the same shape; got "
                                 f"{P.shape} for input {(k, p)}")
            if not np.all(np.isfinite(P)):
                raise ValueError("the activation produced non-finite features")
            y = X @ b
            s1 += P.sum(axis=0)
            s2 += P.T @ P
            sy += P.T @ y
            ysum += y.sum()
            done += k
        mu = s1 / m
        halves.append((s2 / m - np.outer(mu, mu), sy / m - mu * (ysum / m), m))
    (C1, c1, m1), (C2, c2, m2) = halves
    C = (m1 * C1 + m2 * C2) / n
    c = (m1 * c1 + m2 * c2) / n
    if not (np.all(np.isfinite(C)) and np.all(np.isfinite(c))):
        raise ValueError("the activation produced non-finite features")
    return C, c, C1, C2


def _eig_desc(C):
    w, V = np.linalg.eigh(0.5 * (C + C.T))
    return w[::-1], V[:, ::-1]


def feature_spectrum(alpha: float, beta: float, v: int, n_features: int,
                     activation="relu", *, method: str = "sample", n_samples: int = 20000,
                     rng=None, max_cost: float | None = None) -> FeatureSpectrum:
    r"""Covariance eigenvalues and target coefficients of nonlinear random features.

    Parameters
    ----------
    alpha, beta : float
        Latent power laws :math:`\lambda_j = j^{-2\alpha}`, :math:`b_j = j^{-\beta}`.
    v : int
        Latent dimension (finite).
    n_features : int
        Number of features :math:`p`.
    activation : {"relu", "tanh", "erf", "linear"} or callable
        :math:`\sigma`, applied elementwise (a callable must be vectorised).
    method : {"sample", "exact"}
        ``"exact"`` uses the closed-form kernels (``relu``, ``erf``, ``linear`` only);
        ``"sample"`` the sample moments of ``n_samples`` points.
    n_samples : int
        Sample size :math:`n \ge 4` for ``method="sample"``.
    rng : int, numpy.random.Generator or None
        Seed (SPEC 7); draws :math:`F`, then the samples.
    max_cost : float, optional
        Limit on the estimated kernel steps (default ``10**9``, in units of 3000 flops of
        the projections and moments); ``math.inf`` removes it (the memory check stays).

    Returns
    -------
    FeatureSpectrum
        ``.eigenvalues``, ``.target``, error diagnostics and ``.model(d)``.

    Raises
    ------
    TypeError
        If a count is not an integer or ``activation`` is neither a name nor callable.
    ValueError
        Bad ranges, an unknown activation or method, ``method="exact"`` for an activation
        without closed form, or non-finite features.

    Notes
    -----
    The definitions and the estimator are in the module docstring (docs/ridge.md,
    "Nonlinear random-feature spectra").  Eigenvalues below ``1e-12`` times the largest
    are dropped (with their target coefficients), so the result is a valid
    :class:`~volterra_sgd.SpectralModel` spectrum.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> fs = vs.feature_spectrum(1.0, 0.7, v=50, n_features=200, activation="relu",
    ...                          method="exact", rng=0)
    >>> fs.eigenvalues.size > 50          # ReLU extends the spectrum beyond the latent rank
    True
    >>> sm = fs.model(d=40)
    >>> abs(sm.initial_loss - fs.explained_variance) < 1e-12 * fs.explained_variance
    True
    """
    alpha, beta = as_exponents(alpha, beta)
    v = as_int(v, "v", minimum=1)
    p = as_int(n_features, "n_features", minimum=1)
    if method not in ("sample", "exact"):
        raise ValueError(f"method must be 'sample' or 'exact'; got {method!r}")
    if callable(activation):
        name = getattr(activation, "__name__", "callable")
        if method == "exact":
            raise ValueError("method='exact' needs activation 'relu', 'erf' or 'linear'; got a "
                             "callable")
    elif isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS} or a callable; got "
                             f"{activation!r}")
        name = activation
        if method == "exact" and activation not in _EXACT:
            raise ValueError(f"method='exact' needs activation in {_EXACT}; got {activation!r} "
                             "(use method='sample')")
    else:
        raise TypeError(f"activation must be a string or a callable; got "
                        f"{type(activation).__name__}")
    n = as_int(n_samples, "n_samples", minimum=4) if method == "sample" else None
    _check_representable(alpha, beta, v, p)
    # cost: the v x p projection, the p x p moments and, when sampling, n (v + p) p flops
    flops = float(v) * p * p + (float(n) * (v + p) * p if n is not None else float(v) * p * p)
    check_budget(flops / 3000.0, 8.0 * (4.0 * v * p + 4.0 * p * p + 2.0 * v),
                 what="feature_spectrum", parameter="v, n_features or n_samples",
                 max_cost=max_cost)
    gen = np.random.default_rng(as_rng(rng))
    j = np.arange(1, v + 1, dtype=np.float64)
    lam = j ** (-2.0 * alpha)
    b = j ** (-beta)
    F = gen.standard_normal((v, p)) / math.sqrt(lam.sum())
    spread = None
    if method == "exact":
        C, c = _moments_exact(name, F, lam, b)
    else:
        C, c, C1, C2 = _moments_sample(_activation(activation), F, lam, b, n, gen)
        w1 = _eig_desc(C1)[0]
        w2 = _eig_desc(C2)[0]
        spread = 0.5 * np.abs(w1 - w2)
    C = C / p  # the 1/sqrt(p) normalisation of the features
    c = c / math.sqrt(p)
    if spread is not None:
        spread = spread / p
    w, V = _eig_desc(C)
    keep = w > 1e-12 * w[0]
    if not keep[0]:
        raise ValueError("the feature covariance is zero (constant features)")
    w = np.ascontiguousarray(w[keep])
    target = np.ascontiguousarray((V[:, keep].T @ c) / w)
    if spread is not None:
        spread = np.ascontiguousarray(spread[keep])
    yvar = float(np.sum(lam * b * b))
    explained = float(np.sum(w * target * target))
    return FeatureSpectrum(eigenvalues=w, target=target, eigenvalue_spread=spread,
                           target_variance=yvar, explained_variance=explained,
                           unexplained_variance=yvar - explained, activation=name,
                           method=method, alpha=alpha, beta=beta, v=v, n_features=p,
                           n_samples=n, p_over_n=0.0 if n is None else p / n)


def tail_exponent(eigenvalues, k_min: int, k_max: int) -> float:
    r"""Fitted power :math:`s` of :math:`\mu_k \approx C k^{-s}` over ``k_min <= k <= k_max``.

    Parameters
    ----------
    eigenvalues : array_like
        Descending eigenvalues :math:`\mu_1, \mu_2, \dots`.
    k_min, k_max : int
        1-based index range of the least-squares fit of :math:`\log\mu_k` on :math:`\log k`
        (at least two points inside the array).

    Returns
    -------
    float
        :math:`s` (the latent spectrum :math:`j^{-2\alpha}` has :math:`s = 2\alpha`).

    Examples
    --------
    >>> import numpy as np
    >>> from volterra_sgd.features import tail_exponent
    >>> round(tail_exponent(np.arange(1, 101.0) ** -1.5, 10, 100), 12)
    1.5
    """
    mu = np.asarray(eigenvalues, dtype=np.float64)
    k_min = as_int(k_min, "k_min", minimum=1)
    k_max = as_int(k_max, "k_max", minimum=k_min + 1)
    if k_max > mu.size:
        raise ValueError(f"k_max must be <= len(eigenvalues) = {mu.size}; got {k_max}")
    k = np.arange(k_min, k_max + 1, dtype=np.float64)
    seg = mu[k_min - 1:k_max]
    if np.any(seg <= 0):
        raise ValueError("eigenvalues in the fit range must be > 0")
    return float(-np.polyfit(np.log(k), np.log(seg), 1)[0])
