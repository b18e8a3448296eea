"""Benchmark: the critical-batch study at (alpha, beta) = (1.0, 0.7), d = 400 (default grids).

11 batch sizes x 11 learning rates = 121 closed-form curves on a 40-per-decade grid to
r = 1e10, five targets.  Baseline in the same process: one deterministic curve on the same
grid at B = 1 (so the ratio is the study's cost in curves).  Prints medians of the repeats of
the CPU seconds (``time.process_time``) and the wall time, and the machine load before and
after (on a shared machine the wall time depends on the load, the CPU time much less).

Run: python benchmarks/bench_critical_batch.py [--repeats 3] [--d 400]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np
from _util import print_table

import volterra_sgd as vs


def _timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - w0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--d", type=int, default=400)
    args = ap.parse_args()
    load0 = os.getloadavg()
    model = vs.PLRF(1.0, 0.7, 10 * args.d, args.d)
    targets = [1e-2, 3e-3, 1e-3, 3e-4, 1e-4]
    n = int(math.ceil(10 * 40)) + 1
    r = np.unique(np.r_[0.0, np.round(np.logspace(0.0, 10.0, n))]).astype(np.int64)
    gamma = 0.5 * vs.max_stable_learning_rate(model, 1)
    vs.critical_batch_size(model, targets[:1], batch_sizes=[1, 2, 4], lr_fractions=[0.5])  # warm
    base, study = [], []
    for _ in range(args.repeats):
        base.append(_timed(lambda: vs.loss_curve(model, r, learning_rate=gamma))[:2])
        study.append(_timed(lambda: vs.critical_batch_size(model, targets)))
    res = study[-1][2]
    med = [statistics.median(x) for x in zip(*[s[:2] for s in study], strict=True)]
    medb = [statistics.median(x) for x in zip(*base, strict=True)]
    print_table(f"critical_batch_size, d = {args.d}, {res.batch_sizes.size} x "
                f"{res.lr_fractions.size} curves (median of {args.repeats})",
                ["what", "CPU s", "wall s", "CPU ratio"],
                [["one curve (baseline)", medb[0], medb[1], 1.0],
                 ["study", med[0], med[1], med[0] / medb[0]]])
    print("B_crit:", np.round(res.critical_batch_size, 3).tolist(),
          f"b = {res.exponent:.4f} [{res.exponent_ci[0]:.4f}, {res.exponent_ci[1]:.4f}]")
    print(f"load before {load0[0]:.2f}, after {os.getloadavg()[0]:.2f} (1-min averages)")


if __name__ == "__main__":
    main()
