r"""Deterministic loss curves :math:`\mathcal P(r)` (docs/theory.md, Eqs. (6.3), (7.3)).

The deterministic-equivalent forcing and kernel are sums of exponentials over the nodes
:math:`x_i` of the discretized spectral measure (:mod:`volterra_sgd.contour`),

.. math::

    F(r) = F_0 + \sum_i f_i\, q(x_i)^r, \qquad K(r) = \sum_i \kappa_i\, q(x_i)^r,
    \qquad \kappa_i = \gamma^2 B\, x_i^2 \rho_i,

so the Volterra equation :math:`\mathcal P(r) = F(r) + \sum_{s<r} K(r-1-s)\mathcal P(s)` has
the closed form :math:`\mathcal P(r) = \mathcal P(\infty) + \sum_i R_i \nu_i^r` from the secular
equation :math:`\sum_i \kappa_i/(\nu - q(x_i)) = 1` (docs/theory.md, Eq. (7.2)): exact for the
discretized measure, at any horizon, with no time stepping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._secular import norm_perturbation, solve_exponential_volterra
from ._validation import as_int, as_iterations, as_positive_real, as_real
from .forcing import _dynamics_measures, _one_minus_q, deterministic_measure, forcing_and_kernel
from .model import PLRF, SpectralModel
from .schedule import envelope

__all__ = ["SolverInfo", "LossCurve", "loss_curve"]


@dataclass(frozen=True)
class SolverInfo:
    """Outcome of a solver: ``success``, integer ``status``, ``message`` and error estimate.

    Attributes
    ----------
    success : bool
        Whether the solver reached its tolerance: ``error_estimate <= tol``.
    status : int
        0 on success; 1 if the error estimate exceeds ``tol``; 2 if it is not finite;
        ``message`` says why.
    message : str
        Human-readable outcome.
    error_estimate : float
        Estimated relative error of the result (for :class:`LossCurve` and
        :class:`~volterra_sgd.exact.ExpectedLoss`: the largest ``loss_error / loss``).
    n_modes : int
        Number of exponential modes (quadrature nodes) in the solution.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> info = vs.loss_curve(model, [0, 100], learning_rate=model.reference_learning_rate(0.5)).info
    >>> info.success, info.status, info.n_modes > 0
    (True, 0, True)
    """

    success: bool
    status: int
    message: str
    error_estimate: float
    n_modes: int = 0


@dataclass(frozen=True)
class LossCurve:
    r"""A deterministic loss curve and its ingredients at iterations ``r``.

    Attributes
    ----------
    r : ndarray of int64
        Iterations.
    loss : ndarray
        :math:`\mathcal P(r)` (no factor 1/2).
    forcing, kernel : ndarray
        :math:`F(r)`, :math:`K(r)`.
    parts : dict of str to ndarray
        ``"Fo"``, ``"Fpp"``, ``"Fac"``, ``"Kpp"``, ``"Kac"`` at ``r``.
    loss_error : ndarray
        Error estimate of ``loss`` (difference to the solution on the coarse quadrature).
    kernel_norm : float
        :math:`\|K\|`.
    limit_loss : float
        :math:`\mathcal P(\infty) = F_0/(1-\|K\|)`.
    model : PLRF or SpectralModel
    learning_rate : float
    batch_size : int
    info : SolverInfo
    options : dict
        Solver options (``rtol``).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> curve = vs.loss_curve(model, [0, 100, 10**4], learning_rate=model.reference_learning_rate(0.5))
    >>> curve.flops.tolist()                               # d * B * r
    [0.0, 20000.0, 2000000.0]
    >>> bool(curve.loss[0] > curve.loss[1] > curve.loss[2] > curve.limit_loss)
    True
    >>> bool(abs(curve.loss[0] - model.initial_loss) < 1e-10 * model.initial_loss)
    True
    """

    r: np.ndarray
    loss: np.ndarray
    forcing: np.ndarray
    kernel: np.ndarray
    parts: dict
    loss_error: np.ndarray
    kernel_norm: float
    limit_loss: float
    model: PLRF | SpectralModel
    learning_rate: float
    batch_size: int
    info: SolverInfo
    options: dict = field(default_factory=dict)

    @property
    def total_loss(self) -> np.ndarray:
        """Population error ``loss + model.noise_variance`` (docs/theory.md, Eq. (9.1))."""
        return self.loss + float(getattr(self.model, "noise_variance", 0.0))

    @property
    def flops(self) -> np.ndarray:
        """Compute :math:`f = d B r` at each iteration (docs/theory.md, Eq. (2.3))."""
        return self.model.d * self.batch_size * self.r.astype(np.float64)


def loss_curve(model: PLRF | SpectralModel, r, *, learning_rate=None, batch_size=1,
               optimizer=None, rtol: float = 1e-11,
               h: float = 0.02, cache_dir=None, tol: float | None = None,
               throw: bool = True, max_cost: float | None = None) -> LossCurve:
    r"""Deterministic expected loss of one-pass SGD at iterations ``r``.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model (``v > d``; ``v = inf`` allowed when :math:`2\alpha > 1`).
    r : array_like of int
        Non-decreasing, non-negative iterations (``10**12`` is as cheap as 10 for constant
        hyper-parameters).
    learning_rate : float, array_like or callable
        Constant :math:`\gamma > 0`, or a schedule :math:`\gamma(s)` for steps
        ``s = 0, 1, ...``: an array indexed by the step (at least ``max(r)`` entries) or a
        vectorized callable ``f(s_array) -> gamma``.  Constant rates must be stable for the
        deterministic spectrum (:func:`max_stable_learning_rate`).  Required unless
        ``optimizer`` is given (there is no default rate).
    batch_size : int, array_like or callable, default 1
        :math:`B`, constant or a schedule like ``learning_rate`` (whole numbers); gradients
        are summed over the batch.
    optimizer : SGD, HeavyBall, Nesterov, GeneralizedMomentum or DANA, optional
        Instead of ``learning_rate``/``batch_size``: any method of the generalized momentum
        family (docs/theory.md, Sec. 9; :doc:`optimizers`), run over the nodes of the same
        spectral measure (Eq. (9.19)).  Plain SGD without label noise takes the solvers
        below unchanged; everything else (also SGD when ``model.noise_variance > 0``) takes
        :func:`volterra_sgd.momentum.optimizer_loss_curve`, whose blocks use ``h/2``.
    rtol : float, default 1e-11
        Quadrature tolerance of the spectral measure.
    h : float, default 0.02
        Relative block length of the schedule integrator (ignored for constant
        hyper-parameters).
    cache_dir : str or os.PathLike, optional
        Opt-in on-disk cache of the spectral stage (see
        :func:`volterra_sgd.forcing.deterministic_measure`); the CLI reads it from
        ``--cache-dir`` or the environment variable ``VOLTERRA_SGD_CACHE``.
    max_cost : float, optional
        Limit on the estimated kernel steps of the call (default ``10**9``: the spectral
        measure, about ``250 J`` for tables of length ``J`` of a few ``d``, plus about 60 per
        requested iteration).  Larger requests raise ``ValueError`` before any work;
        ``math.inf`` removes the limit, the memory check stays.  See "Cost limits" in
        docs/curves.md.
    tol : float, optional
        Relative accuracy asked of the loss: ``info.success`` is
        ``max(loss_error / loss) <= tol``.  Default ``max(1e3 * rtol, 1e-6)`` for constant
        hyper-parameters (the 15-vs-7-point estimate is pessimistic by 10-1000; at large
        ``d`` the quadrature error of the spectral measure is amplified above ``rtol``:
        measured 3e-10 at ``d = 16384`` with ``rtol = 1e-11``, estimate 1.2e-8), ``1e-3``
        for schedules (the integrator reaches about 1e-5 at the default ``h``).
    throw : bool, default True
        Raise :class:`ConvergenceError` when the estimate exceeds ``tol``; with ``False``,
        return the curve with ``info.success = False`` and a :class:`ConvergenceWarning`.

    Returns
    -------
    LossCurve
        :math:`\mathcal P(r)`, :math:`F`, :math:`K`, their parts, :math:`\|K\|`,
        :math:`\mathcal P(\infty)` and an error estimate.  Under a schedule, ``forcing`` is
        :math:`F(r) = F_0 + \sum_i f_i \prod_{s<r} q_i(s)`, ``kernel`` is the response
        :math:`K(r, 0)` to a unit loss at step 0, ``kernel_norm`` and ``limit_loss`` refer to
        the hyper-parameters at step 0, and ``learning_rate``/``batch_size`` hold the values at
        step 0.

    Raises
    ------
    TypeError
        If neither ``learning_rate`` nor ``optimizer`` is given.
    UnstableLearningRateError
        If a constant learning rate is unstable; the message names the largest stable one.
    ConvergenceError
        If ``throw`` and the error estimate exceeds ``tol`` (near the largest stable learning
        rate at late iterations, where :math:`\mathcal P(\infty) = F_0/(1 - \|K\|)` is
        ill-conditioned).

    Notes
    -----
    docs/theory.md, Secs. 6-8 (Eqs. (6.3), (7.3), (8.1)).  Constant hyper-parameters: closed
    form from the secular equation; the error estimate is the envelope (maximum over
    :math:`[r/2, 2r]`) of :math:`|\mathcal P_{15} - \mathcal P_{7}|`, the difference between
    the solutions for the 15-point and the embedded 7-point Gauss discretizations of the same
    measure (the envelope covers the iterations where the two cross; the 7-point kernel is
    rescaled to the same :math:`\|K\|`), plus the forcing's quadrature error times the
    resolvent sum :math:`\sum_{s \le r} R(s) \le 1/(1 - \|K\|)`, the rounding error of the
    closed form, and the effect of the uncertainty of :math:`\|K\|` (quadrature and
    rounding) on the slow mode, which dominates near the largest stable learning rate
    (docs/theory.md, Sec. 7).  Schedules: the geometric-block integrator
    (:mod:`volterra_sgd.schedule`), its error estimate plus the quadrature estimate.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> curve = vs.loss_curve(model, [0, 10**3, 10**12],
    ...                       learning_rate=model.reference_learning_rate(0.5))
    >>> f"{curve.limit_loss:.4e}"
    '2.2642e-04'
    >>> g0 = model.reference_learning_rate(0.5)
    >>> decayed = vs.loss_curve(model, [0, 10**3], learning_rate=lambda s: g0 / (1 + s / 100))
    >>> bool(decayed.loss[1] > curve.loss[1])
    True
    """
    from ._validation import check_budget, check_learning_rate_scale, cost_limit, curve_cost
    from .model import check_model
    from .schedule import as_schedule

    check_model(model)
    if learning_rate is None and optimizer is None:
        raise TypeError("loss_curve() requires learning_rate (a constant, an array or a "
                        "callable schedule) or optimizer; got neither")
    check_budget(*curve_cost(model, as_iterations(r, "r").size), what="loss_curve",
                 parameter="d (or n_explicit) or the number of iterations in r",
                 max_cost=max_cost)
    if optimizer is not None or getattr(model, "noise_variance", 0.0) != 0.0:
        # momentum methods and label noise: the per-node recursion of docs/theory.md, Sec. 9
        from .momentum import optimizer_loss_curve
        from .optimizers import SGD, as_optimizer

        opt = as_optimizer(optimizer, learning_rate, batch_size)
        if not (type(opt) is SGD and model.noise_variance == 0.0):
            with cost_limit(max_cost):
                return optimizer_loss_curve(model, r, opt, rtol=rtol, h=h / 2, tol=tol,
                                            throw=throw, cache_dir=cache_dir)
        learning_rate, batch_size = opt.learning_rate, opt.batch_size  # plain SGD: as before
    gfun, gconst = as_schedule(learning_rate, "learning_rate")
    bfun, bconst = as_schedule(batch_size, "batch_size", integer=True)
    check_learning_rate_scale(gconst if gconst is not None else float(gfun(np.zeros(1))[0]),
                              model.trace_data_covariance)
    constant = gconst is not None and bconst is not None
    if tol is None:
        tol = max(1e3 * rtol, 1e-6) if constant else 1e-3
    tol = as_real(tol, "tol", lower=0.0)
    with cost_limit(max_cost):
        if constant:
            return _constant_curve(model, r, gconst, int(bconst), rtol, tol, throw, cache_dir)
        return _schedule_curve(model, r, gfun, bfun, rtol, h, tol, throw, cache_dir)


def _constant_curve(model, r, g, B, rtol, tol, throw, cache_dir):
    from .exact import _kernel_norm, _kernel_norm_error, _solver_info

    fk = forcing_and_kernel(model, r, learning_rate=g, batch_size=B, rtol=rtol,
                            cache_dir=cache_dir)
    g, B = fk.learning_rate, fk.batch_size
    meas = fk.measure
    x, x7 = meas.nodes, meas.coarse_nodes
    delta = 1.0 - fk.kernel_norm  # from the stability check: accepted rates are solvable
    p, p7 = _one_minus_q(x, g, B), _one_minus_q(x7, g, B)
    kappa = g * g * B * x * x * meas.eigen_weights
    norm_c = _kernel_norm(x, g, B, meas.eigen_weights)
    if norm_c != fk.kernel_norm:
        # compressed nodes (Sec. 15): their ||K|| agrees with the full measure's to ~1e-15,
        # but near the edge of stability 1/(1 - ||K||) amplifies the last bits: take the
        # full measure's ||K|| (which decided stability) exactly
        kappa = kappa * (fk.kernel_norm / norm_c)
    kappa7 = g * g * B * x7 * x7 * meas.coarse_eigen_weights
    norm7 = math.fsum(kappa7 / p7)
    P, sol = solve_exponential_volterra(p, meas.forcing_weights, kappa, meas.limit_loss, fk.r,
                                        one_minus_norm=delta)
    # The 7-point rule, with its kernel rescaled to the same ||K|| (near the edge of
    # stability its own ||K|| may exceed 1), estimates the quadrature error of the
    # transient; the quadrature error of ||K|| itself, amplified by 1/(1 - ||K||), is
    # bounded separately (norm_perturbation), and so is the rounding error of ||K||.
    P7, _ = solve_exponential_volterra(p7, meas.coarse_forcing_weights,
                                       kappa7 * (fk.kernel_norm / norm7), meas.limit_loss,
                                       fk.r, one_minus_norm=delta)
    dnorm = (min(abs(fk.kernel_norm - norm7), _resolvent_norm_error(model, g, B, fk.kernel_norm))
             + _kernel_norm_error(x, g, B, meas.eigen_weights))
    # forcing errors propagate through the resolvent: sum_{s<=r} R(s) = U(r) <= 1/(1-||K||),
    # U solving the same equation with unit forcing
    U, _ = solve_exponential_volterra(p, np.zeros(x.size), kappa, 1.0, fk.r,
                                      one_minus_norm=delta, roots=sol)
    err = (envelope(fk.r, np.abs(P - P7)) + fk.forcing_error * U + sol["rounding_error"]
           + norm_perturbation(p, meas.forcing_weights, kappa, meas.limit_loss, fk.r, P, sol,
                               dnorm))
    info = _solver_info(_max_relative(err, P), tol, "loss_curve", throw, int(x.size))
    return LossCurve(r=fk.r, loss=P, forcing=fk.forcing, kernel=fk.kernel, parts=fk.parts,
                     loss_error=err, kernel_norm=fk.kernel_norm, limit_loss=fk.limit_loss,
                     model=model, learning_rate=g, batch_size=B, info=info,
                     options={"rtol": rtol, "tol": tol, "method": "closed_form"})


def _resolvent_norm_error(model, g, B, norm):
    r"""Bound on the quadrature error of ``norm`` from an independent :math:`\|K\|`.

    :math:`\|K\| = \gamma^2 B\int x^2\rho/p = \frac{1}{B+1}\int \frac{x\rho(x)}{c - x}dx
    = d\,(m(c) - 1)/(B+1)` with :math:`c = 2/(\gamma(B+1))` above the spectrum
    (docs/theory.md, Eqs. (6.1)-(6.3)): one resolvent evaluation, accurate to its own error
    estimate, against which the 15-point value is checked.  The 15- vs 7-point difference
    overstates the 15-point error of :math:`\|K\|` by orders of magnitude (measured:
    5e-12 against ~5e-15), which near the edge of stability is amplified by
    :math:`1/(1 - \|K\|)`.  Returns ``inf`` if the resolvent does not converge.
    """
    from .contour import _m_real

    c = 2.0 / (g * (B + 1))
    m, err, status = _m_real(model, c)
    if status != 0 or not (math.isfinite(m.real) and math.isfinite(err)):
        return math.inf
    exact = model.d * (m.real - 1.0) / (B + 1)
    eps = np.finfo(float).eps
    return abs(norm - exact) + model.d * abs(m) * (err + 4.0 * eps) / (B + 1)


def _max_relative(err, P):
    """Largest ``err / |P|`` (0 where both vanish, inf where only P does or err is nan)."""
    if not err.size:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0.0, 0.0, err / np.abs(P))
    return float(np.max(np.where(np.isnan(rel), np.inf, rel)))


def _schedule_curve(model, r, gfun, bfun, rtol, h, tol, throw, cache_dir):
    from .exact import _solver_info, check_learning_rate
    from .schedule import schedule_forcing, schedule_integrator

    r = as_iterations(r)
    h = as_real(h, "h", lower=0.0, upper=1.0)
    full, meas = _dynamics_measures(model, float(rtol), cache_dir)
    g0 = float(gfun(np.zeros(1))[0])
    b0 = int(bfun(np.zeros(1))[0])
    kn = check_learning_rate(full.nodes, g0, b0, weights=full.eigen_weights)
    args = (meas.nodes, meas.forcing_weights, meas.eigen_weights, meas.limit_loss)
    P, err = schedule_integrator(*args, r, gfun, bfun, h=h)
    # the 7-point rule's ||K|| at step 0 may exceed 1 near the edge of stability: keep it
    # stable by scaling its kernel to at most 1 - (1 - ||K||)/2
    x7 = meas.coarse_nodes
    norm7 = math.fsum(g0 * g0 * b0 * x7 * x7 * meas.coarse_eigen_weights
                      / _one_minus_q(x7, g0, b0))
    scale7 = min(1.0, (1.0 - 0.5 * (1.0 - kn)) / norm7) if norm7 > 0 else 1.0
    P7, _ = schedule_integrator(x7, meas.coarse_forcing_weights,
                                meas.coarse_eigen_weights * scale7, meas.limit_loss, r, gfun,
                                bfun, h=h)
    err = err + envelope(r, np.abs(P - P7))
    fk = schedule_forcing(*args, r, gfun, bfun, meas.component, h=h)
    parts = {"Fo": np.full(r.size, meas.limit_loss), "Fpp": fk["Fpp"], "Fac": fk["Fac"],
             "Kpp": fk["Kpp"], "Kac": fk["Kac"]}
    info = _solver_info(_max_relative(err, P), tol, "loss_curve (schedule)", throw,
                        int(meas.nodes.size))
    return LossCurve(r=r, loss=P, forcing=fk["F"], kernel=fk["K"], parts=parts, loss_error=err,
                     kernel_norm=kn, limit_loss=meas.limit_loss / (1.0 - kn), model=model,
                     learning_rate=g0, batch_size=b0, info=info,
                     options={"rtol": rtol, "tol": tol, "method": "schedule_integrator",
                              "h": h})


def sum_of_exponentials(model: PLRF | SpectralModel, *, learning_rate: float, batch_size: int = 1,
                        rtol: float = 1e-11, compress: bool = False) -> dict:
    r"""The discrete representation :math:`F = F_0 + \sum f_i q_i^r`, :math:`K = \sum \kappa_i q_i^r`.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model.
    learning_rate : float
        :math:`\gamma`.
    batch_size : int
        :math:`B`.
    rtol : float
        Quadrature tolerance.
    compress : bool, default False
        Nodes of the compressed measure (Sec. 15) instead of the full quadrature.

    Returns
    -------
    dict
        ``nodes`` :math:`x_i`, ``q`` :math:`q(x_i)`, ``one_minus_q``, ``forcing_weights``
        :math:`f_i`, ``kernel_weights`` :math:`\kappa_i`, ``component``, ``limit_loss``
        :math:`F_0`.
    """
    g = as_positive_real(learning_rate, "learning_rate")
    B = as_int(batch_size, "batch_size")
    meas = deterministic_measure(model, rtol=rtol, compress=compress)
    x = meas.nodes
    p = _one_minus_q(x, g, B)
    return {"nodes": x, "q": 1.0 - p, "one_minus_q": p, "forcing_weights": meas.forcing_weights,
            "kernel_weights": g * g * B * x * x * meas.eigen_weights,
            "component": meas.component, "limit_loss": meas.limit_loss}


