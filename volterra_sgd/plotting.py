"""Figures (matplotlib is imported lazily, inside each function).

Every ``plot_*`` function draws on the given ``ax`` (or on a new figure when ``ax`` is
None) and returns the :class:`matplotlib.axes.Axes`.  Nothing here calls ``plt.show()`` or
writes files: saving figures is the job of the command line (``volterra-sgd ... --plot``)
or of the caller (``ax.figure.savefig(...)``).

Sections: phase diagram (docs/theory.md, Sec. 11); loss curves.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "PHASE_COLORS",
    "plot_phase_diagram",
    "plot_exponent_traversal",
    "plot_loss_curve",
    "plot_loss_comparison",
    "plot_compute_optimal_curves",
    "plot_optimal_size",
    "plot_isoflop_slices",
    "plot_critical_batch",
    "plot_critical_batch_size",
    "plot_curve_fit",
]


def _new_axes(ax, figsize=(6.4, 4.8)):
    """Return ``ax`` or the axes of a new figure (pyplot-free: no global state)."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


# =========================================================================== phase diagram
#: Colour of each phase in :func:`plot_phase_diagram` (I: blues, II: green, III: orange,
#: IV: purples).
PHASE_COLORS = {
    "Ia": "#4c78a8",
    "Ib": "#9ecae9",
    "Ic": "#d4e6f5",
    "II": "#72b7b2",
    "III": "#f58518",
    "IVa": "#b279a2",
    "IVb": "#d6b4cf",
}
_OUTSIDE_COLOR = "#d9d9d9"

# label positions (alpha, beta) chosen inside each region for the default ranges
_LABEL_AT = {
    "Ia": (1.05, 0.2), "Ib": (0.33, 0.33), "Ic": (0.125, 1.05), "II": (1.2, 0.72),
    "III": (0.95, 1.2), "IVa": (0.2715, 1.3), "IVb": (0.4, 1.05),
}


def _boundary_segments(a_lim, b_lim):
    """Exact phase-boundary segments [(alphas, betas), ...] clipped to the ranges."""
    from .phases import ALPHA_IVA_IVB

    a0, a1 = a_lim
    b0, b1 = b_lim
    segs = [
        ((0.5, 0.5), (max(b0, 0.0), b1)),                         # 2 alpha = 1
        ((max(a0, 0.0), a1), (0.5, 0.5)),                         # 2 beta = 1
        ((0.5, min(a1, b1)), (0.5, min(a1, b1))),                 # beta = alpha, alpha > 1/2
        ((0.25, 0.25), (0.5, b1)),                                # alpha = 1/4, 2 beta > 1
        ((ALPHA_IVA_IVB, ALPHA_IVA_IVB), (0.5, b1)),              # IVa / IVb
    ]
    edge_a = np.linspace(max(a0, 1e-9), a1, 200)
    segs.append((edge_a, 0.5 - edge_a))                           # alpha + beta = 1/2
    return segs


def plot_phase_diagram(ax=None, *, heatmap: str | None = None, alpha_range=(0.0, 1.5),
                       beta_range=(-0.5, 1.5), resolution: int = 500,
                       hatch_universal: bool = True, labels: bool = True,
                       mark=None, legend: bool = True):
    r"""Draw the 4+3 phase diagram of the PLRF model (docs/theory.md, Eqs. (11.3)-(11.4)).

    :math:`\alpha` is on the horizontal axis and :math:`\beta` on the vertical one.  The
    phases are coloured (:data:`PHASE_COLORS`), the inadmissible region
    :math:`2(\alpha+\beta) \le 1` is grey, and the "universal" region where
    :math:`d^\star \propto f^{1/2}` (phases Ib, III, IVb) is hatched.

    Parameters
    ----------
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created when None.
    heatmap : {None, "eta", "xi"}
        Colour by the exponent :math:`\eta` or :math:`\xi` (with a colour bar) instead of
        by phase; boundaries and labels are still drawn.
    alpha_range, beta_range : tuple of float
        Plotted ranges.
    resolution : int, default 500
        Grid points per axis for the colouring.
    hatch_universal : bool, default True
        Hatch the region with :math:`\xi = 1/2`.
    labels : bool, default True
        Write the phase names.
    mark : tuple of float, optional
        A point :math:`(\alpha, \beta)` to mark with a star.
    legend : bool, default True
        Add a legend for the hatched and inadmissible regions.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Examples
    --------
    >>> from volterra_sgd.plotting import plot_phase_diagram
    >>> ax = plot_phase_diagram(resolution=60, mark=(0.7, 0.5))
    >>> ax.get_xlabel()
    'alpha (data exponent)'
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .phases import PHASES, _exponent_arrays

    if heatmap not in (None, "eta", "xi"):
        raise ValueError(f"heatmap must be None, 'eta' or 'xi'; got {heatmap!r}")
    a0, a1 = (float(t) for t in alpha_range)
    b0, b1 = (float(t) for t in beta_range)
    if not (a0 < a1 and b0 < b1):
        raise ValueError(f"empty plot ranges: alpha_range={alpha_range}, beta_range={beta_range}")
    n = int(resolution)
    if n < 10:
        raise ValueError(f"resolution must be >= 10; got {resolution}")
    ax = _new_axes(ax)
    A, Bt = np.meshgrid(np.linspace(a0, a1, n), np.linspace(b0, b1, n))
    code, xi, eta = _exponent_arrays(A, Bt)
    extent = (a0, a1, b0, b1)
    if heatmap is None:
        cmap = ListedColormap([_OUTSIDE_COLOR] + [PHASE_COLORS[p] for p in PHASES])
        ax.imshow(code + 1, origin="lower", extent=extent, aspect="auto", cmap=cmap,
                  vmin=-0.5, vmax=len(PHASES) + 0.5, interpolation="nearest")
    else:
        vals = np.ma.masked_invalid(eta if heatmap == "eta" else xi)
        ax.imshow(np.where(code < 0, 1.0, np.nan), origin="lower", extent=extent,
                  aspect="auto", cmap=ListedColormap([_OUTSIDE_COLOR]), vmin=0, vmax=2,
                  interpolation="nearest")
        im = ax.imshow(vals, origin="lower", extent=extent, aspect="auto", cmap="viridis",
                       interpolation="nearest")
        symbol = r"$\eta$  ($P^\star \propto f^{-\eta}$)" if heatmap == "eta" else \
            r"$\xi$  ($d^\star \propto f^{\xi}$)"
        ax.figure.colorbar(im, ax=ax, label=symbol)
    if hatch_universal:
        universal = np.isin(code, [PHASES.index(p) for p in ("Ib", "III", "IVb")])
        ax.contourf(A, Bt, universal.astype(float), levels=[0.5, 1.5], colors="none",
                    hatches=["///"])
    for xs, ys in _boundary_segments((a0, a1), (b0, b1)):
        ax.plot(xs, ys, color="black", lw=0.9)
    if labels:
        for p, (la, lb) in _LABEL_AT.items():
            if a0 < la < a1 and b0 < lb < b1:
                ax.text(la, lb, p, ha="center", va="center", fontsize=9,
                        fontweight="bold", rotation=90 if p == "IVa" else 0,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none",
                                  alpha=0.7))
    if mark is not None:
        ma, mb = (float(t) for t in mark)
        ax.plot([ma], [mb], marker="*", ms=13, color="red", mec="black", mew=0.6,
                ls="none", label=f"({ma:g}, {mb:g})")
    ax.set_xlim(a0, a1)
    ax.set_ylim(b0, b1)
    ax.set_xlabel("alpha (data exponent)")
    ax.set_ylabel("beta (target exponent)")
    ax.set_title("4+3 phases of compute-optimal scaling (PLRF, one-pass SGD)", fontsize=10)
    if legend:
        handles = [Patch(facecolor="none", edgecolor="black", hatch="///",
                         label=r"$d^\star \propto f^{1/2}$ (Ib, III, IVb)"),
                   Patch(facecolor=_OUTSIDE_COLOR, edgecolor="none",
                         label=r"$2(\alpha+\beta) \leq 1$ (inadmissible)")]
        if mark is not None:
            handles += ax.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.9)
    return ax


def plot_exponent_traversal(ax=None, *, alpha: float = 0.7, beta_range=(-0.15, 1.2),
                            num: int = 400):
    r"""Plot :math:`\xi` and :math:`\eta` along a line of constant :math:`\alpha`.

    The default is the paper's traversal :math:`\alpha = 0.7` (Ia :math:`\to` II
    :math:`\to` III as :math:`\beta` grows; docs/theory.md, Sec. 11, Fig. 4b).
    Phase boundaries crossed are marked by dotted vertical lines.

    Parameters
    ----------
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created when None.
    alpha : float, default 0.7
        The fixed :math:`\alpha`.
    beta_range : tuple of float
        Range of :math:`\beta` (clipped to the admissible :math:`\beta > 1/2 - \alpha`).
    num : int, default 400
        Number of points.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Examples
    --------
    >>> from volterra_sgd.plotting import plot_exponent_traversal
    >>> ax = plot_exponent_traversal(num=50)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['xi  (d* ~ f^xi)', 'eta  (P* ~ f^-eta)']
    """
    from .phases import PHASES, _exponent_arrays

    a = float(alpha)
    b0 = max(float(beta_range[0]), 0.5 - a + 1e-6)
    b1 = float(beta_range[1])
    if not b0 < b1:
        raise ValueError(f"empty beta range for alpha={a}: {beta_range}")
    ax = _new_axes(ax)
    b = np.linspace(b0, b1, int(num))
    code, xi, eta = _exponent_arrays(np.full_like(b, a), b)
    ax.plot(b, xi, label="xi  (d* ~ f^xi)", color="#4c78a8")
    ax.plot(b, eta, label="eta  (P* ~ f^-eta)", color="#f58518")
    change = np.flatnonzero(np.diff(code) != 0)
    for k in change:
        ax.axvline(0.5 * (b[k] + b[k + 1]), color="grey", ls=":", lw=0.8)
    starts = np.concatenate([[0], change + 1])
    ends = np.concatenate([change, [b.size - 1]])
    top = max(np.nanmax(xi), np.nanmax(eta))
    for s, e in zip(starts, ends, strict=True):
        ax.text(0.5 * (b[s] + b[e]), top * 1.05, PHASES[code[s]], ha="center", fontsize=9)
    ax.set_ylim(0.0, top * 1.15 if math.isfinite(top) else 1.0)
    ax.set_xlabel("beta (target exponent)")
    ax.set_ylabel("exponent")
    ax.set_title(f"compute-optimal exponents at alpha = {a:g}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return ax


# ============================================================================= loss curves
def plot_loss_curve(curve, ax=None, *, parts: bool = True, label: str | None = None):
    r"""Draw a :class:`~volterra_sgd.curve.LossCurve` on log-log axes, with its parts.

    Parameters
    ----------
    curve : LossCurve
        The curve.  ``r = 0`` has no place on a log axis: it is drawn at ``r = 1/2``, and the
        axis label says so.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when None.
    parts : bool, default True
        Also draw :math:`F_o`, :math:`F_{pp}`, :math:`F_{ac}`, :math:`K_{pp}` and
        :math:`K_{ac}` (where positive), and the limit :math:`\mathcal P(\infty)`.
    label : str, optional
        Legend label of the loss.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt, volterra_sgd as vs
    >>> from volterra_sgd.plotting import plot_loss_curve
    >>> model = vs.PLRF(alpha=1.0, beta=0.7, v=1000, d=100)
    >>> curve = vs.loss_curve(model, [0, 10, 100, 1000],
    ...                       learning_rate=model.reference_learning_rate(0.5))
    >>> ax = plot_loss_curve(curve)
    >>> ax.get_xscale(), ax.get_yscale(), [line.get_label() for line in ax.get_lines()][1:]
    ('log', 'log', ['Fo', 'Fpp', 'Fac', 'Kpp', 'Kac', '$\\mathcal{P}(\\infty)$'])
    >>> ax.get_xlabel()
    'iteration r  (r = 0 drawn at r = 1/2)'
    >>> plt.close(ax.figure)
    """
    ax = _new_axes(ax)
    r = np.maximum(curve.r.astype(float), 0.5)
    ax.loglog(r, curve.loss, color="k", lw=2, label=label or r"$\mathcal{P}(r)$")
    if parts:
        styles = {"Fo": ("tab:gray", ":"), "Fpp": ("tab:blue", "--"),
                  "Fac": ("tab:green", "--"), "Kpp": ("tab:red", "-."),
                  "Kac": ("tab:purple", "-.")}
        for key, (col, ls) in styles.items():
            y = np.asarray(curve.parts[key])
            ok = y > 0
            if np.any(ok):
                ax.loglog(r[ok], y[ok], color=col, ls=ls, lw=1.2, label=key)
        ax.axhline(curve.limit_loss, color="tab:gray", lw=0.8,
                   label=r"$\mathcal{P}(\infty)$")
    lo = float(np.min(curve.loss[curve.loss > 0])) if np.any(curve.loss > 0) else 1e-300
    ax.set_ylim(lo * 1e-3, float(np.max(curve.loss)) * 2.0)
    ax.set_xlabel(_r_label(curve.r))
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    return ax


def _r_label(r) -> str:
    """Label of the iteration axis, saying where ``r = 0`` is drawn when it is present."""
    return "iteration r  (r = 0 drawn at r = 1/2)" if np.any(np.asarray(r) == 0) \
        else "iteration r"


def plot_loss_comparison(r, predicted, mean, stderr, ax=None, *, limit: float | None = None,
                         title: str | None = None, predicted_label: str = "prediction",
                         sample_label: str = "simulated SGD (mean ± 2 s.e.)",
                         predicted_r=None):
    """Draw a predicted loss curve against simulated SGD with a ±2 standard-error band.

    Parameters
    ----------
    r, predicted, mean, stderr : array_like
        Iterations, predicted loss, SGD mean and its standard error (``r = 0`` is drawn at
        ``r = 1/2``, and the axis label says so).
    predicted_r : array_like, optional
        Iterations of ``predicted`` when it is given on its own (denser) grid.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when None.
    limit : float, optional
        Horizontal line at the limit loss.
    title : str, optional
        Axes title.
    predicted_label, sample_label : str
        Legend labels.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt, numpy as np
    >>> from volterra_sgd.plotting import plot_loss_comparison
    >>> r = np.array([1, 10, 100])
    >>> ax = plot_loss_comparison(r, [1.0, 0.5, 0.2], [1.02, 0.49, 0.21], [0.02, 0.01, 0.01],
    ...                           limit=0.1, title="example")
    >>> ax.get_title(), ax.get_yscale()
    ('example', 'log')
    >>> plt.close(ax.figure)
    """
    ax = _new_axes(ax)
    x = np.maximum(np.asarray(r, dtype=float), 0.5)
    zero = np.any(np.asarray(r) == 0) or (predicted_r is not None
                                          and np.any(np.asarray(predicted_r) == 0))
    mean = np.asarray(mean)
    se = np.asarray(stderr)
    ax.fill_between(x, np.maximum(mean - 2 * se, 1e-300), mean + 2 * se, color="tab:orange",
                    alpha=0.3, lw=0)
    ax.loglog(x, mean, "o", color="tab:orange", ms=4, label=sample_label)
    xp = x if predicted_r is None else np.maximum(np.asarray(predicted_r, dtype=float), 0.5)
    ax.loglog(xp, predicted, "-", color="k", lw=1.5, label=predicted_label)
    if limit is not None:
        ax.axhline(limit, color="tab:gray", ls=":", lw=1, label="limit loss")
    ax.set_xlabel(_r_label([0] if zero else []))
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


# ==================================== compute-optimal frontier (docs/theory.md, Eq. (12.1))
def _isoflop(obj):
    return getattr(obj, "isoflop", obj)


def plot_compute_optimal_curves(result, ax=None, *, fit: bool = True):
    r"""Loss against compute :math:`f = dBr` for each model size, with the IsoFLOP frontier.

    Parameters
    ----------
    result : ComputeOptimalResult or IsoFLOPFrontier
        From :func:`volterra_sgd.compute_optimal` or :func:`~volterra_sgd.isoflop_frontier`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when None.
    fit : bool, default True
        Draw the fitted power law :math:`\mathcal P^\star \propto f^{-\eta}` over the window.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt, numpy as np, volterra_sgd as vs
    >>> from volterra_sgd.plotting import plot_compute_optimal_curves
    >>> f = np.logspace(0, 14, 300)
    >>> fr = vs.isoflop_frontier([(d, f, 1 / d + (f / d) ** -0.5) for d in np.logspace(1, 4, 9)],
    ...                          n_boot=0)
    >>> ax = plot_compute_optimal_curves(fr)
    >>> ax.get_xscale(), len(ax.get_lines()) >= 9
    ('log', True)
    >>> plt.close(ax.figure)
    """
    from matplotlib import colormaps

    fr = _isoflop(result)
    ax = _new_axes(ax)
    cmap = colormaps["viridis"]
    n = fr.d_values.size
    for i, d in enumerate(fr.d_values):
        ax.loglog(fr.flops, np.exp(fr.log_loss[i]), color=cmap(i / max(1, n - 1)), lw=0.9,
                  label=f"d = {d:g}" if i in (0, n - 1) else None)
    m = fr.interior
    ax.loglog(fr.flops[m], fr.loss_opt[m], "k-", lw=2.2, label="frontier P*(f)")
    if fit:
        w = fr.in_window
        f = fr.flops[w]
        lf = fr.loss_fit
        lo, hi = lf.exponent_ci
        ax.loglog(f, np.exp(lf.intercept) * f**lf.slope, "r--", lw=1.3,
                  label=f"fit: η = {lf.exponent:.3f} [{lo:.3f}, {hi:.3f}]")
    ax.set_xlabel("compute f = d B r")
    ax.set_ylabel("loss P")
    ax.legend(fontsize=8)
    return ax


def plot_optimal_size(result, ax=None, *, theory: float | None = None):
    r"""Compute-optimal model size :math:`d^\star(f)` with its power-law fit.

    Parameters
    ----------
    result : ComputeOptimalResult or IsoFLOPFrontier
        The frontier (a result's Approach 2 vertices are drawn too).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when None.
    theory : float, optional
        Predicted :math:`\xi`, drawn through the middle of the window (taken from
        ``result.theory`` for a ComputeOptimalResult).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt, numpy as np, volterra_sgd as vs
    >>> from volterra_sgd.plotting import plot_optimal_size
    >>> f = np.logspace(0, 14, 300)
    >>> fr = vs.isoflop_frontier([(d, f, 1 / d + (f / d) ** -0.5) for d in np.logspace(1, 4, 9)],
    ...                          n_boot=0)
    >>> ax = plot_optimal_size(fr, theory=1 / 3)
    >>> ax.get_xscale(), ax.get_yscale()
    ('log', 'log')
    >>> plt.close(ax.figure)
    """
    fr = _isoflop(result)
    if theory is None and hasattr(result, "theory"):
        theory = result.theory.get("xi")
    ax = _new_axes(ax)
    m = fr.interior
    ax.loglog(fr.flops[m], fr.d_opt[m], "o", ms=2.5, color="tab:blue", label="d*(f)")
    w = fr.in_window
    f = fr.flops[w]
    pf = fr.params_fit
    lo, hi = pf.exponent_ci
    ax.loglog(f, np.exp(pf.intercept) * f**pf.slope, "r-", lw=1.3,
              label=f"fit: ξ = {pf.exponent:.3f} [{lo:.3f}, {hi:.3f}]")
    a2 = getattr(result, "approach2", None)  # Chinchilla Approach 2, if computed
    if a2 is not None:
        lo2, hi2 = a2.params_exponent_ci
        ax.loglog(a2.flops, a2.d_opt, "x", ms=3, color="tab:green",
                  label=f"Approach 2: ξ = {a2.params_exponent:.3f} [{lo2:.3f}, {hi2:.3f}]")
    if theory is not None and f.size:
        fm = math.sqrt(f[0] * f[-1])
        dm = math.exp(pf.intercept) * fm**pf.slope
        ax.loglog(f, dm * (f / fm) ** theory, "k:", lw=1.3, label=f"theory ξ = {theory:.3f}")
    for d in fr.d_values:
        ax.axhline(d, color="0.9", lw=0.5, zorder=0)
    ax.set_xlabel("compute f")
    ax.set_ylabel("optimal model size d*")
    ax.legend(fontsize=8)
    return ax


def plot_isoflop_slices(result, ax=None, *, n_slices: int = 6):
    r"""IsoFLOP slices: loss against model size at fixed compute, with the minima.

    Parameters
    ----------
    result : ComputeOptimalResult or IsoFLOPFrontier
        The frontier.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when None.
    n_slices : int, default 6
        Number of compute budgets, log-spaced across the fit window.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt, numpy as np, volterra_sgd as vs
    >>> from volterra_sgd.plotting import plot_isoflop_slices
    >>> f = np.logspace(0, 14, 300)
    >>> fr = vs.isoflop_frontier([(d, f, 1 / d + (f / d) ** -0.5) for d in np.logspace(1, 4, 9)],
    ...                          n_boot=0)
    >>> ax = plot_isoflop_slices(fr, n_slices=4)
    >>> ax.get_xscale()
    'log'
    >>> plt.close(ax.figure)
    """
    from matplotlib import colormaps

    fr = _isoflop(result)
    ax = _new_axes(ax)
    idx = np.flatnonzero(fr.in_window)
    pick = idx[np.unique(np.round(np.linspace(0, idx.size - 1, n_slices)).astype(int))]
    cmap = colormaps["plasma"]
    for j, k in enumerate(pick):
        c = cmap(0.85 * j / max(1, pick.size - 1))
        ok = np.isfinite(fr.log_loss[:, k])
        ax.loglog(fr.d_values[ok], np.exp(fr.log_loss[ok, k]), "o-", ms=3, lw=1, color=c,
                  label=f"f = {fr.flops[k]:.2g}")
        ax.loglog(fr.d_opt[k], fr.loss_opt[k], "*", ms=11, color=c, mec="k", mew=0.5)
    ax.set_xlabel("model size d")
    ax.set_ylabel("loss at fixed compute")
    ax.legend(fontsize=7, ncol=2)
    return ax


# ======================================================================= critical batch size
def plot_critical_batch(result, ax=None):
    r"""Plot steps against examples to each target, with the fitted hyperbolas (Eq. (18.2)).

    Parameters
    ----------
    result : CriticalBatchResult
        From :func:`volterra_sgd.critical_batch_size`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt, volterra_sgd as vs
    >>> from volterra_sgd.plotting import plot_critical_batch
    >>> res = vs.critical_batch_size(vs.PLRF(1.0, 0.7, 200, 20), [1e-1, 3e-2],
    ...                              batch_sizes=[1, 4, 16], lr_fractions=[0.5])
    >>> ax = plot_critical_batch(res)
    >>> ax.get_xscale(), ax.get_yscale()
    ('log', 'log')
    >>> plt.close(ax.figure)
    """
    from matplotlib import colormaps

    ax = _new_axes(ax)
    cmap = colormaps["viridis"]
    n = result.target_losses.size
    B = np.geomspace(result.batch_sizes[0] / 4, result.batch_sizes[-1] * 4, 200)
    for i, L in enumerate(result.target_losses):
        c = cmap(0.9 * i / max(1, n - 1))
        ax.loglog(result.examples[i], result.steps[i], "o", ms=4, color=c,
                  label=f"L = {L:.3g}: B_crit = {result.critical_batch_size[i]:.3g}")
        S = result.min_steps[i] + result.min_examples[i] / B
        ax.loglog(B * S, S, "-", lw=1, color=c)
        ax.loglog(2 * result.min_examples[i], 2 * result.min_steps[i], "*", ms=9, color=c,
                  mec="k", mew=0.5)
    ax.set_xlabel("examples E = B S")
    ax.set_ylabel("steps S")
    ax.legend(fontsize=7)
    return ax


def plot_critical_batch_size(result, ax=None):
    r"""Plot the critical batch size against the target loss with its power law (Eq. (18.4)).

    Parameters
    ----------
    result : CriticalBatchResult
        From :func:`volterra_sgd.critical_batch_size`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib.pyplot as plt, volterra_sgd as vs
    >>> from volterra_sgd.plotting import plot_critical_batch_size
    >>> res = vs.critical_batch_size(vs.PLRF(1.0, 0.7, 200, 20), [1e-1, 3e-2],
    ...                              batch_sizes=[1, 4, 16], lr_fractions=[0.5])
    >>> ax = plot_critical_batch_size(res)
    >>> bool(ax.xaxis_inverted())
    True
    >>> plt.close(ax.figure)
    """
    ax = _new_axes(ax)
    L = result.target_losses
    ax.loglog(L, result.critical_batch_size, "o", color="tab:blue", label="B_crit = E_min/S_min")
    if math.isfinite(result.exponent):
        lo, hi = result.exponent_ci
        ci = f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else ""
        Lg = np.geomspace(L.min(), L.max(), 50)
        ax.loglog(Lg, result.prefactor * Lg ** -result.exponent, "r-", lw=1.2,
                  label=f"B_crit ∝ L^-b, b = {result.exponent:.3f}{ci}")
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel("target loss L (falling to the right)")
    ax.set_ylabel("critical batch size")
    ax.legend(fontsize=8)
    return ax


# ================================================= calibration on loss curves (Sec. 16)
def plot_curve_fit(runs, predictions, ax=None, *, title: str | None = None):
    """Draw measured loss curves and the calibrated predictions with their bands.

    Parameters
    ----------
    runs : sequence of dict
        Measured curves ``{"d", "r", "loss"[, "stderr"]}`` (as given to
        :func:`volterra_sgd.fit_loss_curves`); ``r = 0`` is drawn at ``r = 1/2``.
    predictions : sequence of CurvePrediction
        :meth:`volterra_sgd.CurveFit.predict` results (one colour per model size ``d``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when None.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np, matplotlib.pyplot as plt
    >>> from volterra_sgd import CurvePrediction
    >>> from volterra_sgd.plotting import plot_curve_fit
    >>> r = np.array([1, 10, 100])
    >>> pred = CurvePrediction(d=8, r=r, loss=np.array([1.0, 0.5, 0.2]), lower=np.array(
    ...     [0.9, 0.45, 0.18]), upper=np.array([1.1, 0.55, 0.22]), learning_rate=0.1)
    >>> ax = plot_curve_fit([{"d": 8, "r": r, "loss": [1.02, 0.49, 0.21]}], [pred])
    >>> ax.get_xscale(), len(ax.lines)
    ('log', 2)
    >>> plt.close(ax.figure)
    """
    ax = _new_axes(ax)
    ds = sorted({int(p.d) for p in predictions} | {int(r["d"]) for r in runs})
    colors = {d: f"C{k % 10}" for k, d in enumerate(ds)}
    for run in runs:
        x = np.maximum(np.asarray(run["r"], dtype=float), 0.5)
        y = np.asarray(run["loss"], dtype=float)
        se = run.get("stderr")
        c = colors[int(run["d"])]
        if se is not None:
            ax.errorbar(x, y, yerr=2 * np.asarray(se, dtype=float), fmt="o", ms=3, color=c,
                        lw=0.8, label=f"d = {run['d']}")
        else:
            ax.loglog(x, y, "o", ms=3, color=c, label=f"d = {run['d']}")
    for p in predictions:
        x = np.maximum(p.r.astype(float), 0.5)
        c = colors[int(p.d)]
        if np.all(np.isfinite(p.lower)):
            ax.fill_between(x, p.lower, p.upper, color=c, alpha=0.25, lw=0)
        ax.loglog(x, p.loss, "-", color=c, lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_r_label([0] if any(np.any(np.asarray(r["r"]) == 0) for r in runs) else []))
    ax.set_ylabel("loss (lines: calibrated model)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
