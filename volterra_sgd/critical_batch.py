r"""Critical batch size on exact loss curves (docs/theory.md, Sec. 18, Eqs. (18.1)-(18.4)).

For each batch size :math:`B` of a grid, the learning rate is tuned over a grid of fractions of
the largest stable rate :math:`\gamma^*(B)` and the steps :math:`S(B)` to reach each target
loss are read off the deterministic (or given-embedding) loss curve; the pairs
:math:`(S, E = BS)` are fitted by the hyperbola :math:`(S/S_{min} - 1)(E/E_{min} - 1) = 1`, whose
ratio :math:`B_{crit} = E_{min}/S_{min}` is the critical batch size, and :math:`B_{crit}(L)` is
fitted as a power law in the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._validation import as_int, as_real, as_real_array

__all__ = ["CriticalBatchResult", "critical_batch_size", "DEFAULT_LR_FRACTIONS",
           "DEFAULT_BATCH_SIZES"]

#: Default learning-rate grid: fractions of the largest stable rate of each batch size.
DEFAULT_LR_FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

#: Default batch sizes: powers of two from 1 to 1024.
DEFAULT_BATCH_SIZES = tuple(2**k for k in range(11))

STATUS = {0: "success",
          1: "the hyperbola fit did not converge for some target",
          2: "a loss curve missed its accuracy target near a crossing (see max_curve_error)"}


@dataclass(frozen=True)
class CriticalBatchResult:
    r"""Outcome of :func:`critical_batch_size`.

    Arrays indexed ``[target, batch]`` hold one value per target loss and batch size.

    Attributes
    ----------
    target_losses : ndarray, shape (n_targets,)
        The target losses :math:`L`.
    critical_batch_size : ndarray, shape (n_targets,)
        :math:`B_{crit}(L) = E_{min}/S_{min}`, Eq. (18.3).
    min_steps, min_examples : ndarray, shape (n_targets,)
        :math:`S_{min}` and :math:`E_{min}` of the fitted hyperbola, Eq. (18.2).
    hyperbola_residual : ndarray, shape (n_targets,)
        Root-mean-square residual of :math:`\log S` (equal to that of :math:`\log E`, since
        :math:`E = BS`) of the hyperbola fit over the batch sizes.
    hyperbola_max_residual : ndarray, shape (n_targets,)
        Largest absolute residual of :math:`\log S`.
    batch_sizes : ndarray of int64, shape (n_batch,)
        The batch sizes :math:`B`.
    lr_fractions : ndarray
        The learning-rate grid, as fractions of ``max_learning_rates``.
    max_learning_rates : ndarray, shape (n_batch,)
        :math:`\gamma^*(B)`, the largest stable learning rate of each batch size.
    steps, examples : ndarray, shape (n_targets, n_batch)
        :math:`S(B)` with the learning rate tuned (the fewest steps over the grid) and
        :math:`E(B) = B\,S(B)`; real-valued (interpolated between iterations).
    learning_rates : ndarray, shape (n_targets, n_batch)
        The tuned learning rates.
    lr_at_grid_edge : ndarray of bool, shape (n_targets, n_batch)
        Whether the tuned rate is the smallest or the largest of the grid (the optimum may
        lie outside it).
    steps_all : ndarray, shape (n_targets, n_batch, n_fractions)
        :math:`S` at every learning rate of the grid (``inf`` where the target is not reached
        within ``max_steps``).
    exponent : float
        :math:`b` of the power law :math:`B_{crit} \propto L^{-b}`, Eq. (18.4) (positive when
        the critical batch size grows as the loss falls); NaN for fewer than 2 targets.
    exponent_ci : tuple of float
        95% interval of ``exponent`` from the least-squares slope's Student-t interval
        (NaN, NaN for fewer than 3 targets).
    prefactor : float
        :math:`B_\star` with :math:`B_{crit} = B_\star L^{-b}`.
    power_law_residual : float
        Root-mean-square residual of :math:`\log B_{crit}` of the power-law fit.
    max_curve_error : float
        Largest relative error estimate of the loss at the iterations that bracket a crossing
        (over all batch sizes and rates).
    success : bool
    status : int
        0 success; 1 a hyperbola fit did not converge; 2 a loss curve missed its accuracy
        target.
    message : str
    seconds : float
        Wall time.
    model : PLRF or SpectralModel
    options : dict
        ``max_steps``, ``points_per_decade``, ``rtol``, ``tol``, ``route`` ("deterministic" or
        "embedding").

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> res = vs.critical_batch_size(vs.PLRF(1.0, 0.7, 200, 20), [1e-1, 3e-2],
    ...                              batch_sizes=[1, 4, 16, 64], lr_fractions=[0.5, 0.9])
    >>> res.steps.shape, bool(res.critical_batch_size[1] > res.critical_batch_size[0])
    ((2, 4), True)
    """

    target_losses: np.ndarray
    critical_batch_size: np.ndarray
    min_steps: np.ndarray
    min_examples: np.ndarray
    hyperbola_residual: np.ndarray
    hyperbola_max_residual: np.ndarray
    batch_sizes: np.ndarray
    lr_fractions: np.ndarray
    max_learning_rates: np.ndarray
    steps: np.ndarray
    examples: np.ndarray
    learning_rates: np.ndarray
    lr_at_grid_edge: np.ndarray
    steps_all: np.ndarray = field(repr=False)
    exponent: float = math.nan
    exponent_ci: tuple = (math.nan, math.nan)
    prefactor: float = math.nan
    power_law_residual: float = math.nan
    max_curve_error: float = 0.0
    success: bool = True
    status: int = 0
    message: str = "success"
    seconds: float = 0.0
    model: object = field(default=None, repr=False)
    options: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-serialisable summary: the per-target values and the power-law fit."""
        return {"target_losses": self.target_losses.tolist(),
                "critical_batch_size": self.critical_batch_size.tolist(),
                "min_steps": self.min_steps.tolist(),
                "min_examples": self.min_examples.tolist(),
                "hyperbola_residual": self.hyperbola_residual.tolist(),
                "hyperbola_max_residual": self.hyperbola_max_residual.tolist(),
                "exponent": self.exponent, "exponent_ci": list(self.exponent_ci),
                "prefactor": self.prefactor, "power_law_residual": self.power_law_residual,
                "batch_sizes": self.batch_sizes.tolist(),
                "lr_fractions": self.lr_fractions.tolist(),
                "max_curve_error": self.max_curve_error, "success": self.success,
                "status": self.status, "message": self.message, "seconds": self.seconds,
                "options": dict(self.options)}


# ------------------------------------------------------------------------------ validation
def _as_grid(x, name, *, integer=False, lower=0.0, upper=None, min_size=1):
    arr = as_real_array(x, name)
    arr = np.atleast_1d(arr)
    if arr.ndim != 1 or arr.size < min_size:
        raise ValueError(f"{name} must be a 1-D sequence of at least {min_size} values; got "
                         f"shape {arr.shape}")
    for i, a in enumerate(arr):
        if integer:
            as_int(float(a), f"{name}[{i}]")
        else:
            as_real(float(a), f"{name}[{i}]", lower=lower, upper=upper)
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{name} must hold distinct values; got {arr.tolist()}")
    return np.sort(arr).astype(np.int64) if integer else arr


# -------------------------------------------------------------------- steps to the targets
def steps_to_targets(r, loss, targets) -> np.ndarray:
    r"""Real-valued steps at which a decreasing loss curve first reaches each target.

    The first grid interval where the running minimum of ``loss`` falls to the target brackets
    the crossing; inside it :math:`\log P` is interpolated as a monotone cubic (PCHIP) in
    :math:`\log r`, or linearly in :math:`r` between consecutive iterations (exact for a
    geometric decay), and the crossing is solved for (Eq. (18.1)).  Targets not reached get ``inf``.

    Parameters
    ----------
    r : array_like of int
        Increasing iterations, starting at 0 or 1.
    loss : array_like
        :math:`P(r) > 0`.
    targets : array_like
        Target losses.

    Returns
    -------
    ndarray
        Steps per target.
    """
    from scipy.interpolate import PchipInterpolator
    from scipy.optimize import brentq

    r = np.asarray(r, dtype=np.float64)
    logP = np.log(np.minimum.accumulate(np.asarray(loss, dtype=np.float64)))
    pos = r > 0
    x = np.log(r[pos])
    interp = PchipInterpolator(x, logP[pos]) if x.size >= 2 else None
    out = np.full(len(targets), math.inf)
    for k, target in enumerate(np.log(np.asarray(targets, dtype=np.float64))):
        hit = np.flatnonzero(logP <= target)
        if hit.size == 0:
            continue
        i = int(hit[0])
        if i == 0:
            out[k] = r[0]
        elif r[i] - r[i - 1] == 1.0:  # consecutive iterations: geometric in between
            out[k] = r[i - 1] + (logP[i - 1] - target) / (logP[i - 1] - logP[i])
        else:
            j = i - int(np.count_nonzero(~pos))
            a, b = x[j - 1], x[j]
            out[k] = math.exp(brentq(lambda t, y=target: float(interp(t)) - y, a, b,
                                     xtol=1e-13))
    return out


def _bracket_error(loss, loss_error, targets) -> float:
    """Largest relative error estimate of the loss at the grid points bracketing a crossing."""
    run = np.minimum.accumulate(loss)
    worst = 0.0
    for target in targets:
        hit = np.flatnonzero(run <= target)
        if hit.size:
            i = int(hit[0])
            j = max(i - 1, 0)
            worst = max(worst, float(np.max(loss_error[j:i + 1] / loss[j:i + 1])))
    return worst


# ---------------------------------------------------------------------------- the fits
def fit_hyperbola(batch_sizes, steps) -> tuple:
    r"""Fit :math:`S(B) = S_{min} + E_{min}/B` (Eq. (18.2)) by least squares in :math:`\log S`.

    Parameters
    ----------
    batch_sizes, steps : array_like
        :math:`B` and the measured :math:`S(B)` (finite).

    Returns
    -------
    tuple
        ``(S_min, E_min, rms_residual, max_residual, converged)``.
    """
    from scipy.optimize import least_squares

    logB = np.log(np.asarray(batch_sizes, dtype=np.float64))
    logS = np.log(np.asarray(steps, dtype=np.float64))

    def resid(th):
        return np.logaddexp(th[0], th[1] - logB) - logS

    x0 = np.array([logS.min(), (logS + logB).min()])
    sol = least_squares(resid, x0, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    res = resid(sol.x)
    ok = bool(sol.success and np.all(np.isfinite(sol.x)))
    return (math.exp(sol.x[0]), math.exp(sol.x[1]), float(np.sqrt(np.mean(res**2))),
            float(np.max(np.abs(res))), ok)


def _power_law(L, Bc):
    """Slope fit of log Bc on log L: (exponent b, 95% t interval, prefactor, rms)."""
    from scipy.special import stdtrit

    from .compute_optimal import _linfit

    if L.size < 2:
        return math.nan, (math.nan, math.nan), math.nan, math.nan
    x, y = np.log(L), np.log(Bc)
    s, c, rms = _linfit(x, y)
    ci = (math.nan, math.nan)
    if L.size >= 3:
        se = math.sqrt(np.sum((y - s * x - c) ** 2) / (L.size - 2)
                       / np.sum((x - x.mean()) ** 2))
        t = float(stdtrit(L.size - 2, 0.975))
        ci = (-s - t * se, -s + t * se)
    return -s, ci, math.exp(c), rms


# ------------------------------------------------------------------------------ public API
def critical_batch_size(model, target_losses, *, batch_sizes=None, lr_fractions=None,
                        embedding=None, optimizer=None, max_steps: float = 1e10,
                        points_per_decade: int = 40, rtol: float = 1e-11,
                        tol: float = 1e-3, throw: bool = True) -> CriticalBatchResult:
    r"""Critical batch size :math:`B_{crit}(L) = E_{min}/S_{min}` on exact loss curves.

    For each batch size :math:`B` and each learning rate :math:`\gamma = \phi\,\gamma^*(B)`
    (:math:`\phi` from ``lr_fractions``, :math:`\gamma^*` the largest stable rate), the loss
    curve is solved in closed form on a log grid of iterations and the steps :math:`S` at
    which it first reaches each target are interpolated (Eq. (18.1)); :math:`S(B)` is the
    fewest over the grid (the rate is tuned per batch size and per target).  The hyperbola
    :math:`(S/S_{min}-1)(E/E_{min}-1) = 1` with :math:`E = BS` is fitted to the pairs
    (Eq. (18.2)), giving :math:`B_{crit} = E_{min}/S_{min}` (Eq. (18.3)), and
    :math:`B_{crit}(L) = B_\star L^{-b}` is fitted across the targets (Eq. (18.4)).

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model.
    target_losses : array_like
        Target losses :math:`L`, each below the initial loss and above the limit loss of the
        slowest learning rate (:math:`\mathcal P(\infty)` falls with :math:`\gamma`).
    batch_sizes : array_like of int, optional
        :math:`B` grid (at least 3 values; default 1, 2, 4, ..., 1024).
    lr_fractions : array_like, optional
        Learning-rate grid as fractions in (0, 1) of :math:`\gamma^*(B)` (default
        ``DEFAULT_LR_FRACTIONS``: 0.05, 0.1, 0.2, ..., 0.9, 0.95).
    embedding : array_like of shape (v, d) or EmbeddingSpectrum, optional
        Use the exact loss for this embedding (:func:`expected_loss_given_w`) instead of the
        deterministic curve (:func:`loss_curve`); :math:`\gamma^*` is then that of its
        spectrum.
    optimizer : {None, "sgd"}
        Only plain SGD.  Momentum methods are refused: their curves take the per-mode
        recursion of Sec. 9, measured 5-30 times the cost of an SGD curve per (batch size,
        rate) pair at ``d = 400`` (heavy ball with momentum 0 reproduced the SGD study to
        1e-11 but took 35 s instead of about 1 s at ``d = 100``), and near their largest stable
        rate their error estimates exceeded 1e-2.
    max_steps : float, default 1e10
        Horizon of each curve; targets not reached by then count as not reached at that rate.
    points_per_decade : int, default 40
        Iterations per decade of the log grid on which the crossings are bracketed.
    rtol : float, default 1e-11
        Quadrature tolerance of the deterministic curves.
    tol : float, default 1e-3
        Relative accuracy asked of every loss curve (its error estimate); the steps inherit
        it divided by the local slope :math:`|d\log P/d\log r|`.  Curves near the largest
        stable rate are the least accurate (measured 1.3e-4 at ``d = 100``, fraction 0.9).
    throw : bool, default True
        Raise :class:`ConvergenceError` if a hyperbola fit fails or a curve misses its
        accuracy target; with ``False`` the result reports it in ``success``/``status``.

    Returns
    -------
    CriticalBatchResult

    Raises
    ------
    ValueError
        On invalid input, or when a target is not reached within ``max_steps`` at any rate of
        the grid for some batch size (the message names the target and the batch size).

    Notes
    -----
    docs/theory.md, Sec. 18.  Cost: one closed-form curve per (batch size, rate) pair, about
    0.3 s each at ``d = 400`` (110 curves with the defaults).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> res = vs.critical_batch_size(vs.PLRF(1.0, 0.7, 200, 20), [3e-2],
    ...                              batch_sizes=[1, 4, 16, 64], lr_fractions=[0.5, 0.9])
    >>> bool(res.min_steps[0] < res.steps[0, 0]), bool(res.hyperbola_residual[0] < 0.1)
    (True, True)
    """
    import time
    import warnings

    from .curve import loss_curve
    from .exact import embedding_spectrum, expected_loss_given_w, max_stable_learning_rate
    from .exceptions import ConvergenceError, ConvergenceWarning
    from .model import check_model

    t0 = time.perf_counter()
    check_model(model)
    if optimizer is not None and not (isinstance(optimizer, str) and optimizer == "sgd"):
        raise ValueError("optimizer: critical_batch_size supports only plain SGD (None or "
                         "'sgd'); momentum methods and callables are not tuned here (their "
                         f"curves cost 5-30 times more per rate); got {optimizer!r}")
    targets = _as_grid(target_losses, "target_losses")
    P0 = float(model.initial_loss)
    if np.any(targets >= P0):
        raise ValueError(f"target_losses must be below the initial loss {P0:.6g}; got "
                         f"{targets.max():.6g}")
    Bs = _as_grid(DEFAULT_BATCH_SIZES if batch_sizes is None else batch_sizes, "batch_sizes",
                  integer=True, min_size=3)
    phis = np.sort(_as_grid(DEFAULT_LR_FRACTIONS if lr_fractions is None else lr_fractions,
                            "lr_fractions", lower=0.0, upper=1.0))
    max_steps = as_real(max_steps, "max_steps", lower=10.0, lower_open=False)
    ppd = as_int(points_per_decade, "points_per_decade", minimum=5)
    rtol = as_real(rtol, "rtol", lower=0.0)
    tol = as_real(tol, "tol", lower=0.0)
    n = int(math.ceil(math.log10(max_steps) * ppd)) + 1
    r = np.unique(np.r_[0.0, np.round(np.logspace(0.0, math.log10(max_steps), n))])
    r = r.astype(np.int64)
    if embedding is None:
        spec = model
        route = "deterministic"
    else:
        spec = embedding if hasattr(embedding, "eigenvalues") else embedding_spectrum(
            model, embedding)
        route = "embedding"

    nt, nb, nf = targets.size, Bs.size, phis.size
    steps_all = np.full((nt, nb, nf), math.inf)
    gmax = np.empty(nb)
    worst = 0.0
    for ib, B in enumerate(Bs):
        gmax[ib] = max_stable_learning_rate(spec, int(B))
        for jf, phi in enumerate(phis):
            g = float(phi * gmax[ib])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                if route == "deterministic":
                    c = loss_curve(model, r, learning_rate=g, batch_size=int(B), rtol=rtol,
                                   throw=False)
                else:
                    c = expected_loss_given_w(model, spec, r, learning_rate=g,
                                              batch_size=int(B), method="closed_form",
                                              throw=False)
            steps_all[:, ib, jf] = steps_to_targets(r, c.loss, targets)
            worst = max(worst, float(c.info.error_estimate) if c.loss_error is None
                        else _bracket_error(c.loss, c.loss_error, targets))
    best = np.argmin(steps_all, axis=2)
    steps = np.take_along_axis(steps_all, best[:, :, None], axis=2)[:, :, 0]
    missed = np.argwhere(~np.isfinite(steps))
    if missed.size:
        i, j = missed[0]
        raise ValueError(
            f"target_losses[{i}] = {targets[i]:.6g} is not reached within max_steps = "
            f"{max_steps:.3g} at any learning rate of the grid for batch_size = {Bs[j]}: "
            "raise max_steps, add smaller lr_fractions, or choose a larger target")
    examples = steps * Bs[None, :]
    lrs = phis[best] * gmax[None, :]
    edge = (best == 0) | (best == nf - 1)

    fits = [fit_hyperbola(Bs, steps[i]) for i in range(nt)]
    smin, emin, rms, mx, ok = (np.array(v) for v in zip(*fits, strict=True))
    bc = emin / smin
    expo, ci, pref, plrms = _power_law(targets, bc)

    status = 0 if np.all(ok) else 1
    if status == 0 and not worst <= tol:
        status = 2
    message = STATUS[status] + ("" if status != 2 else f" ({worst:.3g} > {tol:.3g})")
    if status and throw:
        raise ConvergenceError(f"critical_batch_size: {message}")
    return CriticalBatchResult(
        target_losses=targets, critical_batch_size=bc, min_steps=smin, min_examples=emin,
        hyperbola_residual=rms, hyperbola_max_residual=mx, batch_sizes=Bs, lr_fractions=phis,
        max_learning_rates=gmax, steps=steps, examples=examples, learning_rates=lrs,
        lr_at_grid_edge=edge, steps_all=steps_all, exponent=float(expo),
        exponent_ci=tuple(float(v) for v in ci), prefactor=float(pref),
        power_law_residual=float(plrms), max_curve_error=worst, success=status == 0,
        status=status, message=message, seconds=time.perf_counter() - t0, model=model,
        options={"max_steps": max_steps, "points_per_decade": ppd, "rtol": rtol, "tol": tol,
                 "route": route})
