"""Benchmark: the default compute-optimal study (alpha = beta = 0.7) end to end, before/after.

Target (speed issue): the default ``compute_optimal(0.7, 0.7)`` (17 sizes 256..65536,
v = 10 d, f <= 1e13, 400 bootstrap draws, Kaplan, Chinchilla and Approach 2 fits, the local
pool of 2 threads) in <= 15 s on 2 cores; it took 81 s (51 CPU-s) before.

Both paths run in this process, alternating, ``--repeats`` times each:

* "current": the package as it is;
* "baseline": the full spectral quadrature everywhere (``forcing.COMPRESS = False``) and the
  Chinchilla bootstrap refitted by L-BFGS-B from the optimum (the previous code path, kept
  here), without Approach 2.

Printed per run: wall time, CPU seconds (``time.process_time``: this process and its
threads), the split (sweep as seen by the caller; spectral stage and solver summed over the
threads; fits), the exponents; then medians, the ratio baseline/current, the per-d split of
the median current run and the load average (``os.getloadavg``) before and after.

Run: python benchmarks/bench_compute_optimal.py [--repeats 3] [--no-baseline] [--jobs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

from _util import print_table

import volterra_sgd as vs


@contextlib.contextmanager
def baseline_path():
    """The previous route: uncompressed measure, L-BFGS-B bootstrap restarts."""
    from volterra_sgd import forcing

    co_mod = sys.modules["volterra_sgd.compute_optimal"]
    saved = (getattr(forcing, "COMPRESS", None), co_mod._chinchilla_refine)

    def lbfgs_restart(logN, logD, logL, delta, theta0):
        return co_mod._chinchilla_solve(logN, logD, logL, delta, [theta0]).x

    forcing.COMPRESS = False
    co_mod._chinchilla_refine = lbfgs_restart
    try:
        yield
    finally:
        forcing.COMPRESS, co_mod._chinchilla_refine = saved


def one_run(n_jobs, baseline):
    from volterra_sgd import forcing

    forcing._cached_measure.cache_clear()  # every run pays its spectral stage
    ctx = baseline_path() if baseline else contextlib.nullcontext()
    with ctx:
        c0, t0 = time.process_time(), time.perf_counter()
        co = vs.compute_optimal(0.7, 0.7, n_jobs=n_jobs, approach2=not baseline)
        return time.perf_counter() - t0, co, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline path")
    args = ap.parse_args()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    vs.warmup()
    t_warm = time.perf_counter() - t0
    runs = {"current": [], "baseline": []}
    for _ in range(args.repeats):
        runs["current"].append(one_run(args.jobs, False))
        if not args.no_baseline:
            runs["baseline"].append(one_run(args.jobs, True))
    load1 = os.getloadavg()
    rows = []
    for name, rs in runs.items():
        for i, (wall, co, cpu) in enumerate(rs):
            s = co.seconds
            rows.append([f"{name} {i + 1}", wall, cpu, s["sweep"], s["spectral"], s["solver"],
                         s["fits"], f"{co.loss_exponent:.4f}", f"{co.params_exponent:.4f}"])
    co = runs["current"][0][1]
    sw = co.sweep
    print(f"default study: {sw.d_values.size} sizes d = {sw.d_values[0]}..{sw.d_values[-1]}, "
          f"flops up to {sw.params['max_flops']:.0e}, {co.isoflop.n_boot} bootstrap draws, "
          f"{args.jobs} threads; warmup() {t_warm:.1f} s")
    print_table("alpha = beta = 0.7 (seconds; spectral/solver summed over threads)",
                ["run", "wall", "cpu", "sweep", "spectral", "solver", "fits", "eta", "xi"], rows)
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[2] for r in v))
           for k, v in runs.items() if v}
    for k, (w, c) in med.items():
        print(f"median {k}: {w:.1f} s wall, {c:.1f} CPU-s over {len(runs[k])} runs")
    if "baseline" in med:
        print(f"baseline / current: wall {med['baseline'][0] / med['current'][0]:.2f}x, "
              f"CPU {med['baseline'][1] / med['current'][1]:.2f}x (target: current <= 15 s)")
        b = runs["baseline"][0][1]
        print(f"exponents: current eta {co.loss_exponent:.6f} xi {co.params_exponent:.6f}; "
              f"baseline eta {b.loss_exponent:.6f} xi {b.params_exponent:.6f}")
    k = min(range(len(runs["current"])),
            key=lambda i: abs(runs["current"][i][0] - med["current"][0]))
    sw = runs["current"][k][1].sweep
    print_table("per model size (median current run)", ["d", "spectral s", "solver s", "points"],
                [[int(d), float(a), float(b), int(r.size)] for d, a, b, r in
                 zip(sw.d_values, sw.seconds_spectral, sw.seconds_solver, sw.r, strict=True)])
    print(f"\nload average (1, 5, 15 min) before {load0}, after {load1}; cpus {os.cpu_count()}")


if __name__ == "__main__":
    main()
