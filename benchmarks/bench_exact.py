"""Benchmark: exact expected loss given W (SVD spectrum + mode recursion).

Target: d = 1000, v = 10000, 10^6 iterations, 100 recorded points, <= 3 s after
compilation, with the default thread settings (no environment variables).  Prints medians of
several runs (wall and CPU seconds), the machine load, the split between the spectral stage
(SVD) and the recursion, and as the baseline in the same process the same SVD with BLAS at its
default thread count (the package limits BLAS to one thread while it decomposes: with several
BLAS threads on a busy 2-core machine the SVD was 8x slower, 23.9 s in total).

Run: python benchmarks/bench_exact.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.linalg
from _util import median_time, print_table
from threadpoolctl import threadpool_info

import volterra_sgd as vs
from volterra_sgd.exact import embedding_spectrum, expected_loss_given_w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    tiny = vs.PLRF(1.0, 0.7, 20, 5)
    expected_loss_given_w(tiny, tiny.sample_embedding(0), [0, 5], learning_rate=0.1)
    first_call = time.perf_counter() - t0

    model = vs.PLRF(alpha=1.0, beta=0.7, v=10_000, d=1000)
    W = model.sample_embedding(rng=0)
    g = model.reference_learning_rate(0.5)
    r = np.unique(np.round(np.logspace(0, 6, 100)).astype(np.int64))
    spec = embedding_spectrum(model, W)
    load0 = os.getloadavg()[0]
    c0 = time.process_time()
    t_total, _ = median_time(lambda: expected_loss_given_w(model, W, r, learning_rate=g),
                             args.repeats)
    c_total = (time.process_time() - c0) / args.repeats
    c0 = time.process_time()
    t_svd, _ = median_time(lambda: embedding_spectrum(model, W), args.repeats)
    c_svd = (time.process_time() - c0) / args.repeats
    X = W * np.sqrt(model.data_eigenvalues)[:, None]
    c0 = time.process_time()
    t_svd_mt, _ = median_time(lambda: scipy.linalg.svd(X, full_matrices=False,
                                                        lapack_driver="gesdd"), args.repeats)
    c_svd_mt = (time.process_time() - c0) / args.repeats
    t_rec, _ = median_time(lambda: expected_loss_given_w(model, spec, r, learning_rate=g,
                                                         method="recursion"), args.repeats)
    t_cf, _ = median_time(lambda: expected_loss_given_w(model, spec, r, learning_rate=g),
                          args.repeats)
    blas = ", ".join(f"{i['internal_api']} {i['num_threads']} threads"
                     for i in threadpool_info() if i["user_api"] == "blas")
    print_table(
        "expected_loss_given_w: d=1000, v=10000, r up to 1e6 (100 points); median of "
        f"{args.repeats} runs; load {load0:.1f} -> {os.getloadavg()[0]:.1f} (1 min); "
        f"BLAS default: {blas}",
        ["stage", "seconds", "CPU s", "target"],
        [["first call (compile or cache load, tiny model)", first_call, "", ""],
         ["spectrum (SVD of D^1/2 W, BLAS 1 thread)", t_svd, c_svd, ""],
         ["  baseline: same SVD, BLAS default threads", t_svd_mt, c_svd_mt,
          f"x{t_svd_mt / t_svd:.2f} wall"],
         ["mode recursion 1e6 steps x 1000 modes", t_rec, "", ""],
         ["closed form (secular equation), same r", t_cf, "", ""],
         ["total", t_total, c_total, "<= 3 s"]],
    )
    print(f"mode-steps per second: {1e6 * spec.rank / t_rec:.3g}; recursion/closed form = "
          f"{t_rec / t_cf:.1f}")


if __name__ == "__main__":
    main()
