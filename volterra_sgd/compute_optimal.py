r"""Compute-optimal scaling: IsoFLOP frontiers, exponent fits and sweeps (THEORY.md §5, §7).

At fixed compute :math:`f = d\,B\,r` (THEORY.md §A) the loss :math:`\mathcal P(f/(dB), d)` is
minimised over the model size :math:`d`; the compute-optimal size and loss scale as
:math:`d^\star \propto f^{\xi}` and :math:`\mathcal P^\star \propto f^{-\eta}` (THEORY.md §5.1,
predictions in §5.3 and :func:`volterra_sgd.phase_exponents`).

This module

* sweeps deterministic loss curves over a geometric grid of model sizes, on a local process
  pool or a Dask cluster, with an optional resumable disk cache (:func:`sweep_loss_curves`);
* extracts the IsoFLOP frontier from any set of curves, deterministic or simulated SGD
  (:func:`isoflop_frontier`, THEORY.md §7 "Compute-optimal extraction"), with bootstrap
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
    "ChinchillaFit",
    "chinchilla_fit",
    "CurveSweep",
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
    """log P interpolated linearly in log f; NaN outside the curve's flops range."""
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
    x0, x1, x2 = logd[km] - logd[k], np.zeros(n_f), logd[kp] - logd[k]
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
    r"""Compute-optimal frontier extracted from a family of loss curves (THEORY.md §7).

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
                     n_boot: int = 400, rng=0) -> IsoFLOPFrontier:
    r"""IsoFLOP frontier :math:`d^\star(f)`, :math:`\mathcal P^\star(f)` and its exponents.

    Works on any family of curves of the loss against compute at several model sizes:
    deterministic curves (:func:`volterra_sgd.loss_curve`), simulated SGD
    (:func:`volterra_sgd.simulate_sgd`, resampled over runs in the bootstrap) or plain arrays.

    Parameters
    ----------
    curves : sequence
        At least 3 curves with distinct model sizes: :class:`~volterra_sgd.LossCurve` or
        :class:`~volterra_sgd.SGDRun` objects (flops :math:`f = dBr`, THEORY.md §A), or tuples
        ``(d, flops, loss)`` with ``loss`` of shape ``(n,)`` or ``(n_runs, n)``.  Points with
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
    THEORY.md §7: :math:`\log\mathcal P_d` is interpolated linearly in :math:`\log f` on a
    common grid; at each :math:`f` the arg-min over the :math:`d` grid is refined by the
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
    from ._validation import as_int, as_real

    data = _as_curve_data(curves)
    fpd = as_int(flops_per_decade, "flops_per_decade", minimum=2)
    trim = as_real(trim, "trim", lower=0.0, lower_open=False)
    n_boot = as_int(n_boot, "n_boot", minimum=0)
    gen = np.random.default_rng(rng)
    ds = np.array([t[0] for t in data])
    logd = np.log(ds)
    lo = min(t[1][0] for t in data)
    hi = max(t[1][-1] for t in data)
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
