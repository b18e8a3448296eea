"""Benchmark: full deterministic loss curve (spectral stage + secular solve).

Targets (loss-curve issue): 200 log-spaced r up to 1e12, including the spectral stage,
d = 1000, v = 1e4: <= 2 s warm; d = 1e5, v = 1e6: <= 60 s warm.  For comparison, in the
same run, the exact step-by-step recursion on the same representation up to r = 1e6.

Run: python benchmarks/bench_curve.py [--repeats 5] [--skip-large]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _util import median_time, print_table

import volterra_sgd as vs
from volterra_sgd.curve import sum_of_exponentials
from volterra_sgd.exact import _mode_recursion_kernel
from volterra_sgd.forcing import _cached_measure


def full_curve(model, r, g):
    _cached_measure.cache_clear()  # include the spectral stage every time
    return vs.loss_curve(model, r, learning_rate=g)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    vs.warmup()
    t_warm = time.perf_counter() - t0
    r = np.unique(np.round(np.logspace(0, 12, 200)).astype(np.int64))
    rows = [["warmup() (compile or cache load)", "", t_warm, "", ""]]
    sizes = [(1000, 10_000, args.repeats, "<= 2 s")]
    if not args.skip_large:
        sizes.append((100_000, 1_000_000, max(3, args.repeats // 2), "<= 60 s"))
    for d, v, rep, target in sizes:
        model = vs.PLRF(alpha=1.0, beta=0.7, v=v, d=d)
        g = model.reference_learning_rate(0.5)
        t_full, _ = median_time(lambda: full_curve(model, r, g), rep)
        curve = vs.loss_curve(model, r, learning_rate=g)
        t_solve, _ = median_time(lambda: vs.loss_curve(model, r, learning_rate=g), rep)
        rows.append([f"full curve d={d} v={v} (200 r up to 1e12)", curve.info.n_modes, t_full,
                     target, ""])
        rows.append([f"  of which secular solve + evaluation", "", t_solve, "", ""])
        # the exact step-by-step recursion on the same representation, to r = 1e6
        rep_ = sum_of_exponentials(model, learning_rate=g)
        r6 = r[r <= 10**6]

        def step():
            out = np.empty(r6.size)
            rho = np.array(rep_["forcing_weights"])
            _mode_recursion_kernel(rep_["q"], rep_["kernel_weights"], rep_["limit_loss"], rho, 0,
                                   r6, out)
            return out

        t_step, _ = median_time(step, 3)
        err = float(np.max(np.abs(step() / curve.loss[: r6.size] - 1)))
        rows.append([f"  step recursion to r=1e6 (same nodes)", "", t_step, "",
                     f"x{t_step / t_solve:.0f} slower; max rel diff {err:.1e}"])
    print_table(f"loss_curve benchmark (median of runs; machine: 2 cores)",
                ["case", "nodes", "seconds", "target", "note"], rows)


if __name__ == "__main__":
    main()
