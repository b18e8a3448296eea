r"""Deterministic forcing and kernel functions and their parts (docs/theory.md, Eqs. (6.3), (6.5)).

With the spectral measures of :mod:`volterra_sgd.contour` (discretized on the real axis),

.. math::

    F(r) = F_o + F_{pp}(r) + F_{ac}(r), \qquad K(r) = K_{pp}(r) + K_{ac}(r),

    F_{pp}(r) = \int_{\text{outliers}} q(x)^r \mu_F(dx), \quad
    F_{ac}(r) = \int_{\text{bulk}} q(x)^r \mu_F(dx), \quad
    K_{\bullet}(r) = \gamma^2 B \int_{\bullet} q(x)^r x^2 \rho(x)\,dx,

with :math:`F_o = F_0` the point mass at 0 (limit level), :math:`q(x) = 1 - 2\gamma Bx +
\gamma^2 B(B+1)x^2` (docs/theory.md, Eqs. (3.1), (6.1)-(6.4)).  Powers are evaluated as
:math:`\exp(r\,\mathrm{log1p}(-p))` with :math:`p = \gamma B x(2 - \gamma(B+1)x)`, accurate for
any :math:`r` (``r = 10^{12}`` included).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._secular import power_sums
from ._validation import (
    as_int,
    as_iterations,
    as_positive_real,
    as_real,
    check_learning_rate_scale,
)
from .contour import SpectralMeasure, compress_measure, spectral_measure
from .exact import check_learning_rate
from .model import PLRF, SpectralModel, check_model

__all__ = ["ForcingKernel", "forcing_and_kernel", "deterministic_measure"]


_ARRAYS = ("nodes", "forcing_weights", "eigen_weights", "component", "panel", "coarse_nodes",
           "coarse_forcing_weights", "coarse_eigen_weights", "coarse_panel", "outlier_masses",
           "outlier_counts", "outlier_locations")


def _readonly(meas: SpectralMeasure) -> SpectralMeasure:
    for name in _ARRAYS:
        getattr(meas, name).flags.writeable = False
    meas.support.outliers.flags.writeable = False
    if meas.support.bulk_gaps is not None:
        meas.support.bulk_gaps.flags.writeable = False
    return meas


#: Whether the dynamics (:func:`forcing_and_kernel`, the closed form and the schedule
#: integrator of ``loss_curve``) run over the compressed measure (Sec. 15); stability checks
#: always use the full one.  Set to False for the full quadrature everywhere (benchmarks and
#: tests compare the two routes in one process).
COMPRESS = True


@lru_cache(maxsize=32)
def _cached_measure(model: PLRF | SpectralModel, rtol: float,
                    compress: bool = False) -> SpectralMeasure:
    if compress:
        return _readonly(compress_measure(_cached_measure(model, rtol, False)))
    return _readonly(spectral_measure(model, rtol=rtol))


def deterministic_measure(model: PLRF | SpectralModel, *, rtol: float = 1e-11,
                          cache_dir=None, compress: bool = False) -> SpectralMeasure:
    """The (cached, read-only) :class:`~volterra_sgd.contour.SpectralMeasure` of ``model``.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model.
    rtol : float
        Quadrature tolerance (see :func:`~volterra_sgd.contour.spectral_measure`).
    cache_dir : str or os.PathLike, optional
        Directory of an opt-in on-disk cache.  The file name is the SHA-256 of canonical JSON
        of (function, model, rtol, package version); an existing entry is loaded instead of
        recomputed, a new one is written atomically.
    compress : bool, default False
        Return :func:`~volterra_sgd.contour.compress_measure` of the measure: about ten times
        fewer nodes, the same dynamics to about 1e-14 (Sec. 15).  In memory both are cached;
        on disk only the full measure is stored (compression takes well under a second).

    Returns
    -------
    SpectralMeasure
        Shared (in memory) between calls with the same model and tolerance.

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> from volterra_sgd.forcing import deterministic_measure
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> meas = deterministic_measure(model)
    >>> meas is deterministic_measure(model)            # cached in memory
    True
    >>> f"{meas.limit_loss:.4e}"                        # F0 (docs/theory.md, Eq. (13.1))
    '1.5355e-04'
    """
    check_model(model)
    rtol = as_real(rtol, "rtol", lower=0.0, upper=1.0)
    if cache_dir is None:
        return _cached_measure(model, rtol, bool(compress))
    meas = _disk_measure(model, rtol, cache_dir)
    return _readonly(compress_measure(meas)) if compress else meas


def _dynamics_measures(model, rtol, cache_dir) -> tuple[SpectralMeasure, SpectralMeasure]:
    """The full measure (for stability checks) and the one the dynamics run over."""
    full = deterministic_measure(model, rtol=rtol, cache_dir=cache_dir)
    if not COMPRESS:
        return full, full
    if cache_dir is None:
        return full, _cached_measure(model, float(rtol), True)
    return full, _readonly(compress_measure(full))


def _disk_measure(model: PLRF | SpectralModel, rtol: float, cache_dir) -> SpectralMeasure:
    import hashlib
    import io
    import json
    import os

    from . import __version__
    from .io import _atomic_write

    if isinstance(model, SpectralModel):  # the SHA-256 of its arrays and parameters
        desc = {"spectral_model": model.key}
    else:
        desc = {"alpha": model.alpha, "beta": model.beta}
    key = json.dumps({"function": "spectral_measure", **desc,
                      "v": "inf" if not model.finite else int(model.v), "d": model.d,
                      "rtol": rtol, "version": __version__}, sort_keys=True)
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, hashlib.sha256(key.encode()).hexdigest() + ".npz")
    if os.path.exists(path):
        meas = _read_cached_measure(path, key, model)
        if meas is not None:
            return meas
    meas = _cached_measure(model, rtol)  # a miss, or a corrupt entry: compute and (re)write
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), lower_edge=meas.support.lower_edge,
             upper_edge=meas.support.upper_edge, bulk=np.array(meas.support.bulk),
             outliers=meas.support.outliers, limit_loss=meas.limit_loss,
             **({} if meas.support.bulk_gaps is None
                else {"bulk_gaps": meas.support.bulk_gaps}),
             mass_defect=meas.mass_defect, **{n: getattr(meas, n) for n in _ARRAYS})
    _atomic_write({path: buf.getvalue()})
    return meas


def _read_cached_measure(path, key, model) -> SpectralMeasure | None:
    """Return the measure stored at ``path``; None if the entry is corrupt or for another key."""
    from .contour import SpectralSupport

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if str(arrays.pop("key")) != key:
            return None
        for a in arrays.values():
            if a.dtype.kind not in "biuf" or (a.dtype.kind == "f" and not np.all(np.isfinite(a))):
                return None
        sup = SpectralSupport(lower_edge=float(arrays["lower_edge"]),
                              upper_edge=float(arrays["upper_edge"]),
                              bulk=tuple(float(b) for b in arrays["bulk"]),
                              outliers=arrays["outliers"], bulk_gaps=arrays.get("bulk_gaps"))
        meas = SpectralMeasure(model=model, support=sup, limit_loss=float(arrays["limit_loss"]),
                               mass_defect=float(arrays["mass_defect"]),
                               **{n: arrays[n] for n in _ARRAYS})
        sizes = {getattr(meas, n).shape for n in ("nodes", "forcing_weights", "eigen_weights",
                                                  "component", "panel")}
        if len(sizes) != 1 or meas.nodes.ndim != 1:
            return None
    except Exception:  # truncated, bit-flipped, missing arrays, ...: a cache miss
        return None
    return _readonly(meas)


@dataclass(frozen=True)
class ForcingKernel:
    r"""Deterministic :math:`F(r)`, :math:`K(r)` and their parts at iterations ``r``.

    Attributes
    ----------
    r : ndarray of int64
        Iterations.
    forcing, kernel : ndarray
        :math:`F(r)` and :math:`K(r)`.
    parts : dict of str to ndarray
        ``"Fo"`` (constant :math:`F_0`), ``"Fpp"``, ``"Fac"``, ``"Kpp"``, ``"Kac"``.
    forcing_error, kernel_error : ndarray
        Error estimates (15- vs 7-point Gauss rule on each panel, summed in absolute value).
    kernel_norm : float
        :math:`\|K\| = \sum_r K(r)`.
    limit_loss : float
        :math:`P(\infty) = F_0 / (1 - \|K\|)`.
    learning_rate : float
    batch_size : int
    measure : SpectralMeasure
        The measure the sums run over (compressed, Sec. 15, unless ``forcing.COMPRESS`` is
        False).

    Examples
    --------
    >>> import numpy as np, volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> fk = vs.forcing_and_kernel(model, [0, 10, 100],
    ...                            learning_rate=model.reference_learning_rate(0.5))
    >>> sorted(fk.parts)
    ['Fac', 'Fo', 'Fpp', 'Kac', 'Kpp']
    >>> parts = fk.parts
    >>> bool(np.allclose(parts["Fo"] + parts["Fpp"] + parts["Fac"], fk.forcing, rtol=1e-14))
    True
    >>> bool(np.allclose(parts["Kpp"] + parts["Kac"], fk.kernel, rtol=1e-14))
    True
    """

    r: np.ndarray
    forcing: np.ndarray
    kernel: np.ndarray
    parts: dict
    forcing_error: np.ndarray
    kernel_error: np.ndarray
    kernel_norm: float
    limit_loss: float
    learning_rate: float
    batch_size: int
    measure: SpectralMeasure


def _one_minus_q(x, g, B):
    return g * B * x * (2.0 - g * (B + 1) * x)


def forcing_and_kernel(model: PLRF | SpectralModel, r, *, learning_rate: float, batch_size: int = 1,
                       rtol: float = 1e-11, cache_dir=None) -> ForcingKernel:
    r"""Deterministic forcing :math:`F(r)` and kernel :math:`K(r)` with their parts.

    Parameters
    ----------
    model : PLRF or SpectralModel
        The model (``v > d``; ``v = inf`` allowed when :math:`2\alpha > 1`).
    r : array_like of int
        Non-decreasing, non-negative iterations (any size, e.g. up to :math:`10^{12}`).
    learning_rate : float
        :math:`\gamma`; must be stable for the deterministic spectrum.
    batch_size : int, default 1
        :math:`B` (gradients summed over the batch).
    rtol : float, default 1e-11
        Quadrature tolerance of the spectral measure.
    cache_dir : str or os.PathLike, optional
        Opt-in on-disk cache of the spectral measure (:func:`deterministic_measure`).

    Returns
    -------
    ForcingKernel
        ``forcing``, ``kernel``, ``parts`` (Fo, Fpp, Fac, Kpp, Kac), error estimates,
        :math:`\|K\|` and :math:`P(\infty)`.

    Raises
    ------
    UnstableLearningRateError
        If :math:`\gamma(B+1)\lambda_{max} \ge 2` or :math:`\|K\| \ge 1` for the deterministic
        spectrum; the message names the largest stable learning rate.

    Notes
    -----
    docs/theory.md, Sec. 6, Eqs. (6.1)-(6.6).  The contour is collapsed onto the
    real axis (see :mod:`volterra_sgd.contour` for why that stays accurate for any ``r``).

    Examples
    --------
    >>> import volterra_sgd as vs
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    >>> fk = vs.forcing_and_kernel(model, [0, 1000], learning_rate=model.reference_learning_rate(0.5))
    >>> f"{fk.forcing[1]:.4e}", f"{fk.kernel[1]:.4e}"
    ('7.3406e-04', '2.7000e-06')
    >>> bool(abs(fk.parts["Fo"][1] + fk.parts["Fpp"][1] + fk.parts["Fac"][1] - fk.forcing[1]) < 1e-18)
    True
    """
    full, meas = _dynamics_measures(model, rtol, cache_dir)
    r = as_iterations(r)
    g = as_positive_real(learning_rate, "learning_rate")
    check_learning_rate_scale(g, model.trace_data_covariance)
    B = as_int(batch_size, "batch_size")
    kn = check_learning_rate(full.nodes, g, B, weights=full.eigen_weights)
    x = meas.nodes
    logq = np.log1p(-_one_minus_q(x, g, B))
    logq7 = np.log1p(-_one_minus_q(meas.coarse_nodes, g, B))
    bulk = meas.component == 0
    wf, wk = meas.forcing_weights, g * g * B * meas.kernel_weights
    wf7 = meas.coarse_forcing_weights
    wk7 = g * g * B * meas.coarse_nodes ** 2 * meas.coarse_eigen_weights
    panel = np.cumsum(np.r_[True, meas.panel[1:] != meas.panel[:-1]]) - 1
    panel7 = np.cumsum(np.r_[True, meas.coarse_panel[1:] != meas.coarse_panel[:-1]]) - 1
    # parts 0 (outliers) and 1 (bulk) of the 15-point sums; per panel, 15- minus 7-point sums
    # (the 7-point nodes have part -1: error only); dense r costs one product per step
    out = power_sums(np.r_[logq, logq7], np.array([np.r_[wf, -wf7], np.r_[wk, -wk7]]),
                     np.r_[bulk.astype(np.int64), np.full(logq7.size, -1)],
                     np.r_[panel, panel7], r)
    ferr, kerr = out[:, 4], out[:, 5]
    f0 = meas.limit_loss
    parts = {"Fo": np.full(r.size, f0), "Fpp": out[:, 0], "Fac": out[:, 1],
             "Kpp": out[:, 2], "Kac": out[:, 3]}
    return ForcingKernel(
        r=r, forcing=f0 + out[:, 0] + out[:, 1], kernel=out[:, 2] + out[:, 3], parts=parts,
        forcing_error=ferr, kernel_error=kerr, kernel_norm=kn, limit_loss=f0 / (1.0 - kn),
        learning_rate=g, batch_size=B, measure=meas,
    )
