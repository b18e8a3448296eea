"""Benchmark: dense output, the loss at every r = 0 .. 1.3e6 (d = 200, alpha = beta = 0.7).

Target: <= 2 s warm.  Along equally spaced r the closed form and the forcing/kernel parts
advance each term by one multiplication (exact re-evaluation every 64 points) and drop the
terms that no longer matter.  Baseline in the same process: the per-point evaluation of the
closed form alone, ``sum_i R_i exp(r log1p(-mu_i))`` for every (step, mode), with the
``numba_api.secular_evaluate`` kernel on the same roots (the route every r took before; the
whole ``loss_curve`` then also built an exp matrix for the parts and took an O(n^2) error
envelope: 23 s wall / 25 CPU-s for r <= 1.3e5, and did not finish at 1.3e6).  Accuracy: the
dense curve against the per-point evaluation at 2000 points, and the largest reported
relative error.

Run: python benchmarks/bench_dense.py [--repeats 3] [--n 1300000]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from _util import print_table, timed

import volterra_sgd as vs
from volterra_sgd._secular import solve_exponential_volterra
from volterra_sgd.curve import sum_of_exponentials
from volterra_sgd.numba_api import secular_evaluate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=1_300_000)
    args = ap.parse_args()
    model = vs.PLRF(alpha=0.7, beta=0.7, v=2000, d=200)
    g = model.reference_learning_rate(0.5)
    r = np.arange(args.n + 1)
    vs.loss_curve(model, np.arange(200), learning_rate=g)  # compile / load the kernels
    load0 = os.getloadavg()[0]
    w_curve, c_curve, curve = timed(lambda: vs.loss_curve(model, r, learning_rate=g),
                                    args.repeats)

    rep = sum_of_exponentials(model, learning_rate=g)
    args_ = (rep["one_minus_q"], rep["forcing_weights"], rep["kernel_weights"],
             rep["limit_loss"])
    w_dense, c_dense, (P, info) = timed(lambda: solve_exponential_volterra(*args_, r),
                                        args.repeats)
    mu, R = np.ascontiguousarray(info["mu"]), np.ascontiguousarray(info["residues"])

    def per_point():
        out = np.empty(r.size)
        secular_evaluate(mu, R, info["p_inf"], r, out)
        return out

    w_pp, c_pp, P_pp = timed(per_point, args.repeats)
    pick = np.linspace(0, args.n, 2000).astype(np.int64)
    # the plain form P(inf) + sum R nu^r cancels where P(inf) dominates: compare where it
    # is accurate, i.e. relative to the sum of magnitudes
    scale = np.abs(info["p_inf"]) + np.abs(np.exp(np.multiply.outer(pick.astype(float),
                                                                     np.log1p(-mu))) @ np.abs(R))
    agree = float(np.max(np.abs(P[pick] - P_pp[pick]) / scale))
    load1 = os.getloadavg()[0]
    print_table(
        f"dense output: every r <= {args.n}, PLRF(0.7, 0.7, v=2000, d=200), "
        f"gamma = reference_learning_rate(0.5); median of {args.repeats}; load "
        f"{load0:.1f} -> {load1:.1f} (uptime, 1 min)",
        ["item", "wall s", "CPU s", "note"],
        [["loss_curve(model, np.arange(n + 1))", w_curve, c_curve, "target <= 2 s"],
         ["  closed form, recurrence (one solve)", w_dense, c_dense, f"{mu.size} modes"],
         ["  closed form, per point (baseline)", w_pp, c_pp,
          f"exp per (step, mode); x{c_pp / c_dense:.0f} CPU"],
         ["dense vs per point, max |diff| / sum of magnitudes", agree, "", "2000 points"],
         ["loss_curve: max loss_error / loss", float(np.max(curve.loss_error / curve.loss)),
          "", f"success={curve.info.success}"]],
    )


if __name__ == "__main__":
    main()
