r"""Kaplan's learning-curve law :math:`L(N, S)` fitted on families of loss curves (Sec. 18).

:math:`L(N, S) = (N_c/N)^{\alpha_N} + (S_c/S)^{\alpha_S}` (docs/theory.md, Eq. (18.5)) with
:math:`N = d` and :math:`S` the steps of runs at batch size 1, fitted by least squares in
:math:`\log L` with a bootstrap over the curves, and compared with the exponents the phase
theory predicts (Eq. (18.6)).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from ._validation import as_int, as_rng

__all__ = ["LearningCurveLawFit", "fit_learning_curve_law"]

_NAMES = ("n_c", "alpha_n", "s_c", "alpha_s")


@dataclass(frozen=True)
class LearningCurveLawFit:
    r"""Outcome of :func:`fit_learning_curve_law`.

    Attributes
    ----------
    n_c, alpha_n, s_c, alpha_s : float
        :math:`N_c`, :math:`\alpha_N`, :math:`S_c`, :math:`\alpha_S` of Eq. (18.5).
    n_c_ci, alpha_n_ci, s_c_ci, alpha_s_ci : tuple of float
        95% bootstrap percentile intervals (curves resampled with replacement; NaN without
        a bootstrap).
    rms_residual, max_residual : float
        Root-mean-square and largest absolute residual of :math:`\log L`.
    n_points, n_curves : int
        Points and curves in the fit.
    n_range, steps_range : tuple of float
        Ranges of :math:`N` and :math:`S` used.
    theory : dict
        Phase-theory exponents (Eq. (18.6)): ``alpha_n``, ``alpha_s`` and ``phase``, when
        ``alpha`` and ``beta`` are known (given, or from a sweep); empty otherwise.
    bootstrap : ndarray, shape (n_boot_used, 4)
        Bootstrap replicates of ``(n_c, alpha_n, s_c, alpha_s)``.
    success : bool
    status : int
        0 success; 1 the least-squares solver did not converge.
    message : str

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> S = np.logspace(0, 6, 25)
    >>> data = [(N, S, (50 / N) ** 0.8 + (1e3 / S) ** 0.5) for N in (10, 30, 100, 300)]
    >>> fit = vs.fit_learning_curve_law(data, n_boot=0)
    >>> round(fit.alpha_n, 6), round(fit.alpha_s, 6), round(fit.s_c, 3)
    (0.8, 0.5, 1000.0)
    """

    n_c: float
    alpha_n: float
    s_c: float
    alpha_s: float
    n_c_ci: tuple
    alpha_n_ci: tuple
    s_c_ci: tuple
    alpha_s_ci: tuple
    rms_residual: float
    max_residual: float
    n_points: int
    n_curves: int
    n_range: tuple
    steps_range: tuple
    theory: dict = field(default_factory=dict)
    bootstrap: np.ndarray = field(default_factory=lambda: np.empty((0, 4)), repr=False)
    success: bool = True
    status: int = 0
    message: str = "success"

    def predict(self, N, S):
        r"""Evaluate Eq. (18.5) at model sizes ``N`` and steps ``S`` (broadcast)."""
        N = np.asarray(N, dtype=np.float64)
        S = np.asarray(S, dtype=np.float64)
        return (self.n_c / N) ** self.alpha_n + (self.s_c / S) ** self.alpha_s

    def to_dict(self) -> dict:
        """JSON-serialisable summary (without the bootstrap replicates)."""
        out = {k: getattr(self, k) for k in _NAMES}
        out.update({k + "_ci": list(getattr(self, k + "_ci")) for k in _NAMES})
        out.update(rms_residual=self.rms_residual, max_residual=self.max_residual,
                   n_points=self.n_points, n_curves=self.n_curves,
                   n_range=list(self.n_range), steps_range=list(self.steps_range),
                   theory=dict(self.theory), n_boot=int(self.bootstrap.shape[0]),
                   success=self.success, status=self.status, message=self.message)
        return out


def _as_families(curves):
    """Return a list of (N, S, L) float arrays and (alpha, beta) if known."""
    ab = (None, None)
    if hasattr(curves, "d_values") and hasattr(curves, "params"):   # CurveSweep
        if int(curves.params.get("batch_size", 1)) != 1:
            raise ValueError("curves: the learning-curve law is fitted on runs at batch size "
                             f"1; this sweep has batch_size={curves.params['batch_size']}")
        ab = (curves.params.get("alpha"), curves.params.get("beta"))
        items = [(float(d), r, L) for d, r, L in zip(curves.d_values, curves.r, curves.loss,
                                                     strict=True)]
    elif isinstance(curves, (str, bytes)) or not hasattr(curves, "__iter__"):
        raise TypeError(f"curves must be a CurveSweep or a sequence of curves; got "
                        f"{type(curves).__name__}")
    else:
        items = []
        for i, c in enumerate(curves):
            if isinstance(c, tuple):
                if len(c) != 3:
                    raise ValueError(f"curves[{i}] must be an (N, S, loss) tuple; got "
                                     f"{len(c)} entries")
                items.append(c)
            elif hasattr(c, "model") and hasattr(c, "r") and hasattr(c, "loss"):
                if np.ndim(c.batch_size) or int(c.batch_size) != 1:
                    raise ValueError(f"curves[{i}]: runs at batch size 1 are needed; got "
                                     f"batch_size={c.batch_size!r}")
                items.append((c.model.d, c.r, c.loss))
            else:
                raise TypeError(f"curves[{i}] must be a LossCurve, an SGDRun or an (N, S, "
                                f"loss) tuple; got {type(c).__name__}")
    out = []
    for i, (N, S, L) in enumerate(items):
        if isinstance(N, (bool, np.bool_)) or not isinstance(N, numbers.Real) or not N > 0:
            raise ValueError(f"curves[{i}]: N must be a positive number; got {N!r}")
        S = np.asarray(S, dtype=np.float64)
        L = np.asarray(L, dtype=np.float64)
        if S.ndim != 1 or L.shape != S.shape:
            raise ValueError(f"curves[{i}] (N = {N}): S and loss must be 1-D of equal length; "
                             f"got {S.shape} and {L.shape}")
        if not (np.all(np.isfinite(L)) and np.all(L > 0) and np.all(np.isfinite(S))):
            raise ValueError(f"curves[{i}] (N = {N}): S and loss must be finite, loss > 0")
        out.append((float(N), S, L))
    if len({N for N, _, _ in out}) < 3:
        raise ValueError(f"curves must hold at least 3 distinct model sizes N; got "
                         f"{sorted({N for N, _, _ in out})}")
    return out, ab


def _solve(logN, logS, logL, starts):
    """Least squares of log L = logaddexp(a - aN log N, b - aS log S) from several starts."""
    from scipy.optimize import least_squares

    def resid(th):
        return np.logaddexp(th[0] - th[1] * logN, th[2] - th[3] * logS) - logL

    best = None
    for x0 in starts:
        sol = least_squares(resid, x0, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15,
                            max_nfev=4000)
        if np.all(np.isfinite(sol.x)) and (best is None or sol.cost < best.cost):
            best = sol
    return best


def _starts(logN, logS, logL):
    out = []
    for aN in (0.25, 0.5, 1.0, 2.0, 4.0):
        for aS in (0.25, 0.5, 1.0, 2.0):
            # each term alone through the smallest loss: the constants' natural scales
            out.append(np.array([aN * logN.max() + logL.min(), aN,
                                 aS * logS.max() + logL.min(), aS]))
    return out


def _params(th):
    a, aN, b, aS = th
    return np.array([math.exp(a / aN) if aN != 0 else math.nan, aN,
                     math.exp(b / aS) if aS != 0 else math.nan, aS])


def fit_learning_curve_law(curves, *, steps_range=None, loss_floor: float | None = None,
                           n_boot: int = 200, rng=0, alpha: float | None = None,
                           beta: float | None = None) -> LearningCurveLawFit:
    r"""Fit :math:`L(N, S) = (N_c/N)^{\alpha_N} + (S_c/S)^{\alpha_S}` to a family of curves.

    Parameters
    ----------
    curves : CurveSweep, or sequence of LossCurve, SGDRun or (N, S, loss) tuples
        Loss curves of runs at batch size 1 (:math:`S` = steps = examples), one per model
        size :math:`N = d`; at least 3 distinct sizes.  A :class:`CurveSweep` must have
        ``batch_size = 1`` and supplies ``alpha`` and ``beta`` for the comparison.
    steps_range : (float, float), optional
        Steps used (default: :math:`S \ge 10`; the first steps are the transient before the
        power law).
    loss_floor : float, optional
        Drop points with a loss below this value.
    n_boot : int, default 200
        Bootstrap draws: the curves are resampled with replacement (draws with fewer than 3
        distinct sizes are skipped) and the law refitted from the full fit's parameters.
    rng : int, numpy.random.Generator or None, default 0
        Seed (SPEC 7).
    alpha, beta : float, optional
        The model's exponents, for the phase-theory comparison (Eq. (18.6)).

    Returns
    -------
    LearningCurveLawFit

    Raises
    ------
    ValueError
        On invalid input or fewer than 8 points in range.

    Notes
    -----
    docs/theory.md, Sec. 18.  Least squares in :math:`\log L` over the parameters
    :math:`(\alpha_N\log N_c, \alpha_N, \alpha_S\log S_c, \alpha_S)` from 20 starting
    points (Levenberg-Marquardt), keeping the best.  :math:`S` is the plain number of steps
    at :math:`B = 1`, not Kaplan's :math:`S_{min}`: with :math:`S = S_{min}(1 + B_{crit}/B)`
    (Eq. (18.2)) a constant :math:`B_{crit}` only rescales :math:`S_c` by
    :math:`1 + B_{crit}`; its drift with the loss (Eq. (18.4)) enters the fitted
    :math:`\alpha_S` as a small bias.  The law has no cross term, while the PLRF loss does
    (:math:`F_{ac} \asymp d^{-1} T^{-(1 - 1/(2\alpha))}`, Eq. (11.2)): the residual
    measures how far the family departs from the additive form.

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> S = np.logspace(0, 6, 25)
    >>> data = [(N, S, (50 / N) ** 0.8 + (1e3 / S) ** 0.5) for N in (10, 30, 100, 300)]
    >>> fit = vs.fit_learning_curve_law(data, n_boot=20, rng=0)
    >>> round(fit.n_c, 6), bool(fit.alpha_n_ci[1] - fit.alpha_n_ci[0] < 1e-9)  # exact data
    (50.0, True)
    """
    from .compute_optimal import _percentile_ci

    fam, (a0, b0) = _as_families(curves)
    alpha = a0 if alpha is None else alpha
    beta = b0 if beta is None else beta
    lo, hi = (10.0, math.inf) if steps_range is None else steps_range
    if not (0 < float(lo) < float(hi)):
        raise ValueError(f"steps_range must be (low, high) with 0 < low < high; got "
                         f"{steps_range!r}")
    floor = 0.0 if loss_floor is None else float(loss_floor)
    n_boot = as_int(n_boot, "n_boot", minimum=0)
    gen = np.random.default_rng(as_rng(rng))
    sel = []
    for N, S, L in fam:
        keep = (S >= lo) & (S <= hi) & (L > floor)
        sel.append((np.full(int(keep.sum()), math.log(N)), np.log(S[keep]), np.log(L[keep])))
    logN, logS, logL = (np.concatenate(v) for v in zip(*sel, strict=True))
    if logL.size < 8:
        raise ValueError(f"steps_range/loss_floor leave {logL.size} points; at least 8 are "
                         "needed")
    sol = _solve(logN, logS, logL, _starts(logN, logS, logL))
    res = np.logaddexp(sol.x[0] - sol.x[1] * logN, sol.x[2] - sol.x[3] * logS) - logL
    boot = []
    for _ in range(n_boot):
        idx = gen.integers(0, len(sel), len(sel))
        if np.unique([sel[i][0][0] if sel[i][0].size else -1 for i in idx]).size < 3:
            continue
        bN, bS, bL = (np.concatenate([sel[i][k] for i in idx]) for k in range(3))
        b = _solve(bN, bS, bL, [sol.x])
        if b is not None:
            boot.append(_params(b.x))
    boot = np.array(boot).reshape(-1, 4)
    p = _params(sol.x)
    theory = {}
    if alpha is not None and beta is not None:
        from .compute_optimal import kaplan_theory
        from .phases import phase

        kt = kaplan_theory(float(alpha), float(beta))
        theory = {"alpha": float(alpha), "beta": float(beta),
                  "phase": phase(float(alpha), float(beta), boundary="join"),
                  "alpha_n": kt["alpha_N"], "alpha_s": kt["alpha_D"]}
    ok = bool(sol.success)
    N_all = np.array([N for N, _, _ in fam])
    return LearningCurveLawFit(
        n_c=float(p[0]), alpha_n=float(p[1]), s_c=float(p[2]), alpha_s=float(p[3]),
        **{k + "_ci": _percentile_ci(boot[:, j]) for j, k in enumerate(_NAMES)},
        rms_residual=float(np.sqrt(np.mean(res**2))), max_residual=float(np.max(np.abs(res))),
        n_points=int(logL.size), n_curves=len(fam),
        n_range=(float(N_all.min()), float(N_all.max())),
        steps_range=(float(np.exp(logS.min())), float(np.exp(logS.max()))), theory=theory,
        bootstrap=boot, success=ok, status=0 if ok else 1,
        message="success" if ok else "least squares did not converge: " + sol.message)
