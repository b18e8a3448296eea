r"""The data-limited frontier of ridge regression on random features, and Kaplan's L(N, D).

The ridge model (:mod:`volterra_sgd.ridge`) fits :math:`N` random features on :math:`T`
samples.  With the ridge tuned at every point (:func:`~volterra_sgd.optimal_ridge`) its
deterministic test loss :math:`L^\star(N, T)` is a smooth surface without the interpolation
peak.  This module studies it like an empirical scaling-law surface:

* :func:`data_limited_frontier`: the compute-optimal allocation of :math:`(N, T)` under the
  compute model :math:`C = N T` (one multiply-add per feature and sample), i.e. the minimum
  of :math:`L^\star(N, C/N)` over :math:`N` at each :math:`C`, and the exponents of
  :math:`N^\star \propto C^{\xi_N}`, :math:`T^\star \propto C^{\xi_T}`,
  :math:`L^\star \propto C^{-\eta}` fitted over a grid of :math:`C`;
* :func:`data_limited_exponents`: the same exponents derived from
  :func:`~volterra_sgd.ridge_scaling_exponents` (docs/theory.md, Eqs. (19.3)-(19.5));
* :func:`kaplan_overfitting_fit`: Kaplan et al.'s (2020) overfitting law
  :math:`L(N, D) = [(N_c/N)^{\alpha_N/\alpha_D} + D_c/D]^{\alpha_D}` fitted on the surface,
  with its fit quality.

Everything runs on the deterministic equivalent, so there is no sampling noise; :math:`N`
and :math:`T` are continuous variables of the equivalent.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._validation import as_int, as_real_array, as_rng
from .compute_optimal import PowerLawFit, _linfit, _power_fit
from .model import PLRF
from .ridge import _as_model, _optimal_ridge, _Spectrum, ridge_scaling_exponents

__all__ = [
    "DataLimitedExponents",
    "data_limited_exponents",
    "DataLimitedFrontier",
    "data_limited_frontier",
    "KaplanOverfittingFit",
    "kaplan_overfitting_fit",
]

#: Default compute grid of :func:`data_limited_frontier` (two points per decade).
DEFAULT_COMPUTE = np.logspace(5.0, 9.0, 9)
#: Scan points in log N at each compute before Brent's method.
_SCAN = 12


# ============================================================================ derived exponents
@dataclass(frozen=True)
class DataLimitedExponents:
    r"""Exponents of the data-limited frontier derived from the ridge scaling exponents.

    Attributes
    ----------
    params : float
        :math:`\xi_N`: :math:`N^\star \propto C^{\xi_N}`.
    data : float
        :math:`\xi_T = 1 - \xi_N`: :math:`T^\star \propto C^{\xi_T}`.
    loss : float
        :math:`\eta`: :math:`L^\star \propto C^{-\eta}`.
    features, samples : float
        The exponents :math:`a` of :math:`L(N)` at :math:`T = \infty` and :math:`c` of
        :math:`L(T)` at :math:`N = \infty` (:func:`~volterra_sgd.ridge_scaling_exponents`).
    regime : str
        ``"balanced"`` (:math:`a = c`), ``"cross"`` (:math:`a < 2`, :math:`c > a`: the
        cross term binds), ``"marginal"`` (:math:`a = 2`: the cross term is
        allocation-independent and the next order sets :math:`\xi_N`) or ``"square-root"``
        (:math:`a > 2`, :math:`c > a`); docs/theory.md, Eq. (19.5).
    additive_params, additive_loss : float
        What the additive form :math:`A N^{-a} + B T^{-c}` alone would give,
        :math:`c/(a+c)` and :math:`ac/(a+c)` (Eq. (19.4)), for comparison.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> ex = vs.data_limited_exponents(0.75, 2.0)
    >>> ex.regime, round(ex.params, 4), round(ex.loss, 4), ex.additive_loss
    ('cross', 0.7143, 0.8571, 1.0)
    """

    params: float
    data: float
    loss: float
    features: float
    samples: float
    regime: str
    additive_params: float
    additive_loss: float


def data_limited_exponents(alpha: float, beta: float) -> DataLimitedExponents:
    r"""Frontier exponents under :math:`C = NT` from :func:`~volterra_sgd.ridge_scaling_exponents`.

    Parameters
    ----------
    alpha, beta : float
        Power-law exponents (:math:`\lambda_j = j^{-2\alpha}`, :math:`b_j = j^{-\beta}`,
        :math:`v = \infty`, no label noise), :math:`2\alpha > 1`, :math:`2(\alpha+\beta) > 1`.

    Returns
    -------
    DataLimitedExponents

    Notes
    -----
    With :math:`a` = ``features`` and :math:`c` = ``samples`` (:math:`c \ge a`), the
    optimally regularised surface is, for :math:`N \gtrsim T` (docs/theory.md, Eq. (19.3)),
    :math:`L^\star \approx A N^{-a} + B T^{-c} + D\,T^{1-a}/N`; with :math:`N = C^x` the three
    terms decay as :math:`C^{-ax}`, :math:`C^{-c(1-x)}`, :math:`C^{-(a-1)(1-x)-x}` and
    :math:`\eta = \max_x \min` of the three (Eq. (19.5)):

    * :math:`a < 2`: :math:`\xi_N = (c-a+1)/(c-a+2)`, :math:`\eta = c/(c-a+2)`;
    * :math:`a = 2`: :math:`\eta = 1`, and the next order gives :math:`\xi_N = c/(c+2)`;
    * :math:`a > 2`: :math:`\xi_N = 1/2`, :math:`\eta = a/2`.

    For :math:`a = c` (:math:`2\beta < 1`) all cases give :math:`\xi_N = 1/2`,
    :math:`\eta = a/2`, the additive result.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> ex = vs.data_limited_exponents(1.0, 0.3)         # a = c = 1.6
    >>> ex.regime, ex.params, ex.data, round(ex.loss, 12)
    ('balanced', 0.5, 0.5, 0.8)
    """
    ex = ridge_scaling_exponents(alpha, beta)
    a, c = ex.features, ex.samples
    add_x, add_eta = c / (a + c), a * c / (a + c)
    if abs(c - a) <= 1e-12:
        x, eta, regime = 0.5, a / 2.0, "balanced"
    elif abs(a - 2.0) <= 1e-12:
        x, eta, regime = c / (c + 2.0), 1.0, "marginal"
    elif a < 2.0:
        x, eta, regime = (c - a + 1.0) / (c - a + 2.0), c / (c - a + 2.0), "cross"
    else:
        x, eta, regime = 0.5, a / 2.0, "square-root"
    return DataLimitedExponents(params=x, data=1.0 - x, loss=eta, features=a, samples=c,
                                regime=regime, additive_params=add_x, additive_loss=add_eta)


# ============================================================================ the frontier
@dataclass(frozen=True)
class DataLimitedFrontier:
    r"""The compute-optimal allocation of features and samples (:func:`data_limited_frontier`).

    Attributes
    ----------
    compute : ndarray
        The compute values :math:`C = NT`.
    n_features, n_samples : ndarray
        :math:`N^\star(C)` and :math:`T^\star(C) = C/N^\star` (continuous).
    loss : ndarray
        :math:`L^\star(C)`, the excess risk at the optimum (optimal ridge at each point).
    total_loss : ndarray
        ``loss + noise_variance``.
    ridge : ndarray
        The optimal ridge :math:`\lambda^\star` at :math:`(N^\star, T^\star)`.
    params_fit, data_fit, loss_fit : PowerLawFit
        Log-log least-squares fits of :math:`N^\star`, :math:`T^\star` and :math:`L^\star`
        against :math:`C` (``loss_fit.exponent`` is :math:`\eta`); ``exponent_ci`` is the 95%
        percentile interval of a bootstrap over the :math:`C` points.  The points are
        deterministic, so the interval measures how far the frontier is from a straight line
        over the window, not sampling noise.
    local_params_exponent, local_loss_exponent : ndarray
        Slopes between successive :math:`C` (the drift of the exponents over the window).
    theory : DataLimitedExponents or None
        The derived exponents (Eq. (19.5)) for a noiseless :class:`~volterra_sgd.PLRF`; None
        otherwise.  They are those of :math:`v = \infty`; with a finite :math:`v` they hold
        only while :math:`N^\star, T^\star \ll v`.
    max_deviation : float
        Largest :math:`|` fitted :math:`-` derived :math:`|` over :math:`\xi_N, \xi_T, \eta`
        (NaN without ``theory``).
    noise_variance : float
    model : PLRF or SpectralModel
    n_evaluations : int
        Evaluations of the deterministic equivalent.
    seconds : float
        Wall time.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> fr = vs.data_limited_frontier((1.0, 0.3), np.logspace(4, 6, 3), n_boot=0)
    >>> bool(np.allclose(fr.n_features * fr.n_samples, fr.compute))
    True
    >>> round(fr.theory.loss, 3), abs(fr.loss_fit.exponent - fr.theory.loss) < 0.05
    (0.8, True)
    """

    compute: np.ndarray
    n_features: np.ndarray
    n_samples: np.ndarray
    loss: np.ndarray
    total_loss: np.ndarray
    ridge: np.ndarray
    params_fit: PowerLawFit
    data_fit: PowerLawFit
    loss_fit: PowerLawFit
    local_params_exponent: np.ndarray
    local_loss_exponent: np.ndarray
    theory: DataLimitedExponents | None
    max_deviation: float
    noise_variance: float
    model: object = field(repr=False)
    n_evaluations: int = 0
    seconds: float = 0.0


def _frontier_point(spec: _Spectrum, compute: float, count: list, xtol: float = 1e-6):
    """Minimise the optimally regularised loss over log N at N T = compute."""
    from scipy.optimize import minimize_scalar

    def f(x):
        count[0] += 1
        return math.log(_optimal_ridge(spec, math.exp(x), compute / math.exp(x)).loss)

    top = math.log(compute)
    # interior scan points; N = T (the ridge-0 peak) is not one of them
    grid = top * (np.arange(1, _SCAN + 1) / (_SCAN + 1.0))
    grid = grid[np.abs(grid - 0.5 * top) > 1e-6]
    vals = np.array([f(x) for x in grid])
    i = int(np.argmin(vals))
    lo = grid[i - 1] if i > 0 else 0.0
    hi = grid[i + 1] if i + 1 < grid.size else top
    res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": xtol})
    x = float(res.x) if res.fun <= vals[i] else float(grid[i])
    opt = _optimal_ridge(spec, math.exp(x), compute / math.exp(x))
    count[0] += 1
    return math.exp(x), opt


def _bootstrap_slopes(lc, ys, n_boot, gen):
    """Pairs-bootstrap slopes of each ``y`` in ``ys`` against ``lc`` (same resamples)."""
    out = np.full((len(ys), n_boot), math.nan)
    n = lc.size
    for b in range(n_boot):
        idx = gen.integers(0, n, n)
        if np.unique(idx).size < 2:
            continue
        for k, y in enumerate(ys):
            out[k, b] = _linfit(lc[idx], y[idx])[0]
    return out


def _as_compute(compute) -> np.ndarray:
    c = as_real_array(compute, "compute")
    if c.ndim != 1 or c.size < 2:
        raise ValueError(f"compute must be a 1-D array of at least 2 values; got shape "
                         f"{c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 4.0):
        raise ValueError(f"compute must hold finite values >= 4; got {c!r}")
    if np.any(np.diff(c) <= 0):
        raise ValueError("compute must be strictly increasing")
    return c


def data_limited_frontier(model_or_params, compute=None, *, n_boot: int = 200,
                          rng=0) -> DataLimitedFrontier:
    r"""Compute-optimal :math:`(N, T)` of ridge regression on random features under :math:`C = NT`.

    Parameters
    ----------
    model_or_params : PLRF, SpectralModel or (alpha, beta)
        The data model (``model.d`` is ignored; ``noise_variance`` counts); a pair means
        ``PLRF(alpha, beta, v=inf, d=1)``.
    compute : array_like, optional
        Increasing compute values :math:`C \ge 4` (default ``DEFAULT_COMPUTE``,
        :math:`10^5`-:math:`10^9`, two per decade).
    n_boot : int
        Bootstrap resamples of the :math:`C` points for the exponent intervals (0: none).
    rng : int, numpy.random.Generator or None
        Seed of the bootstrap.

    Returns
    -------
    DataLimitedFrontier

    Raises
    ------
    TypeError
        If the model is not a model or a pair.
    ValueError
        If ``compute`` is not increasing, has fewer than 2 values or values below 4.
    ConvergenceError
        If the equivalent fails (not observed).

    Notes
    -----
    At each :math:`C` the loss with the optimal ridge, :math:`L^\star(N, C/N)`
    (:func:`~volterra_sgd.optimal_ridge`, Eq. (19.2)), is minimised over :math:`\log N` by
    a scan of 12 points followed by Brent's method between the neighbours of the best one (to
    ``1e-6`` in :math:`\log N`).  The exponents are least-squares slopes in log-log
    coordinates; for a noiseless ``PLRF`` they are compared with
    :func:`data_limited_exponents` (Eq. (19.5)).  Cost: about 25 optimal-ridge solves per
    :math:`C`, i.e. about 1000 evaluations of the equivalent, each :math:`O(v)` or, for
    :math:`v = \infty`, :math:`O(\sqrt{C})`; 0.2-1 s per :math:`C` up to :math:`10^9`.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> fr = vs.data_limited_frontier((0.75, 2.0), np.logspace(5, 7, 3), n_boot=0)
    >>> fr.theory.regime, bool(np.all(fr.n_features > fr.n_samples))
    ('cross', True)
    """
    t0 = time.perf_counter()
    model = _as_model(model_or_params)
    c = DEFAULT_COMPUTE.copy() if compute is None else _as_compute(compute)
    n_boot = as_int(n_boot, "n_boot", minimum=0)
    gen = np.random.default_rng(as_rng(rng))
    spec = _Spectrum(model)
    count = [0]
    ns, losses, ridges = [], [], []
    for ci in c:
        n, opt = _frontier_point(spec, float(ci), count)
        ns.append(n)
        losses.append(opt.loss)
        ridges.append(opt.ridge)
    ns, losses = np.array(ns), np.array(losses)
    ts = c / ns
    lc = np.log(c)
    boot = (_bootstrap_slopes(lc, [np.log(ns), np.log(ts), np.log(losses)], n_boot, gen)
            if n_boot else [None, None, None])
    params_fit = _power_fit(c, ns, 1.0, boot[0])
    data_fit = _power_fit(c, ts, 1.0, boot[1])
    loss_fit = _power_fit(c, losses, -1.0, None if boot[2] is None else -boot[2])
    theory = None
    dev = math.nan
    if isinstance(model, PLRF) and model.noise_variance == 0.0:
        theory = data_limited_exponents(model.alpha, model.beta)
        dev = max(abs(params_fit.exponent - theory.params),
                  abs(data_fit.exponent - theory.data), abs(loss_fit.exponent - theory.loss))
    return DataLimitedFrontier(
        compute=c, n_features=ns, n_samples=ts, loss=losses,
        total_loss=losses + spec.sigma2, ridge=np.array(ridges), params_fit=params_fit,
        data_fit=data_fit, loss_fit=loss_fit,
        local_params_exponent=np.diff(np.log(ns)) / np.diff(lc),
        local_loss_exponent=-np.diff(np.log(losses)) / np.diff(lc), theory=theory,
        max_deviation=float(dev), noise_variance=spec.sigma2, model=model,
        n_evaluations=count[0], seconds=time.perf_counter() - t0)


# ============================================================================ Kaplan L(N, D)
@dataclass(frozen=True)
class KaplanOverfittingFit:
    r"""Kaplan's overfitting law fitted on the ridge surface (:func:`kaplan_overfitting_fit`).

    :math:`L(N, D) = [(N_c/N)^{\alpha_N/\alpha_D} + D_c/D]^{\alpha_D}` with :math:`D = T`
    (Kaplan et al. 2020, their Eq. (1.5)).

    Attributes
    ----------
    n_c, d_c, alpha_n, alpha_d : float
        Fitted :math:`N_c`, :math:`D_c`, :math:`\alpha_N`, :math:`\alpha_D`.
    max_relative_residual : float
        :math:`\max |L_{fit}/L - 1|` over the grid (the fit quality).
    rms_log_residual : float
        Root-mean-square residual of :math:`\log L` (the fitted objective).
    n_features, n_samples : ndarray
        The grid (:math:`N` rows, :math:`T` columns).
    loss : ndarray
        The surface :math:`L(N, T)` fitted (optimal ridge, or the given ridge).
    fitted : ndarray
        The fitted law on the grid.
    ridge : ndarray
        The ridge used at each grid point.
    features, samples : float
        The closed-form exponents :math:`a`, :math:`c` of a noiseless ``PLRF``
        (:func:`~volterra_sgd.ridge_scaling_exponents`; NaN otherwise), the limits that
        :math:`\alpha_N` and :math:`\alpha_D` describe.
    success : bool
        Whether the least-squares solver converged.
    message : str

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> fit = vs.kaplan_overfitting_fit((1.0, 0.3), [100, 300, 1000], [100, 300, 1000])
    >>> fit.success, fit.loss.shape, fit.max_relative_residual < 0.5
    (True, (3, 3), True)
    """

    n_c: float
    d_c: float
    alpha_n: float
    alpha_d: float
    max_relative_residual: float
    rms_log_residual: float
    n_features: np.ndarray
    n_samples: np.ndarray
    loss: np.ndarray
    fitted: np.ndarray
    ridge: np.ndarray
    features: float
    samples: float
    success: bool
    message: str

    def predict(self, n_features, n_samples):
        """Evaluate the fitted law at :math:`(N, D)` (broadcast)."""
        n = np.asarray(n_features, dtype=np.float64)
        d = np.asarray(n_samples, dtype=np.float64)
        return _kaplan_law(np.array([math.log(self.n_c), math.log(self.d_c), self.alpha_n,
                                     self.alpha_d]), np.log(n), np.log(d))


def _kaplan_law(theta, logn, logd):
    lnc, ldc, an, ad = theta
    return np.exp(ad * np.logaddexp((an / ad) * (lnc - logn), ldc - logd))


def _as_grid(x, name):
    arr = as_real_array(x, name)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be a 1-D array of at least 2 values; got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 1.0):
        raise ValueError(f"{name} must hold finite values >= 1; got {arr!r}")
    return arr


def _fit_kaplan(ns, ts, loss):
    """Least-squares fit of the law to ``log loss`` on the grid; the scipy result."""
    from scipy.optimize import least_squares

    logn, logd = np.meshgrid(np.log(ns), np.log(ts), indexing="ij")
    logl = np.log(loss)
    # starting values from the last row / column (the largest D / N)
    an = max(-_linfit(np.log(ns), logl[:, -1])[0], 0.05)
    ad = max(-_linfit(np.log(ts), logl[-1, :])[0], 0.05)
    lnc = float(np.max(logl[:, -1] / an + np.log(ns)))
    ldc = float(np.max(logl[-1, :] / ad + np.log(ts)))

    def resid(theta):
        return np.log(_kaplan_law(theta, logn, logd)).ravel() - logl.ravel()

    best = None
    for start in ([lnc, ldc, an, ad], [lnc - 1.0, ldc - 1.0, an, ad]):
        res = least_squares(resid, np.array(start), method="trf", xtol=1e-14, ftol=1e-14,
                            gtol=1e-14, max_nfev=5000,
                            bounds=([-np.inf, -np.inf, 1e-3, 1e-3], [np.inf, np.inf, 20, 20]))
        if best is None or res.cost < best.cost:
            best = res
    return best


def kaplan_overfitting_fit(model_or_params, n_features=None, n_samples=None, *,
                           ridge="optimal") -> KaplanOverfittingFit:
    r"""Fit Kaplan's overfitting law :math:`L(N, D)` to the ridge surface.

    The law is :math:`L(N, D) = [(N_c/N)^{\alpha_N/\alpha_D} + D_c/D]^{\alpha_D}`.

    Parameters
    ----------
    model_or_params : PLRF, SpectralModel or (alpha, beta)
        The data model (``model.d`` ignored); a pair means ``PLRF(alpha, beta, v=inf, d=1)``.
    n_features, n_samples : array_like, optional
        Grids of :math:`N` and :math:`D = T` (values >= 1, at least 2 each; default 7
        log-spaced values from 100 to 10,000 each).
    ridge : "optimal" or float
        The ridge of the surface: tuned at every point (:func:`~volterra_sgd.optimal_ridge`,
        default) or a fixed :math:`\lambda \ge 0`.

    Returns
    -------
    KaplanOverfittingFit

    Raises
    ------
    ValueError
        If a grid is invalid, ``ridge`` is neither ``"optimal"`` nor a number >= 0, or the
        surface is infinite somewhere (the interpolation peak of a zero ridge).

    Notes
    -----
    Least squares in :math:`\log L` (``scipy.optimize.least_squares``, parameters
    :math:`\log N_c, \log D_c, \alpha_N, \alpha_D`), started from the slopes along the last
    row and column of the grid.  The law has the limits :math:`(N_c/N)^{\alpha_N}` and
    :math:`(D_c/D)^{\alpha_D}`; the ridge surface has them with :math:`a` and :math:`c`
    (Eq. (19.3)) but its cross term :math:`D\,T^{1-a}/N` has no counterpart in the law, so
    the fit quality is the measure of how well the law describes the model (docs/theory.md,
    Sec. 19).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> fit = vs.kaplan_overfitting_fit((1.0, 0.7), [100, 1000], [100, 1000])
    >>> fit.alpha_n > 0 and fit.alpha_d > 0
    True
    """
    from .ridge import _as_ridge, _evaluate

    model = _as_model(model_or_params)
    ns = _as_grid(np.logspace(2, 4, 7) if n_features is None else n_features, "n_features")
    ts = _as_grid(np.logspace(2, 4, 7) if n_samples is None else n_samples, "n_samples")
    optimal = isinstance(ridge, str)
    if optimal and ridge != "optimal":
        raise ValueError(f"ridge must be 'optimal' or a number >= 0; got {ridge!r}")
    fixed = None if optimal else _as_ridge(ridge)
    spec = _Spectrum(model)
    loss = np.empty((ns.size, ts.size))
    rid = np.empty_like(loss)
    for i, n in enumerate(ns):
        for k, t in enumerate(ts):
            if optimal:
                opt = _optimal_ridge(spec, float(n), float(t))
                loss[i, k], rid[i, k] = opt.loss, opt.ridge
            else:
                loss[i, k], rid[i, k] = _evaluate(spec, float(n), float(t), fixed).loss, fixed
    if not np.all(np.isfinite(loss) & (loss > 0)):
        raise ValueError("the ridge surface is infinite or zero on the grid (the "
                         "interpolation peak N = T of a zero ridge, or N >= v with T >= v); "
                         "use ridge='optimal', a positive ridge or another grid")
    best = _fit_kaplan(ns, ts, loss)
    logn, logd = np.meshgrid(np.log(ns), np.log(ts), indexing="ij")
    fitted = _kaplan_law(best.x, logn, logd)
    ex = (ridge_scaling_exponents(model.alpha, model.beta)
          if isinstance(model, PLRF) and model.noise_variance == 0.0 else None)
    return KaplanOverfittingFit(
        n_c=float(math.exp(best.x[0])), d_c=float(math.exp(best.x[1])),
        alpha_n=float(best.x[2]), alpha_d=float(best.x[3]),
        max_relative_residual=float(np.max(np.abs(fitted / loss - 1.0))),
        rms_log_residual=float(np.sqrt(np.mean(best.fun ** 2))),
        n_features=ns, n_samples=ts, loss=loss, fitted=fitted, ridge=rid,
        features=ex.features if ex else math.nan, samples=ex.samples if ex else math.nan,
        success=bool(best.success), message=str(best.message))
