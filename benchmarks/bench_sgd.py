"""Benchmark: the SGD simulator (eigenbasis engine vs literal engine).

Target (foundation issue): eigenbasis engine, d = 1000, B = 1, 10^5 steps x 100 runs in
<= 10 s on 2 cores.  The literal engine at v = 10000 is timed on fewer steps and runs and
scaled to its cost per run-step; the ratio of the two per-run-step costs is the speed-up.
Also printed: first-call compile time (cold, empty Numba cache) and cache-load time, the
speed of the normal generator, and NumPy's ``Generator.standard_normal`` as a yardstick of
how loaded the machine is.

Literal engine row (v = 4000, d = 1000, B = 1, one run): steps per second of the kernel,
wall and per CPU second, against a plain NumPy loop of the same algorithm in the same process
(target >= 450 steps/s; each step streams the 32 MB embedding once, so the memory bandwidth
bounds it at roughly 600 steps/s on the reference machine).  The load (``uptime``) is printed:
on a shared machine the wall rate falls with it, the rate per CPU second much less.

Run: python benchmarks/bench_sgd.py [--repeats 5] [--steps 100000] [--runs 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
from _util import median_time, print_table

import volterra_sgd as vs
from volterra_sgd import _rng
from volterra_sgd.exact import embedding_spectrum
from volterra_sgd.sgd import _sgd_literal_kernel, _sgd_states, simulate_sgd

_FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np
import volterra_sgd as vs
from volterra_sgd.sgd import simulate_sgd
m = vs.PLRF(1.0, 0.7, 20, 5)
W = m.sample_embedding(0)
t1 = time.perf_counter()
simulate_sgd(m, [0, 3], learning_rate=0.1, n_runs=2, rng=0, W=W, engine="eigen")
t2 = time.perf_counter()
simulate_sgd(m, [0, 3], learning_rate=0.1, n_runs=2, rng=0, W=W, engine="literal")
t3 = time.perf_counter()
print(t2 - t1, t3 - t2)
"""


def first_call_times(cache_dir: str | None) -> tuple[float, float]:
    """Seconds of the first eigen and literal calls in a fresh interpreter."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def literal_rate(repeats: int, steps: int = 200) -> None:
    """Steps per second of the literal kernel (one run) and of a plain NumPy loop."""
    model = vs.PLRF(alpha=1.0, beta=0.7, v=4000, d=1000)
    W = model.sample_embedding(rng=0)
    g = model.reference_learning_rate(0.5)
    tables = _rng.ziggurat_tables()
    sd = np.sqrt(model.data_eigenvalues)
    b = np.ascontiguousarray(model.target)
    args = (W[None], np.zeros(1, dtype=np.int64), sd, np.ascontiguousarray(model.data_eigenvalues),
            b, g, 1)

    def kernel():
        out = np.empty((1, 1))
        status = _sgd_literal_kernel(*args, 0, steps, np.array([steps], dtype=np.int64),
                                     np.zeros((1, model.d)), _sgd_states(1, 1), *tables, out)
        assert status == 0

    def numpy_loop():
        gen = np.random.default_rng(0)
        theta = np.zeros(model.d)
        for _ in range(steps):
            x = sd * gen.standard_normal(model.v)
            feats = x @ W
            theta -= g * (feats @ theta - x @ b) * feats

    kernel()
    rows = []
    for name, fn in (("literal kernel", kernel), ("plain NumPy loop (baseline)", numpy_loop)):
        wall, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rows.append([name, steps / float(np.median(wall)), steps / float(np.median(cpu))])
    rows[0].append(f"x{rows[0][1] / rows[1][1]:.2f} wall, x{rows[0][2] / rows[1][2]:.2f} CPU")
    rows[1].append("")
    print_table(f"literal SGD, v=4000, d=1000, B=1, one run, {steps} steps; median of {repeats}; "
                f"load {os.getloadavg()[0]:.1f} (1 min); target >= 450 steps/s",
                ["engine", "steps/s (wall)", "steps per CPU s", "vs NumPy"], rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--literal-steps", type=int, default=100)
    ap.add_argument("--literal-runs", type=int, default=2)
    args = ap.parse_args()
    threads = numba.get_num_threads()

    with tempfile.TemporaryDirectory() as tmp:
        cold = first_call_times(tmp)
    first_call_times(None)  # fills the default cache if the sources changed
    warm = first_call_times(None)

    # machine yardsticks: our generator and NumPy's (PCG64 + ziggurat), ns per variate
    n = 10**7
    buf = np.empty(n)
    tables = _rng.ziggurat_tables()
    state = _rng.seed_states(np.random.SeedSequence(0).spawn(1))[0]
    _rng.fill_standard_normal(state, *tables, buf[:10])
    t_ours, _ = median_time(lambda: _rng.fill_standard_normal(state, *tables, buf), 3)
    gen = np.random.default_rng(0)
    t_np, _ = median_time(lambda: gen.standard_normal(out=buf), 3)

    model = vs.PLRF(alpha=1.0, beta=0.7, v=10_000, d=1000)
    W = model.sample_embedding(rng=0)
    g = model.reference_learning_rate(0.5)
    t0 = time.perf_counter()
    spec = embedding_spectrum(model, W)
    t_svd = time.perf_counter() - t0

    r = np.unique(np.round(np.logspace(0, np.log10(args.steps), 40)).astype(np.int64))
    r = np.r_[0, r]
    simulate_sgd(model, [0, 2], learning_rate=g, n_runs=args.runs, rng=0, W=spec)  # warm-up
    keep = {}
    cpu0 = time.process_time()

    def eigen():
        keep["sim"] = simulate_sgd(model, r, learning_rate=g, n_runs=args.runs, rng=1, W=spec)

    t_eig, times_eig = median_time(eigen, args.repeats)
    cpu_eig = (time.process_time() - cpu0) / args.repeats
    sim = keep["sim"]

    # literal engine: time its parallel kernel directly, as simulate_sgd(engine="literal")
    # calls it, without the one-off SVD that simulate_sgd does for the stability check
    # (the SVD costs as much as hundreds of literal steps at this size).
    nl = args.literal_runs
    lit_args = (W[None], np.zeros(nl, dtype=np.int64), np.sqrt(model.data_eigenvalues),
                np.ascontiguousarray(model.data_eigenvalues), np.ascontiguousarray(model.target),
                g, 1)

    def literal(steps):
        theta = np.zeros((nl, model.d))
        out = np.empty((2, nl))
        st = _sgd_states(1, nl)
        status = _sgd_literal_kernel(*lit_args, 0, steps, np.array([0, steps], dtype=np.int64),
                                     theta, st, *tables, out)
        assert status == 0
        return out

    literal(1)  # warm-up
    t_lit, times_lit = median_time(lambda: literal(args.literal_steps), args.repeats)
    # the two recorded losses cost about one step each; count them as steps
    t_lit_sgd = t_lit * args.literal_steps / (args.literal_steps + 2)

    per_eig = t_eig / (args.steps * args.runs)
    per_lit = t_lit_sgd / (args.literal_steps * args.literal_runs)
    variates = args.steps * args.runs * (spec.rank + 1)
    print_table(
        f"simulate_sgd: alpha=1, beta=0.7, d=1000, v=10000, B=1, {threads} Numba threads; "
        f"median of {args.repeats} runs after warm-up",
        ["item", "value", "note"],
        [["first call, eigen (cold compile), s", cold[0], "empty NUMBA_CACHE_DIR"],
         ["first call, literal (cold compile), s", cold[1], ""],
         ["first call, eigen (cache load), s", warm[0], ""],
         ["first call, literal (cache load), s", warm[1], ""],
         ["normal generator, ns/variate (1 thread)", t_ours / n * 1e9, "xoshiro256++ ziggurat"],
         ["numpy Generator.standard_normal, ns/variate", t_np / n * 1e9, "machine yardstick"],
         ["SVD of D^1/2 W (spectrum), s", t_svd, "once per embedding"],
         [f"eigen: {args.steps:.0e} steps x {args.runs} runs, s", t_eig,
          "target <= 10 s (spectrum given)"],
         ["eigen: ns per variate per core (wall)", t_eig * threads / variates * 1e9, ""],
         ["eigen: ns per variate (CPU time)", cpu_eig / variates * 1e9,
          "all threads; < wall x threads if the machine is shared"],
         ["eigen: CPU ns per variate / numpy ns per variate",
          cpu_eig / variates / (t_np / n), "load-independent; x idle numpy ns must be <= 2"],
         ["eigen: us per run-step", per_eig * 1e6, ""],
         [f"literal: {args.literal_steps} steps x {args.literal_runs} runs, s", t_lit_sgd,
          "kernel only (no SVD)"],
         ["literal: us per run-step", per_lit * 1e6, ""],
         ["speed-up eigen / literal (per run-step)", per_lit / per_eig, ""],
         ["literal at the eigen size, extrapolated, h",
          per_lit * args.steps * args.runs / 3600, ""]],
    )
    literal_rate(args.repeats)
    print(f"eigen repeats (s): {[round(t, 2) for t in times_eig]}")
    print(f"literal repeats (s): {[round(t, 2) for t in times_lit]}")
    print(f"final mean loss {sim.loss[-1]:.4e} +- {sim.stderr[-1]:.1e}; "
          f"limit loss F0 = {spec.limit_loss:.4e}; status {sim.message}")


if __name__ == "__main__":
    main()
