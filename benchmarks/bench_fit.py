"""Benchmark: calibration of (alpha, beta) and the nuisance scales on 6 loss curves.

Workload (speed target: <= 60 s on 2 cores): 6 curves with 200 points each, d = 32 ... 1024
(factor 2 apart), r = 1 ... 3e5 log-spaced, from vs.loss_curve at alpha = 1.0, beta = 0.7
(g = 0.35, loss scale 2, irreducible loss 1e-5) times log-normal noise of 2% (fixed seed),
stderr = 2% of the loss.  ``vs.fit_loss_curves`` with its defaults (6 x 6 grid, 400 bootstrap
replicates), the in-memory measure cache cleared before every repeat (each repeat pays every
spectral stage).

Baseline in the same process: the six deterministic curves at the true parameters
(``vs.loss_curve`` per size, cache cleared): the fit's cost is reported as a multiple of it.
Reported: medians of --repeats runs of wall and CPU seconds (time.process_time, all threads),
the number of spectral stages, the errors of alpha and beta, and the load average (uptime)
before and after.

Run: python benchmarks/bench_fit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from _util import print_table

import volterra_sgd as vs
from volterra_sgd import forcing

ALPHA, BETA, G, A, E = 1.0, 0.7, 0.35, 2.0, 1e-5
SIZES = (32, 64, 128, 256, 512, 1024)


def iterations(n=200):
    """Exactly n distinct log-spaced integers from 1 to about 3e5."""
    m = n
    while True:
        r = np.unique(np.round(np.geomspace(1, 3e5, m))).astype(np.int64)
        if r.size >= n:
            return r[np.round(np.linspace(0, r.size - 1, n)).astype(int)]
        m += 10


def curves(r):
    out = []
    for d in SIZES:
        m = vs.PLRF(ALPHA, BETA, 10 * d, d)
        out.append(vs.loss_curve(m, r, learning_rate=m.reference_learning_rate(G)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    load0 = os.getloadavg()
    r = iterations()
    rng = np.random.default_rng(0)
    runs = [{"d": c.model.d, "r": r,
             "loss": (A * c.loss + E) * np.exp(0.02 * rng.standard_normal(r.size)),
             "stderr": 0.02 * (A * c.loss + E)} for c in curves(r)]
    vs.fit_loss_curves(runs[:3], grid=(2, 2), n_bootstrap=10)  # compile outside the timing
    rows, base, fit_t = [], [], []
    for k in range(args.repeats):
        forcing._cached_measure.cache_clear()
        t0, c0 = time.perf_counter(), time.process_time()
        curves(r)
        base.append((time.perf_counter() - t0, time.process_time() - c0))
        forcing._cached_measure.cache_clear()
        t0, c0 = time.perf_counter(), time.process_time()
        fit = vs.fit_loss_curves(runs)
        fit_t.append((time.perf_counter() - t0, time.process_time() - c0))
        rows.append([k + 1, fit_t[-1][0], fit_t[-1][1], base[-1][0], fit.n_stages,
                     fit.alpha - ALPHA, fit.beta - BETA, fit.status])
    print_table(f"fit_loss_curves: 6 curves x {r.size} points, d = {SIZES[0]}..{SIZES[-1]}",
                ["repeat", "fit wall s", "fit CPU s", "6 curves wall s", "stages",
                 "alpha err", "beta err", "status"], rows)
    fw = statistics.median(t[0] for t in fit_t)
    fc = statistics.median(t[1] for t in fit_t)
    bw = statistics.median(t[0] for t in base)
    bc = statistics.median(t[1] for t in base)
    print(f"\nmedian fit: {fw:.1f} s wall, {fc:.1f} CPU s; baseline (6 curves at the truth): "
          f"{bw:.2f} s wall, {bc:.2f} CPU s; ratio {fw / bw:.0f}x wall, {fc / bc:.0f}x CPU")
    print(f"target <= 60 s: {'PASS' if fw <= 60 else 'FAIL'} (wall)")
    print(f"load average before {load0[0]:.2f} {load0[1]:.2f}, after "
          f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
