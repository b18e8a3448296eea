"""Benchmark: deterministic forcing F(r) and kernel K(r) via ``forcing_and_kernel``.

Targets: F and K at 200 log-spaced r up to 1e9 for (d, v) = (1000, 10000) in <= 5 s and
(10000, 100000) in <= 60 s, alpha = 1, beta = 0.7, g = 0.5, B = 1.

``forcing_and_kernel`` caches the spectral measure per model
(``volterra_sgd.forcing._cached_measure``, an ``lru_cache``), so the *uncached* time (what a
new model costs) is measured by clearing that cache before every run, and the *cached* time
(measure reused: only the evaluation of the sums over nodes) separately.  The uncached time
is split into ``spectral_support``, ``spectral_measure`` (which calls ``spectral_support``
itself once more, and ``limit_loss``) and the evaluation.  Every uncached, support and measure
run uses a fresh (equal) ``PLRF`` instance, so the model's cached arrays are rebuilt too.

Numba compile time: a fresh interpreter times its first ``forcing_and_kernel`` call and a
second call (cache cleared, same process); this is run twice after deleting the contour
module's Numba cache files (``volterra_sgd/__pycache__/contour*.nbi|nbc``), so the first
process compiles the contour kernels and writes the cache and the second one should load it.

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_forcing.py [--repeats 5]
     [--repeats-large 3] [--skip-large] [--skip-compile]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys

import numba
import numpy as np
from _util import median_time, print_table

import volterra_sgd as vs
import volterra_sgd.forcing as vforcing

ALPHA, BETA, G = 1.0, 0.7, 0.5

_FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np
import volterra_sgd as vs
import volterra_sgd.forcing as vf
m = vs.PLRF(1.0, 0.7, 2000, 200)
r = np.round(np.logspace(0, 9, 200)).astype(np.int64)
g = m.reference_learning_rate(0.5)
t1 = time.perf_counter()
vs.forcing_and_kernel(m, r, learning_rate=g)
t2 = time.perf_counter()
vf._cached_measure.cache_clear()
vs.forcing_and_kernel(m, r, learning_rate=g)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def contour_cache_files() -> list[str]:
    """The contour module's Numba cache files (index .nbi and data .nbc)."""
    pkg = os.path.dirname(vs.__file__)
    cache = os.path.join(pkg, "__pycache__")
    return sorted(glob.glob(os.path.join(cache, "contour*.nbi"))
                  + glob.glob(os.path.join(cache, "contour*.nbc")))


def first_call() -> tuple[float, float, float]:
    """(import s, first forcing_and_kernel call s, second uncached call s) in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=dict(os.environ),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"first-call subprocess failed:\n{proc.stderr}")
    out = proc.stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def bench_model(d: int, v: int, r: np.ndarray, repeats: int) -> dict:
    model = vs.PLRF(alpha=ALPHA, beta=BETA, v=v, d=d)
    g = model.reference_learning_rate(G)
    fk_call = lambda: vs.forcing_and_kernel(model, r, learning_rate=g)  # noqa: E731

    fk = fk_call()  # warm-up (fills the measure cache)

    def uncached():
        # a new (equal) PLRF instance also drops its cached_property arrays (j^-2alpha, ...);
        # it would still hit the lru_cache (PLRF hashes by value), hence cache_clear()
        fresh = vs.PLRF(alpha=ALPHA, beta=BETA, v=v, d=d)
        vforcing._cached_measure.cache_clear()
        vs.forcing_and_kernel(fresh, r, learning_rate=g)

    t_unc, all_unc = median_time(uncached, repeats)
    fk_call()  # refill the cache
    t_cached, all_cached = median_time(fk_call, max(repeats, 5))
    t_sup, _ = median_time(lambda: vs.spectral_support(vs.PLRF(ALPHA, BETA, v, d)), repeats)
    keep = {}
    t_meas, _ = median_time(
        lambda: keep.__setitem__("m", vs.spectral_measure(vs.PLRF(ALPHA, BETA, v, d))), repeats)
    meas = keep["m"]
    return {
        "d": d, "v": v, "uncached": t_unc, "uncached_all": all_unc, "cached": t_cached,
        "cached_all": all_cached, "support": t_sup, "measure": t_meas,
        "nodes": int(meas.nodes.size), "coarse_nodes": int(meas.coarse_nodes.size),
        "outliers": int(meas.support.n_outliers), "F_last": float(fk.forcing[-1]),
        "K_last": float(fk.kernel[-1]), "F0": float(meas.limit_loss),
        "max_rel_F_error": float(np.max(fk.forcing_error / fk.forcing)),
        "repeats": repeats,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--repeats-large", type=int, default=3)
    ap.add_argument("--skip-large", action="store_true", help="skip d = 10000, v = 100000")
    ap.add_argument("--skip-compile", action="store_true",
                    help="skip the first-call subprocesses (they delete contour cache files)")
    args = ap.parse_args()
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    r = np.round(np.logspace(0, 9, 200)).astype(np.int64)  # 200 values (non-decreasing)

    compile_rows = []
    if not args.skip_compile:
        files = contour_cache_files()
        for f in files:
            os.remove(f)
        cold = first_call()
        warm = first_call()
        compile_rows = [
            [f"process 1 (deleted {len(files)} contour cache files): first call, s", cold[1],
             "compiles the contour kernels"],
            ["process 1: second call (measure cache cleared), s", cold[2], "steady state"],
            ["process 1: compile overhead (first - second), s", cold[1] - cold[2], ""],
            ["process 2 (cache=True files present): first call, s", warm[1], "loads the cache"],
            ["process 2: second call, s", warm[2], ""],
            ["process 2: overhead (first - second), s", warm[1] - warm[2],
             "cache load + first-use costs"],
            ["import volterra_sgd (process 1 / 2), s", f"{cold[0]:.3g} / {warm[0]:.3g}", ""],
        ]

    vs.warmup()
    results = [bench_model(1000, 10_000, r, args.repeats)]
    if not args.skip_large:
        results.append(bench_model(10_000, 100_000, r, args.repeats_large))

    targets = {1000: 5.0, 10_000: 60.0}
    rows = []
    for res in results:
        tag = f"d={res['d']}, v={res['v']}"
        rows += [
            [f"{tag}: forcing_and_kernel uncached, s", res["uncached"],
             f"target <= {targets[res['d']]:g} s; median of {res['repeats']}: "
             + ", ".join(f"{t:.2f}" for t in res["uncached_all"])],
            [f"{tag}:   spectral_support, s", res["support"], f"{res['outliers']} outliers"],
            [f"{tag}:   spectral_measure (incl. support + F0), s", res["measure"],
             f"{res['nodes']} nodes (+{res['coarse_nodes']} coarse)"],
            [f"{tag}:   evaluation (= cached call), s", res["cached"],
             "measure reused (lru_cache)"],
            [f"{tag}:   F(1e9), K(1e9)", f"{res['F_last']:.4e}, {res['K_last']:.3e}",
             f"F0 = {res['F0']:.4e}; max rel F error est. {res['max_rel_F_error']:.1e}"],
        ]
    print_table(
        f"forcing_and_kernel: alpha={ALPHA}, beta={BETA}, g={G}, B=1, 200 log-spaced r in "
        f"[1, 1e9]; OPENBLAS_NUM_THREADS={blas}, {numba.get_num_threads()} Numba threads, "
        f"{os.cpu_count()} cores (shared); median after warm-up",
        ["item", "value", "note"], rows)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=os.path.dirname(vs.__file__)).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], capture_output=True,
                           text=True, cwd=os.path.dirname(vs.__file__)).stdout.split("\n")
    dirty = [ln[3:] for ln in dirty if ln.strip()]
    print(f"volterra_sgd {vs.__version__}, git {head}"
          + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else ""))
    if compile_rows:
        print_table("Numba first call in fresh processes: PLRF(1, 0.7, v=2000, d=200), "
                    "200 r", ["item", "value", "note"], compile_rows)


if __name__ == "__main__":
    main()
