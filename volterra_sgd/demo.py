"""The ``volterra-sgd demo`` job: the exact expected loss against simulated SGD.

It draws one embedding of a PLRF model, computes the exact expected loss
:math:`E[P(\\theta_r) \\mid W]` from the Volterra equation (THEORY.md §3.1), simulates
one-pass SGD on the same embedding, prints a table of both with the statistical
discrepancy, and writes a log-log figure.
"""

from __future__ import annotations

import numpy as np

from .exact import expected_loss_given_w
from .model import PLRF
from .sgd import simulate_sgd

__all__ = ["run_demo"]


def run_demo(out: str | None = "volterra_sgd_demo.png", n_runs: int = 200, seed: int = 0,
             *, alpha: float = 1.0, beta: float = 0.7, v: int = 2000, d: int = 200,
             lr_scale: float = 0.5, max_iter: int = 20_000, points: int = 12) -> dict:
    """Run the demo, print its table and write the figure ``out`` (skip if ``None``).

    Returns
    -------
    dict
        The iterations, the exact loss, the SGD mean and standard error.
    """
    model = PLRF(alpha=alpha, beta=beta, v=v, d=d)
    W = model.sample_embedding(rng=seed)
    gamma = model.reference_learning_rate(lr_scale)
    r = np.unique(np.concatenate([[0], np.round(np.logspace(0, np.log10(max_iter), points))]))
    r = r.astype(np.int64)
    exact = expected_loss_given_w(model, W, r, learning_rate=gamma)
    sim = simulate_sgd(model, r, learning_rate=gamma, batch_size=1, n_runs=n_runs,
                       rng=seed + 1, W=W)
    z = (sim.loss - exact.loss) / np.where(sim.stderr > 0, sim.stderr, np.inf)
    print(f"PLRF alpha={alpha}, beta={beta}, v={v}, d={d}; gamma={gamma:.5g} (g={lr_scale}), "
          f"B=1; ||K||={exact.kernel_norm:.4f}, P(inf)={exact.limit_loss:.5g}")
    print(f"{'r':>8} {'exact E[P|W]':>14} {'SGD mean':>12} {'stderr':>10} {'ratio':>7} {'z':>6}")
    for i in range(r.size):
        print(f"{r[i]:>8d} {exact.loss[i]:>14.6e} {sim.loss[i]:>12.6e} {sim.stderr[i]:>10.2e} "
              f"{sim.loss[i] / exact.loss[i]:>7.4f} {z[i]:>6.2f}")
    print(f"max |z| = {np.max(np.abs(z)):.2f} over {r.size} iterations ({n_runs} SGD runs)")
    if out is not None:
        from .plotting import plot_loss_comparison

        ax = plot_loss_comparison(r, exact.loss, sim.loss, sim.stderr,
                                  limit=exact.limit_loss,
                                  title=f"PLRF α={alpha}, β={beta}, v={v}, d={d}")
        ax.figure.savefig(out, dpi=120, bbox_inches="tight")
        print(f"figure written to {out}")
    return {"r": r, "exact": exact.loss, "sgd": sim.loss, "stderr": sim.stderr}
