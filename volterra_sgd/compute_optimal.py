r"""Compute-optimal scaling: IsoFLOP frontiers, exponent fits, sweeps (docs/theory.md, Secs. 11-12).

At fixed compute :math:`f = d\,B\,r` (docs/theory.md, Eq. (2.3)) the loss
:math:`\mathcal P(f/(dB), d)` is minimised over the model size :math:`d`; the compute-optimal size
and loss scale as :math:`d^\star \propto f^{\xi}` and :math:`\mathcal P^\star \propto f^{-\eta}`
(docs/theory.md, Eq. (11.1); predictions in Eq. (11.3) and :func:`volterra_sgd.phase_exponents`).

This module

* sweeps deterministic loss curves over a geometric grid of model sizes, on a local thread
  pool or a Dask cluster, with an optional resumable disk cache (:func:`sweep_loss_curves`);
* extracts the IsoFLOP frontier from any set of curves, deterministic or simulated SGD
  (:func:`isoflop_frontier`, docs/theory.md, Sec. 12 and Eq. (12.1)), with bootstrap
  confidence intervals of :math:`\eta` and :math:`\xi`;
* fits the empirical laws of Kaplan et al. (:func:`kaplan_fits`) and Chinchilla's
  parametric law :math:`L(N, D) = E + A N^{-a} + B D^{-b}` (:func:`chinchilla_fit`);
* ties everything together in :func:`compute_optimal`.

The details and the measured accuracy are in ``docs/compute_optimal.md``.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PowerLawFit",
    "IsoFLOPFrontier",
    "isoflop_frontier",
    "KaplanFits",
    "kaplan_fits",
    "IsoFLOPProfiles",
    "isoflop_profiles",
    "ExtrapolatedExponents",
    "extrapolate_exponents",
    "ChinchillaFit",
    "chinchilla_fit",
    "CurveSweep",
    "OPTIMIZER_NAMES",
    "SCHEDULE_NAMES",
    "schedule_factor",
    "optimizer_for_model",
    "sweep_loss_curves",
    "ComputeOptimalResult",
    "compute_optimal",
    "load_compute_optimal",
]


# ============================================================================ power-law fits
@dataclass(frozen=True)
class PowerLawFit:
    r"""Least-squares power law :math:`y = c\,x^{s}` fitted in log-log coordinates.

    Attributes
    ----------
    exponent : float
        The reported exponent: ``sign * slope`` (e.g. :math:`\eta = -s` for a decaying loss).
    exponent_ci : tuple of float
        95% bootstrap percentile interval of ``exponent`` (NaN, NaN without a bootstrap).
    slope, intercept : float
        :math:`s` and :math:`\log c` (natural logarithm).
    window : tuple of float
        Range of :math:`x` used by the fit.
    n_points : int
        Points in the fit.
    rms_residual : float
        Root-mean-square residual of :math:`\log y`.
    bootstrap : ndarray
        Bootstrap replicates of ``exponent`` (empty without a bootstrap).

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> f = np.logspace(0, 14, 300)
    >>> fit = vs.isoflop_frontier([(d, f, 1 / d + (f / d) ** -0.5)
    ...                            for d in np.logspace(1, 4, 25)], n_boot=0).loss_fit
    >>> round(fit.exponent, 4), round(fit.slope, 4), fit.n_points > 100   # eta = -slope
    (0.3333, -0.3333, True)
    """

    exponent: float
    exponent_ci: tuple
    slope: float
    intercept: float
    window: tuple
    n_points: int
    rms_residual: float
    bootstrap: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def to_dict(self) -> dict:
        """JSON-serialisable summary (without the bootstrap replicates)."""
        return {"exponent": self.exponent, "exponent_ci": list(self.exponent_ci),
                "slope": self.slope, "intercept": self.intercept, "window": list(self.window),
                "n_points": self.n_points, "rms_residual": self.rms_residual,
                "n_bootstrap": int(self.bootstrap.size)}


def _linfit(x, y):
    """Slope, intercept and rms residual of the least-squares line y = s x + c."""
    xm, ym = x.mean(), y.mean()
    dx = x - xm
    s = float(np.dot(dx, y - ym) / np.dot(dx, dx))
    c = float(ym - s * xm)
    res = y - (s * x + c)
    return s, c, float(np.sqrt(np.mean(res * res)))


def _percentile_ci(samples):
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size < 2:
        return (math.nan, math.nan)
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return (float(lo), float(hi))


def _power_fit(x, y, sign, boot=None):
    lx, ly = np.log(x), np.log(y)
    s, c, rms = _linfit(lx, ly)
    boot = np.empty(0) if boot is None else np.asarray(boot, dtype=np.float64)
    return PowerLawFit(exponent=sign * s, exponent_ci=_percentile_ci(boot), slope=s,
                       intercept=c, window=(float(x.min()), float(x.max())),
                       n_points=int(x.size), rms_residual=rms, bootstrap=boot)


# ========================================================================== curve handling
def _as_curve_data(curves, name="curves"):
    """Normalise curves to a sorted list of (d, flops (n,), losses (n_seeds, n)).

    Accepted items: objects with ``model.d``, ``batch_size``, ``r`` and ``loss`` (LossCurve,
    SGDRun; an SGDRun's per-run ``losses`` are kept for the seed bootstrap), or tuples
    ``(d, flops, loss)`` with ``loss`` of shape ``(n,)`` or ``(n_seeds, n)``.
    Points with non-positive flops (``r = 0``) are dropped.
    """
    if isinstance(curves, (str, bytes)) or not hasattr(curves, "__iter__"):
        raise TypeError(f"{name} must be a sequence of curves; got {type(curves).__name__}")
    out = []
    for i, c in enumerate(curves):
        if isinstance(c, tuple):
            if len(c) != 3:
                raise ValueError(f"{name}[{i}] must be a (d, flops, loss) tuple; got {len(c)} "
                                 "entries")
            d, f, loss = c
        elif hasattr(c, "model") and hasattr(c, "r") and hasattr(c, "loss"):
            d = c.model.d
            f = c.model.d * int(c.batch_size) * np.asarray(c.r, dtype=np.float64)
            loss = getattr(c, "losses", None)
            loss = c.loss if loss is None or np.ndim(loss) != 2 else loss
        else:
            raise TypeError(f"{name}[{i}] must be a LossCurve, an SGDRun or a (d, flops, loss) "
                            f"tuple; got {type(c).__name__}")
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Real) or not d > 0:
            raise ValueError(f"{name}[{i}]: model size d must be a positive number; got {d!r}")
        f = np.asarray(f, dtype=np.float64)
        loss = np.atleast_2d(np.asarray(loss, dtype=np.float64))
        if f.ndim != 1 or loss.ndim != 2 or loss.shape[1] != f.size:
            raise ValueError(f"{name}[{i}]: flops must be 1-D and loss of shape (n,) or "
                             f"(n_seeds, n) with n = len(flops); got {f.shape} and {loss.shape}")
        keep = f > 0
        f, loss = f[keep], loss[:, keep]
        if f.size < 2:
            raise ValueError(f"{name}[{i}] (d = {d}) needs at least 2 points with flops > 0")
        if not np.all(np.diff(f) > 0):
            raise ValueError(f"{name}[{i}] (d = {d}): flops must be strictly increasing")
        if not np.all(np.isfinite(loss)) or np.any(loss <= 0):
            raise ValueError(f"{name}[{i}] (d = {d}): losses must be finite and positive")
        out.append((float(d), f, loss))
    if len(out) < 3:
        raise ValueError(f"{name} must hold at least 3 curves (model sizes); got {len(out)}")
    out.sort(key=lambda t: t[0])
    ds = np.array([t[0] for t in out])
    if np.any(np.diff(ds) <= 0):
        raise ValueError(f"{name}: model sizes must be distinct; got d = {ds.tolist()}")
    return out


def _log_interp(logf_grid, f, loss_mean):
    """Return log P interpolated linearly in log f; NaN outside the curve's flops range."""
    lf = np.log(f)
    out = np.interp(logf_grid, lf, np.log(loss_mean))
    out[(logf_grid < lf[0] - 1e-12) | (logf_grid > lf[-1] + 1e-12)] = np.nan
    return out


def _frontier_from_grid(logd, logP):
    """IsoFLOP minima of a (n_d, n_f) table of log P (NaN = not available).

    Returns log d*, log P* (NaN where the minimum is not strictly inside the grid) and the
    arg-min index.  The discrete minimum over the finite entries is refined by the parabola
    through it and its two neighbours in (log d, log P).
    """
    n_d, n_f = logP.shape
    filled = np.where(np.isfinite(logP), logP, np.inf)
    k = np.argmin(filled, axis=0)
    cols = np.arange(n_f)
    ok = (k > 0) & (k < n_d - 1) & np.isfinite(filled[k, cols])
    km, kp = np.clip(k - 1, 0, n_d - 1), np.clip(k + 1, 0, n_d - 1)
    ok &= np.isfinite(filled[km, cols]) & np.isfinite(filled[kp, cols])
    x0, x2 = logd[km] - logd[k], logd[kp] - logd[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        y0, y1, y2 = filled[km, cols], filled[k, cols], filled[kp, cols]
        # parabola y = y1 + b x + a x^2 through (x0, y0), (0, y1), (x2, y2)
        s0, s2 = (y0 - y1) / x0, (y2 - y1) / x2
        a = (s2 - s0) / (x2 - x0)
        b = s0 - a * x0
        xv = np.where(a > 0, -b / (2 * a), 0.0)
        xv = np.clip(xv, x0, x2)
        yv = y1 + b * xv + a * xv * xv
    logd_opt = np.where(ok, logd[k] + xv, np.nan)
    logP_opt = np.where(ok, np.minimum(yv, y1), np.nan)
    return logd_opt, logP_opt, k


def _longest_run(mask):
    """Slice of the longest run of True in a boolean array (empty slice if none)."""
    best, start, best_len = slice(0, 0), None, 0
    for i, m in enumerate(np.append(mask, False)):
        if m and start is None:
            start = i
        elif not m and start is not None:
            if i - start > best_len:
                best, best_len = slice(start, i), i - start
            start = None
    return best


# ======================================================================= IsoFLOP frontier
@dataclass(frozen=True)
class IsoFLOPFrontier:
    r"""Compute-optimal frontier extracted from loss curves (docs/theory.md, Eq. (12.1)).

    Attributes
    ----------
    d_values : ndarray
        Model sizes of the curves (sorted).
    flops : ndarray
        Common log-spaced grid of compute :math:`f`.
    log_loss : ndarray, shape (len(d_values), len(flops))
        :math:`\log\mathcal P_d(f)` interpolated linearly in :math:`\log f` (NaN outside the
        range of a curve); for SGD curves the log of the mean over runs.
    d_opt, loss_opt : ndarray
        :math:`d^\star(f)` and :math:`\mathcal P^\star(f)` on ``flops``; NaN where the minimum
        over :math:`d` is not strictly inside the grid.
    interior : ndarray of bool
        Where ``d_opt`` is defined.
    window : tuple of float
        Flops range of the fits.
    loss_fit, params_fit : PowerLawFit
        :math:`\mathcal P^\star \propto f^{-\eta}` (``loss_fit.exponent`` is :math:`\eta`) and
        :math:`d^\star \propto f^{\xi}` over ``window``, with bootstrap intervals.
    n_boot : int
        Bootstrap draws requested; ``n_boot_used`` of them had enough interior points.
    n_boot_used : int
    n_seeds : ndarray of int
        Runs per curve (1 for deterministic curves).
    options : dict
        Extraction options (grid density, window rule, seed).

    Examples
    --------
    Synthetic curves :math:`L = d^{-1} + (f/d)^{-1/2}`: the optimum is
    :math:`d^\star \propto f^{1/3}`, :math:`L^\star \propto f^{-1/3}`.

    >>> import numpy as np, volterra_sgd as vs
    >>> f = np.logspace(0, 14, 300)
    >>> fr = vs.isoflop_frontier([(d, f, 1 / d + (f / d) ** -0.5) for d in np.logspace(1, 4, 25)],
    ...                          n_boot=0)
    >>> fr.d_opt.shape == fr.flops.shape == fr.interior.shape, int(fr.interior.sum()) > 100
    (True, True)
    >>> round(fr.params_fit.exponent, 3), round(fr.loss_fit.exponent, 3)
    (0.333, 0.333)
    """

    d_values: np.ndarray
    flops: np.ndarray
    log_loss: np.ndarray
    d_opt: np.ndarray
    loss_opt: np.ndarray
    interior: np.ndarray
    window: tuple
    loss_fit: PowerLawFit
    params_fit: PowerLawFit
    n_boot: int
    n_boot_used: int
    n_seeds: np.ndarray
    options: dict = field(default_factory=dict)

    @property
    def in_window(self) -> np.ndarray:
        """Boolean mask of the grid points used by the fits."""
        lo, hi = self.window
        return self.interior & (self.flops >= lo * (1 - 1e-12)) & (self.flops <= hi * (1 + 1e-12))

    @property
    def frontier(self) -> np.ndarray:
        """Structured array (``flops``, ``d_opt``, ``loss_opt``) of the interior points."""
        m = self.interior
        out = np.empty(int(m.sum()), dtype=[("flops", "f8"), ("d_opt", "f8"), ("loss_opt", "f8")])
        out["flops"], out["d_opt"], out["loss_opt"] = self.flops[m], self.d_opt[m], self.loss_opt[m]
        return out


def isoflop_frontier(curves, *, flops_per_decade: int = 40, window=None, trim: float = 0.0,
                     n_boot: int = 400, rng=0, max_cost: float | None = None) -> IsoFLOPFrontier:
    r"""IsoFLOP frontier :math:`d^\star(f)`, :math:`\mathcal P^\star(f)` and its exponents.

    Works on any family of curves of the loss against compute at several model sizes:
    deterministic curves (:func:`volterra_sgd.loss_curve`), simulated SGD
    (:func:`volterra_sgd.simulate_sgd`, resampled over runs in the bootstrap) or plain arrays.

    Parameters
    ----------
    curves : sequence
        At least 3 curves with distinct model sizes: :class:`~volterra_sgd.LossCurve` or
        :class:`~volterra_sgd.SGDRun` objects (flops :math:`f = dBr`, docs/theory.md, Eq. (2.3)), or
        tuples ``(d, flops, loss)`` with ``loss`` of shape ``(n,)`` or ``(n_runs, n)``.  Points with
        ``flops == 0`` are ignored.
    flops_per_decade : int, default 40
        Density of the common log-spaced flops grid.
    window : tuple of float, optional
        Flops range of the power-law fits.  Default: the longest run of grid points where the
        minimum over :math:`d` lies strictly inside the grid, shrunk by ``trim`` decades at
        each end.  An explicit window must lie inside that interior range.
    trim : float, default 0
        Decades removed at each end of the default window.
    n_boot : int, default 400
        Bootstrap draws (0 for none).  Each draw resamples the model sizes with replacement
        (keeping the distinct ones, at least 3) and, for curves with several runs, the runs
        of each size; the frontier is re-extracted and refitted over the part of ``window``
        where the draw's minimum is interior.  Draws covering less than half of the window
        (in log f) are discarded.
    rng : int, numpy.random.Generator or None, default 0
        Seed of the bootstrap (SPEC 7).
    max_cost : float, optional
        Limit on the estimated kernel steps (default ``10**9``: grid points times curves
        times ``n_boot + 1``); larger requests raise ``ValueError`` before any work,
        ``math.inf`` removes the limit (the memory check stays).  docs/curves.md, "Cost
        limits".

    Returns
    -------
    IsoFLOPFrontier
        The frontier, the window and the fits ``loss_fit`` (:math:`\eta`) and ``params_fit``
        (:math:`\xi`) with 95% percentile intervals.

    Raises
    ------
    ValueError
        Fewer than 3 curves, bad shapes, non-positive losses, no interior minimum, or a
        window outside the interior range.

    Notes
    -----
    docs/theory.md, Sec. 12: :math:`\log\mathcal P_d` is interpolated linearly in :math:`\log f` on
    a common grid; at each :math:`f` the arg-min over the :math:`d` grid is refined by the
    parabola through it and its neighbours in :math:`(\log d, \log\mathcal P)`; only the
    :math:`f` whose minimum lies strictly inside the grid are kept; :math:`\log\mathcal P^\star`
    and :math:`\log d^\star` are fitted linearly in :math:`\log f` over the window (equally
    spaced points in :math:`\log f`).

    Examples
    --------
    Synthetic curves :math:`L = d^{-1} + (f/d)^{-1/2}` have :math:`\xi = 1/3`,
    :math:`\eta = 1/3`:

    >>> import numpy as np
    >>> from volterra_sgd.compute_optimal import isoflop_frontier
    >>> f = np.logspace(0, 14, 300)
    >>> curves = [(d, f, 1 / d + (f / d) ** -0.5) for d in np.logspace(1, 4, 25)]
    >>> fr = isoflop_frontier(curves, n_boot=0)
    >>> print(f"{fr.params_fit.exponent:.3f} {fr.loss_fit.exponent:.3f}")
    0.333 0.333
    """
    from ._validation import as_int, as_real, as_rng, check_budget, frontier_cost

    data = _as_curve_data(curves)
    fpd = as_int(flops_per_decade, "flops_per_decade", minimum=2)
    trim = as_real(trim, "trim", lower=0.0, lower_open=False)
    n_boot = as_int(n_boot, "n_boot", minimum=0)
    gen = np.random.default_rng(as_rng(rng))
    ds = np.array([t[0] for t in data])
    logd = np.log(ds)
    lo = min(t[1][0] for t in data)
    hi = max(t[1][-1] for t in data)
    n_f_est = math.log10(hi / lo) * fpd + 1.0
    check_budget(*frontier_cost(n_f_est, len(data), n_boot), what="isoflop_frontier",
                 parameter="flops_per_decade or n_boot", max_cost=max_cost)
    n_f = max(2, int(round(math.log10(hi / lo) * fpd)) + 1)
    logf = np.linspace(math.log(lo), math.log(hi), n_f)
    flops = np.exp(logf)
    logP = np.array([_log_interp(logf, f, L.mean(axis=0)) for _, f, L in data])
    logd_opt, logP_opt, _ = _frontier_from_grid(logd, logP)
    interior = np.isfinite(logd_opt)
    run = _longest_run(interior)
    if run.stop - run.start < 2:
        raise ValueError("no compute-optimal frontier: the minimum over d is not strictly "
                         "inside the grid of model sizes at two or more flops values; widen "
                         "the d range or the flops range of the curves")
    if window is None:
        wlo = math.exp(logf[run.start] + trim * math.log(10))
        whi = math.exp(logf[run.stop - 1] - trim * math.log(10))
        if not wlo < whi:
            raise ValueError(f"trim = {trim} removes the whole interior range "
                             f"[{flops[run.start]:.3g}, {flops[run.stop - 1]:.3g}]")
    else:
        try:
            wlo, whi = (float(w) for w in window)
        except (TypeError, ValueError):
            raise TypeError(f"window must be a pair of flops values; got {window!r}") from None
        if not (0 < wlo < whi):
            raise ValueError(f"window must satisfy 0 < low < high; got {window!r}")
    inrange = (flops >= wlo * (1 - 1e-12)) & (flops <= whi * (1 + 1e-12))
    inwin = interior & inrange
    if inwin.sum() < 2 or not np.all(interior[inrange]):
        raise ValueError(f"window [{wlo:.3g}, {whi:.3g}] must lie inside a range of flops where "
                         "the optimum is strictly inside the d grid (interior range "
                         f"[{flops[run.start]:.3g}, {flops[run.stop - 1]:.3g}])")
    wlo, whi = float(flops[inwin][0]), float(flops[inwin][-1])
    n_seeds = np.array([t[2].shape[0] for t in data])
    boot_eta, boot_xi = _frontier_bootstrap(data, logd, logf, logP, inwin, n_boot, gen)
    fr_loss = _power_fit(flops[inwin], np.exp(logP_opt[inwin]), -1.0, boot_eta)
    fr_par = _power_fit(flops[inwin], np.exp(logd_opt[inwin]), 1.0, boot_xi)
    return IsoFLOPFrontier(
        d_values=ds, flops=flops, log_loss=logP, d_opt=np.exp(logd_opt),
        loss_opt=np.exp(logP_opt), interior=interior, window=(wlo, whi), loss_fit=fr_loss,
        params_fit=fr_par, n_boot=n_boot, n_boot_used=int(boot_eta.size), n_seeds=n_seeds,
        options={"flops_per_decade": fpd, "trim": trim, "window": None if window is None
                 else [float(w) for w in window], "n_boot": n_boot,
                 "rng": rng if isinstance(rng, int) else None})


def _frontier_bootstrap(data, logd, logf, logP, inwin, n_boot, gen):
    n_d = len(data)
    multi = any(t[2].shape[0] > 1 for t in data)
    need = 0.5 * (logf[inwin][-1] - logf[inwin][0])
    eta, xi = [], []
    for _ in range(n_boot):
        idx = np.unique(gen.integers(0, n_d, n_d))
        if idx.size < 3:
            continue
        if multi:
            rows = []
            for i in idx:
                L = data[i][2]
                pick = gen.integers(0, L.shape[0], L.shape[0])
                rows.append(_log_interp(logf, data[i][1], L[pick].mean(axis=0)))
            sub = np.array(rows)
        else:
            sub = logP[idx]
        ld, lp, _ = _frontier_from_grid(logd[idx], sub)
        m = inwin & np.isfinite(ld)
        if m.sum() < 2 or logf[m][-1] - logf[m][0] < need:
            continue
        eta.append(-_linfit(logf[m], lp[m])[0])
        xi.append(_linfit(logf[m], ld[m])[0])
    return np.array(eta), np.array(xi)


# ================================================================= Approach 2: profiles
@dataclass(frozen=True)
class IsoFLOPProfiles:
    r"""Chinchilla Approach 2: parabolas through IsoFLOP profiles in :math:`\log d`.

    At each compute budget :math:`f` of the frontier's window, :math:`\log\mathcal P` is
    fitted by a parabola in :math:`\log d` over the model sizes within ``half_width`` decades
    of the profile's discrete minimum; its vertex gives :math:`d^\star(f)` and
    :math:`\mathcal P^\star(f)` (docs/theory.md, Eq. (17.1)); power laws in :math:`f` give
    :math:`\xi` and :math:`\eta` (Eq. (17.2)).

    Attributes
    ----------
    flops : ndarray
        Budgets with a valid vertex (profile band inside the grid, positive curvature).
    d_opt, loss_opt : ndarray
        Vertex of each parabola: :math:`d^\star` and :math:`\mathcal P^\star`.
    curvature : ndarray
        :math:`\partial^2\log\mathcal P/\partial(\log d)^2` of each parabola.
    n_points : ndarray of int
        Profile points in each parabola.
    rms_residual : ndarray
        Root-mean-square residual of :math:`\log\mathcal P` of each parabola.
    half_width : float
        Decades of :math:`d` on each side of the discrete minimum.
    loss_fit, params_fit : PowerLawFit
        :math:`\mathcal P^\star \propto f^{-\eta}`, :math:`d^\star \propto f^{\xi}` over the
        budgets, with 95% intervals from a bootstrap over the model sizes.
    n_boot, n_boot_used : int
        Bootstrap draws requested and kept (draws covering less than half of the budgets'
        range in :math:`\log f` are dropped).

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> f = np.logspace(0, 14, 561)
    >>> fr = vs.isoflop_frontier([(d, f, 1 / d + (f / d) ** -0.5)
    ...                           for d in np.logspace(1, 4, 25)], n_boot=0)
    >>> a2 = vs.isoflop_profiles(fr, n_boot=0)
    >>> round(a2.params_exponent, 3), round(a2.loss_exponent, 3)
    (0.333, 0.333)
    """

    flops: np.ndarray
    d_opt: np.ndarray
    loss_opt: np.ndarray
    curvature: np.ndarray
    n_points: np.ndarray
    rms_residual: np.ndarray
    half_width: float
    loss_fit: PowerLawFit
    params_fit: PowerLawFit
    n_boot: int
    n_boot_used: int

    @property
    def loss_exponent(self) -> float:
        r""":math:`\eta` from the parabola vertices."""
        return self.loss_fit.exponent

    @property
    def loss_exponent_ci(self) -> tuple:
        r"""95% bootstrap interval of :math:`\eta`."""
        return self.loss_fit.exponent_ci

    @property
    def params_exponent(self) -> float:
        r""":math:`\xi` from the parabola vertices."""
        return self.params_fit.exponent

    @property
    def params_exponent_ci(self) -> tuple:
        r"""95% bootstrap interval of :math:`\xi`."""
        return self.params_fit.exponent_ci

    def to_dict(self) -> dict:
        """JSON-serialisable summary."""
        return {"eta": self.loss_exponent, "eta_ci": list(self.loss_exponent_ci),
                "xi": self.params_exponent, "xi_ci": list(self.params_exponent_ci),
                "half_width": self.half_width, "n_budgets": int(self.flops.size),
                "window": [float(self.flops[0]), float(self.flops[-1])],
                "max_rms_residual": float(np.max(self.rms_residual)),
                "n_boot": self.n_boot, "n_boot_used": self.n_boot_used}


def _profile_vertices(logd, logP, half, strict):
    """Parabola vertices of the columns of a (n_d, n_f) table of log P (Eq. (17.1)).

    For each column: the rows within ``half`` (natural log) of the discrete minimum's log d,
    least squares of ``y = c + b x + a x^2`` in ``x = log d - log d_min``.  Returns
    (log d*, log P*, a, n, rms), NaN where undefined: fewer than 3 points, no point on one
    side, ``a <= 0``, a vertex outside the band, or (``strict``) a band reaching beyond the
    grid or with a missing value.
    """
    n_d, n_f = logP.shape
    fin = np.isfinite(logP)
    filled = np.where(fin, logP, np.inf)
    k = np.argmin(filled, axis=0)
    cols = np.arange(n_f)
    x = logd[:, None] - logd[k][None, :]
    band = np.abs(x) <= half * (1 + 1e-12)
    m = band & fin
    y = np.where(m, logP, 0.0)
    w = m.astype(np.float64)
    xs = np.where(m, x, 0.0)
    S = [np.sum(w * xs**j, axis=0) for j in range(5)]
    T = [np.sum(w * xs**j * y, axis=0) for j in range(3)]
    A = np.stack([np.stack([S[0], S[1], S[2]], -1), np.stack([S[1], S[2], S[3]], -1),
                  np.stack([S[2], S[3], S[4]], -1)], -2)
    rhs = np.stack(T, -1)
    n = S[0]
    ok = (n >= 3) & np.isfinite(filled[k, cols])
    ok &= np.any(m & (x < 0), axis=0) & np.any(m & (x > 0), axis=0)
    if strict:
        ok &= (logd[k] - half >= logd[0] - 1e-12) & (logd[k] + half <= logd[-1] + 1e-12)
        ok &= ~np.any(band & ~fin, axis=0)
    coef = np.full((n_f, 3), np.nan)
    if np.any(ok):
        coef[ok] = np.linalg.solve(A[ok], rhs[ok][..., None])[..., 0]
    c, b, a = coef[:, 0], coef[:, 1], coef[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        xv = -b / (2 * a)
        res = np.where(m, y - (c + b * xs + a * xs * xs), 0.0)
        rms = np.sqrt(np.sum(res * res, axis=0) / np.maximum(n, 1))
    ok &= (a > 0) & (np.abs(xv) <= half)
    xv = np.where(ok, xv, np.nan)
    return (logd[k] + xv, c + b * xv + a * xv * xv, np.where(ok, 2 * a, np.nan),
            n.astype(np.int64), rms)


def isoflop_profiles(frontier: IsoFLOPFrontier, *, half_width: float = 0.5,
                     n_boot: int = 400, rng=0) -> IsoFLOPProfiles:
    r"""Chinchilla Approach 2: fit parabolas to IsoFLOP profiles, then power laws in :math:`f`.

    Parameters
    ----------
    frontier : IsoFLOPFrontier
        From :func:`isoflop_frontier`; its table :math:`\log\mathcal P_d(f)` holds the
        profiles and its ``window`` the budgets.
    half_width : float, default 0.5
        Decades of :math:`d` on each side of the discrete minimum that enter each parabola
        (0.5: 7 sizes of a :math:`\sqrt 2` grid, a factor 8 in :math:`d`).  Budgets whose
        band leaves the grid of model sizes are skipped.
    n_boot : int, default 400
        Bootstrap draws: the model sizes are resampled with replacement (the distinct ones
        kept), the vertices recomputed and the power laws refitted.
    rng : int, numpy.random.Generator or None, default 0
        Seed (SPEC 7).

    Returns
    -------
    IsoFLOPProfiles

    Raises
    ------
    ValueError
        Fewer than 2 budgets of the window have a valid parabola.

    Notes
    -----
    docs/theory.md, Sec. 17, Eqs. (17.1)-(17.2).  Unlike the frontier's three-point
    refinement (Approach 1 on the same table), each vertex uses the whole band, so it is
    less sensitive to the grid of model sizes but biased by the profile's departure from a
    parabola (third derivative in :math:`\log d`); the bias shrinks with ``half_width``.

    Examples
    --------
    Exactly parabolic profiles with :math:`d^\star = 2 f^{0.4}`,
    :math:`\mathcal P^\star = 3 f^{-0.3}`:

    >>> import numpy as np
    >>> from volterra_sgd.compute_optimal import isoflop_frontier, isoflop_profiles
    >>> f = np.logspace(2, 12, 401)
    >>> def loss(d):
    ...     return 3 * f**-0.3 * np.exp(0.2 * np.log(d / (2 * f**0.4)) ** 2)
    >>> fr = isoflop_frontier([(d, f, loss(d)) for d in np.logspace(1, 5, 33)], n_boot=0)
    >>> a2 = isoflop_profiles(fr, n_boot=0)
    >>> print(f"{a2.params_exponent:.6f} {a2.loss_exponent:.6f}")
    0.400000 0.300000
    """
    from ._validation import as_int, as_real, as_rng

    if not isinstance(frontier, IsoFLOPFrontier):
        raise TypeError(f"frontier must be an IsoFLOPFrontier; got {type(frontier).__name__}")
    hw = as_real(half_width, "half_width", lower=0.0)
    n_boot = as_int(n_boot, "n_boot", minimum=0)
    gen = np.random.default_rng(as_rng(rng))
    half = hw * math.log(10.0)
    logd = np.log(frontier.d_values)
    lo, hi = frontier.window
    inwin = (frontier.flops >= lo * (1 - 1e-12)) & (frontier.flops <= hi * (1 + 1e-12))
    logf = np.log(frontier.flops[inwin])
    table = frontier.log_loss[:, inwin]
    ld, lp, curv, npts, rms = _profile_vertices(logd, table, half, strict=True)
    ok = np.isfinite(ld)
    if ok.sum() < 2:
        raise ValueError(f"isoflop_profiles: fewer than 2 budgets in the window have a "
                         f"parabola band of +-{hw} decades inside the grid of model sizes; "
                         "lower half_width or widen the d range")
    need = 0.5 * (logf[ok][-1] - logf[ok][0])
    eta, xi = [], []
    n_d = logd.size
    for _ in range(n_boot):
        idx = np.unique(gen.integers(0, n_d, n_d))
        if idx.size < 3:
            continue
        bl, bp = _profile_vertices(logd[idx], table[idx], half, strict=False)[:2]
        mk = ok & np.isfinite(bl)
        if mk.sum() < 2 or logf[mk][-1] - logf[mk][0] < need:
            continue
        eta.append(-_linfit(logf[mk], bp[mk])[0])
        xi.append(_linfit(logf[mk], bl[mk])[0])
    f = np.exp(logf[ok])
    return IsoFLOPProfiles(
        flops=f, d_opt=np.exp(ld[ok]), loss_opt=np.exp(lp[ok]), curvature=curv[ok],
        n_points=npts[ok], rms_residual=rms[ok], half_width=hw,
        loss_fit=_power_fit(f, np.exp(lp[ok]), -1.0, eta),
        params_fit=_power_fit(f, np.exp(ld[ok]), 1.0, xi), n_boot=n_boot,
        n_boot_used=len(eta))


# ========================================================== exponents at d -> infinity
@dataclass(frozen=True)
class ExtrapolatedExponents:
    r"""Compute-optimal exponents extrapolated to :math:`d\to\infty` (docs/theory.md, Sec. 17).

    Attributes
    ----------
    d_max : ndarray
        Largest model size of each nested sub-grid :math:`d \le d_{max}`.
    loss_local, params_local : ndarray
        Local :math:`\eta` and :math:`\xi` of each sub-grid: the frontier fits
        (Eq. (12.1)) over the top ``top_decades`` of its window (Eq. (17.4)).
    loss_exponent, params_exponent : float
        :math:`\eta_\infty`, :math:`\xi_\infty` of the drift model
        :math:`y(d_{max}) = y_\infty + c\,d_{max}^{-\omega}` fitted to all sub-grids
        (Eq. (17.4)).
    loss_exponent_ci, params_exponent_ci : tuple of float
        Intervals that include the drift model's uncertainty: the union of
        :math:`y_\infty \pm 1.96\,\sigma` over the fits to all sub-grids and to those left
        after dropping the smallest quarter and half of them (Eq. (17.5)).
    loss_drift, params_drift : dict
        Per fit (``"all"``, ``"drop_quarter"``, ``"drop_half"``): ``y_inf``, ``sigma``, ``c``,
        ``omega``, ``n``, ``rms_residual``.
    top_decades : float
        Width of the local window in decades of :math:`f`.

    Examples
    --------
    Curves :math:`L = d^{-1} + (f/d)^{-1/2}` have no drift: :math:`\xi = \eta = 1/3`.

    >>> import numpy as np
    >>> from volterra_sgd.compute_optimal import extrapolate_exponents
    >>> f = np.logspace(0, 16, 641)
    >>> ex = extrapolate_exponents([(d, f, 1 / d + (f / d) ** -0.5)
    ...                             for d in np.logspace(1, 5, 33)])
    >>> round(ex.loss_exponent, 4), round(ex.params_exponent, 4)
    (0.3334, 0.3333)
    """

    d_max: np.ndarray
    loss_local: np.ndarray
    params_local: np.ndarray
    loss_exponent: float
    loss_exponent_ci: tuple
    params_exponent: float
    params_exponent_ci: tuple
    loss_drift: dict
    params_drift: dict
    top_decades: float

    def to_dict(self) -> dict:
        """JSON-serialisable summary."""
        return {"eta_inf": self.loss_exponent, "eta_inf_ci": list(self.loss_exponent_ci),
                "xi_inf": self.params_exponent, "xi_inf_ci": list(self.params_exponent_ci),
                "d_max": self.d_max.tolist(), "eta_local": self.loss_local.tolist(),
                "xi_local": self.params_local.tolist(), "eta_drift": self.loss_drift,
                "xi_drift": self.params_drift, "top_decades": self.top_decades}


#: Smallest drift exponent omega of Eq. (17.4) (slower drifts are not identifiable).
_OMEGA_MIN = 0.1


def _drift_fit(logd, y):
    """Fit ``y = y_inf + c exp(-omega (logd - logd[-1]))``; return a dict (Eq. (17.4))."""
    from scipy.optimize import curve_fit

    x = logd - logd[-1]

    def model(x, y_inf, c, omega):
        return y_inf + c * np.exp(-omega * x)

    slope = (y[-1] - y[0]) / (x[-1] - x[0]) if x[-1] != x[0] else 0.0
    c0 = -slope / 0.3 if slope else 1e-6
    try:
        p, cov = curve_fit(model, x, y, p0=(y[-1] - c0, c0, 0.3),
                           bounds=([-np.inf, -np.inf, _OMEGA_MIN], [np.inf, np.inf, 3.0]),
                           maxfev=20000)
        sigma = float(np.sqrt(cov[0, 0])) if np.isfinite(cov[0, 0]) else math.nan
        res = y - model(x, *p)
    except (RuntimeError, ValueError):
        p, sigma, res = (math.nan,) * 3, math.nan, np.full_like(y, np.nan)
    return {"y_inf": float(p[0]), "sigma": sigma, "c": float(p[1]), "omega": float(p[2]),
            "n": int(y.size), "rms_residual": float(np.sqrt(np.mean(res * res)))}


def _extrapolate(logd, y):
    """Point estimate and interval of y at d -> inf from nested local exponents (Eq. (17.5))."""
    n = y.size
    fits = {}
    for name, drop in (("all", 0), ("drop_quarter", n // 4), ("drop_half", n // 2)):
        if n - drop >= 4:
            fits[name] = _drift_fit(logd[drop:], y[drop:])
    lo = [f["y_inf"] - 1.96 * f["sigma"] for f in fits.values()]
    hi = [f["y_inf"] + 1.96 * f["sigma"] for f in fits.values()]
    ci = (float(np.min(lo)), float(np.max(hi))) if np.all(np.isfinite(lo + hi)) \
        else (math.nan, math.nan)
    return fits["all"]["y_inf"], ci, fits


def extrapolate_exponents(curves, *, top_decades: float = 1.5, min_sizes: int = 7,
                          flops_per_decade: int = 40) -> ExtrapolatedExponents:
    r"""Extrapolate the compute-optimal exponents to :math:`d\to\infty` from nested grids.

    Finite grids of model sizes under-estimate the asymptotic exponents (the frontier's
    range of :math:`f` is bounded by the largest :math:`d`).  For each nested sub-grid
    :math:`d\le d_{max}` (every :math:`d_{max}` of the grid with at least ``min_sizes``
    sizes below it) the local exponents are fitted over the top ``top_decades`` of its
    frontier window; a finite-size drift :math:`y_\infty + c\,d_{max}^{-\omega}` is then
    fitted to them.

    Parameters
    ----------
    curves : sequence
        As for :func:`isoflop_frontier` (at least ``min_sizes + 3`` model sizes).
    top_decades : float, default 1.5
        Decades of :math:`f` at the top of each sub-grid's window used for the local
        exponents.
    min_sizes : int, default 7
        Smallest number of sizes of a sub-grid.
    flops_per_decade : int, default 40
        As for :func:`isoflop_frontier`.

    Returns
    -------
    ExtrapolatedExponents

    Raises
    ------
    ValueError
        Fewer than 4 sub-grids with a window of at least ``top_decades``.

    Notes
    -----
    docs/theory.md, Sec. 17, Eqs. (17.4)-(17.5).  The interval is the union of the 95%
    intervals (:math:`\pm 1.96\sigma`, :math:`\sigma` from the fit's covariance) of three
    fits: all sub-grids, and without the smallest quarter and half of them.  If the drift
    is not yet in its asymptotic form, these fits disagree and the interval widens.

    Examples
    --------
    >>> import numpy as np
    >>> from volterra_sgd.compute_optimal import extrapolate_exponents
    >>> f = np.logspace(0, 16, 641)
    >>> ex = extrapolate_exponents([(d, f, 1 / d + (f / d) ** -0.5)
    ...                             for d in np.logspace(1, 5, 33)])
    >>> ex.d_max.size, round(float(ex.loss_local[-1]), 4)
    (27, 0.3334)
    """
    from ._validation import as_int, as_real

    data = _as_curve_data(curves)
    top = as_real(top_decades, "top_decades", lower=0.0)
    min_sizes = as_int(min_sizes, "min_sizes", minimum=3)
    dmax, eta, xi = [], [], []
    for k in range(min_sizes, len(data) + 1):
        sub = data[:k]
        try:
            fr = isoflop_frontier(sub, n_boot=0, flops_per_decade=flops_per_decade,
                                  max_cost=math.inf)
            hi = fr.window[1]
            if math.log10(hi / fr.window[0]) < top:
                continue
            loc = isoflop_frontier(sub, n_boot=0, window=(hi / 10**top, hi),
                                   flops_per_decade=flops_per_decade, max_cost=math.inf)
        except ValueError:
            continue
        dmax.append(sub[-1][0])
        eta.append(loc.loss_fit.exponent)
        xi.append(loc.params_fit.exponent)
    if len(dmax) < 4:
        raise ValueError(f"extrapolation needs at least 4 nested sub-grids with a frontier "
                         f"window of {top} decades; got {len(dmax)} (add model sizes or "
                         "lower min_sizes)")
    dmax, eta, xi = np.array(dmax), np.array(eta), np.array(xi)
    logd = np.log(dmax)
    e_inf, e_ci, e_fits = _extrapolate(logd, eta)
    x_inf, x_ci, x_fits = _extrapolate(logd, xi)
    return ExtrapolatedExponents(d_max=dmax, loss_local=eta, params_local=xi,
                                 loss_exponent=e_inf, loss_exponent_ci=e_ci,
                                 params_exponent=x_inf, params_exponent_ci=x_ci,
                                 loss_drift=e_fits, params_drift=x_fits, top_decades=top)


# ============================================================================ Kaplan fits
@dataclass(frozen=True)
class KaplanFits:
    r"""Empirical scaling laws in the style of Kaplan et al. (2020) on a family of curves.

    Attributes
    ----------
    loss_vs_params : PowerLawFit
        :math:`L(N) \propto N^{-\alpha_N}` with :math:`N = d` at convergence
        (data-unlimited: the limit :math:`\mathcal P(\infty)` of each curve, or its last
        value); ``exponent`` is :math:`\alpha_N`; bootstrap over the model sizes.
    loss_vs_data : PowerLawFit
        :math:`L(D) \propto D^{-\alpha_D}` with data :math:`D = B r`, on the largest model
        (parameter-unlimited), over ``loss_vs_data.window``: from 10 times the first data
        point (:math:`D = 10B`, i.e. :math:`r = 10`, for swept curves) to the point where
        the loss reaches ``saturation`` times its final value; moving-block bootstrap
        (blocks of a decade of data).
    loss_vs_compute : PowerLawFit
        :math:`L(C) \propto C^{-\alpha_C}` along the compute-optimal frontier
        (:math:`\alpha_C = \eta`).
    params_vs_compute : PowerLawFit
        :math:`N^\star(C) \propto C^{\xi}` (Kaplan: :math:`\xi \approx 0.73`).
    theory : dict
        The PLRF predictions of the four exponents where they are known (docs/theory.md,
        Eq. (11.6); [derived]): ``alpha_N`` from :math:`F_0 \asymp d^{-2\alpha+\max(0,1-2\beta)}`,
        ``alpha_D`` from the slower of :math:`F_{pp} \asymp T^{-(2\alpha+2\beta-1)/(2\alpha)}`
        and the noise :math:`\asymp T^{-(2-1/(2\alpha))}` (the latter only for
        :math:`2\beta > 1`), ``alpha_C`` = :math:`\eta`, ``xi``; empty for plain arrays.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> f = np.logspace(0, 20, 400)
    >>> k = vs.kaplan_fits([(d, f, 1 / d + (f / d) ** -0.5) for d in np.logspace(1, 4, 25)],
    ...                    n_boot=0)
    >>> round(k.loss_vs_params.exponent, 3), round(k.params_vs_compute.exponent, 3)
    (1.0, 0.333)
    """

    loss_vs_params: PowerLawFit
    loss_vs_data: PowerLawFit
    loss_vs_compute: PowerLawFit
    params_vs_compute: PowerLawFit
    theory: dict = field(default_factory=dict)


def kaplan_theory(alpha: float, beta: float) -> dict:
    r"""PLRF predictions of the Kaplan-style exponents (docs/theory.md, Eq. (11.6); derived).

    Parameters
    ----------
    alpha, beta : float
        The PLRF exponents (:math:`2\alpha > 1` for ``alpha_D``; otherwise NaN).

    Returns
    -------
    dict
        ``alpha_N`` (limit loss vs :math:`d`), ``alpha_D`` (loss vs data at
        :math:`d\to\infty`), ``alpha_C`` (:math:`=\eta`) and ``xi``.

    Examples
    --------
    >>> from volterra_sgd.compute_optimal import kaplan_theory
    >>> {k: round(v, 4) for k, v in kaplan_theory(0.7, 0.7).items()}
    {'alpha_N': 1.4, 'alpha_D': 1.2857, 'alpha_C': 0.6429, 'xi': 0.5}
    """
    from .phases import phase_exponents

    ex = phase_exponents(alpha, beta)
    a_n = 2 * alpha - max(0.0, 1 - 2 * beta)
    if 2 * alpha > 1:
        g = (2 * alpha + 2 * beta - 1) / (2 * alpha)
        a_d = min(g, 2 - 1 / (2 * alpha)) if 2 * beta > 1 else g
    else:
        a_d = math.nan
    return {"alpha_N": a_n, "alpha_D": a_d, "alpha_C": ex.eta, "xi": ex.xi}


def kaplan_fits(curves, frontier: IsoFLOPFrontier | None = None, *, limit_losses=None,
                saturation: float = 2.0, n_boot: int = 400, rng=0,
                alpha: float | None = None, beta: float | None = None) -> KaplanFits:
    r"""Kaplan-style power laws :math:`L(N)`, :math:`L(D)`, :math:`L(C)`, :math:`N^\star(C)`.

    Parameters
    ----------
    curves : sequence
        As for :func:`isoflop_frontier`.
    frontier : IsoFLOPFrontier, optional
        The frontier of the same curves (computed with defaults when omitted); it provides
        :math:`L(C)` and :math:`N^\star(C)`.
    limit_losses : array_like, optional
        Loss at convergence of each curve (in the order of increasing :math:`d`).  Default:
        ``curve.limit_loss`` for :class:`~volterra_sgd.LossCurve` objects, else the last
        value of each curve.
    saturation : float, default 2
        :math:`L(D)` is fitted while the loss of the largest model exceeds ``saturation``
        times its final value.
    n_boot : int, default 400
        Bootstrap draws.
    rng : int, numpy.random.Generator or None, default 0
        Seed (SPEC 7).
    alpha, beta : float, optional
        PLRF exponents for the theory column (taken from the curves' models if they have one).

    Returns
    -------
    KaplanFits

    Examples
    --------
    >>> import numpy as np
    >>> from volterra_sgd.compute_optimal import kaplan_fits
    >>> f = np.logspace(0, 20, 400)
    >>> curves = [(d, f, 1 / d + (f / d) ** -0.5) for d in np.logspace(1, 4, 25)]
    >>> k = kaplan_fits(curves, n_boot=0)
    >>> print(f"{k.loss_vs_params.exponent:.3f} {k.loss_vs_compute.exponent:.3f}")
    1.000 0.333
    """
    from ._validation import as_int, as_real, as_rng

    data = _as_curve_data(curves)
    saturation = as_real(saturation, "saturation", lower=1.0)
    n_boot = as_int(n_boot, "n_boot", minimum=0)
    gen = np.random.default_rng(as_rng(rng))
    if frontier is None:
        frontier = isoflop_frontier(curves, n_boot=n_boot, rng=rng)
    elif not isinstance(frontier, IsoFLOPFrontier):
        raise TypeError(f"frontier must be an IsoFLOPFrontier; got {type(frontier).__name__}")
    ds = np.array([t[0] for t in data])
    if limit_losses is None:
        objs = sorted((c for c in curves if not isinstance(c, tuple)), key=lambda c: c.model.d)
        if len(objs) == len(data) and all(hasattr(c, "limit_loss") for c in objs):
            limit_losses = np.array([float(c.limit_loss) for c in objs])
        else:
            limit_losses = np.array([t[2].mean(axis=0)[-1] for t in data])
    limit_losses = np.asarray(limit_losses, dtype=np.float64)
    if limit_losses.shape != ds.shape or not np.all(limit_losses > 0):
        raise ValueError(f"limit_losses must hold {ds.size} positive values (one per curve); "
                         f"got shape {limit_losses.shape}")
    boot_n = []
    for _ in range(n_boot):
        idx = gen.integers(0, ds.size, ds.size)
        if np.unique(idx).size >= 2:
            boot_n.append(-_linfit(np.log(ds[idx]), np.log(limit_losses[idx]))[0])
    fit_n = _power_fit(ds, limit_losses, -1.0, boot_n)
    # L(D) on the largest model
    d_big, f_big, L_big = data[-1]
    L_big = L_big.mean(axis=0)
    data_axis = f_big / d_big  # = B r
    sat = L_big > saturation * L_big[-1]
    m = (data_axis >= 10 * data_axis[0] * (1 - 1e-12)) & sat
    if m.sum() < 3:
        m = sat if sat.sum() >= 3 else np.ones(L_big.size, bool)
    x, y = data_axis[m], L_big[m]
    boot_d = []
    lx = np.log(x)
    for _ in range(n_boot):
        # moving-block bootstrap: blocks of one decade of data
        blk = max(1, int(np.sum(lx < lx[0] + math.log(10))))
        starts = gen.integers(0, max(1, x.size - blk + 1), int(math.ceil(x.size / blk)))
        idx = np.concatenate([np.arange(s, min(s + blk, x.size)) for s in starts])
        if np.ptp(lx[idx]) > 0:
            boot_d.append(-_linfit(lx[idx], np.log(y[idx]))[0])
    fit_d = _power_fit(x, y, -1.0, boot_d)
    theory = {}
    if alpha is None or beta is None:
        mods = [c.model for c in curves if not isinstance(c, tuple) and hasattr(c, "model")]
        if mods:
            alpha, beta = mods[0].alpha, mods[0].beta
    if alpha is not None and beta is not None:
        theory = kaplan_theory(alpha, beta)
    return KaplanFits(loss_vs_params=fit_n, loss_vs_data=fit_d,
                      loss_vs_compute=frontier.loss_fit, params_vs_compute=frontier.params_fit,
                      theory=theory)


# ======================================================================= Chinchilla fit
@dataclass(frozen=True)
class ChinchillaFit:
    r"""Chinchilla Approach 3: :math:`L(N, D) = E + A N^{-a} + B D^{-b}` (Hoffmann et al. 2022).

    Attributes
    ----------
    E, A, a, B, b : float
        Fitted parameters (:math:`N = d`, :math:`D = B_{batch} r`).
    params_exponent : float
        Implied compute-optimal allocation :math:`N^\star \propto C^{b/(a+b)}` (compare
        :math:`\xi`).
    data_exponent : float
        :math:`D^\star \propto C^{a/(a+b)}`.
    loss_exponent : float
        :math:`L^\star - E \propto C^{-ab/(a+b)}` (compare :math:`\eta`).
    ci : dict of str to tuple
        95% bootstrap intervals of every parameter and exponent above.
    huber_delta : float
        :math:`\delta` of the Huber loss on :math:`\log L`.
    objective : float
        Mean Huber loss at the optimum.
    n_points : int
        Points (N, D, L) in the fit.
    flops_range : tuple of float
        Compute range of the points used.
    n_starts : int
        Initializations of the grid.

    Examples
    --------
    Curves generated by :math:`L = 0.01 + 2 N^{-1/2} + 5 D^{-0.3}` give back the parameters:

    >>> import numpy as np, volterra_sgd as vs
    >>> f = np.logspace(2, 12, 60)
    >>> fit = vs.chinchilla_fit([(d, f, 0.01 + 2 * d**-0.5 + 5 * (f / d) ** -0.3)
    ...                          for d in np.logspace(1, 4, 8)], n_boot=0)
    >>> round(fit.E, 3), round(fit.A, 2), round(fit.B, 2)
    (0.01, 2.0, 5.0)
    >>> round(fit.params_exponent, 3), round(fit.data_exponent, 3)      # b/(a+b), a/(a+b)
    (0.375, 0.625)
    """

    E: float
    A: float
    a: float
    B: float
    b: float
    params_exponent: float
    data_exponent: float
    loss_exponent: float
    ci: dict
    huber_delta: float
    objective: float
    n_points: int
    flops_range: tuple
    n_starts: int

    def to_dict(self) -> dict:
        """JSON-serialisable summary."""
        out = {k: getattr(self, k) for k in ("E", "A", "a", "B", "b", "params_exponent",
                                              "data_exponent", "loss_exponent", "huber_delta",
                                              "objective", "n_points", "n_starts")}
        out["ci"] = {k: list(v) for k, v in self.ci.items()}
        out["flops_range"] = list(self.flops_range)
        return out

    def predict(self, N, D):
        """Fitted loss :math:`E + A N^{-a} + B D^{-b}`."""
        N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
        return self.E + self.A * N**-self.a + self.B * D**-self.b


def _lse_residual(theta, logN, logD, logL):
    """Residuals LSE(e, log A - a log N, log B - b log D) - log L and the softmax weights."""
    e, la, a, lb, b = theta
    t1, t2, t3 = np.full_like(logN, e), la - a * logN, lb - b * logD
    mx = np.maximum(np.maximum(t1, t2), t3)
    w1, w2, w3 = np.exp(t1 - mx), np.exp(t2 - mx), np.exp(t3 - mx)
    s = w1 + w2 + w3
    return mx + np.log(s) - logL, w1 / s, w2 / s, w3 / s


def _lse_jacobian(theta, logN, logD, logL):
    _, p1, p2, p3 = _lse_residual(theta, logN, logD, logL)
    return np.column_stack([p1, p2, -p2 * logN, p3, -p3 * logD])


def _chinchilla_refine(logN, logD, logL, delta, theta0):
    """Huber fit from a nearby start by trust-region least squares (bootstrap restarts).

    ``least_squares(loss="huber", f_scale=delta)`` minimises twice the Huber objective of
    :func:`_huber_objective` with the same bounds; Gauss-Newton steps on the analytic Jacobian
    converge in a few iterations from the full-data optimum, 4-5 times faster than L-BFGS-B
    at the same optimum (the bootstrap intervals agree to 1e-8).
    """
    from scipy.optimize import least_squares

    lo = np.array([-np.inf, -np.inf, 0.0, -np.inf, 0.0])
    hi = np.array([np.inf, np.inf, 10.0, np.inf, 10.0])
    # at tolerances of 1e-15 the trust region can shrink to a zero step, where SciPy's
    # internal secular equation divides by zero; the x it returns is still a minimum (its
    # objective matched a Nelder-Mead polish to 1e-15 on the cases seen)
    with np.errstate(divide="ignore", invalid="ignore"):
        res = least_squares(lambda th: _lse_residual(th, logN, logD, logL)[0],
                            np.clip(theta0, lo, hi), jac=lambda th: _lse_jacobian(
                                th, logN, logD, logL), bounds=(lo, hi), loss="huber",
                            f_scale=delta, method="trf", xtol=1e-15, ftol=1e-15,
                            gtol=1e-15, max_nfev=200)
    return res.x


def _huber_objective(theta, logN, logD, logL, delta):
    r, p1, p2, p3 = _lse_residual(theta, logN, logD, logL)
    ar = np.abs(r)
    quad = ar <= delta
    loss = np.where(quad, 0.5 * r * r, delta * (ar - 0.5 * delta))
    dl = np.where(quad, r, delta * np.sign(r))
    n = logN.size
    grad = np.array([np.dot(dl, p1), np.dot(dl, p2), -np.dot(dl, p2 * logN),
                     np.dot(dl, p3), -np.dot(dl, p3 * logD)]) / n
    return loss.sum() / n, grad


def _chinchilla_starts(logN, logD, logL, n_best=6):
    """Return starting points of the Huber fit.

    On a grid of exponents (a, b) the model is linear in (E, A, B); solve the relative
    non-negative least-squares problem at each grid point and keep the ``n_best`` best.
    """
    from scipy.optimize import nnls

    L = np.exp(logL)
    N, D = np.exp(logN), np.exp(logD)
    grid = np.linspace(0.05, 3.0, 40)
    scored = []
    for a in grid:
        Na = N**-a
        for b in grid:
            M = np.column_stack([np.ones_like(L), Na, D**-b]) / L[:, None]
            coef, res = nnls(M, np.ones_like(L))
            scored.append((res, a, b, coef))
    scored.sort(key=lambda t: t[0])
    floor = 1e-6 * float(L.min())
    starts = []
    for _, a, b, (E, A, B) in scored[:n_best]:
        starts.append(np.array([math.log(max(E, floor)), math.log(max(A, floor)), a,
                                math.log(max(B, floor)), b]))
    return starts


def _chinchilla_solve(logN, logD, logL, delta, starts):
    from scipy.optimize import minimize

    best = None
    bounds = [(None, None), (None, None), (0.0, 10.0), (None, None), (0.0, 10.0)]
    for th0 in starts:
        res = minimize(_huber_objective, th0, args=(logN, logD, logL, delta), jac=True,
                       method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if best is None or res.fun < best.fun:
            best = res
    return best


def chinchilla_fit(curves, *, flops_range=None, points_per_decade: int = 8,
                   huber_delta: float = 1e-3, n_boot: int = 100, rng=0) -> ChinchillaFit:
    r"""Chinchilla Approach 3: fit :math:`L(N, D) = E + A N^{-a} + B D^{-b}` to loss curves.

    Parameters
    ----------
    curves : sequence
        As for :func:`isoflop_frontier` (:math:`N = d`, :math:`D = f/d = B r`).
    flops_range : tuple of float, optional
        Only points with compute in this range are used (e.g. the IsoFLOP window, where the
        compute-optimal trade-off is made).  Default: all points.
    points_per_decade : int, default 8
        Each curve is sampled (log-linearly interpolated) at this density in :math:`f`.
    huber_delta : float, default 1e-3
        :math:`\delta` of the Huber loss of the residuals of :math:`\log L` (Chinchilla's
        choice).
    n_boot : int, default 100
        Bootstrap draws: the curves (model sizes) are resampled with replacement and the fit
        is restarted from the optimum.
    rng : int, numpy.random.Generator or None, default 0
        Seed (SPEC 7).

    Returns
    -------
    ChinchillaFit

    Notes
    -----
    As in Hoffmann et al. (2022), the objective is the Huber loss of
    :math:`\mathrm{LSE}(e, \log A - a\log N, \log B - b\log D) - \log L` with
    :math:`E = e^{e}`, minimised by L-BFGS from a grid of initializations.  Instead of
    Chinchilla's blind grid over all five parameters, the grid is over the exponents
    :math:`a, b \in [0.05, 3]` (40 x 40); at each grid point the model is linear in
    :math:`(E, A, B)`, solved by non-negative least squares of the relative residuals;
    the 6 best grid points start the Huber fit.  Minimising
    :math:`A N^{-a} + B (C/N)^{-b}` at fixed :math:`C = ND` gives
    :math:`N^\star \propto C^{b/(a+b)}` and :math:`L^\star - E \propto C^{-ab/(a+b)}`.
    The bootstrap refits start from the optimum and use trust-region least squares with the
    same Huber loss (faster than L-BFGS-B from a nearby start; same optimum).

    Examples
    --------
    >>> import numpy as np
    >>> from volterra_sgd.compute_optimal import chinchilla_fit
    >>> f = np.logspace(2, 12, 60)
    >>> curves = [(d, f, 0.01 + 2 * d**-0.5 + 5 * (f / d) ** -0.3) for d in np.logspace(1, 4, 8)]
    >>> fit = chinchilla_fit(curves, n_boot=0)
    >>> print(f"{fit.a:.3f} {fit.b:.3f} {fit.params_exponent:.3f}")
    0.500 0.300 0.375
    """
    from ._validation import as_int, as_real, as_rng

    data = _as_curve_data(curves)
    ppd = as_int(points_per_decade, "points_per_decade", minimum=1)
    delta = as_real(huber_delta, "huber_delta", lower=0.0)
    n_boot = as_int(n_boot, "n_boot", minimum=0)
    gen = np.random.default_rng(as_rng(rng))
    if flops_range is None:
        flo, fhi = min(t[1][0] for t in data), max(t[1][-1] for t in data)
    else:
        try:
            flo, fhi = (float(x) for x in flops_range)
        except (TypeError, ValueError):
            raise TypeError(f"flops_range must be a pair of numbers; got {flops_range!r}") from None
        if not 0 < flo < fhi:
            raise ValueError(f"flops_range must satisfy 0 < low < high; got {flops_range!r}")
    per_curve = []
    for d, f, L in data:
        a, b = max(flo, f[0]), min(fhi, f[-1])
        if not a < b:
            per_curve.append(None)
            continue
        n = max(2, int(round(math.log10(b / a) * ppd)) + 1)
        lf = np.linspace(math.log(a), math.log(b), n)
        lL = np.interp(lf, np.log(f), np.log(L.mean(axis=0)))
        per_curve.append((np.full(n, math.log(d)), lf - math.log(d), lL))
    used = [i for i, p in enumerate(per_curve) if p is not None]
    if len(used) < 3:
        raise ValueError("chinchilla_fit needs points from at least 3 model sizes inside "
                         f"flops_range [{flo:.3g}, {fhi:.3g}]; got {len(used)}")

    def stack(idx):
        parts = [per_curve[i] for i in idx]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))

    logN, logD, logL = stack(used)
    starts = _chinchilla_starts(logN, logD, logL)
    best = _chinchilla_solve(logN, logD, logL, delta, starts)

    def derived(th):
        e, la, a, lb, b = th
        s = a + b
        return {"E": math.exp(e), "A": math.exp(la), "a": a, "B": math.exp(lb), "b": b,
                "params_exponent": b / s if s > 0 else math.nan,
                "data_exponent": a / s if s > 0 else math.nan,
                "loss_exponent": a * b / s if s > 0 else math.nan}

    point = derived(best.x)
    boots = []
    for _ in range(n_boot):
        idx = gen.choice(used, size=len(used), replace=True)
        if np.unique(idx).size < 3:
            continue
        boots.append(derived(_chinchilla_refine(*stack(idx), delta, best.x)))
    ci = {k: _percentile_ci([b_[k] for b_ in boots]) for k in point}
    return ChinchillaFit(**{k: float(v) for k, v in point.items()}, ci=ci, huber_delta=delta,
                         objective=float(best.fun), n_points=int(logN.size),
                         flops_range=(float(flo), float(fhi)), n_starts=len(starts))


# ================================================================================== sweep
#: Default model sizes: 17 sizes 256 * 2^(k/2), k = 0..16 (256 ... 65536), sqrt(2) apart.
DEFAULT_D_VALUES = tuple(int(round(256 * 2 ** (k / 2))) for k in range(17))
#: Default grid of ``compute_optimal(..., extrapolate=True)``: :data:`DEFAULT_D_VALUES` and two
#: more sizes (92682, 131072).  The drift fit needs the largest sizes: at (0.7, 0.7) the
#: default 17 sizes give eta = 0.6389 [0.6374, 0.6410], these 19 give 0.6394 [0.6391, 0.6435]
#: (theory 0.643).
EXTRAPOLATE_D_VALUES = DEFAULT_D_VALUES + (92682, 131072)


@dataclass(frozen=True)
class CurveSweep:
    r"""Deterministic loss curves over a grid of model sizes (:func:`sweep_loss_curves`).

    Attributes
    ----------
    d_values : ndarray of int64
        Model sizes (increasing).
    r : tuple of ndarray
        Iterations of each curve (log-spaced, from 1 to ``max_flops / (d B)``).
    loss, loss_error : tuple of ndarray
        :math:`\mathcal P(r)` and its error estimate.
    limit_loss, kernel_norm, learning_rate : ndarray
        :math:`\mathcal P(\infty)`, :math:`\|K\|` and :math:`\gamma` per model size
        (for DANA :math:`\gamma_2`; :math:`\|K\|` at step 0 for time-varying optimizers).
    v_values : ndarray of float
        Hidden dimension of each model (``inf`` allowed).
    seconds_spectral, seconds_solver : ndarray
        Wall time of the spectral stage and of the closed-form solver per model size (as
        measured by the worker; zero for results loaded from the cache).
    params : dict
        The sweep parameters (alpha, beta, batch_size, lr_scale, v_ratio, max_flops,
        points_per_decade, rtol, optimizer, momentum) and the package version; files
        written before the optimizer was recorded lack the last two and mean plain SGD.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> sw = vs.sweep_loss_curves(0.7, 0.7, [16, 32, 64], max_flops=1e5, n_jobs=1)
    >>> sw.d_values.tolist(), len(sw.r), sw.limit_loss.shape
    ([16, 32, 64], 3, (3,))
    >>> bool(np.all(np.diff(sw.limit_loss) < 0))        # larger models reach lower losses
    True
    """

    d_values: np.ndarray
    r: tuple
    loss: tuple
    loss_error: tuple
    limit_loss: np.ndarray
    kernel_norm: np.ndarray
    learning_rate: np.ndarray
    v_values: np.ndarray
    seconds_spectral: np.ndarray
    seconds_solver: np.ndarray
    params: dict

    @property
    def optimizer(self) -> str:
        """Name of the optimizer rule (``"callable"`` for a callable; "sgd" if unrecorded)."""
        return self.params.get("optimizer", "sgd")

    @property
    def flops(self) -> tuple:
        """Compute :math:`f = d B r` of each curve (docs/theory.md, Eq. (2.3))."""
        B = self.params["batch_size"]
        return tuple(d * B * r.astype(np.float64)
                     for d, r in zip(self.d_values, self.r, strict=True))

    def curves(self) -> list:
        """Return the curves as ``(d, flops, loss)`` tuples for :func:`isoflop_frontier` & co."""
        return [(float(d), f, L) for d, f, L in zip(self.d_values, self.flops, self.loss,
                                                        strict=True)]


#: Optimizer names accepted by :func:`sweep_loss_curves` and :func:`compute_optimal`.
OPTIMIZER_NAMES = ("sgd", "heavy-ball", "nesterov", "dana-constant", "dana-decaying")

#: Default momentum of the "heavy-ball" and "nesterov" rules.
DEFAULT_MOMENTUM = 0.9


def _check_optimizer_spec(optimizer, momentum):
    """Return ``(name, momentum)`` for a named rule or ``("callable", None)``; raise early."""
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)} or a "
                             f"callable model -> optimizer; got {optimizer!r}")
        if optimizer in ("heavy-ball", "nesterov"):
            from ._validation import as_real

            mu = DEFAULT_MOMENTUM if momentum is None else as_real(
                momentum, "momentum", lower=0.0, lower_open=False, upper=1.0)
            return optimizer, float(mu)
        if momentum is not None:
            raise ValueError(f"momentum is only used by the 'heavy-ball' and 'nesterov' rules; "
                             f"got momentum={momentum!r} with optimizer={optimizer!r}")
        return optimizer, None
    if callable(optimizer) and not hasattr(optimizer, "hyperparameters"):
        if momentum is not None:
            raise ValueError("momentum is only used by the 'heavy-ball' and 'nesterov' rules; "
                             "a callable optimizer sets its own")
        return "callable", None
    raise TypeError(f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)} or a callable "
                    f"model -> optimizer (e.g. lambda m: vs.HeavyBall(...)); got "
                    f"{type(optimizer).__name__}")


def optimizer_for_model(name: str, model, batch_size: int = 1, *, lr_scale: float = 0.5,
                        momentum: float | None = None, rtol: float = 1e-11):
    r"""Return the optimizer that the named d-scaling rule gives for ``model``.

    Parameters
    ----------
    name : {"sgd", "heavy-ball", "nesterov", "dana-constant", "dana-decaying"}
        The rule.
    model : PLRF or SpectralModel
        Supplies :math:`\mathrm{tr}\,D`, :math:`d` and (DANA) :math:`\alpha`, :math:`\beta`.
    batch_size : int, default 1
        :math:`B` (gradients summed over the batch).
    lr_scale : float, default 0.5
        :math:`g` of the reference rate :math:`\gamma_{\rm SGD} = g/(B\,\mathrm{tr}\,D)`
        (docs/theory.md, Eq. (2.2)); for DANA it is :math:`c_2` of Eq. (9.17).
    momentum : float, optional
        :math:`\mu` of "heavy-ball" and "nesterov" (default :data:`DEFAULT_MOMENTUM` = 0.9);
        not allowed with the other rules.
    rtol : float, default 1e-11
        Quadrature tolerance of the deterministic spectral measure used by the stability
        check of "heavy-ball" and "nesterov".

    Returns
    -------
    SGD, HeavyBall, Nesterov or DANA

    Notes
    -----
    * "sgd": :math:`\gamma = g/(B\,\mathrm{tr}\,D)`.
    * "heavy-ball", "nesterov": the same effective rate, :math:`\gamma = (1-\mu)\,g/(B\,
      \mathrm{tr}\,D)` (both act like SGD with :math:`\gamma/(1-\mu)` at small
      :math:`\gamma\lambda`, docs/theory.md, Eq. (9.14)).  If that rate is unstable for the
      deterministic spectrum (Eqs. (9.11)-(9.13)), half of the optimizer's largest stable
      rate at this momentum is used instead.
    * "dana-constant", "dana-decaying": :meth:`DANA.constant` / :meth:`DANA.decaying` with
      :math:`c_2 = g` and the other defaults of Eq. (9.17) (:math:`\gamma_3 \propto 1/d`
      resp. :math:`\propto (1+r)^{-1/(2\alpha)}`).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> from volterra_sgd.compute_optimal import optimizer_for_model
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=640, d=64)
    >>> hb = optimizer_for_model("heavy-ball", model)
    >>> hb.momentum, round(hb.learning_rate * model.trace_data_covariance, 12)
    (0.9, 0.05)
    """
    from ._validation import as_int, as_real
    from .optimizers import DANA, SGD, HeavyBall, Nesterov

    name, mu = _check_optimizer_spec(name, momentum)
    if name == "callable":
        raise TypeError("name must be one of " + ", ".join(OPTIMIZER_NAMES))
    B = as_int(batch_size, "batch_size")
    g = as_real(lr_scale, "lr_scale", lower=0.0, upper=1.0)
    if name == "sgd":
        return SGD(model.reference_learning_rate(g) / B, B)
    if name == "dana-constant":
        return DANA.constant(model, B, c2=g)
    if name == "dana-decaying":
        return DANA.decaying(model, B, c2=g)
    from .forcing import deterministic_measure

    cls = HeavyBall if name == "heavy-ball" else Nesterov
    opt = cls((1.0 - mu) * model.reference_learning_rate(g) / B, mu, B)
    meas = deterministic_measure(model, rtol=rtol)
    if not opt.is_stable(meas.nodes, weights=meas.eigen_weights):
        opt = cls(0.5 * opt.max_stable_learning_rate(meas.nodes, weights=meas.eigen_weights),
                  mu, B)
    return opt


#: Schedule shapes accepted by :func:`sweep_loss_curves` and :func:`compute_optimal`.
SCHEDULE_NAMES = ("constant", "cosine", "wsd", "power")


def schedule_factor(name: str, s, horizon: int) -> np.ndarray:
    r"""Learning-rate factor :math:`\varphi(s/T)` of a named schedule of horizon :math:`T`.

    The rate of step :math:`s` of a run of length :math:`T` is :math:`\gamma_0\varphi(s/T)`
    (docs/theory.md, Sec. 17, Eq. (17.3)).

    Parameters
    ----------
    name : {"constant", "cosine", "wsd", "power"}
        "cosine": :math:`m + (1-m)(1+\cos\pi u)/2`, :math:`m = 0.1`; "wsd" (warmup-stable-
        decay): linear warmup over :math:`W = \max(1, 0.01T)` steps, constant, then linear
        decay over the last 20% of the run to 1% of the peak; "power":
        :math:`(1 + 100u)^{-1/2}`; "constant": 1.
    s : array_like
        Steps (float).
    horizon : int
        The run's length :math:`T \ge 1`.

    Returns
    -------
    ndarray
        :math:`\varphi` at ``s``, in :math:`(0, 1]`.

    Examples
    --------
    >>> from volterra_sgd.compute_optimal import schedule_factor
    >>> schedule_factor("cosine", [0, 50, 100], 100).round(3).tolist()
    [1.0, 0.55, 0.1]
    >>> schedule_factor("wsd", [0, 9, 500, 900, 1000], 1000).round(3).tolist()
    [0.1, 1.0, 1.0, 0.505, 0.01]
    """
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULE_NAMES)} or a callable "
                         f"(s, horizon) -> factor; got {name!r}")
    s = np.asarray(s, dtype=np.float64)
    T = float(horizon)
    u = np.clip(s / T, 0.0, 1.0)
    if name == "constant":
        return np.ones_like(u)
    if name == "cosine":
        return 0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * u))
    if name == "power":
        return (1.0 + 100.0 * u) ** -0.5
    warm = np.minimum(1.0, (s + 1.0) / max(1.0, 0.01 * T))
    decay = np.minimum(1.0, 1.0 - 0.99 * (u - 0.8) / 0.2)
    return np.minimum(warm, decay)


#: Largest accepted relative error estimate of one scheduled run (the integrator's
#: estimate; measured errors are below it, see the docs).
SCHEDULE_TOL = 1e-2

#: Rows of the d grid on each side of the IsoFLOP minimum computed by a scheduled study.
SCHEDULE_BAND = 4


def _check_schedule_spec(schedule, opt_name):
    """Return the schedule's name (None for none, "callable" for a callable); raise early."""
    if schedule is None:
        return None
    if isinstance(schedule, str):
        if schedule not in SCHEDULE_NAMES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULE_NAMES)} or a "
                             f"callable (s, horizon) -> factor; got {schedule!r}")
        name = schedule
    elif callable(schedule):
        name = "callable"
    else:
        raise TypeError(f"schedule must be one of {', '.join(SCHEDULE_NAMES)}, a callable "
                        f"(s, horizon) -> factor or None; got {type(schedule).__name__}")
    if opt_name != "sgd":
        raise ValueError(f"schedule= is for plain SGD (a learning-rate schedule of the "
                         f"d-scaled SGD rate); got optimizer={opt_name!r}")
    return name


def _scheduled_points(model, horizons, gamma, B, schedule, rtol):
    """End points of separately scheduled runs, one per horizon (Eq. (17.3)).

    The spectral measure is computed once (and shared through the in-memory cache of
    :func:`~volterra_sgd.forcing.deterministic_measure`); a constant schedule is one
    closed-form curve (every point of a constant-rate run is the end of a run of that
    length); otherwise each horizon is one run of the schedule integrator evaluated only at
    its end.
    """
    from .curve import loss_curve

    r = np.asarray(horizons, dtype=np.int64)
    if schedule == "constant":
        c = loss_curve(model, r, learning_rate=gamma, batch_size=B, rtol=rtol)
        return c.loss, c.loss_error, c
    loss, err = np.empty(r.size), np.empty(r.size)
    c = None
    for i, T in enumerate(r.tolist()):
        T = max(int(T), 1)
        def fn(s, T=T):
            if isinstance(schedule, str):
                return gamma * schedule_factor(schedule, s, T)
            return gamma * np.asarray(schedule(s, T), dtype=np.float64)

        c = loss_curve(model, np.array([T]), learning_rate=fn, batch_size=B, rtol=rtol,
                       tol=SCHEDULE_TOL)
        loss[i], err[i] = c.loss[0], c.loss_error[0]
    return loss, err, c


def _optimizer_rate(opt) -> float:
    """Return the learning rate recorded in the sweep: ``learning_rate``, else ``gamma2``."""
    rate = getattr(opt, "learning_rate", None)
    return float(opt.gamma2 if rate is None else rate)


def _iterations(d, batch_size, max_flops, points_per_decade):
    rmax = max(1.0, max_flops / (d * batch_size))
    n = max(2, int(math.ceil(math.log10(rmax) * points_per_decade)) + 1)
    return np.unique(np.round(np.logspace(0.0, math.log10(rmax), n))).astype(np.int64)


def _sweep_task(task: dict, make_optimizer=None) -> dict:
    """One curve of the sweep: a pure function of ``task`` (JSON-serialisable parameters).

    BLAS runs single-threaded (and, inside a Dask worker, the ``prange`` kernels too), so
    the numbers do not depend on where the task runs: serially, in the thread pool or on Dask.
    ``make_optimizer`` is the caller's ``model -> optimizer`` (``task["optimizer"] ==
    "callable"``).
    """
    import contextlib

    from ._parallel import blas_single_thread, in_dask_worker, numba_threads

    with blas_single_thread(), (numba_threads(1) if in_dask_worker()
                                else contextlib.nullcontext()):
        return _sweep_task_body(task, make_optimizer)


def _sweep_task_body(task: dict, make_optimizer=None) -> dict:
    from ._validation import cost_limit
    from .curve import loss_curve
    from .forcing import deterministic_measure
    from .model import PLRF

    v = math.inf if task["v"] == "inf" else int(task["v"])
    model = PLRF(alpha=task["alpha"], beta=task["beta"], v=v, d=int(task["d"]))
    B = int(task["batch_size"])
    gamma = model.reference_learning_rate(task["lr_scale"]) / B
    r = _iterations(model.d, B, task["max_flops"], task["points_per_decade"])
    t0 = time.perf_counter()
    with cost_limit(math.inf):  # sweep_loss_curves checked the whole sweep up front
        deterministic_measure(model, rtol=task["rtol"])
        t1 = time.perf_counter()
        name = task.get("optimizer", "sgd")  # absent in SGD tasks: their keys are unchanged
        if "schedule" in task:
            r = np.asarray(task["horizons"], dtype=np.int64)
            sched = make_optimizer if task["schedule"] == "callable" else task["schedule"]
            loss, err, c = _scheduled_points(model, r, gamma, B, sched, task["rtol"])
            t2 = time.perf_counter()
            return {"d": model.d, "r": r, "loss": loss, "loss_error": err,
                    "limit_loss": float(c.limit_loss), "kernel_norm": float(c.kernel_norm),
                    "learning_rate": float(gamma), "seconds_spectral": t1 - t0,
                    "seconds_solver": t2 - t1}
        if name == "sgd":
            c = loss_curve(model, r, learning_rate=gamma, batch_size=B, rtol=task["rtol"])
        else:
            if name == "callable":
                from .optimizers import check_optimizer

                opt = check_optimizer(make_optimizer(model), "optimizer(model)")
                if opt.batch_size != B:
                    raise ValueError(f"optimizer(model) has batch_size {opt.batch_size}, but "
                                     f"the sweep's batch_size is {B} (compute f = d B r)")
            else:
                opt = optimizer_for_model(name, model, B, lr_scale=task["lr_scale"],
                                          momentum=task.get("momentum"), rtol=task["rtol"])
            gamma = _optimizer_rate(opt)
            c = loss_curve(model, r, optimizer=opt, rtol=task["rtol"])
    t2 = time.perf_counter()
    return {"d": model.d, "r": c.r, "loss": c.loss, "loss_error": c.loss_error,
            "limit_loss": float(c.limit_loss), "kernel_norm": float(c.kernel_norm),
            "learning_rate": float(gamma), "seconds_spectral": t1 - t0,
            "seconds_solver": t2 - t1}


def _task_key(task: dict) -> str:
    import hashlib
    import json

    from . import __version__

    blob = json.dumps({"function": "compute_optimal._sweep_task", "task": task,
                       "version": __version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_load(cache_dir, task):
    import json
    import os

    path = os.path.join(cache_dir, _task_key(task) + ".npz")
    if not os.path.exists(path):
        return None
    try:  # a corrupt entry (truncated, bit-flipped, other task) is a miss and is rewritten
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["task"])) != json.loads(json.dumps(task, sort_keys=True)):
                return None
            out = {k: z[k] for k in ("r", "loss", "loss_error")}
            for k in ("limit_loss", "kernel_norm", "learning_rate"):
                out[k] = float(z[k])
        r = out["r"]
        if (r.dtype != np.int64 or r.ndim != 1 or np.any(np.diff(r) < 0)
                or any(out[k].shape != r.shape or out[k].dtype != np.float64
                       or not np.all(np.isfinite(out[k])) for k in ("loss", "loss_error"))
                or not all(math.isfinite(out[k]) for k in ("limit_loss", "kernel_norm",
                                                           "learning_rate"))):
            return None
    except Exception:
        return None
    out["d"] = int(task["d"])
    out["seconds_spectral"] = out["seconds_solver"] = 0.0
    return out


def _cache_store(cache_dir, task, res):
    import io
    import json
    import os

    from .io import _atomic_write

    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, _task_key(task) + ".npz")
    buf = io.BytesIO()
    np.savez(buf, task=np.array(json.dumps(task, sort_keys=True)),
             **{k: res[k] for k in ("r", "loss", "loss_error", "limit_loss", "kernel_norm",
                                     "learning_rate")})
    _atomic_write({path: buf.getvalue()})


def _get_client(client):
    """Return (client, owned) from a Dask Client or a scheduler address."""
    if isinstance(client, str):
        try:
            from dask.distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("client given as a scheduler address needs dask.distributed: "
                              "pip install 'volterra-sgd[dist]'") from exc
        return Client(client), True
    if not (hasattr(client, "submit") and hasattr(client, "gather")):
        raise TypeError("client must be a dask.distributed.Client, a scheduler address "
                        f"string or None; got {type(client).__name__}")
    return client, False


def _run_tasks(tasks, *, client, n_jobs, progress, cache_dir, make_optimizer=None):
    results = [None] * len(tasks)
    if cache_dir is not None:
        for i, t in enumerate(tasks):
            results[i] = _cache_load(cache_dir, t)
    todo = sorted((i for i in range(len(tasks)) if results[i] is None),
                  key=lambda i: -tasks[i]["d"])  # largest (slowest) first
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="compute-optimal sweep", unit="curve")

    def done(i, res):
        results[i] = res
        if cache_dir is not None:
            _cache_store(cache_dir, tasks[i], res)
        if bar is not None:
            bar.update(1)

    try:
        if not todo:
            pass
        elif client is not None:
            cl, owned = _get_client(client)
            futs = {}
            try:
                from dask.distributed import as_completed

                if make_optimizer is None:
                    futs = {cl.submit(_sweep_task, tasks[i], pure=True,
                                      key=f"volterra-sgd-curve-{_task_key(tasks[i])}"): i
                            for i in todo}
                else:  # the task key cannot name a callable: let Dask hash it
                    futs = {cl.submit(_sweep_task, tasks[i], make_optimizer, pure=False): i
                            for i in todo}
                for fut in as_completed(list(futs)):
                    done(futs[fut], fut.result())
            except BaseException:
                cl.cancel([f for f in futs if not f.done()])  # Ctrl-C or a failed task
                raise
            finally:
                if owned:
                    cl.close()
        else:
            from ._parallel import run_tasks

            # threads over nogil kernels: no pickling, no guard, Ctrl-C returns at once (also
            # with n_jobs=1: the tasks then run one by one in a worker thread)
            run_tasks(lambda t: _sweep_task(t, make_optimizer), [tasks[i] for i in todo],
                      n_jobs, lambda k, res: done(todo[k], res), inline=False)
    finally:
        if bar is not None:
            bar.close()
    return results


def sweep_loss_curves(alpha: float, beta: float, d_values=None, *, batch_size: int = 1,
                      lr_scale: float = 0.5, v_ratio=10, max_flops: float = 1e13,
                      points_per_decade: int = 40, rtol: float = 1e-11, client=None,
                      n_jobs: int | None = None, progress: bool = False,
                      cache_dir=None, max_cost: float | None = None, optimizer="sgd",
                      momentum: float | None = None, schedule=None,
                      _horizons=None) -> CurveSweep:
    r"""Deterministic loss curves for a grid of model sizes, in parallel (docs/theory.md).

    Each model size is one task, a pure function of JSON-serialisable parameters
    (:func:`volterra_sgd.loss_curve` on its own log-spaced iterations), so the local thread
    pool, a Dask cluster and a serial run give bit-identical curves.

    Parameters
    ----------
    alpha, beta : float
        PLRF exponents.
    d_values : array_like of int, optional
        Model sizes (at least 3, distinct).  Default :data:`DEFAULT_D_VALUES`.
    batch_size : int, default 1
        :math:`B`.
    lr_scale : float, default 0.5
        :math:`g`: the learning rate is :math:`\gamma = g / (B \sum_{j\le v} j^{-2\alpha})`
        (:meth:`PLRF.reference_learning_rate` divided by :math:`B`: the step of the
        batch-averaged gradient is fixed; :math:`\|K\| \approx g/(2B)`).
    v_ratio : float or math.inf, default 10
        Hidden dimension :math:`v = \mathrm{round}(v_{ratio}\, d)`; ``math.inf`` (only for
        :math:`2\alpha > 1`) uses :math:`v = \infty` (about 5 times slower at
        :math:`d = 10^4`).
    max_flops : float, default 1e13
        Each curve runs to :math:`r = f_{max}/(dB)` (below ``2**62``).
    points_per_decade : int, default 40
        Iterations per decade of :math:`r` (from :math:`r = 1`).
    rtol : float, default 1e-11
        Quadrature tolerance of the spectral measure.
    client : dask.distributed.Client or str, optional
        Run the tasks on this Dask cluster (a scheduler address is connected to and closed
        afterwards); needs the ``dist`` extra.
    n_jobs : int, optional
        Local worker threads (default ``numba.get_num_threads()``, i.e. the available cores;
        1 when called inside a Dask worker); 1 runs the tasks one by one (in a worker thread,
        so that Ctrl-C returns at once).  The kernels release the GIL, so threads run in
        parallel; each task runs BLAS on one thread, and the results are bit-identical
        whatever ``n_jobs``.  Ignored with ``client``.
    progress : bool, default False
        Show a ``tqdm`` progress bar.
    cache_dir : str or os.PathLike, optional
        Opt-in cache: one ``.npz`` per model size, named by the SHA-256 of the canonical JSON
        of its parameters and the package version; an interrupted sweep resumes from it.
    max_cost : float, optional
        Limit on the estimated kernel steps of the whole sweep (default ``10**9``; the sum
        over model sizes of the :func:`~volterra_sgd.loss_curve` estimates, about ``1000 d``
        each); larger sweeps raise ``ValueError`` before any work, ``math.inf`` removes the
        limit (the memory check stays).  docs/curves.md, "Cost limits".
    optimizer : str or callable, default "sgd"
        One of :data:`OPTIMIZER_NAMES` -- a d-scaling rule of :func:`optimizer_for_model`
        built per model size from ``lr_scale`` and ``batch_size`` ("sgd" is the plain SGD
        sweep, bit-identical to the sweep without this argument) -- or a callable
        ``model -> optimizer`` (its ``batch_size`` must equal ``batch_size``).  The name
        (``"callable"`` for a callable) is kept in ``params["optimizer"]`` and in the cache
        key; a callable cannot be named in a key, so it is refused together with
        ``cache_dir``.
    momentum : float, optional
        :math:`\mu` of "heavy-ball" and "nesterov" (default 0.9); refused with the others.
    schedule : str or callable, optional
        A learning-rate schedule whose horizon is the run's own length: one of
        :data:`SCHEDULE_NAMES` (:func:`schedule_factor`) or a callable
        ``(s, horizon) -> factor`` (vectorised over the float array ``s``, positive); the
        rate of step :math:`s` of a run of length :math:`T` is :math:`\gamma\varphi(s, T)`.
        Each point ``r[i]`` of a curve is then the end point of its own run of length
        ``r[i]`` (docs/theory.md, Eq. (17.3)), not a point of one long run; the spectral
        measure is shared by the runs of a model size, and each run is evaluated at its end
        only (a constant schedule: one closed-form curve).  Plain SGD only; a callable is
        refused with ``cache_dir``.  ``limit_loss`` is then :math:`\mathcal P(\infty)` at
        the peak rate :math:`\gamma`.

    Returns
    -------
    CurveSweep

    Examples
    --------
    >>> from volterra_sgd.compute_optimal import sweep_loss_curves
    >>> sw = sweep_loss_curves(0.7, 0.7, [32, 64, 128], max_flops=1e6, n_jobs=1)
    >>> [int(r[-1]) for r in sw.r]
    [31250, 15625, 7813]
    >>> bool(sw.loss[0][-1] < sw.loss[0][0])
    True
    """
    import os

    from ._validation import as_exponents, as_int, as_real, check_budget, curve_cost
    from .model import PLRF

    alpha, beta = as_exponents(alpha, beta)
    opt_name, mu = _check_optimizer_spec(optimizer, momentum)
    sched = _check_schedule_spec(schedule, opt_name)
    if "callable" in (opt_name, sched) and cache_dir is not None:
        raise ValueError("cache_dir needs a named optimizer and schedule (a callable cannot "
                         "be part of the cache key); use one of " + ", ".join(OPTIMIZER_NAMES))
    if d_values is None:
        d_values = DEFAULT_D_VALUES
    try:
        d_arr = np.asarray(d_values)
    except Exception:  # pragma: no cover
        raise TypeError(f"d_values must be an array of integers; got {d_values!r}") from None
    if d_arr.ndim != 1 or d_arr.dtype.kind not in "iuf" or d_arr.size == 0:
        raise TypeError(f"d_values must be a 1-D array of integers; got {d_values!r}")
    if d_arr.dtype.kind == "f" and (not np.all(np.isfinite(d_arr)) or
                                    np.any(d_arr != np.round(d_arr))):
        raise ValueError(f"d_values must hold whole numbers; got {d_arr.tolist()}")
    d_arr = np.sort(d_arr.astype(np.int64))
    if d_arr.size < 3:
        raise ValueError(f"d_values must hold at least 3 model sizes; got {d_arr.tolist()}")
    if d_arr[0] < 2 or np.any(np.diff(d_arr) == 0):
        raise ValueError(f"d_values must be distinct integers >= 2; got {d_arr.tolist()}")
    B = as_int(batch_size, "batch_size")
    g = as_real(lr_scale, "lr_scale", lower=0.0, upper=1.0)  # PLRF.reference_learning_rate
    if isinstance(v_ratio, float) and math.isinf(v_ratio) and v_ratio > 0:
        if not 2 * alpha > 1:
            raise ValueError(f"v_ratio = inf needs 2*alpha > 1; got alpha = {alpha}")
        vr = math.inf
    else:
        vr = as_real(v_ratio, "v_ratio", lower=1.0)
    fmax = as_real(max_flops, "max_flops", lower=0.0)
    if fmax < B * d_arr[-1] * 10:
        raise ValueError(f"max_flops must allow at least 10 steps of the largest model "
                         f"(>= {10 * B * d_arr[-1]:.3g}); got {fmax:.3g}")
    if fmax / (B * float(d_arr[0])) > 2.0**62:
        raise ValueError(f"max_flops = {fmax:.3g} gives max_flops / (batch_size * d) = "
                         f"{fmax / (B * float(d_arr[0])):.3g} iterations for d = {d_arr[0]}, "
                         "beyond int64 (2**62); reduce max_flops")
    ppd = as_int(points_per_decade, "points_per_decade", minimum=2)
    rtol = as_real(rtol, "rtol", lower=0.0, upper=1.0)
    if n_jobs is None:
        from ._parallel import default_workers

        n_jobs = default_workers()
    n_jobs = as_int(n_jobs, "n_jobs")
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be a bool; got {progress!r}")
    if client is not None:
        if not isinstance(client, str) and not (hasattr(client, "submit")
                                                and hasattr(client, "gather")):
            raise TypeError("client must be a dask.distributed.Client, a scheduler address "
                            f"string or None; got {type(client).__name__}")
    tasks = []
    steps = memory = 0.0
    for i, d in enumerate(d_arr):
        v = "inf" if math.isinf(vr) else int(round(vr * int(d)))
        if v != "inf" and v <= d:
            v = int(d) + 1
        m = PLRF(alpha=alpha, beta=beta, v=math.inf if v == "inf" else v, d=int(d))  # validate
        r_d = _iterations(int(d), B, fmax, ppd)
        if sched is not None and _horizons is not None:
            r_d = np.asarray(_horizons[i], dtype=np.int64)
        c_steps, c_mem = curve_cost(m, r_d.size)
        if sched not in (None, "constant"):  # one integrator run (~100 points) per horizon
            c_steps += (curve_cost(m, 100)[0] - curve_cost(m, 0)[0]) * r_d.size
        steps, memory = steps + c_steps, max(memory, c_mem)
        task = {"alpha": alpha, "beta": beta, "d": int(d), "v": v, "batch_size": B,
                "lr_scale": g, "max_flops": fmax, "points_per_decade": ppd, "rtol": rtol}
        if opt_name != "sgd":  # SGD tasks (and their cache keys) are as before
            task["optimizer"] = opt_name
            if mu is not None:
                task["momentum"] = mu
        if sched is not None:
            task["schedule"] = sched
            task["horizons"] = [int(x) for x in r_d]
        tasks.append(task)
    check_budget(steps, memory * max(1, n_jobs), what="sweep_loss_curves",
                 parameter="d_values (the largest model sizes) or max_flops", max_cost=max_cost)
    res = _run_tasks(tasks, client=client, n_jobs=n_jobs, progress=bool(progress),
                     cache_dir=None if cache_dir is None else os.fspath(cache_dir),
                     # the task's callable: the optimizer rule or (SGD only) the schedule
                     make_optimizer=optimizer if opt_name == "callable" else
                     schedule if sched == "callable" else None)
    from . import __version__

    params = {"alpha": alpha, "beta": beta, "batch_size": B, "lr_scale": g,
              "v_ratio": "inf" if math.isinf(vr) else vr, "max_flops": fmax,
              "points_per_decade": ppd, "rtol": rtol, "optimizer": opt_name,
              "momentum": mu, "version": __version__}
    if sched is not None:
        params["schedule"] = sched
    return CurveSweep(
        d_values=d_arr, r=tuple(x["r"] for x in res), loss=tuple(x["loss"] for x in res),
        loss_error=tuple(x["loss_error"] for x in res),
        limit_loss=np.array([x["limit_loss"] for x in res]),
        kernel_norm=np.array([x["kernel_norm"] for x in res]),
        learning_rate=np.array([x["learning_rate"] for x in res]),
        v_values=np.array([math.inf if t["v"] == "inf" else float(t["v"]) for t in tasks]),
        seconds_spectral=np.array([x["seconds_spectral"] for x in res]),
        seconds_solver=np.array([x["seconds_solver"] for x in res]), params=params)


# ========================================================================= the full study
@dataclass(frozen=True)
class ComputeOptimalResult:
    r"""Compute-optimal study of one PLRF point (:func:`compute_optimal`).

    Attributes
    ----------
    alpha, beta : float
    batch_size : int
    sweep : CurveSweep
        The loss curves.
    isoflop : IsoFLOPFrontier
        Frontier and the fits of :math:`\eta`, :math:`\xi`.
    kaplan : KaplanFits
    chinchilla : ChinchillaFit or None
        Approach 3 on the curves' points inside the IsoFLOP window (None if disabled).
    theory : dict
        ``phase``, ``xi``, ``eta`` from :func:`volterra_sgd.phase_exponents`
        (docs/theory.md, Eq. (11.3)).
    seconds : dict
        Wall time: ``sweep`` (all curves, as seen by the caller), ``spectral`` and
        ``solver`` (sums over the workers), ``fits``.
    approach2 : IsoFLOPProfiles or None
        Chinchilla Approach 2 (parabolas through the IsoFLOP profiles,
        :func:`isoflop_profiles`) on the same table; ``isoflop`` is Approach 1 and
        ``chinchilla`` Approach 3.  None if disabled or if no profile band fits the grid.
    extrapolated : ExtrapolatedExponents or None
        Exponents at :math:`d\to\infty` (:func:`extrapolate_exponents`) with
        ``extrapolate=True``.
    constant_rate : dict or None
        With a ``schedule``: ``eta``, ``eta_ci``, ``xi``, ``xi_ci``, ``window`` of the
        constant-rate study on the same grid.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> co = vs.compute_optimal(0.7, 0.7, d_values=[16, 23, 32, 45, 64], max_flops=1e6,
    ...                         n_boot=20, chinchilla=False, n_jobs=1)
    >>> co.theory["phase"], round(co.theory["eta"], 4)
    ('III', 0.6429)
    >>> bool(co.loss_exponent == co.isoflop.loss_fit.exponent), co.chinchilla is None
    (True, True)
    >>> sorted(co.seconds)
    ['fits', 'solver', 'spectral', 'sweep']
    """

    alpha: float
    beta: float
    batch_size: int
    sweep: CurveSweep
    isoflop: IsoFLOPFrontier
    kaplan: KaplanFits
    chinchilla: ChinchillaFit | None
    theory: dict
    seconds: dict
    approach2: IsoFLOPProfiles | None = None
    extrapolated: ExtrapolatedExponents | None = None
    constant_rate: dict | None = None

    @property
    def optimizer(self) -> str:
        """Name of the optimizer rule of the sweep (``"callable"`` for a callable)."""
        return self.sweep.optimizer

    @property
    def loss_exponent(self) -> float:
        r""":math:`\eta` (:math:`\mathcal P^\star \propto f^{-\eta}`)."""
        return self.isoflop.loss_fit.exponent

    @property
    def loss_exponent_ci(self) -> tuple:
        r"""95% bootstrap interval of :math:`\eta`."""
        return self.isoflop.loss_fit.exponent_ci

    @property
    def params_exponent(self) -> float:
        r""":math:`\xi` (:math:`d^\star \propto f^{\xi}`)."""
        return self.isoflop.params_fit.exponent

    @property
    def params_exponent_ci(self) -> tuple:
        r"""95% bootstrap interval of :math:`\xi`."""
        return self.isoflop.params_fit.exponent_ci

    @property
    def frontier(self) -> np.ndarray:
        """Structured array (``flops``, ``d_opt``, ``loss_opt``) of the frontier."""
        return self.isoflop.frontier

    @property
    def window(self) -> tuple:
        """Flops window of the fits."""
        return self.isoflop.window

    def summary(self) -> dict:
        """JSON-serialisable summary: exponents with intervals, window, fits, theory."""
        out = {"alpha": self.alpha, "beta": self.beta, "batch_size": self.batch_size,
               "optimizer": self.optimizer, "eta": self.loss_exponent,
               "eta_ci": list(self.loss_exponent_ci),
               "xi": self.params_exponent, "xi_ci": list(self.params_exponent_ci),
               "window": list(self.window), "theory": dict(self.theory),
               "d_values": [int(d) for d in self.sweep.d_values],
               "sweep_params": dict(self.sweep.params),
               "n_boot": self.isoflop.n_boot, "n_boot_used": self.isoflop.n_boot_used,
               "kaplan": {k: getattr(self.kaplan, k).to_dict() for k in
                          ("loss_vs_params", "loss_vs_data", "loss_vs_compute",
                           "params_vs_compute")},
               "kaplan_theory": dict(self.kaplan.theory), "seconds": dict(self.seconds)}
        if self.chinchilla is not None:
            out["chinchilla"] = self.chinchilla.to_dict()
        if self.approach2 is not None:
            out["approach2"] = self.approach2.to_dict()
        if self.extrapolated is not None:
            out["extrapolated"] = self.extrapolated.to_dict()
        if self.constant_rate is not None:
            out["constant_rate"] = {k: list(v) if isinstance(v, tuple) else v
                                    for k, v in self.constant_rate.items()}
        return out

    def save(self, path) -> str:
        """Save to ``.npz`` (arrays plus a JSON ``meta`` entry; no pickles).

        The file is replaced atomically (temporary file in the same folder, then
        :func:`os.replace`): an interrupted save leaves the previous file intact.

        Parameters
        ----------
        path : str or os.PathLike
            File name ending in ``.npz``.

        Returns
        -------
        str
            The path written.
        """
        from .io import _save_packed

        return _save_packed(self, path)


def _check_result(co, rd) -> None:
    """Types, shapes, dtypes and finiteness of a loaded :class:`ComputeOptimalResult`."""
    if not isinstance(co, ComputeOptimalResult):
        rd.fail("result", f"must be a ComputeOptimalResult; got {type(co).__name__}")
    for k in ("alpha", "beta"):
        rd.real({k: co.alpha if k == "alpha" else co.beta}, k, f"result.{k}")
    rd.integer({"b": co.batch_size}, "b", "result.batch_size", minimum=1)
    sw = co.sweep
    if not isinstance(sw, CurveSweep):
        rd.fail("result.sweep", f"must be a CurveSweep; got {type(sw).__name__}")
    d = rd.iterations(sw.d_values, "result.sweep.d_values")
    if d.size < 1 or d.min() < 1 or np.any(np.diff(d) <= 0):
        rd.fail("result.sweep.d_values", "must be increasing model sizes >= 1")
    for name in ("limit_loss", "kernel_norm", "learning_rate", "seconds_spectral",
                 "seconds_solver"):
        rd.array(getattr(sw, name), f"result.sweep.{name}", size=d.size)
    rd.array(sw.v_values, "result.sweep.v_values", size=d.size, finite=False)
    for name in ("r", "loss", "loss_error"):
        seq = getattr(sw, name)
        if not isinstance(seq, tuple) or len(seq) != d.size:
            rd.fail(f"result.sweep.{name}", f"must be a tuple of {d.size} arrays")
    for i, (r, loss, err) in enumerate(zip(sw.r, sw.loss, sw.loss_error, strict=True)):
        r = rd.iterations(r, f"result.sweep.r.{i}")
        rd.array(loss, f"result.sweep.loss.{i}", size=r.size)
        rd.array(err, f"result.sweep.loss_error.{i}", size=r.size)
    fr = co.isoflop
    if not isinstance(fr, IsoFLOPFrontier):
        rd.fail("result.isoflop", f"must be an IsoFLOPFrontier; got {type(fr).__name__}")
    f = rd.array(fr.flops, "result.isoflop.flops")
    rd.array(fr.d_values, "result.isoflop.d_values", size=d.size)
    for name in ("d_opt", "loss_opt"):
        rd.array(getattr(fr, name), f"result.isoflop.{name}", size=f.size, finite=False)
    rd.array(fr.interior, "result.isoflop.interior", kind="b", size=f.size)
    rd.array(fr.log_loss, "result.isoflop.log_loss", ndim=2, size=d.size, finite=False)
    if fr.log_loss.shape[1] != f.size:
        rd.fail("result.isoflop.log_loss", f"must have shape ({d.size}, {f.size}); got "
                f"{fr.log_loss.shape}")
    for name in ("loss_fit", "params_fit"):
        if not isinstance(getattr(fr, name), PowerLawFit):
            rd.fail(f"result.isoflop.{name}", "must be a PowerLawFit")
    if not isinstance(co.kaplan, KaplanFits):
        rd.fail("result.kaplan", "must be a KaplanFits")
    if co.chinchilla is not None and not isinstance(co.chinchilla, ChinchillaFit):
        rd.fail("result.chinchilla", "must be a ChinchillaFit or null")
    for name, cls in (("approach2", IsoFLOPProfiles), ("extrapolated", ExtrapolatedExponents)):
        if getattr(co, name) is not None and not isinstance(getattr(co, name), cls):
            rd.fail(f"result.{name}", f"must be a {cls.__name__} or null")
    for name in ("theory", "seconds"):
        if not isinstance(getattr(co, name), dict):
            rd.fail(f"result.{name}", "must be a JSON object")


def load_compute_optimal(path) -> ComputeOptimalResult:
    """Load a result written by :meth:`ComputeOptimalResult.save`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.

    Returns
    -------
    ComputeOptimalResult

    Examples
    --------
    >>> import os, tempfile, volterra_sgd as vs
    >>> co = vs.compute_optimal(0.7, 0.7, d_values=[16, 23, 32, 45, 64], max_flops=1e6,
    ...                         n_boot=20, chinchilla=False, n_jobs=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "co.npz")
    >>> path = co.save(path)
    >>> back = vs.load_compute_optimal(path)
    >>> back.loss_exponent == co.loss_exponent, back.theory == co.theory
    (True, True)
    """
    from .io import _load_packed

    co, rd = _load_packed(path, "ComputeOptimalResult", {c.__name__: c for c in (
        PowerLawFit, IsoFLOPFrontier, KaplanFits, ChinchillaFit, CurveSweep,
        ComputeOptimalResult, IsoFLOPProfiles, ExtrapolatedExponents)})
    _check_result(co, rd)
    return co


def _check_frontier_request(d_values, batch_size, max_flops, flops_per_decade, n_boot, rng,
                            max_cost) -> None:
    """Validate the frontier settings of compute_optimal and bound their cost before the sweep.

    The flops grid runs from about ``min(d) B`` to ``max_flops`` (the sweep's range).
    """
    from ._validation import as_int, as_positive_real, as_rng, check_budget, frontier_cost

    fpd = as_int(flops_per_decade, "flops_per_decade", minimum=2)
    n_boot = as_int(n_boot, "n_boot", minimum=0)
    as_rng(rng)
    fmax = as_positive_real(max_flops, "max_flops")
    try:
        d_arr = np.asarray(DEFAULT_D_VALUES if d_values is None else d_values, dtype=np.float64)
    except (TypeError, ValueError):
        return  # bad d_values: sweep_loss_curves names the problem
    if d_arr.ndim != 1 or d_arr.size == 0 or not np.all(np.isfinite(d_arr)) \
            or np.min(d_arr) < 1:
        return
    n_d, d_min = d_arr.size, float(np.min(d_arr))
    B = float(batch_size) if isinstance(batch_size, (int, float, np.number)) else 1.0
    decades = max(math.log10(max(fmax / max(B * d_min, 1.0), 1.0)), 1.0)
    check_budget(*frontier_cost(decades * fpd + 1.0, n_d, n_boot), what="compute_optimal "
                 "(IsoFLOP frontier)", parameter="flops_per_decade or n_boot", max_cost=max_cost)


def _band_ranges(fr, sweep_r, B, band):
    """Return, per model size, the horizons of its grid near the IsoFLOP minimum of ``fr``.

    The horizons are contiguous: where the row is within ``band`` rows of the minimum, plus
    one point on each side; the last two points for a row never near the minimum.
    """
    logP = np.where(np.isfinite(fr.log_loss), fr.log_loss, np.inf)
    k = np.argmin(logP, axis=0)
    has = np.isfinite(logP[k, np.arange(k.size)])
    out = []
    for i, (d, r) in enumerate(zip(fr.d_values, sweep_r, strict=True)):
        near = has & (np.abs(k - i) <= band)
        if not np.any(near):
            out.append(r[-2:])
            continue
        lo, hi = fr.flops[near].min() / (d * B), fr.flops[near].max() / (d * B)
        a = max(int(np.searchsorted(r, lo, side="right")) - 2, 0)
        b = min(max(int(np.searchsorted(r, hi, side="left")) + 2, a + 2), r.size)
        out.append(r[a:b])
    return out


def _scheduled_study(sweep_kw, schedule, const, flops_per_decade, max_cost):
    """Scheduled sweep on the horizons near the IsoFLOP minimum (Eq. (17.3)).

    Starts from the band of ``SCHEDULE_BAND`` rows around the constant-rate minimum and
    widens it until the scheduled table's own minima have that band computed (each row's
    horizons stay contiguous, so interpolation in log f never bridges a gap).
    """
    B = const.params["batch_size"]
    grids = const.r
    n = len(grids)
    have = [dict() for _ in range(n)]  # row -> {T: (loss, err)}
    secs = np.zeros((2, n))
    fr = isoflop_frontier(const.curves(), n_boot=0, flops_per_decade=flops_per_decade,
                          max_cost=max_cost)
    span = [(w[0], w[-1]) for w in _band_ranges(fr, grids, B, SCHEDULE_BAND)]
    params = None
    for _ in range(8):
        want = [g[(g >= lo) & (g <= hi)] for g, (lo, hi) in zip(grids, span, strict=True)]
        todo = [np.setdiff1d(w, np.fromiter(h, np.int64, len(h)))
                for w, h in zip(want, have, strict=True)]
        idx = [i for i in range(n) if todo[i].size]
        if not idx:
            break
        for i in range(n):  # sweep_loss_curves needs 3 sizes: repeat a point of others
            if len(idx) >= 3:
                break
            if i not in idx:
                todo[i] = want[i][:1]
                idx.append(i)
        idx.sort()
        sw = sweep_loss_curves(d_values=const.d_values[idx], schedule=schedule,
                               _horizons=[todo[i] for i in idx], **sweep_kw)
        params = sw.params
        for j, i in enumerate(idx):
            have[i].update({int(t): (float(a), float(b)) for t, a, b in
                            zip(sw.r[j], sw.loss[j], sw.loss_error[j], strict=True)})
            secs[:, i] += (sw.seconds_spectral[j], sw.seconds_solver[j])
        curves = [(float(d), d * B * w.astype(np.float64),
                   np.array([h[int(t)][0] for t in w]))
                  for d, w, h in zip(const.d_values, want, have, strict=True)]
        fr = isoflop_frontier(curves, n_boot=0, flops_per_decade=flops_per_decade,
                              max_cost=max_cost)
        new = _band_ranges(fr, grids, B, SCHEDULE_BAND)
        span = [(min(lo, w[0]), max(hi, w[-1])) for (lo, hi), w in zip(span, new, strict=True)]
    loss = tuple(np.array([h[int(t)][0] for t in w]) for w, h in zip(want, have, strict=True))
    err = tuple(np.array([h[int(t)][1] for t in w]) for w, h in zip(want, have, strict=True))
    return CurveSweep(d_values=const.d_values, r=tuple(want), loss=loss, loss_error=err,
                      limit_loss=const.limit_loss, kernel_norm=const.kernel_norm,
                      learning_rate=const.learning_rate, v_values=const.v_values,
                      seconds_spectral=secs[0], seconds_solver=secs[1], params=params)


def compute_optimal(alpha: float = 0.7, beta: float = 0.7, d_values=None, batch_size: int = 1,
                    client=None, *, lr_scale: float = 0.5, v_ratio=10,
                    max_flops: float = 1e13, points_per_decade: int | None = None,
                    flops_per_decade: int = 40, window=None, trim: float = 0.0,
                    n_boot: int = 400, rng=0, chinchilla: bool = True,
                    n_jobs: int | None = None, progress: bool = False, cache_dir=None,
                    rtol: float = 1e-11, max_cost: float | None = None, optimizer="sgd",
                    momentum: float | None = None, approach2: bool = True,
                    extrapolate: bool = False, schedule=None) -> ComputeOptimalResult:
    r"""Compute-optimal exponents of the PLRF model from deterministic loss curves.

    Sweeps :func:`volterra_sgd.loss_curve` over model sizes (:func:`sweep_loss_curves`),
    extracts the IsoFLOP frontier (:func:`isoflop_frontier`), fits :math:`\eta` and
    :math:`\xi` with bootstrap intervals, the Kaplan-style laws (:func:`kaplan_fits`) and
    Chinchilla's parametric law (:func:`chinchilla_fit`), and reports the phase theory's
    prediction (:func:`volterra_sgd.phase_exponents`, docs/theory.md, Eq. (11.3)).

    Parameters
    ----------
    alpha, beta : float, default 0.7, 0.7
        PLRF exponents.
    d_values : array_like of int, optional
        Model sizes; default :data:`DEFAULT_D_VALUES` (17 sizes from 256 to 65536,
        :math:`\sqrt 2` apart).
    batch_size : int, default 1
        :math:`B` (compute :math:`f = dBr`).
    client : dask.distributed.Client or str, optional
        Dask cluster (or scheduler address) for the sweep; default: a local thread pool.
    lr_scale, v_ratio, max_flops, points_per_decade, rtol
        Sweep settings, see :func:`sweep_loss_curves` (defaults :math:`g = 0.5`,
        :math:`v = 10d`, :math:`f \le 10^{13}`, 40 points per decade, 10 with a
        ``schedule``).
    flops_per_decade, window, trim, n_boot, rng
        Frontier settings, see :func:`isoflop_frontier`.
    chinchilla : bool, default True
        Also run the Chinchilla Approach 3 fit (on the points inside the window).
    n_jobs, progress, cache_dir
        Execution of the sweep, see :func:`sweep_loss_curves`.
    max_cost : float, optional
        Limit on the estimated kernel steps of the sweep and of the frontier (default
        ``10**9`` each); checked before the sweep starts (``flops_per_decade=1e9`` is refused
        at once).  ``math.inf`` removes it; docs/curves.md, "Cost limits".
    optimizer : str or callable, default "sgd"
        "sgd", "heavy-ball", "nesterov", "dana-constant", "dana-decaying" (the d-scaling
        rules of :func:`optimizer_for_model`) or a callable ``model -> optimizer``; see
        :func:`sweep_loss_curves`.  Saved with the result
        (:attr:`ComputeOptimalResult.optimizer`).
    momentum : float, optional
        :math:`\mu` of "heavy-ball" and "nesterov" (default 0.9).
    approach2 : bool, default True
        Also run Chinchilla's Approach 2 (:func:`isoflop_profiles`, ``n_boot`` draws) on the
        frontier's table: ``result.approach2``.
    extrapolate : bool, default False
        Also extrapolate the exponents to :math:`d\to\infty` from nested sub-grids of the
        sweep (:func:`extrapolate_exponents`): ``result.extrapolated``.
        Without ``d_values`` the grid is then :data:`EXTRAPOLATE_D_VALUES` (19 sizes up to
        131072: the drift fit needs the largest sizes).
    schedule : str or callable, optional
        Learning-rate schedule with the run's own length as horizon (see
        :func:`sweep_loss_curves`; plain SGD only): every entry of the IsoFLOP table is a
        separately scheduled run (docs/theory.md, Eq. (17.3)).  Only the horizons near the
        minimum are run: the constant-rate sweep (same grid) locates the minimum, the
        :data:`SCHEDULE_BAND` model sizes on each side of it are run at the horizons of
        their grid, and the band is widened until it holds the scheduled table's own
        minima.  ``result.sweep`` holds these runs (``sweep.params["schedule"]``),
        ``result.constant_rate`` the constant-rate exponents; Kaplan's :math:`L(N)` and
        :math:`L(D)` come from the constant-rate curves.

    Returns
    -------
    ComputeOptimalResult
        ``loss_exponent`` (:math:`\eta`), ``params_exponent`` (:math:`\xi`), their
        ``*_ci`` intervals, ``frontier``, the fits (Approaches 1, 2, 3) and the theory.

    Raises
    ------
    ValueError, TypeError
        Bad parameters (named in the message), or no interior frontier.

    Notes
    -----
    Default settings reproduce the Phase II/III boundary :math:`\alpha = \beta = 0.7`
    (paper's Fig. 3; theory :math:`\eta = 0.643`, :math:`\xi = 0.5`); the measured values and
    their drift with the range of :math:`d` are in ``docs/compute_optimal.md``.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> co = vs.compute_optimal(0.7, 0.7, d_values=[16, 23, 32, 45, 64, 91, 128],
    ...                         max_flops=1e7, n_boot=50, chinchilla=False, n_jobs=1)
    >>> bool(0.55 < co.loss_exponent < 0.7), bool(0.4 < co.params_exponent < 0.6)
    (True, True)
    >>> co.frontier.dtype.names
    ('flops', 'd_opt', 'loss_opt')
    """
    from .phases import phase_exponents

    ex = phase_exponents(alpha, beta)
    sched = _check_schedule_spec(schedule, _check_optimizer_spec(optimizer, momentum)[0])
    if points_per_decade is None:
        points_per_decade = 40 if sched is None else 10
    for name, val in (("approach2", approach2), ("extrapolate", extrapolate)):
        if not isinstance(val, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool; got {val!r}")
    if extrapolate and d_values is None:
        d_values = EXTRAPOLATE_D_VALUES
    if extrapolate and np.size(d_values) < 10:
        raise ValueError(f"extrapolate=True needs at least 10 model sizes (4 nested sub-grids "
                         f"of at least 7); got {np.size(d_values)}")
    _check_frontier_request(d_values, batch_size, max_flops, flops_per_decade, n_boot, rng,
                            max_cost)
    t0 = time.perf_counter()
    sweep_kw = {"alpha": alpha, "beta": beta, "batch_size": batch_size, "lr_scale": lr_scale,
                "v_ratio": v_ratio, "max_flops": max_flops,
                "points_per_decade": points_per_decade, "rtol": rtol, "client": client,
                "n_jobs": n_jobs, "progress": progress, "cache_dir": cache_dir,
                "max_cost": max_cost}
    sweep = sweep_loss_curves(d_values=d_values, optimizer=optimizer, momentum=momentum,
                              **sweep_kw)
    ref = None
    if sched is not None:
        ref = sweep
        t_sched = time.perf_counter()
        sweep = _scheduled_study(sweep_kw, schedule, ref, flops_per_decade, max_cost)
    t1 = time.perf_counter()
    curves = sweep.curves()
    iso = isoflop_frontier(curves, flops_per_decade=flops_per_decade, window=window,
                           trim=trim, n_boot=n_boot, rng=rng, max_cost=max_cost)
    kap = kaplan_fits(curves if ref is None else ref.curves(), iso,
                      limit_losses=sweep.limit_loss, n_boot=n_boot, rng=rng, alpha=alpha,
                      beta=beta)
    constant_rate = None
    if ref is not None:
        fr0 = isoflop_frontier(ref.curves(), flops_per_decade=flops_per_decade, window=window,
                               trim=trim, n_boot=n_boot, rng=rng, max_cost=max_cost)
        constant_rate = {"eta": fr0.loss_fit.exponent, "eta_ci": fr0.loss_fit.exponent_ci,
                         "xi": fr0.params_fit.exponent, "xi_ci": fr0.params_fit.exponent_ci,
                         "window": fr0.window}
    chin = (chinchilla_fit(curves, flops_range=iso.window, n_boot=min(n_boot, 100), rng=rng)
            if chinchilla else None)
    a2 = None
    if approach2:
        try:
            a2 = isoflop_profiles(iso, n_boot=n_boot, rng=rng)
        except ValueError:  # grid too short for a profile band: Approach 2 is not reported
            a2 = None
    extra = extrapolate_exponents(curves) if extrapolate else None
    t2 = time.perf_counter()
    theory = {"phase": ex.phase, "xi": ex.xi, "eta": ex.eta}
    seconds = {"sweep": t1 - t0, "spectral": float(sweep.seconds_spectral.sum()),
               "solver": float(sweep.seconds_solver.sum()), "fits": t2 - t1}
    if ref is not None:
        seconds.update({"sweep_constant": t_sched - t0, "sweep_schedule": t1 - t_sched,
                        "n_runs": int(sum(r.size for r in sweep.r))})
    return ComputeOptimalResult(alpha=float(alpha), beta=float(beta),
                                batch_size=int(sweep.params["batch_size"]), sweep=sweep,
                                isoflop=iso, kaplan=kap, chinchilla=chin, theory=theory,
                                seconds=seconds, approach2=a2, extrapolated=extra,
                                constant_rate=constant_rate)
