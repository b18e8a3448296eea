"""Benchmark: exact expected loss given W (SVD spectrum + mode recursion).

Target (foundation issue): d = 1000, v = 10000, 10^6 iterations, 100 recorded points,
<= 3 s after compilation.  Prints medians of several runs and the split between the
spectral stage (SVD) and the recursion.

Run: python benchmarks/bench_exact.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _util import median_time, print_table

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
    t_total, _ = median_time(lambda: expected_loss_given_w(model, W, r, learning_rate=g),
                             args.repeats)
    t_svd, _ = median_time(lambda: embedding_spectrum(model, W), args.repeats)
    t_rec, _ = median_time(lambda: expected_loss_given_w(model, spec, r, learning_rate=g,
                                                         method="recursion"), args.repeats)
    t_cf, _ = median_time(lambda: expected_loss_given_w(model, spec, r, learning_rate=g),
                          args.repeats)
    print_table(
        "expected_loss_given_w: d=1000, v=10000, r up to 1e6 (100 points); median of "
        f"{args.repeats} runs",
        ["stage", "seconds", "target"],
        [["first call (compile or cache load, tiny model)", first_call, ""],
         ["spectrum (SVD of D^1/2 W)", t_svd, ""],
         ["mode recursion 1e6 steps x 1000 modes", t_rec, ""],
         ["closed form (secular equation), same r", t_cf, ""],
         ["total", t_total, "<= 3 s"]],
    )
    print(f"mode-steps per second: {1e6 * spec.rank / t_rec:.3g}; recursion/closed form = "
          f"{t_rec / t_cf:.1f}")


if __name__ == "__main__":
    main()
