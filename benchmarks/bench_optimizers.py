"""Benchmark: deterministic loss curves of momentum optimizers (the cost targets).

Targets: a DANA-decaying deterministic curve with 200 points to r = 1e9 at
d = 1e4 (target <= 10 s warm on 2 cores), and the same for heavy ball (closed form) to
r = 1e12.  Model PLRF(alpha=1, beta=0.7, v=10 d).  Baseline, in the same process and on the
same model and grid: the plain-SGD ``loss_curve`` at the reference learning rate.

Every timed run includes the spectral stage (the measure cache is cleared), as in
bench_curve.py.  Wall and CPU seconds (process time, all threads) are medians; the load
average is printed before and after, since the machine is shared.  With ``--profile`` the
DANA and heavy-ball curves are run once more under cProfile and split into their stages:
the spectral measure (with its compression), the block passes (DANA: the fine rule's loss,
forcing and kernel in one pass at h/2, the fine loss at h, the coarse loss at h/2), the
block kernel itself, and the closed form's secular roots (heavy ball).

Run: python benchmarks/bench_optimizers.py [--quick] [--d D] [--repeats 3]
     [--dana-repeats N] [--dana-rmax 1e9] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time

import numpy as np
from _util import print_table

import volterra_sgd as vs
from volterra_sgd.forcing import _cached_measure, deterministic_measure


def timed(fn, repeats: int) -> tuple[float, float, list[float]]:
    """Median wall and CPU seconds of ``repeats`` runs of ``fn()`` (spectral stage included)."""
    walls, cpus = [], []
    for _ in range(repeats):
        _cached_measure.cache_clear()
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), walls


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def grid(rmax: float) -> np.ndarray:
    return np.unique(np.round(np.logspace(0, np.log10(rmax), 200)).astype(np.int64))


def stage_profile(fn) -> list[list]:
    """Run ``fn()`` once under cProfile; cumulative seconds of the curve's stages."""
    _cached_measure.cache_clear()
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    st = pstats.Stats(prof)
    total = sum(v[3] for k, v in st.stats.items() if k[2] == "optimizer_loss_curve")
    rows = []
    for name, label in (("_dynamics_measures", "spectral measure + compression"),
                        ("_blocks_states", "block passes (h/2 fine with F, K; h fine; coarse)"),
                        ("_block_kernel", "  of which the compiled block kernel"),
                        ("_closed_form_setup", "closed form: slow poles, roots, amplitudes"),
                        ("_secular_roots", "  of which the secular roots")):
        hits = [(v[1], v[3]) for k, v in st.stats.items() if k[2] == name]
        if not hits:
            continue
        calls = sum(h[0] for h in hits)
        cum = sum(h[1] for h in hits)
        rows.append([label, calls, cum, f"{100 * cum / total:.0f}%"])
    rows.append(["total optimizer_loss_curve (under cProfile)", 1, total, "100%"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="d = 1e3 (fast check)")
    ap.add_argument("--d", type=int, default=None, help="dimension d (v = 10 d); default 1e4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dana-repeats", type=int, default=None,
                    help="repeats of the DANA curve (default: --repeats)")
    ap.add_argument("--dana-rmax", type=float, default=1e9)
    ap.add_argument("--hb-rmax", type=float, default=1e12)
    ap.add_argument("--profile", action="store_true", help="cProfile the DANA curve once")
    args = ap.parse_args()
    d = args.d if args.d is not None else (1000 if args.quick else 10_000)
    rep_dana = args.dana_repeats if args.dana_repeats is not None else args.repeats
    load0 = load()
    t0 = time.perf_counter()
    vs.warmup()
    t_warm = time.perf_counter() - t0

    model = vs.PLRF(alpha=1.0, beta=0.7, v=10 * d, d=d)
    g = model.reference_learning_rate(0.5)
    mu = 0.9
    dana = vs.DANA.decaying(model)
    hb = vs.HeavyBall(learning_rate=(1 - mu) * g, momentum=mu)  # gamma/(1-mu) = SGD rate
    r_dana, r_hb = grid(args.dana_rmax), grid(args.hb_rmax)
    # one untimed run of each: compiles anything vs.warmup() does not cover
    for r_, opt in ((r_dana[:20], dana), (r_hb[:20], hb)):
        vs.loss_curve(model, r_, optimizer=opt)

    rows = [["warmup() (compile or cache load)", "", "", t_warm, "", "", "", ""]]
    meas = deterministic_measure(model)
    small = deterministic_measure(model, compress=True)
    nodes = (f"{meas.nodes.size} fine + {meas.coarse_nodes.size} coarse, compressed to "
             f"{small.nodes.size} + {small.coarse_nodes.size}")
    for label, rmax, r_, opt, rep, method in (
            ("DANA-decaying", args.dana_rmax, r_dana, dana, rep_dana, "blocks"),
            (f"heavy ball mu={mu}", args.hb_rmax, r_hb, hb, args.repeats, "closed form")):
        w_sgd, c_sgd, _ = timed(lambda r_=r_: vs.loss_curve(model, r_, learning_rate=g),
                             args.repeats)
        w_opt, c_opt, walls = timed(lambda r_=r_, opt=opt: vs.loss_curve(model, r_, optimizer=opt),
                                     rep)
        rows.append([f"SGD (baseline) to r={rmax:.0e}", r_.size, args.repeats, w_sgd, c_sgd,
                     1.0, "", ""])
        rows.append([f"{label} to r={rmax:.0e}", r_.size, rep, w_opt, c_opt, w_opt / w_sgd,
                     method,
                     " ".join(f"{w:.3g}" for w in walls)])
    load1 = load()
    print_table(f"deterministic curves, PLRF(alpha=1, beta=0.7, v={10 * d}, d={d}); "
                f"{os.cpu_count()} cores; load avg (1/5/15 min) before {load0}, after {load1}; "
                f"measure: {nodes} nodes; medians, spectral stage included",
                ["case", "points", "repeats", "wall s", "CPU s", "wall / SGD", "method",
                 "all wall s"], rows)

    if args.profile:
        for label, r_, opt in (("DANA-decaying", r_dana, dana), ("heavy ball", r_hb, hb)):
            prof_rows = stage_profile(lambda r_=r_, opt=opt: vs.loss_curve(model, r_,
                                                                           optimizer=opt))
            print_table(f"where the {label} time goes (one run under cProfile, d={d}, "
                        f"r to {r_[-1]:.0e}; load after {load()})",
                        ["stage", "calls", "seconds", "share"], prof_rows)


if __name__ == "__main__":
    main()
