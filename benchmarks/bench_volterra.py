"""Benchmark: generic Volterra solver, direct O(n^2) sum against the O(n log^2 n) FFT scheme.

Targets: n = 2**20 by the FFT scheme in <= 3 s.  Prints the first-call time (a cold
compile, measured in a subprocess with an empty Numba cache, and the first call of this
process, which may load the on-disk cache), medians of several runs after an explicit
warm-up, the direct/FFT ratio at n = 2**14, the accuracy of the FFT scheme against the
direct sum, and the crossover that sets ``method="auto"``.

Run: python benchmarks/bench_volterra.py [--repeats 5] [--no-cold]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _util import median_time, print_table

from volterra_sgd.volterra import _AUTO_DIRECT_MAX, solve_volterra

_COLD = """
import time, numpy as np
t0 = time.perf_counter()
from volterra_sgd.volterra import solve_volterra
solve_volterra(np.ones(3000), np.full(3000, 1e-4), method="fft")
solve_volterra(np.ones(3), np.full(3, 1e-4), method="direct")
print(time.perf_counter() - t0)
"""


def cold_compile_seconds() -> float:
    """First call of both methods in a fresh interpreter with an empty Numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", _COLD], env=env, check=True,
                             capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def problem(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random positive F and K with sum(K) = 0.9."""
    rng = np.random.default_rng(seed)
    F = rng.random(n) + 0.01
    K = rng.random(n)
    return F, K * (0.9 / K.sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-compile subprocess")
    args = ap.parse_args()

    cold = float("nan") if args.no_cold else cold_compile_seconds()
    t0 = time.perf_counter()
    solve_volterra(np.ones(3000), np.full(3000, 1e-4), method="fft")  # explicit warm-up
    solve_volterra(np.ones(3), np.full(3, 1e-4), method="direct")
    first_call = time.perf_counter() - t0

    rows = [["first call, cold compile (empty cache, subprocess)", "", cold, ""],
            ["first call in this process (compile or cache load)", "", first_call, ""]]
    F, K = problem(2**14)
    t_direct, _ = median_time(lambda: solve_volterra(F, K, method="direct"), args.repeats)
    t_fft, _ = median_time(lambda: solve_volterra(F, K, method="fft"), args.repeats)
    err14 = np.max(np.abs(solve_volterra(F, K, method="fft") / solve_volterra(F, K, method="direct")
                          - 1))
    rows += [["direct", 2**14, t_direct, ""], ["fft", 2**14, t_fft, ""],
             ["ratio direct/fft", 2**14, t_direct / t_fft, ""]]
    F, K = problem(2**20)
    t_big, _ = median_time(lambda: solve_volterra(F, K, method="fft"), args.repeats)
    rows += [["fft", 2**20, t_big, "<= 3 s"]]
    print_table(f"solve_volterra, random positive F, K (sum K = 0.9); median of {args.repeats} "
                "runs after warm-up", ["case", "n", "seconds", "target"], rows)
    print(f"max relative difference fft vs direct at n = 2**14: {err14:.2e}")

    cross = []
    for n in (512, 768, 1024, 1280, 1536, 2048, 3072):
        F, K = problem(n)
        reps = max(args.repeats, 20)
        td, _ = median_time(lambda F=F, K=K: solve_volterra(F, K, method="direct"), reps)
        tf, _ = median_time(lambda F=F, K=K: solve_volterra(F, K, method="fft"), reps)
        cross.append([n, 1e3 * td, 1e3 * tf, td / tf])
    print_table(f"crossover (method='auto' uses direct for n <= {_AUTO_DIRECT_MAX})",
                ["n", "direct ms", "fft ms", "direct/fft"], cross)


if __name__ == "__main__":
    main()
