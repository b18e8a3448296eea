"""Benchmark: the package's thread pool (nogil kernels) against serial runs, in one process.

Two workloads, each run serially and threaded in alternation (so that both see the same
machine load), ``--repeats`` times:

* ``sweep``: :func:`volterra_sgd.sweep_loss_curves` over a few model sizes, ``n_jobs=1``
  against the default (``numba.get_num_threads()`` threads);
* ``simulate_sgd``: fresh embeddings per run (``W=None``), whose spectra are computed on the
  thread pool and whose SGD runs use ``prange``; serial = ``numba.set_num_threads(1)``.

For each: median wall seconds, the ratio serial/threaded (the speed-up; 2 is the ceiling
on 2 cores), the CPU seconds of the process (``resource.getrusage``, all threads), and a
check that the results are bit-identical.  The load average (``os.getloadavg``) before and
after says how busy the machine was: on a shared machine the speed-up is what is left
after the other jobs.

Run: python benchmarks/bench_parallel.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numba
import numpy as np
from _util import print_table

import volterra_sgd as vs


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _timed(fn):
    c0, t0 = _cpu(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, _cpu() - c0, out


def sweep(n_jobs):
    return vs.sweep_loss_curves(0.7, 0.7, [256, 362, 512, 724], max_flops=1e11,
                                points_per_decade=20, n_jobs=n_jobs)


def sgd(threads):
    model = vs.PLRF(alpha=1.0, beta=0.7, v=2000, d=200)
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return vs.simulate_sgd(model, [0, 100, 2000], n_runs=32, rng=0,
                               learning_rate=model.reference_learning_rate(0.5))
    finally:
        numba.set_num_threads(old)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n = numba.get_num_threads()
    load0 = os.getloadavg()
    vs.warmup()
    sweep(1)  # first calls: caches of spectral nodes etc.
    sgd(1)
    cases = {
        "sweep (4 sizes)": (lambda: sweep(1), lambda: sweep(None),
                            lambda a, b: all(np.array_equal(x, y)
                                             for x, y in zip(a.loss, b.loss, strict=True))),
        "simulate_sgd (W=None, 32 runs)": (lambda: sgd(1), lambda: sgd(n),
                                           lambda a, b: np.array_equal(a.losses, b.losses)),
    }
    rows = []
    for name, (serial, threaded, same) in cases.items():
        ts, tt, cs, ct, ratios, identical = [], [], [], [], [], True
        for _ in range(args.repeats):
            w1, c1, a = _timed(serial)
            w2, c2, b = _timed(threaded)
            ts.append(w1)
            tt.append(w2)
            cs.append(c1)
            ct.append(c2)
            ratios.append(w1 / w2)
            identical &= bool(same(a, b))
        rows.append([name, statistics.median(ts), statistics.median(tt),
                     statistics.median(ratios), statistics.median(cs), statistics.median(ct),
                     "yes" if identical else "NO"])
    load1 = os.getloadavg()
    print_table(f"serial vs {n} threads (medians over {args.repeats} alternating repeats)",
                ["workload", "serial s", "threads s", "speed-up", "cpu s serial",
                 "cpu s threads", "bit-identical"], rows)
    print(f"\nload average (1, 5, 15 min) before {load0}, after {load1}; "
          f"cpus {os.cpu_count()}, numba threads {n}")


if __name__ == "__main__":
    main()
