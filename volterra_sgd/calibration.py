r"""Calibration of the PLRF model on measured loss curves (docs/theory.md, Sec. 16).

Given loss curves measured at several model sizes :math:`d`, :func:`fit_loss_curves` finds the
exponents :math:`(\alpha, \beta)` and three nuisance scales -- a loss scale :math:`A`, a time
scale :math:`\tau` (the learning rate in units of the reference one; held at 1 when the
curves' learning rates are known) and an irreducible loss :math:`E` -- such that
:math:`A\,\mathcal P_{\alpha,\beta,d}(\tau r) + E` matches the data in log-loss (Eq. (16.1)).
:class:`CurveFit` then predicts curves at new sizes (:meth:`CurveFit.predict`) and the
compute-optimal frontier at budgets beyond the data (:meth:`CurveFit.compute_optimal`), both
with bootstrap bands (Eq. (16.3)).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._validation import as_int, as_real, as_rng
from .fitting import FittingWarning, _percentile, boundary_distance

__all__ = ["CurveFit", "CurvePrediction", "CurveFrontier", "fit_loss_curves", "load_curve_fit"]

#: The misfit's relative error floor (added in quadrature to stderr / loss).
_FLOOR = 0.01
#: Width of an (alpha, beta) interval above which the fit warns (success unchanged).
_WIDE = 0.1
#: chi2 per degree of freedom above which a fit to curves with standard errors warns.
_CHI2_WARN = 2.0
#: Bounds of the time scale relative to the current reference learning rate.
_TAU_BOUNDS = (1e-3, 4.0)
#: Grid points per decade of the interpolation table of log P(t).
_PER_DECADE = 40


# ================================================================================= inputs
@dataclass(frozen=True)
class _Curve:
    d: int
    v: float
    batch_size: int
    r: np.ndarray          # iterations (float64, may be non-integer when given as flops)
    loss: np.ndarray
    stderr: np.ndarray     # zeros when unknown
    losses: np.ndarray | None   # (n_runs, n) per-run losses, if known
    learning_rate: float | None  # gamma in model units, if known


def _array(x, name, where):
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be an array of numbers; got {x!r}") from None
    return a


def _one_curve(run, k, v_ratio):
    from .curve import LossCurve
    from .sgd import SGDRun

    where = f"runs[{k}]"
    losses = learning_rate = None
    if isinstance(run, SGDRun):
        if run.learning_rates is not None or run.batch_sizes is not None:
            raise ValueError(f"{where}: SGDRun under a schedule; the calibration needs constant "
                             "hyper-parameters")
        if run.optimizer is not None:
            raise ValueError(f"{where}: SGDRun of a momentum optimizer; the calibration fits "
                             "plain SGD curves")
        d, v, B = run.model.d, run.model.v, run.batch_size
        r, loss, se = run.r, run.loss, run.stderr
        losses, learning_rate = run.losses, run.learning_rate
    elif isinstance(run, LossCurve):
        d, v, B = run.model.d, run.model.v, run.batch_size
        r, loss, se = run.r, run.loss, None
        learning_rate = run.learning_rate
    elif isinstance(run, dict):
        unknown = set(run) - {"d", "r", "flops", "loss", "stderr", "losses", "learning_rate",
                              "batch_size", "v"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        if "d" not in run or "loss" not in run or ("r" in run) == ("flops" in run):
            raise ValueError(f"{where} must have keys 'd', 'loss' and one of 'r' or 'flops'; "
                             f"got {sorted(run)}")
        d = as_int(run["d"], f"{where}['d']", minimum=2)
        B = as_int(run.get("batch_size", 1), f"{where}['batch_size']")
        v = run.get("v")
        loss = _array(run["loss"], "loss", where)
        se = None if run.get("stderr") is None else _array(run["stderr"], "stderr", where)
        if "flops" in run:
            r = _array(run["flops"], "flops", where) / (d * B)
        else:
            r = _array(run["r"], "r", where)
        if run.get("losses") is not None:
            losses = _array(run["losses"], "losses", where)
            if losses.ndim != 2 or losses.shape[1] != loss.shape[-1]:
                raise ValueError(f"{where}: losses must have shape (n_runs, {loss.shape[-1]}); "
                                 f"got {losses.shape}")
            if not np.all(np.isfinite(losses)) or np.any(losses <= 0):
                raise ValueError(f"{where}: losses must be finite and positive")
        if run.get("learning_rate") is not None:
            learning_rate = as_real(run["learning_rate"], f"{where}['learning_rate']",
                                    lower=0.0)
    else:
        raise TypeError(f"{where} must be a dict, an SGDRun or a LossCurve; got "
                        f"{type(run).__name__}")
    d = int(d)
    if v is None:
        v = float(round(v_ratio * d))
    v = float(v)
    if not v > d:
        raise ValueError(f"{where}: the hidden dimension v = {v:g} must exceed d = {d}")
    r = np.asarray(r, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    if r.ndim != 1 or loss.shape != r.shape:
        raise ValueError(f"{where}: r and loss must be 1-D arrays of the same length; got "
                         f"shapes {r.shape} and {loss.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(loss))):
        bad = np.flatnonzero(~(np.isfinite(r) & np.isfinite(loss)))
        raise ValueError(f"{where} (d = {d}): r and loss must be finite; NaN or inf at "
                         f"positions {bad[:5].tolist()}")
    if np.any(loss <= 0):
        raise ValueError(f"{where} (d = {d}): losses must be positive (the misfit is in "
                         "log-loss)")
    if np.any(r < 0) or np.any(np.diff(r) <= 0):
        raise ValueError(f"{where} (d = {d}): r must be non-negative and strictly increasing")
    if se is None and losses is not None and losses.shape[0] > 1:
        se = losses.std(axis=0, ddof=1) / math.sqrt(losses.shape[0])
    if se is None:
        se = np.zeros_like(loss)
    else:
        se = np.asarray(se, dtype=np.float64)
        if se.shape != loss.shape:
            raise ValueError(f"{where}: stderr must have the shape of loss {loss.shape}; got "
                             f"{se.shape}")
        se = np.where(np.isnan(se), 0.0, se)  # one run: no standard error
        if not np.all(np.isfinite(se)) or np.any(se < 0):
            raise ValueError(f"{where} (d = {d}): stderr must be finite and non-negative")
    if np.count_nonzero(r > 0) < 5:
        raise ValueError(f"{where} (d = {d}): too few points; need at least 5 with r > 0, "
                         f"got {np.count_nonzero(r > 0)}")
    return _Curve(d=d, v=v, batch_size=int(B), r=r, loss=loss, stderr=se,
                  losses=None if losses is None else np.asarray(losses, dtype=np.float64),
                  learning_rate=None if learning_rate is None else float(learning_rate))


def _check_monotone(c, k):
    """Warn about increases beyond noise; raise if the curve ends above its start."""
    if c.loss[-1] > c.loss[0]:
        raise ValueError(f"runs[{k}] (d = {c.d}): the loss ends above its initial value "
                         f"({c.loss[-1]:.4g} > {c.loss[0]:.4g}); a diverging run cannot be "
                         "described by SGD at a stable learning rate")
    runmin = np.minimum.accumulate(c.loss)
    up = c.loss > runmin * 1.1 + 3.0 * c.stderr
    if np.any(up):
        i = int(np.flatnonzero(up)[0])
        warnings.warn(f"runs[{k}] (d = {c.d}) is not monotone: the loss rises to {c.loss[i]:.4g} "
                      f"at r = {c.r[i]:.6g}, more than 10% plus 3 standard errors above its "
                      f"running minimum {runmin[i]:.4g}; the deterministic curves decrease, so "
                      "this part cannot be fitted", FittingWarning, stacklevel=3)


def _as_curves(runs, v_ratio):
    if isinstance(runs, (dict, str)) or not hasattr(runs, "__len__"):
        raise TypeError("runs must be a list of dicts {'d', 'r', 'loss'[, 'stderr']}, SGDRun "
                        f"or LossCurve objects; got {type(runs).__name__}")
    curves = [_one_curve(run, k, v_ratio) for k, run in enumerate(runs)]
    for k, c in enumerate(curves):
        _check_monotone(c, k)
    if len({c.d for c in curves}) < 2:
        raise ValueError("runs must hold curves at two or more model sizes d (three or more "
                         "recommended); at a single d the loss and time scales absorb "
                         f"alpha and beta; got d = {sorted({c.d for c in curves})}")
    span = [(c.loss[-1] / c.loss[0], c.r[-1] / c.r[c.r > 0][0]) for c in curves]
    if not any(drop < 0.8 and decades >= 10 for drop, decades in span):
        raise ValueError("the curves are too short to constrain beta: no curve spans a decade "
                         "of r while its loss falls by 20 % or more; record longer runs")
    return curves


# ============================================================================ model curves
class _Tables:
    r"""Spectral stages per (alpha, beta, curve, learning-rate factor), reused across the fit.

    The spectral measure depends on (alpha, beta, v, d) only; for each curve and reference
    learning rate the secular roots give :math:`\mathcal P(t)` at any real :math:`t`, tabulated
    on a log grid once, so that the time scale :math:`\tau` is a relabelling (Eq. (16.2)).
    """

    def __init__(self, curves, g0, rtol, n_jobs=1):
        self.curves = curves
        self.g0 = g0
        self.rtol = rtol
        self.n_jobs = n_jobs
        self.cache = {}
        self.n_stages = 0

    def gamma(self, model, c, s):
        """Return the reference learning rate of curve ``c`` times the factor ``s``."""
        base = c.learning_rate if c.learning_rate is not None else \
            self.g0 / model.trace_data_covariance
        return s * base

    def get(self, alpha, beta, s):
        key = (float(alpha), float(beta), float(s))
        tab = self.cache.get(key)
        if tab is None:
            from ._parallel import run_tasks

            tab = [None] * len(self.curves)
            order = sorted(range(len(self.curves)), key=lambda k: -self.curves[k].d)

            def done(i, res):
                tab[order[i]] = res

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run_tasks(lambda k: self._table(alpha, beta, self.curves[k], s), order,
                          self.n_jobs, done)
            self.cache[key] = tab
            self.n_stages += 1
        return tab

    def _table(self, alpha, beta, c, s):
        from scipy.interpolate import CubicSpline

        from .model import PLRF

        model = PLRF(alpha=alpha, beta=beta, v=int(c.v), d=c.d)
        sol = _secular(model, c.batch_size, self.gamma(model, c, s), self.rtol)
        if sol is None:
            return None
        pos = c.r[c.r > 0]
        lo = math.log(pos[0] * _TAU_BOUNDS[0]) - 0.1
        hi = math.log(c.r[-1] * _TAU_BOUNDS[1]) + 0.1
        n = max(8, int((hi - lo) / math.log(10) * _PER_DECADE) + 1)
        logt = np.linspace(lo, hi, n)
        P = _evaluate(sol, np.exp(logt))
        if not np.all(P > 0):
            return None
        return sol["P0"], CubicSpline(logt, np.log(P))


def _secular(model, B, gamma, rtol):
    """Return the closed form's roots and residues for one model size (None if unstable)."""
    from ._secular import solve_exponential_volterra
    from .exceptions import ConvergenceError
    from .forcing import _one_minus_q, deterministic_measure

    try:
        meas = deterministic_measure(model, rtol=rtol)
    except ConvergenceError:  # a trial point the quadrature cannot resolve: step elsewhere
        return None
    x = meas.nodes
    p = _one_minus_q(x, gamma, B)
    if not (np.all(p > 0) and np.all(p <= 1)):
        return None
    kappa = gamma * gamma * B * x * x * meas.eigen_weights
    try:
        P0, sol = solve_exponential_volterra(p, meas.forcing_weights, kappa, meas.limit_loss,
                                             [0])
    except ValueError:  # unstable learning rate for this (alpha, beta)
        return None
    sol["P0"] = float(P0[0])
    return sol


def _evaluate(sol, t):
    r""":math:`\mathcal P(t)` of the closed form at real ``t >= 0`` (Eq. (7.3))."""
    mu, R = sol["mu"], sol["residues"]
    lq = np.log1p(-mu)
    t = np.asarray(t, dtype=np.float64)
    E = np.exp(np.multiply.outer(t, lq[1:]))
    e0 = np.exp(t * lq[0])
    return sol["p_inf"] * -np.expm1(t * lq[0]) + sol["first_amplitude"] * e0 + E @ R[1:]


# ============================================================================ the misfit
class _Problem:
    """Log-loss misfit (Eq. (16.1)) of all curves; nuisance u = (log tau, log A, e)."""

    def __init__(self, curves, tables, irreducible, floor, tau_free=True):
        self.curves = curves
        self.tables = tables
        self.irreducible = irreducible
        self.tau_free = tau_free
        self.y = np.concatenate([np.log(c.loss) for c in curves])
        rel = np.concatenate([c.stderr / c.loss for c in curves])
        self.sigma = np.sqrt(rel ** 2 + floor ** 2)
        self.block = np.concatenate([np.full(c.r.size, k) for k, c in enumerate(curves)])
        self.lmin = float(min(c.loss.min() for c in curves))
        self.e_max = 0.95 if irreducible else 0.0

    def model_log(self, tabs, u):
        tau, A, E = math.exp(u[0]), math.exp(u[1]), u[2] * self.lmin
        out = []
        for c, (P0, spl) in zip(self.curves, tabs, strict=True):
            P = np.empty(c.r.size)
            pos = c.r > 0
            P[~pos] = P0
            P[pos] = np.exp(spl(np.log(tau * c.r[pos])))
            out.append(np.log(A * P + E))
        return np.concatenate(out)

    def residuals(self, tabs, u):
        return (self.y - self.model_log(tabs, u)) / self.sigma

    def fit_nuisance(self, tabs, u0=None):
        """Least-squares nuisance at fixed (alpha, beta); returns (cost, u)."""
        from scipy.optimize import least_squares

        lo, hi = _nuisance_bounds(self)
        if u0 is None:  # scan the time scale with the analytic loss scale (E = 0)
            best = None
            w = 1.0 / self.sigma ** 2
            scan = np.linspace(lo[0] + 0.01, hi[0] - 0.01, 15) if self.tau_free else [0.0]
            for lt in scan:
                m = self.model_log(tabs, [lt, 0.0, 0.0])
                la = float(np.sum(w * (self.y - m)) / np.sum(w))
                cost = float(np.sum(w * (self.y - m - la) ** 2))
                if best is None or cost < best[0]:
                    best = (cost, [lt, la, 0.0])
            u0 = best[1]
        u = np.clip(np.asarray(u0, dtype=np.float64), lo, hi)
        free = self.nuisance_free()
        u[~free] = 0.0  # tau = 1, E = 0 when not fitted

        def fun(x):
            u[free] = x
            return self.residuals(tabs, u)

        res = least_squares(fun, u[free], bounds=(np.asarray(lo)[free], np.asarray(hi)[free]),
                            ftol=1e-12, xtol=1e-12, gtol=1e-12)
        u[free] = res.x
        return 2.0 * float(res.cost), u

    def nuisance_free(self):
        """Mask of the fitted nuisance parameters (log tau, log A, e)."""
        return np.array([self.tau_free, True, self.e_max > 0])

    def profile(self, ab, s, u0=None):
        tabs = self.tables.get(ab[0], ab[1], s)
        if any(t is None for t in tabs):
            return math.inf, None
        return self.fit_nuisance(tabs, u0)


# ============================================================================ results
@dataclass(frozen=True)
class CurvePrediction:
    r"""Predicted loss curve with a bootstrap band (:meth:`CurveFit.predict`).

    Attributes
    ----------
    d : int
        Model size.
    r : ndarray of int64
        Iterations.
    loss : ndarray
        :math:`A\,\mathcal P(r) + E` at the fitted parameters (data units).
    lower, upper : ndarray
        Pointwise bootstrap percentile band at the fit's ``ci_level``.
    learning_rate : float
        The model learning rate :math:`\gamma` of the prediction.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> runs = []
    >>> for d in (16, 32, 64):
    ...     m = vs.PLRF(1.0, 0.7, 10 * d, d)
    ...     r = np.unique(np.round(np.logspace(0, 5, 30))).astype(int)
    ...     c = vs.loss_curve(m, r, learning_rate=m.reference_learning_rate(0.5))
    ...     runs.append({"d": d, "r": r, "loss": c.loss})
    >>> fit = vs.fit_loss_curves(runs, grid=(3, 3), n_bootstrap=20, rng=0)
    >>> pred = fit.predict(256, [10, 1000])
    >>> bool(np.all(pred.lower <= pred.loss)) and bool(np.all(pred.loss <= pred.upper))
    True
    """

    d: int
    r: np.ndarray
    loss: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    learning_rate: float

    @property
    def flops(self) -> np.ndarray:
        """Compute :math:`f = d B r` (docs/theory.md, Eq. (2.3); B of the fitted curves)."""
        return self.d * self.r.astype(np.float64)


@dataclass(frozen=True)
class CurveFrontier:
    r"""Compute-optimal frontier predicted by a calibration (:meth:`CurveFit.compute_optimal`).

    Attributes
    ----------
    flops : ndarray
        Compute :math:`f = d B r` in the data's units.
    d_opt, loss_opt : ndarray
        :math:`d^\star(f)` and :math:`A\,\mathcal P^\star(f) + E` (data units).
    d_opt_band, loss_opt_band : ndarray, shape (2, n)
        Bootstrap percentile bands.
    eta, xi : float
        :math:`\eta` and :math:`\xi` measured on the predicted deterministic curves
        (:func:`volterra_sgd.compute_optimal` at the fitted exponents).
    eta_ci, xi_ci : tuple of float
        Their bootstrap intervals (propagated from the bootstrap fits, Eq. (16.4)).
    theory : PhaseExponents or None
        :func:`volterra_sgd.phase_exponents` at the fitted exponents.
    study : ComputeOptimalResult
        The study at the fitted exponents.
    gradient : dict
        Finite-difference derivatives of :math:`\eta`, :math:`\xi` in :math:`\alpha, \beta`.

    Examples
    --------
    Returned by :meth:`CurveFit.compute_optimal` (an example there):

    >>> import volterra_sgd as vs
    >>> [f for f in ("eta", "eta_ci", "loss_opt_band") if f in vs.CurveFrontier.__annotations__]
    ['eta', 'eta_ci', 'loss_opt_band']
    """

    flops: np.ndarray
    d_opt: np.ndarray
    loss_opt: np.ndarray
    d_opt_band: np.ndarray
    loss_opt_band: np.ndarray
    eta: float
    eta_ci: tuple
    xi: float
    xi_ci: tuple
    theory: object
    study: object = field(repr=False)
    gradient: dict = field(default_factory=dict)

    @property
    def loss_exponent(self) -> float:
        r""":math:`\eta` (as :attr:`ComputeOptimalResult.loss_exponent`)."""
        return self.eta

    @property
    def params_exponent(self) -> float:
        r""":math:`\xi` (as :attr:`ComputeOptimalResult.params_exponent`)."""
        return self.xi


@dataclass(frozen=True)
class CurveFit:
    r"""PLRF parameters calibrated on loss curves (:func:`fit_loss_curves`).

    Attributes
    ----------
    alpha, beta : float
        Fitted exponents.
    alpha_ci, beta_ci : tuple of float
        Bootstrap percentile intervals at ``ci_level`` (Eq. (16.3)).
    loss_scale, loss_scale_ci : float, tuple
        :math:`A` (data loss per model loss).
    time_scale, time_scale_ci : float, tuple
        :math:`\tau`: the data's learning rate in units of the reference one (the known
        learning rate of each curve, else ``lr_scale`` times :math:`1/\mathrm{tr}\,D`).
    irreducible_loss, irreducible_loss_ci : float, tuple
        :math:`E` (0 when fitted without it).
    lr_scale : float
        Effective :math:`g` of the fitted curves, :math:`\gamma\,\mathrm{tr}\,D` (median over
        curves), used by :meth:`predict` and :meth:`compute_optimal` for new sizes.
    v_ratio : float
        Hidden dimension per model size used for new sizes.
    batch_size : int
    phase, phase_label : str or None
        Phase of the estimate (None outside the admissible region).
    boundary_distance : float
    nearest_boundary : str
    phase_probability : float
        Fraction of bootstrap replicates in the same phase.
    exponents : PhaseExponents or None
        :func:`volterra_sgd.phase_exponents` at the estimate.
    xi_ci, eta_ci : tuple of float
        Bootstrap intervals of the theory's exponents.
    chi2 : float
        Final misfit :math:`\sum_i \rho_i^2` (Eq. (16.1)); ``n_points`` points.
    success : bool
    status : int
        0 converged; 1 the estimate is on the search box's edge; 2 the local optimiser
        stopped without converging; 3 :math:`\beta` (or :math:`\alpha`) is poorly
        constrained (bootstrap interval wider than 0.5).  An interval wider than 0.1
        only warns.
    message : str
    n_stages : int
        Spectral stages computed (one per :math:`(\alpha, \beta)` and learning-rate factor).
    boot : ndarray, shape (n_used, 5)
        Bootstrap replicates of :math:`(\alpha, \beta, \log\tau, \log A, E/L_{min})`.
    ci_level : float
    time_scale_fitted : bool
        Whether :math:`\tau` was fitted (else fixed at 1: the curves' learning rates
        were known; ``fit_time_scale`` of :func:`fit_loss_curves`).

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> runs = []
    >>> for d in (16, 32, 64):
    ...     m = vs.PLRF(1.0, 0.7, 10 * d, d)
    ...     r = np.unique(np.round(np.logspace(0, 5, 30))).astype(int)
    ...     c = vs.loss_curve(m, r, learning_rate=m.reference_learning_rate(0.5))
    ...     runs.append({"d": d, "r": r, "loss": 3.0 * c.loss})
    >>> fit = vs.fit_loss_curves(runs, grid=(3, 3), n_bootstrap=20, rng=0)
    >>> print(f"{fit.alpha:.3f} {fit.beta:.3f} {fit.loss_scale:.3f} {fit.phase}")
    1.000 0.700 3.000 II
    """

    alpha: float
    alpha_ci: tuple
    beta: float
    beta_ci: tuple
    loss_scale: float
    loss_scale_ci: tuple
    time_scale: float
    time_scale_ci: tuple
    irreducible_loss: float
    irreducible_loss_ci: tuple
    lr_scale: float
    v_ratio: float
    batch_size: int
    phase: str | None
    phase_label: str | None
    boundary_distance: float
    nearest_boundary: str
    phase_probability: float
    exponents: object
    xi_ci: tuple
    eta_ci: tuple
    chi2: float
    n_points: int
    success: bool
    status: int
    message: str
    n_stages: int
    boot: np.ndarray = field(repr=False)
    ci_level: float = 0.95
    time_scale_fitted: bool = True
    _curves: tuple = field(default=(), repr=False)
    _lmin: float = field(default=1.0, repr=False)

    # ------------------------------------------------------------------ files
    def save(self, path) -> str:
        """Save the fit and its curves to ``path`` (``.npz``: arrays and JSON, no pickles).

        :func:`load_curve_fit` returns a fit whose ``predict`` and ``compute_optimal`` give
        what this one gives.  The file is replaced atomically (an interrupted save leaves
        the previous file intact).

        Parameters
        ----------
        path : str or os.PathLike
            Ends in ``.npz`` (else ``ValueError``).

        Returns
        -------
        str
            ``path``.

        Examples
        --------
        See :func:`load_curve_fit`.
        """
        from .io import _save_packed

        return _save_packed(self, path)

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        """Multi-line text: estimates with intervals, phase, exponents, status.

        Returns
        -------
        str
        """
        pc = int(round(100 * self.ci_level))

        def row(name, val, ci):
            return f"{name:<16} = {val:.4g}  [{ci[0]:.4g}, {ci[1]:.4g}]"

        lines = [f"{row('alpha', self.alpha, self.alpha_ci)}  ({pc}% bootstrap)",
                 row("beta", self.beta, self.beta_ci),
                 row("loss scale A", self.loss_scale, self.loss_scale_ci),
                 row("time scale tau", self.time_scale, self.time_scale_ci)
                 if self.time_scale_fitted else
                 f"{'time scale tau':<16} = 1  (fixed: the curves' learning rates are known)",
                 row("irreducible E", self.irreducible_loss, self.irreducible_loss_ci)]
        if self.phase is None:
            lines.append("phase: outside the admissible region 2(alpha + beta) > 1")
        else:
            e = self.exponents
            lines.append(f"phase {self.phase_label}; distance {self.boundary_distance:.3f} to "
                         f"{self.nearest_boundary}; {100 * self.phase_probability:.0f}% of "
                         "bootstrap replicates in this phase")
            lines.append(f"compute-optimal exponents (theory): xi = {e.xi:.4f} "
                         f"[{self.xi_ci[0]:.4f}, {self.xi_ci[1]:.4f}], eta = {e.eta:.4f} "
                         f"[{self.eta_ci[0]:.4f}, {self.eta_ci[1]:.4f}]")
        lines.append(f"misfit chi2 = {self.chi2:.4g} on {self.n_points} points; "
                     f"status {self.status}: {self.message}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ prediction
    def _gamma(self, alpha, v, d):
        from .model import PLRF

        return self.lr_scale / PLRF(alpha=alpha, beta=self.beta, v=v, d=d).trace_data_covariance

    def _log_model(self, alpha, beta, d, r):
        from .curve import loss_curve
        from .model import PLRF

        v = int(round(self.v_ratio * d))
        m = PLRF(alpha=alpha, beta=beta, v=v, d=d)
        c = loss_curve(m, r, learning_rate=self.lr_scale / m.trace_data_covariance,
                       batch_size=self.batch_size, rtol=1e-9, throw=False)
        return np.log(c.loss), c.learning_rate

    def predict(self, d, r) -> CurvePrediction:
        r"""Predicted loss curve at model size ``d`` with a bootstrap band.

        Parameters
        ----------
        d : int
            Model size (any, also beyond the fitted ones); the hidden dimension is
            ``round(v_ratio * d)`` and the learning rate ``lr_scale / tr D``.
        r : array_like of int
            Iterations (data units: the fitted time scale is part of ``lr_scale``).

        Returns
        -------
        CurvePrediction
            :math:`A\,\mathcal P_{\hat\alpha,\hat\beta,d}(r) + E` from
            :func:`volterra_sgd.loss_curve` and its band; the band propagates each bootstrap
            replicate linearly (finite differences in :math:`\alpha, \beta`), Eq. (16.3).

        Examples
        --------
        See :class:`CurvePrediction`.
        """
        from ._validation import as_iterations

        d = as_int(d, "d", minimum=2)
        r = as_iterations(r, "r")
        h = 1e-4
        base, gamma = self._log_model(self.alpha, self.beta, d, r)
        da = (self._log_model(self.alpha + h, self.beta, d, r)[0] - base) / h
        db = (self._log_model(self.alpha, self.beta + h, d, r)[0] - base) / h
        A, E = self.loss_scale, self.irreducible_loss
        loss = A * np.exp(base) + E
        if self.boot.shape[0]:
            b = self.boot
            dlogP = (b[:, :1] - self.alpha) * da + (b[:, 1:2] - self.beta) * db
            Lb = np.exp(b[:, 3:4]) * np.exp(base + dlogP) + b[:, 4:5] * self._lmin
            q = 50.0 * (1.0 - self.ci_level)
            lower, upper = np.percentile(Lb, [q, 100.0 - q], axis=0)
            lower, upper = np.minimum(lower, loss), np.maximum(upper, loss)
        else:
            lower = upper = np.full(r.size, np.nan)
        return CurvePrediction(d=d, r=r, loss=loss, lower=lower, upper=upper,
                               learning_rate=float(gamma))

    def compute_optimal(self, d_values=None, *, max_flops: float = 1e12, intervals: bool = True,
                        step: float = 0.02, **kwargs) -> CurveFrontier:
        r"""Compute-optimal frontier extrapolated from the calibration.

        Runs :func:`volterra_sgd.compute_optimal` at the fitted :math:`(\hat\alpha,
        \hat\beta)` with the fitted ``lr_scale``, ``v_ratio`` and batch size, maps the
        frontier to the data's units (:math:`A\,\mathcal P^\star + E`), and propagates the
        bootstrap replicates through finite differences of the frontier in :math:`\alpha`
        and :math:`\beta` (two more studies; Eq. (16.4)).

        Parameters
        ----------
        d_values : array_like of int, optional
            Model sizes of the study; default 5 sizes :math:`\sqrt 2` apart from 8 times
            the largest fitted size to 32 times it (budgets beyond the data).
        max_flops : float, default 1e12
            Horizon of the study's curves.
        intervals : bool, default True
            Also run the two perturbed studies for the bands (three studies in all).
        step : float, default 0.02
            Finite-difference step in :math:`\alpha` and :math:`\beta`.
        **kwargs
            Passed to :func:`volterra_sgd.compute_optimal` (``n_boot``, ``n_jobs``, ...).

        Returns
        -------
        CurveFrontier

        Examples
        --------
        >>> import numpy as np, volterra_sgd as vs
        >>> runs = []
        >>> for d in (16, 32, 64):
        ...     m = vs.PLRF(1.0, 0.7, 10 * d, d)
        ...     r = np.unique(np.round(np.logspace(0, 5, 30))).astype(int)
        ...     c = vs.loss_curve(m, r, learning_rate=m.reference_learning_rate(0.5))
        ...     runs.append({"d": d, "r": r, "loss": c.loss})
        >>> fit = vs.fit_loss_curves(runs, grid=(3, 3), n_bootstrap=20, rng=0)
        >>> fr = fit.compute_optimal([64, 91, 128, 181, 256], max_flops=1e8, intervals=False,
        ...                          n_boot=0, chinchilla=False, n_jobs=1)
        >>> bool(0.5 < fr.eta < 0.8)
        True
        """
        from .compute_optimal import compute_optimal
        from .phases import phase_exponents

        if d_values is None:
            top = max(c.d for c in self._curves) if self._curves else 512
            d_values = [int(round(8 * top * 2 ** (k / 2))) for k in range(5)]
        step = as_real(step, "step", lower=0.0)
        opts = dict(d_values=d_values, batch_size=self.batch_size,
                    lr_scale=min(self.lr_scale, 1.0), v_ratio=self.v_ratio, max_flops=max_flops)
        opts.update(kwargs)
        co = compute_optimal(self.alpha, self.beta, **opts)
        fr = co.frontier  # the points inside the fit window
        f = fr["flops"]
        logP = np.log(fr["loss_opt"])
        logd = np.log(fr["d_opt"])
        eta, xi = co.loss_exponent, co.params_exponent
        A, E = self.loss_scale, self.irreducible_loss
        loss = A * np.exp(logP) + E
        nan2 = (math.nan, math.nan)
        grad = {}
        dband = np.full((2, f.size), np.nan)
        lband = np.full((2, f.size), np.nan)
        eta_ci = xi_ci = nan2
        if intervals and self.boot.shape[0]:
            studies = [compute_optimal(self.alpha + step, self.beta, **opts),
                       compute_optimal(self.alpha, self.beta + step, **opts)]
            dP, dD = [], []
            for s in studies:
                sf = s.frontier
                lf = np.log(sf["flops"])
                dP.append((np.interp(np.log(f), lf, np.log(sf["loss_opt"])) - logP) / step)
                dD.append((np.interp(np.log(f), lf, np.log(sf["d_opt"])) - logd) / step)
            grad = {"eta": [(s.loss_exponent - eta) / step for s in studies],
                    "xi": [(s.params_exponent - xi) / step for s in studies]}
            b = self.boot
            da, db = b[:, 0] - self.alpha, b[:, 1] - self.beta
            q = 50.0 * (1.0 - self.ci_level)
            eb = eta + grad["eta"][0] * da + grad["eta"][1] * db
            xb = xi + grad["xi"][0] * da + grad["xi"][1] * db
            eta_ci = tuple(float(x) for x in np.percentile(eb, [q, 100 - q]))
            xi_ci = tuple(float(x) for x in np.percentile(xb, [q, 100 - q]))
            Lb = (np.exp(b[:, 3:4]) * np.exp(logP + np.outer(da, dP[0]) + np.outer(db, dP[1]))
                  + b[:, 4:5] * self._lmin)
            Db = np.exp(logd + np.outer(da, dD[0]) + np.outer(db, dD[1]))
            lband = np.percentile(Lb, [q, 100 - q], axis=0)
            dband = np.percentile(Db, [q, 100 - q], axis=0)
        theory = (phase_exponents(self.alpha, self.beta, tol=1e-9)
                  if self.phase is not None else None)
        return CurveFrontier(flops=f, d_opt=np.exp(logd), loss_opt=loss, d_opt_band=dband,
                             loss_opt_band=lband, eta=float(eta), eta_ci=eta_ci, xi=float(xi),
                             xi_ci=xi_ci, theory=theory, study=co, gradient=grad)


def load_curve_fit(path) -> CurveFit:
    """Load a fit written by :meth:`CurveFit.save`, with the curves it was fitted to.

    Parameters
    ----------
    path : str or os.PathLike
        An ``.npz`` file of :meth:`CurveFit.save`.

    Returns
    -------
    CurveFit
        The fit; ``predict`` and ``compute_optimal`` work as on the saved one.

    Raises
    ------
    ValueError
        A corrupt, incomplete or newer-format file, or one of another kind (the message
        names the file and the field); ``FileNotFoundError`` if there is no file.

    Examples
    --------
    >>> import os, tempfile, numpy as np, volterra_sgd as vs
    >>> r = np.unique(np.round(np.logspace(0, 5, 30))).astype(int)
    >>> models = [vs.PLRF(1.0, 0.7, 10 * d, d) for d in (16, 32, 64)]
    >>> curves = [vs.loss_curve(m, r, learning_rate=m.reference_learning_rate(0.5))
    ...           for m in models]
    >>> fit = vs.fit_loss_curves(curves, grid=(3, 3), n_bootstrap=20, rng=0)
    >>> path = fit.save(os.path.join(tempfile.mkdtemp(), "fit.npz"))
    >>> back = vs.load_curve_fit(path)
    >>> back.beta == fit.beta, bool(np.all(back.predict(128, [10]).loss
    ...                                    == fit.predict(128, [10]).loss))
    (True, True)
    """
    from .io import _load_packed
    from .phases import PhaseExponents

    fit, rd = _load_packed(path, "CurveFit", {"CurveFit": CurveFit, "_Curve": _Curve,
                                             "PhaseExponents": PhaseExponents})
    if not isinstance(fit, CurveFit):
        rd.fail("result", f"must be a CurveFit; got {type(fit).__name__}")
    for k in ("alpha", "beta", "loss_scale", "time_scale", "lr_scale", "v_ratio"):
        rd.real({k: getattr(fit, k)}, k, f"result.{k}", lower=0.0)
    rd.real({"e": fit.irreducible_loss}, "e", "result.irreducible_loss", lower=0.0)
    rd.integer({"b": fit.batch_size}, "b", "result.batch_size", minimum=1)
    rd.array(fit.boot, "result.boot", ndim=2, finite=False)
    if fit.boot.shape[1] != 5:
        rd.fail("result.boot", f"must have 5 columns; got shape {fit.boot.shape}")
    if not isinstance(fit._curves, tuple) or not all(isinstance(c, _Curve)
                                                     for c in fit._curves):
        rd.fail("result._curves", "must be a tuple of curves")
    for i, c in enumerate(fit._curves):
        where = f"result._curves.{i}"
        rd.integer({"d": c.d}, "d", f"{where}.d", minimum=2)
        rd.integer({"b": c.batch_size}, "b", f"{where}.batch_size", minimum=1)
        rd.real({"v": c.v}, "v", f"{where}.v", lower=c.d)
        if c.learning_rate is not None:
            rd.real({"g": c.learning_rate}, "g", f"{where}.learning_rate", lower=0.0)
        r = rd.array(c.r, f"{where}.r")
        for name in ("loss", "stderr"):
            rd.array(getattr(c, name), f"{where}.{name}", size=r.size)
        if c.losses is not None:
            rd.array(c.losses, f"{where}.losses", ndim=2)
    if fit.exponents is not None:  # read-only mappings as built, checked against the file
        from dataclasses import replace

        from .phases import phase_exponents

        expo = phase_exponents(fit.alpha, fit.beta, tol=1e-9)
        if expo != fit.exponents:
            rd.fail("result.exponents", "do not match phase_exponents(alpha, beta)")
        fit = replace(fit, exponents=expo)
    return fit


# ============================================================================ the fit
def _grid_search(problem, s, bounds, grid):
    na, nb = grid
    a_vals = np.linspace(bounds[0][0], bounds[0][1], na)
    b_vals = np.linspace(bounds[1][0], bounds[1][1], nb)
    out = []
    for a in a_vals:
        for b in b_vals:
            if a + b > 0.55:
                cost, u = problem.profile((a, b), s)
                if np.isfinite(cost):
                    out.append(((a, b), u, cost))
    return sorted(out, key=lambda t: t[2])


def _nuisance_bounds(problem):
    return ([math.log(_TAU_BOUNDS[0]), -60.0, 0.0],
            [math.log(_TAU_BOUNDS[1]), 60.0, max(problem.e_max, 1e-300)])


def _local_fit(problem, ab0, u0, bounds, *, exact, max_iter=30):
    """Joint least squares over (alpha, beta, log tau, log A, e) from a start point.

    Levenberg-Marquardt with forward differences and box clipping.  ``exact``: the time
    scale is the exact learning-rate factor (one spectral stage per (alpha, beta, tau));
    else a relabelling of r at the reference learning rate (stages per (alpha, beta)).
    Returns ((alpha, beta), (log tau, log A, e), cost, result).
    """
    n_stage = 3 if exact else 2
    free = np.r_[True, True, problem.nuisance_free()]
    kind = np.flatnonzero(free)  # full index of each free parameter
    nlo, nhi = _nuisance_bounds(problem)
    lo = np.array([bounds[0][0], bounds[1][0], *nlo])[free]
    hi = np.array([bounds[0][1], bounds[1][1], *nhi])[free]
    h = 1e-4

    def full(x):
        th = np.zeros(5)
        th[free] = x
        return th

    def fun(x):
        th = full(x)
        tabs = problem.tables.get(th[0], th[1], math.exp(th[2]) if exact else 1.0)
        if any(t is None for t in tabs):
            return np.full(problem.y.size, 1e3)
        return problem.residuals(tabs, [0.0, th[3], th[4]] if exact else th[2:])

    def jac(x, r0):
        cols = []
        for k in range(x.size):  # forward differences: one spectral stage for k < 3
            step = h if kind[k] < n_stage else 1e-7
            step = step if x[k] + step <= hi[k] else -step
            e = np.zeros(x.size)
            e[k] = step
            cols.append((fun(x + e) - r0) / step)
        return np.column_stack(cols)

    x = np.clip(np.r_[ab0, u0][free], lo, hi)
    r = fun(x)
    cost = float(r @ r)
    lam, converged, J = 1e-3, False, None
    for _ in range(max_iter):  # Levenberg-Marquardt with box clipping
        J = jac(x, r)
        JtJ = J.T @ J
        g = J.T @ r
        # parameters at a bound whose descent direction points outwards stay there
        act = ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))
        while True:
            A = JtJ + lam * np.diag(np.diag(JtJ) + 1e-12)
            step = np.zeros_like(x)
            step[act] = np.linalg.solve(A[np.ix_(act, act)], g[act])
            x_new = np.clip(x - step, lo, hi)
            r_new = fun(x_new)
            c_new = float(r_new @ r_new)
            if c_new < cost or lam > 1e8:
                break
            lam *= 10.0
        if c_new >= cost:
            converged = True  # no descent step left: a (box-constrained) minimum
            break
        # a change of the misfit by 1e-6 of itself (or of 1e-6 when it is ~1) is no signal
        small = cost - c_new < 1e-6 * max(cost, 1.0) or np.all(np.abs(x_new - x) < 1e-8)
        x, r, cost = x_new, r_new, c_new
        lam = max(lam / 10.0, 1e-9)
        if small:
            converged = True
            break
    res = _LocalResult(x=x, cost=cost, success=converged, jac=J, free=free,
                       message="converged" if converged else
                       f"no convergence in {max_iter} iterations")
    th = full(x)
    return th[:2], th[2:], cost, res


@dataclass(frozen=True)
class _LocalResult:
    x: np.ndarray
    cost: float
    success: bool
    jac: np.ndarray
    free: np.ndarray
    message: str


def _bootstrap(problem, J, resid, n_boot, gen, at_bound):
    """Linearised bootstrap (Eq. (16.3)) over runs or curves.

    The runs within each curve are resampled when all are known, else the curves
    (replicates with fewer than three distinct curves dropped).  One Gauss-Newton step
    from the optimum per replicate, all replicates at once.
    """
    curves = problem.curves
    nc = len(curves)
    n = resid.size
    if all(c.losses is not None and c.losses.shape[0] > 1 for c in curves):
        cw = np.ones((n_boot, nc))
    else:
        cw = gen.multinomial(nc, np.full(nc, 1.0 / nc), size=n_boot).astype(np.float64)
    keep = (cw > 0).sum(axis=1) >= min(3, nc)
    W = cw[:, problem.block]
    dy = np.zeros((n_boot, n))
    off = 0
    for c in curves:
        m = c.r.size
        if c.losses is not None and c.losses.shape[0] > 1:
            k = c.losses.shape[0]
            cnt = gen.multinomial(k, np.full(k, 1.0 / k), size=n_boot) / k
            dy[:, off:off + m] = np.log(cnt @ c.losses) - np.log(c.losses.mean(axis=0))
        off += m
    # parameters on a bound or not fitted stay there (active set)
    free = ~np.asarray(at_bound, bool) & np.r_[True, True, problem.nuisance_free()]
    Jf = J[:, free]
    rb = resid[None, :] + dy / problem.sigma[None, :]
    Amat = np.einsum("bi,ij,ik->bjk", W, Jf, Jf)
    rhs = np.einsum("bi,ij,bi->bj", W, Jf, rb)
    delta = np.full((n_boot, J.shape[1]), np.nan)
    ok = keep & (np.linalg.cond(Amat) < 1e12)
    delta[np.ix_(ok, free)] = -np.linalg.solve(Amat[ok], rhs[ok][..., None])[..., 0]
    delta[:, ~free] = 0.0
    return delta[ok]


def fit_loss_curves(runs, *, irreducible: bool = True, lr_scale: float = 0.5,
                    v_ratio: float | None = None, bounds=((0.1, 2.0), (0.05, 2.0)),
                    grid=(6, 6), floor: float = _FLOOR, n_bootstrap: int = 400,
                    ci_level: float = 0.95, rng=0, rtol: float = 1e-7,
                    fit_time_scale: bool | None = None,
                    n_jobs: int | None = None) -> CurveFit:
    r"""Fit :math:`(\alpha, \beta)` and nuisance scales to loss curves (docs/theory.md, Sec. 16).

    Parameters
    ----------
    runs : sequence
        Curves at two or more model sizes (three or more recommended): dicts with keys
        ``"d"``, ``"r"`` (iterations; or ``"flops"`` :math:`= dBr`), ``"loss"`` and optional
        ``"stderr"``, ``"losses"`` (per-run losses, shape ``(n_runs, n)``),
        ``"learning_rate"`` (in model units), ``"batch_size"`` and ``"v"``; or
        :class:`~volterra_sgd.SGDRun` / :class:`~volterra_sgd.LossCurve` objects (their
        ``learning_rate``, ``batch_size``, ``model.v`` and per-run losses are used; the
        model's :math:`\alpha, \beta` are not).
    irreducible : bool, default True
        Fit an irreducible loss :math:`E \ge 0` (else :math:`E = 0`).
    lr_scale : float, default 0.5
        Reference learning rate :math:`\gamma = g/\mathrm{tr}\,D` of curves without a known
        learning rate (the fitted time scale corrects it).
    v_ratio : float, optional
        Hidden dimension :math:`v = v_{ratio} d` of curves without a known ``v`` (default:
        the median of the known ratios, else 10).
    bounds : pair of (low, high), default ((0.1, 2.0), (0.05, 2.0))
        Search box of :math:`\alpha` and :math:`\beta`.
    grid : (int, int), default (6, 6)
        Coarse grid over the box (the coarse stage); its best points start the local fit.
    floor : float, default 0.01
        Relative error added in quadrature to ``stderr / loss`` (Eq. (16.1)); it bounds
        the weight of points with tiny standard errors (e.g. ``r = 0``) and stands for
        the deterministic equivalent's finite-size error.
    n_bootstrap : int, default 400
        Bootstrap replicates (0 for none).
    ci_level : float, default 0.95
        Level of the percentile intervals.
    rng : int, numpy.random.Generator or None, default 0
        Seed of the bootstrap.
    rtol : float, default 1e-7
        Quadrature tolerance of the spectral measures (1e-7 moves the model curves by
        about 1e-7 relative, far below the misfit's floor, at 3/4 of the cost of 1e-9).
    fit_time_scale : bool, optional
        Fit the time scale :math:`\tau`.  Default: only when some curve lacks a known
        learning rate; when every curve carries its learning rate (``SGDRun``,
        ``LossCurve``, dicts with ``"learning_rate"``) :math:`\tau = 1` is exact and
        fixing it removes a direction that is nearly degenerate with :math:`\beta` in
        phases where :math:`\beta` shows only in the early decay (docs/theory.md,
        Sec. 16).  ``False`` with unknown learning rates asserts that they equal the
        reference ``lr_scale / tr D``.
    n_jobs : int, optional
        Threads of the coarse grid (default: the available cores).

    Returns
    -------
    CurveFit

    Raises
    ------
    ValueError
        NaN or non-positive losses, unsorted iterations, fewer than 5 points in a curve, a
        single model size, curves too short to constrain :math:`\beta` (no curve spans a
        decade of ``r`` while falling by 20 %), a curve ending above its start.
    TypeError
        Runs of an unknown type.

    Warns
    -----
    FittingWarning
        A curve that rises beyond its noise, an estimate on the search box's edge, a poorly
        constrained exponent (an interval of :math:`\alpha` or :math:`\beta` wider than
        0.1), a local fit that did not converge, a misfit beyond the standard errors
        (:math:`\chi^2` above twice its degrees of freedom).

    Notes
    -----
    docs/theory.md, Sec. 16: the misfit Eq. (16.1); the nuisance scales as relabellings
    (Eq. (16.2)) -- the spectral stage of each :math:`(\alpha, \beta, d)` is computed once
    and serves every time scale; a coarse grid with the nuisance profiled, then least
    squares over :math:`(\alpha, \beta)` (variable projection), then the reference learning
    rate is moved to the fitted one and the local fit repeated, so that the final model is
    the exact curve at that learning rate (with :math:`\tau` held, one local fit at the
    known learning rates); the linearised bootstrap Eq. (16.3).

    Examples
    --------
    Curves with a loss scale 3 and an irreducible loss; the fit recovers the exponents:

    >>> import numpy as np, volterra_sgd as vs
    >>> runs = []
    >>> for d in (16, 32, 64):
    ...     m = vs.PLRF(0.8, 0.4, 10 * d, d)
    ...     r = np.unique(np.round(np.logspace(0, 5, 30))).astype(int)
    ...     c = vs.loss_curve(m, r, learning_rate=m.reference_learning_rate(0.5))
    ...     runs.append({"d": d, "r": r, "loss": 3.0 * c.loss + 1e-4})
    >>> fit = vs.fit_loss_curves(runs, grid=(3, 3), n_bootstrap=0)
    >>> print(f"{fit.alpha:.3f} {fit.beta:.3f} {fit.irreducible_loss:.1e} {fit.phase}")
    0.800 0.400 1.0e-04 Ia
    """
    from .phases import _exponent_arrays, phase_exponents, phase_info

    irreducible = bool(irreducible)
    g0 = as_real(lr_scale, "lr_scale", lower=0.0, upper=2.0)
    floor = as_real(floor, "floor", lower=0.0, lower_open=False)
    n_boot = as_int(n_bootstrap, "n_bootstrap", minimum=0)
    ci = as_real(ci_level, "ci_level", lower=0.0, upper=1.0, upper_open=True)
    gen = np.random.default_rng(as_rng(rng))
    rtol = as_real(rtol, "rtol", lower=0.0, upper=1e-3)
    try:
        (a_lo, a_hi), (b_lo, b_hi) = ((float(x) for x in p) for p in bounds)
    except (TypeError, ValueError):
        raise TypeError(f"bounds must be ((alpha_lo, alpha_hi), (beta_lo, beta_hi)); got "
                        f"{bounds!r}") from None
    if not (0.0 < a_lo < a_hi and b_lo < b_hi):
        raise ValueError(f"bounds must satisfy 0 < alpha_lo < alpha_hi and beta_lo < beta_hi; "
                         f"got {bounds!r}")
    box = ((a_lo, a_hi), (b_lo, b_hi))
    if (not hasattr(grid, "__len__") or len(grid) != 2
            or not all(isinstance(n, numbers.Integral) and n >= 2 for n in grid)):
        raise ValueError(f"grid must be a pair of integers >= 2; got {grid!r}")
    if n_jobs is None:
        from ._parallel import default_workers

        n_jobs = default_workers()
    n_jobs = as_int(n_jobs, "n_jobs")
    if v_ratio is None:
        known = [float(getattr(getattr(r, "model", None), "v", math.nan)) /
                 getattr(getattr(r, "model", None), "d", 1) for r in runs
                 if hasattr(r, "model")] if hasattr(runs, "__iter__") and \
            not isinstance(runs, (dict, str)) else []
        known = [k for k in known if math.isfinite(k)]
        v_ratio = float(np.median(known)) if known else 10.0
    v_ratio = as_real(v_ratio, "v_ratio", lower=1.0)
    curves = _as_curves(runs, v_ratio)

    if fit_time_scale is None:
        tau_free = any(c.learning_rate is None for c in curves)
    elif isinstance(fit_time_scale, (bool, np.bool_)):
        tau_free = bool(fit_time_scale)
    else:
        raise TypeError(f"fit_time_scale must be True, False or None; got {fit_time_scale!r}")
    tables = _Tables(curves, g0, rtol, n_jobs)
    problem = _Problem(curves, tables, irreducible, floor, tau_free)
    cands = _grid_search(problem, 1.0, box, tuple(int(n) for n in grid))
    if not cands:
        raise ValueError("no point of the search grid gives a stable model curve for every "
                         "run; check the learning rates or widen bounds")
    ab, u, _ = cands[0]  # from the best grid point: relabelled local fit (tau free), exact
    if tau_free:
        ab, u, _, _ = _local_fit(problem, np.array(ab), u, box, exact=False, max_iter=12)
    ab, u, cost, res = _local_fit(problem, np.array(ab), u, box, exact=True)
    s = math.exp(u[0])
    tabs = tables.get(ab[0], ab[1], s)
    u_rel = np.r_[0.0, u[1:]]
    resid = problem.residuals(tabs, u_rel)
    alpha, beta = float(ab[0]), float(ab[1])

    # ------------------------------------------------------------------ bootstrap
    theta = np.r_[ab, u]
    boot = np.empty((0, 5))
    if n_boot:
        J = np.zeros((resid.size, 5))
        J[:, res.free] = res.jac if res.jac is not None else 0.0
        nlo, nhi = _nuisance_bounds(problem)
        lo_all = np.r_[box[0][0], box[1][0], nlo]
        hi_all = np.r_[box[0][1], box[1][1], nhi]
        at_bound = (theta <= lo_all) | (theta >= hi_all)
        boot = theta[None, :] + _bootstrap(problem, J, resid, n_boot, gen, at_bound)
        boot[:, 4] = np.clip(boot[:, 4], 0.0, None)
    def pct(x, tr=lambda z: z):
        return _percentile(tr(x), ci)

    # ------------------------------------------------------------------ status
    status, message = 0, "converged"
    span = [(box[0][1] - box[0][0]), (box[1][1] - box[1][0])]
    on_edge = any(min(ab[k] - box[k][0], box[k][1] - ab[k]) < 1e-3 * span[k] for k in range(2))
    a_ci, b_ci = pct(boot[:, 0]), pct(boot[:, 1])
    if not res.success:
        status, message = 2, f"local fit did not converge: {res.message}"
    elif on_edge:
        status, message = 1, (f"the estimate (alpha, beta) = ({alpha:.3f}, {beta:.3f}) lies on "
                              f"the edge of the search box {box}; widen bounds")
    elif boot.shape[0] and (b_ci[1] - b_ci[0] > 0.5 or a_ci[1] - a_ci[0] > 0.5):
        status, message = 3, ("alpha or beta is poorly constrained (bootstrap interval wider "
                              "than 0.5): the curves are too short or too few model sizes")
    if status:
        warnings.warn(f"fit_loss_curves: {message}", FittingWarning, stacklevel=2)
    elif boot.shape[0] and max(b_ci[1] - b_ci[0], a_ci[1] - a_ci[0]) > _WIDE:
        warnings.warn(f"fit_loss_curves: the {ci:.0%} intervals alpha [{a_ci[0]:.3f}, "
                      f"{a_ci[1]:.3f}], beta [{b_ci[0]:.3f}, {b_ci[1]:.3f}] are wider than "
                      f"{_WIDE:g}: the curves carry little information on the exponents "
                      "(more runs per curve, the loss at r = 0, or more model sizes narrow "
                      "them; Sec. 16)", FittingWarning, stacklevel=2)
    dof = resid.size - int(np.count_nonzero(res.free))
    chi2 = float(np.sum(resid ** 2))
    if all(np.any(c.stderr > 0) for c in curves) and dof > 0 and chi2 > _CHI2_WARN * dof:
        warnings.warn(f"fit_loss_curves: chi2 = {chi2:.4g} on {dof} degrees of freedom: the "
                      "curves deviate from the best model by more than their standard errors "
                      "(curves at different learning rates without a known learning rate, a "
                      "schedule, label noise, or data that are not PLRF-like); read the "
                      "intervals as lower bounds", FittingWarning, stacklevel=2)

    # ------------------------------------------------------------------ phase
    ph = label = expo = None
    xi_ci = eta_ci = (math.nan, math.nan)
    prob = math.nan
    if alpha + beta > 0.5:
        info = phase_info(alpha, beta, tol=1e-9)
        ph, label = info.phase, info.label
        expo = phase_exponents(alpha, beta, tol=1e-9)
        if boot.shape[0]:
            from .phases import PHASES

            okb = boot[:, 0] + boot[:, 1] > 0.5
            code, xi, eta = _exponent_arrays(np.where(okb, boot[:, 0], np.nan),
                                             np.where(okb, boot[:, 1], np.nan))
            prob = float(np.mean(code[okb] == PHASES.index(ph))) if okb.any() else math.nan
            xi_ci, eta_ci = pct(xi[okb]), pct(eta[okb])
    dist, near = boundary_distance(alpha, beta)

    # effective g of the fitted curves (median over curves) for new model sizes
    from .model import PLRF

    gs = []
    for c in curves:
        m = PLRF(alpha=alpha, beta=beta, v=int(c.v), d=c.d)
        gs.append(tables.gamma(m, c, s) * m.trace_data_covariance)
    return CurveFit(
        alpha=alpha, alpha_ci=a_ci, beta=beta, beta_ci=b_ci,
        loss_scale=math.exp(u[1]), loss_scale_ci=pct(boot[:, 3], np.exp),
        time_scale=s, time_scale_ci=pct(boot[:, 2], np.exp),
        irreducible_loss=float(u[2] * problem.lmin),
        irreducible_loss_ci=pct(boot[:, 4], lambda z: z * problem.lmin),
        lr_scale=float(np.median(gs)), v_ratio=float(np.median([c.v / c.d for c in curves])),
        batch_size=int(np.median([c.batch_size for c in curves])), phase=ph,
        phase_label=label, boundary_distance=dist, nearest_boundary=near,
        phase_probability=prob, exponents=expo, xi_ci=xi_ci, eta_ci=eta_ci,
        chi2=chi2, n_points=int(resid.size), success=status == 0,
        status=status, message=message, n_stages=tables.n_stages, boot=boot, ci_level=ci,
        time_scale_fitted=tau_free,
        _curves=tuple(curves), _lmin=problem.lmin)
