r"""The ``volterra-sgd demo`` job: the deterministic loss curve against simulated SGD.

It computes the deterministic loss curve :math:`\mathcal P(r)` of a PLRF model (no random draw;
docs/theory.md, Secs. 6-7), simulates one-pass SGD with a fresh embedding per run (exact-in-law
eigenbasis engine), prints a table of both with the statistical discrepancy, and writes a log-log
figure.
"""

from __future__ import annotations

import numpy as np

from .curve import loss_curve
from .model import PLRF
from .sgd import simulate_sgd

__all__ = ["run_demo"]


def run_demo(out: str | None = "volterra_sgd_demo.png", n_runs: int = 100, seed: int = 0,
             *, alpha: float = 1.0, beta: float = 0.7, v: int = 2000, d: int = 200,
             lr_scale: float = 0.5, max_iter: int = 20_000, points: int = 12) -> dict:
    r"""Run the demo, print its table and write the figure ``out`` (skip if ``None``).

    Parameters
    ----------
    out : str or None, default "volterra_sgd_demo.png"
        Figure file; None skips the figure.
    n_runs, seed : int
        Number of SGD runs (each with a fresh embedding) and their seed.
    alpha, beta, v, d : float, float, int, int
        The PLRF model.
    lr_scale : float
        :math:`g` of the learning rate :math:`\gamma = g / \sum_j j^{-2\alpha}`.
    max_iter, points : int
        Largest iteration and number of log-spaced iterations in the table.

    Returns
    -------
    dict
        The iterations, the deterministic loss, the SGD mean and standard error.

    Examples
    --------
    >>> from volterra_sgd.demo import run_demo
    >>> res = run_demo(None, n_runs=10, v=500, d=50, max_iter=1000, points=4)  # doctest: +ELLIPSIS
    PLRF alpha=1.0, beta=0.7, v=500, d=50; ...
    SGD: 10 runs, a fresh embedding W per run (seed 0)
           r  deterministic     SGD mean     stderr   ratio      z
    ...
    max |SGD/deterministic - 1| = ...
    >>> sorted(res), len(res["r"])
    (['deterministic', 'r', 'sgd', 'stderr'], 5)
    """
    model = PLRF(alpha=alpha, beta=beta, v=v, d=d)
    gamma = model.reference_learning_rate(lr_scale)
    r = np.unique(np.concatenate([[0], np.round(np.logspace(0, np.log10(max_iter), points))]))
    r = r.astype(np.int64)
    curve = loss_curve(model, r, learning_rate=gamma)
    sim = simulate_sgd(model, r, learning_rate=gamma, batch_size=1, n_runs=n_runs, rng=seed)
    # z-score; where SGD has no spread (r = 0) the difference is round-off: report 0
    z = (sim.loss - curve.loss) / np.where(sim.stderr > 1e-12 * sim.loss, sim.stderr, np.inf)
    print(f"PLRF alpha={alpha}, beta={beta}, v={v}, d={d}; gamma={gamma:.5g} (g={lr_scale}), "
          f"B=1; ||K||={curve.kernel_norm:.4f}, P(inf)={curve.limit_loss:.5g}")
    print(f"SGD: {n_runs} runs, a fresh embedding W per run (seed {seed})")
    print(f"{'r':>8} {'deterministic':>14} {'SGD mean':>12} {'stderr':>10} {'ratio':>7} {'z':>6}")
    for i in range(r.size):
        print(f"{r[i]:>8d} {curve.loss[i]:>14.6e} {sim.loss[i]:>12.6e} {sim.stderr[i]:>10.2e} "
              f"{sim.loss[i] / curve.loss[i]:>7.4f} {z[i]:>6.2f}")
    print(f"max |SGD/deterministic - 1| = {np.max(np.abs(sim.loss / curve.loss - 1)):.4f}")
    if out is not None:
        from .plotting import plot_loss_comparison

        dense = np.unique(np.r_[0, np.round(np.logspace(0, np.log10(max_iter), 200))])
        line = loss_curve(model, dense.astype(np.int64), learning_rate=gamma)
        ax = plot_loss_comparison(r, line.loss, sim.loss, sim.stderr, predicted_r=line.r,
                                  limit=curve.limit_loss, predicted_label="deterministic P(r)",
                                  title=f"PLRF α={alpha}, β={beta}, v={v}, d={d}: "
                                  f"{n_runs} SGD runs")
        from .io import _save_figure

        _save_figure(ax.figure, out, dpi=120, bbox_inches="tight")
        print(f"figure written to {out}")
    return {"r": r, "deterministic": curve.loss, "sgd": sim.loss, "stderr": sim.stderr}
