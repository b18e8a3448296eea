"""Timing table of the main operations (wall time, medians of repeated calls).

Operations and the targets stated in the issues (after compilation, on an idle machine):

* exact expected loss given W, d = 1000, v = 10^4, 10^6 iterations, 100 recorded points:
  ``embedding_spectrum`` (SVD) + ``expected_loss_given_w`` (closed form), target <= 3 s;
* ``loss_curve`` with the spectral stage (uncached), 200 log-spaced r up to 10^12,
  alpha = 1, beta = 0.7: d = 1000, v = 10^4 (target <= 2 s) and d = 10^4, v = 10^5;
* ``solve_volterra`` on n = 2^20 (a sum-of-exponentials kernel, ||K|| = 0.5), target <= 3 s;
* ``simulate_sgd``, eigenbasis engine, one fixed W, d = 1000, B = 1, 100 runs:
  10^4 steps (quick) or 10^5 steps (full; target <= 10 s).

Timings depend on the machine and on its load (recorded with the table); they are
reported, not judged: the report lists whether each median is within its target at the
load of the run, but the timings are not pass/fail comparisons.  The first call of each
operation (Numba cache load, or compilation on a fresh install) is listed separately.

Run: python -m volterra_sgd.validation.timings [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

import volterra_sgd as vs
from volterra_sgd.validation._common import markdown_table

HERE = os.path.dirname(os.path.abspath(__file__))

#: ``volterra-sgd validate`` runs this script alone, after the others: it measures wall time.
EXCLUSIVE = True


def _time(fn, repeats):
    """First call and the median of ``repeats`` further calls (seconds)."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times), times, result


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover
        return None


def measure(quick=False):
    from volterra_sgd.forcing import _cached_measure

    reps = 3 if quick else 5
    rows = []

    def add(name, size, fn, target=None, repeats=reps):
        first, med, times, result = _time(fn, repeats)
        rows.append({"operation": name, "size": size, "first_call_s": first, "median_s": med,
                     "times_s": times, "target_s": target,
                     "within_target": None if target is None else bool(med <= target)})
        return result

    # exact loss given W
    model = vs.PLRF(alpha=1.0, beta=0.7, v=10_000, d=1000)
    W = model.sample_embedding(rng=0)
    g = model.reference_learning_rate(0.5)
    r_exact = np.unique(np.round(np.logspace(0, 6, 100)).astype(np.int64))
    spec = add("embedding_spectrum (SVD)", "d = 1000, v = 1e4",
        lambda: vs.embedding_spectrum(model, W), repeats=1 if quick else 3)
    add("expected_loss_given_w (closed form, given the spectrum)",
        "d = 1000, 1e6 iterations, 100 points",
        lambda: vs.expected_loss_given_w(model, spec, r_exact, learning_rate=g))
    rows.append({"operation": "exact loss given W: SVD + closed form", "size":
                 "d = 1000, v = 1e4, 1e6 iterations, 100 points", "first_call_s": None,
                 "median_s": rows[-2]["median_s"] + rows[-1]["median_s"], "times_s": [],
                 "target_s": 3.0,
                 "within_target": bool(rows[-2]["median_s"] + rows[-1]["median_s"] <= 3.0)})

    # loss_curve with the spectral stage
    r_curve = np.unique(np.r_[0, np.round(np.logspace(0, 12, 200))].astype(np.int64))
    for d, target in ((1000, 2.0), (10_000, None)):
        m = vs.PLRF(alpha=1.0, beta=0.7, v=10 * d, d=d)
        gm = m.reference_learning_rate(0.5)

        def curve(m=m, gm=gm):
            _cached_measure.cache_clear()  # include the spectral stage every time
            return vs.loss_curve(m, r_curve, learning_rate=gm)

        add("loss_curve (spectral stage + solution)", f"d = {d}, v = {10 * d}, 200 r <= 1e12",
            curve, target, repeats=reps if d <= 1000 else (1 if quick else 3))

    # solve_volterra, n = 2^20
    n = 2**20
    s = np.arange(n, dtype=float)
    F = 1.0 + 0.5 ** (s / 1000.0) + (1.0 + s) ** -0.5
    K = 0.25 * (0.5 ** (s / 10.0) * (1 - 0.5 ** 0.1)) + 0.25 * (1 - 0.99) * 0.99 ** s
    add("solve_volterra (FFT)", "n = 2^20", lambda: vs.solve_volterra(F, K), 3.0)

    # simulate_sgd, eigen engine, fixed W
    steps = 10_000 if quick else 100_000
    r_sgd = np.unique(np.r_[0, np.round(np.logspace(0, np.log10(steps), 30))].astype(np.int64))
    add("simulate_sgd (eigen engine, fixed W), 100 runs",
        f"d = 1000, B = 1, {steps:.0e} steps",
        lambda: vs.simulate_sgd(model, r_sgd, learning_rate=g, n_runs=100, rng=1, W=spec),
        None if quick else 10.0, repeats=1 if quick else 3)
    return rows


def report(rows, load_before, load_after):
    table = markdown_table(
        ["operation", "size", "first call (s)", "median (s)", "target (s)",
         "within target at this load"],
        [[r["operation"], r["size"],
          "–" if r["first_call_s"] is None else f"{r['first_call_s']:.3f}",
          f"{r['median_s']:.3f}", "–" if r["target_s"] is None else f"{r['target_s']:g}",
          "–" if r["within_target"] is None else ("yes" if r["within_target"] else "no")]
         for r in rows])
    desc = ("Wall time of the main operations in this run (medians of repeated calls after a "
            "first call, which includes the Numba cache load or, on a fresh install, the "
            "compilation), with the targets the issues state for an idle machine.  Load "
            f"average (1, 5, 15 min) {load_before} before and {load_after} after; on a loaded "
            "machine the medians grow accordingly, so the timings are reported, not "
            "pass/fail comparisons.  Reproduce or extend with the scripts in benchmarks/.")
    return desc, [table]


def run(out, quick=False):
    """Protocol entry point of ``volterra-sgd validate`` (see volterra_sgd/validate.py)."""
    t_start = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    before = _load()
    rows = measure(quick)
    after = _load()
    with open(os.path.join(out, "timings.json"), "w") as fh:
        json.dump({"version": vs.__version__, "load_before": before, "load_after": after,
                   "rows": rows}, fh, indent=1)
    desc, tables = report(rows, before, after)
    return {"title": "Timings of the main operations", "description": desc, "tables": tables,
            "comparisons": [],
            "numbers": {"rows": rows, "load_before": before, "load_after": after},
            "seconds": time.perf_counter() - t_start}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 1e4 SGD steps")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    res = run(args.out, args.quick)
    print(res["tables"][0])
    print(res["description"])


if __name__ == "__main__":
    main()
