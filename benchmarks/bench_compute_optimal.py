"""Benchmark: the default compute-optimal study (alpha = beta = 0.7) end to end.

Target (compute-optimal issue): >= 12 model sizes up to d >= 1e4, flops up to >= 1e12,
completes in <= 3 minutes on 2 cores.  Default settings: 17 sizes 256..65536, v = 10 d,
f <= 1e13, 400 bootstrap draws, Chinchilla fit; the local pool of 2 threads.

Prints, for each repeat, the wall time and its split: the sweep as seen by the caller, the
spectral stage and the closed-form solver (summed over the worker threads), the fits
(frontier + bootstrap, Kaplan, Chinchilla) and the CPU seconds used (this process and its
workers: on a shared machine the wall time depends on the load, the CPU time much less); then
the per-d split of the median run, and the machine load (``os.getloadavg``) before and
after.  ``--serial`` adds a baseline in the same process: the same sweep with ``n_jobs=1``
(the ratio is the parallel speed-up).

Run: python benchmarks/bench_compute_optimal.py [--repeats 3] [--serial]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _util import print_table

import volterra_sgd as vs


def _cpu():
    import resource

    tot = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        tot += ru.ru_utime + ru.ru_stime
    return tot


def one_run(n_jobs):
    c0, t0 = _cpu(), time.perf_counter()
    co = vs.compute_optimal(0.7, 0.7, n_jobs=n_jobs)
    return time.perf_counter() - t0, co, _cpu() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--serial", action="store_true", help="also time n_jobs=1 (baseline)")
    args = ap.parse_args()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    vs.warmup()
    t_warm = time.perf_counter() - t0
    runs = [one_run(2) for _ in range(args.repeats)]
    rows = []
    for i, (wall, co, cpu) in enumerate(runs):
        s = co.seconds
        rows.append([f"run {i + 1} (2 threads)", wall, cpu, s["sweep"], s["spectral"],
                     s["solver"], s["fits"], f"{co.loss_exponent:.4f}",
                     f"{co.params_exponent:.4f}"])
    if args.serial:
        wall, co, cpu = one_run(1)
        s = co.seconds
        rows.append(["baseline n_jobs=1", wall, cpu, s["sweep"], s["spectral"], s["solver"],
                     s["fits"], f"{co.loss_exponent:.4f}", f"{co.params_exponent:.4f}"])
    load1 = os.getloadavg()
    co = runs[0][1]
    sw = co.sweep
    print(f"default study: {sw.d_values.size} sizes d = {sw.d_values[0]}..{sw.d_values[-1]}, "
          f"flops up to {sw.params['max_flops']:.0e}, {co.isoflop.n_boot} bootstrap draws; "
          f"warmup() {t_warm:.1f} s")
    print_table("alpha = beta = 0.7, wall seconds (spectral/solver summed over workers)",
                ["run", "total", "cpu", "sweep", "spectral", "solver", "fits", "eta", "xi"],
                rows)
    med = statistics.median(r[0] for r in runs)
    print(f"\nmedian total over {len(runs)} runs: {med:.1f} s (target <= 180 s on 2 cores)")
    if args.serial:
        print(f"parallel speed-up of the sweep vs n_jobs=1: "
              f"{rows[-1][3] / statistics.median(r[1].seconds['sweep'] for r in runs):.2f} "
              "(about 1 when other jobs already saturate the cores)")
    cpu = statistics.median(r[2] for r in runs)
    print(f"CPU seconds per study (this process + workers): {cpu:.1f}; on 2 idle cores the "
          f"wall time would be about {cpu / 2:.0f}-{cpu:.0f} s")
    k = min(range(len(runs)), key=lambda i: abs(runs[i][0] - med))
    sw = runs[k][1].sweep
    print_table("per model size (median run)", ["d", "spectral s", "solver s", "points"],
                [[int(d), float(a), float(b), int(r.size)] for d, a, b, r in
                 zip(sw.d_values, sw.seconds_spectral, sw.seconds_solver, sw.r, strict=True)])
    print(f"\nload average (1, 5, 15 min) before {load0}, after {load1}; cpus {os.cpu_count()}")


if __name__ == "__main__":
    main()
