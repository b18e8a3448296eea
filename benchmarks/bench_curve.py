"""Benchmark: full deterministic loss curve (spectral stage + compression + secular solve).

Workload (speed targets): alpha = beta = 0.7, v = 10 d, 200 log-spaced r up to 1e12, the
default learning rate ``model.reference_learning_rate()``, every run from an empty measure
cache (the spectral stage included), Numba warm.  Targets: d = 1e5 <= 1.5 s; d = 1e6 <= 15 s
and <= 1 GB.

Each size runs the current route ("new": compressed measure, Euler--Maclaurin heads) and,
in the same process, the previous route ("old": ``forcing.COMPRESS = False`` and
``contour.EM_MIN_HEAD = inf``) for d <= --baseline-max.  Reported: medians of --repeats runs
of wall and CPU seconds (time.process_time, both threads), the peak of numpy allocations
during one run (tracemalloc) and the process's peak RSS after the row, the number of modes,
the largest relative difference new vs old and the new route's error estimate.  A fixed
reference workload (sorting 4e6 random doubles) is timed in the same process, before and
after, and the d = 1e5 time is also given as a multiple of it.

Run: python benchmarks/bench_curve.py [--repeats 3] [--sizes 1e3,1e4,1e5,1e6]
     [--baseline-max 1e5] [--v-inf]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time
import tracemalloc

import numpy as np
from _util import print_table, timed

import volterra_sgd as vs
from volterra_sgd import contour, forcing

R = np.unique(np.round(np.logspace(0, 12, 200)).astype(np.int64))


def set_route(new: bool) -> None:
    forcing.COMPRESS = new
    contour.EM_MIN_HEAD = 2048.0 if new else math.inf


def one_curve(model):
    forcing._cached_measure.cache_clear()  # include the spectral stage every time
    return vs.loss_curve(model, R, learning_rate=model.reference_learning_rate(),
                         max_cost=math.inf)


def reference_workload():
    x = np.random.default_rng(0).random(4_000_000)
    return np.sort(x)


def peak_numpy_mb(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    ap.add_argument("--baseline-max", type=float, default=1e5,
                    help="run the old route only up to this d (it takes minutes at 1e6)")
    ap.add_argument("--v-inf", action="store_true", help="v = inf instead of 10 d")
    args = ap.parse_args()
    t0 = time.perf_counter()
    vs.warmup()
    one_curve(vs.PLRF(0.7, 0.7, 20_000, 2000))  # compile the new kernels too
    rows = [["warmup (compile or cache load)", "", "", time.perf_counter() - t0, "", "", "", ""]]
    t_ref, c_ref, _ = timed(reference_workload, 5)
    rows.append(["reference: np.sort of 4e6 doubles", "", "", t_ref, c_ref, "", "", ""])
    ratio = None
    for d in (int(float(s)) for s in args.sizes.split(",")):
        model = vs.PLRF(alpha=0.7, beta=0.7, v=math.inf if args.v_inf else 10 * d, d=d)
        res = {}
        for new in (False, True):
            if not new and d > args.baseline_max:
                continue
            set_route(new)
            try:
                wall, cpu, curve = timed(lambda: one_curve(model), args.repeats)
                mem = peak_numpy_mb(lambda: one_curve(model))
            finally:
                set_route(True)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            res[new] = curve
            note = f"est {curve.info.error_estimate:.1e}"
            if new and False in res:
                old = res[False]
                diff = np.max(np.abs(curve.loss - old.loss) / old.loss)
                honest = bool(np.all(np.abs(curve.loss - old.loss) <= curve.loss_error))
                note += f"; max rel diff to old {diff:.1e} (within estimate: {honest})"
            if new and d == 100_000:
                ratio = wall / t_ref
                note += f"; {ratio:.1f} x reference"
            rows.append([f"d={d:.0e} v={model.v:.0e} {'new' if new else 'old'}",
                         curve.info.n_modes, args.repeats, wall, cpu, f"{mem:.0f}",
                         f"{rss:.0f}", note])
            print(rows[-1], flush=True)
    t_ref2, c_ref2, _ = timed(reference_workload, 5)
    rows.append(["reference again (load drift)", "", "", t_ref2, c_ref2, "", "", ""])
    load = os.getloadavg()
    print_table(f"loss_curve benchmark, alpha = beta = 0.7 (medians; 2 cores; load "
                f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f})",
                ["case", "modes", "runs", "wall s", "CPU s", "numpy peak MB", "max RSS MB",
                 "note"], rows)


if __name__ == "__main__":
    main()
