"""Benchmark: the deterministic-equivalent fixed point m(z) on contour paths.

Times (median of ``--repeats`` runs, after compilation) ``resolvent(model, z)`` on 2e4
points of three paths through the spectrum, from lambda_min/2 to 1.5 lambda_max
(log-spaced real parts):

* ``contour``: height 0.25 x sin(pi t) (a contour as in docs/theory.md, Eq. (6.6));
* ``Im 1e-3``: z = x (1 + 1e-3 i);
* ``Im 1e-10``: z = x (1 + 1e-10 i), i.e. practically on the real axis;

for (d, v) = (1000, 1e4) and (1e4, 1e5), alpha = 1, plus G_F on the contour.  Then the
first-call cost in fresh processes: with an empty Numba cache (compilation) and again with
the cache filled by that run (``cache=True``: loading).

Run: python benchmarks/bench_resolvent.py [--repeats 5] [--points 20000]
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

from volterra_sgd import PLRF
from volterra_sgd.resolvent import (
    forcing_transform,
    lower_spectral_edge,
    resolvent,
    support_bands,
)

_FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np
from volterra_sgd import PLRF
from volterra_sgd.resolvent import resolvent, forcing_transform, lower_spectral_edge
t1 = time.perf_counter()
model = PLRF(1.0, 0.7, 2000, 200)
z = np.array([1e-3 + 1e-4j, 2e-3 + 1e-4j, -1.0])
res = resolvent(model, z)
forcing_transform(model, z, res.m)
lower_spectral_edge(model)
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def _paths(model: PLRF, n: int) -> dict[str, np.ndarray]:
    lmin = lower_spectral_edge(model)
    lmax = support_bands(model)[-1, 1]
    t = (np.arange(n) + 0.5) / n
    x = np.exp(np.log(lmin / 2) + t * (np.log(1.5 * lmax) - np.log(lmin / 2)))
    return {
        "contour": x + 0.25j * x * np.sin(np.pi * t),
        "Im 1e-3": x * (1 + 1e-3j),
        "Im 1e-10": x * (1 + 1e-10j),
    }


def _first_call(cache_dir: str) -> tuple[float, float, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--points", type=int, default=20000)
    args = ap.parse_args()

    # compile in this process first (not timed)
    warm = PLRF(1.0, 0.7, 2000, 200)
    forcing_transform(warm, [1e-3 + 1e-4j], resolvent(warm, [1e-3 + 1e-4j]).m)

    rows = []
    for d, v in [(1000, 10_000), (10_000, 100_000)]:
        model = PLRF(1.0, 0.7, v, d)
        for name, z in _paths(model, args.points).items():
            res = resolvent(model, z)  # also builds the tables (cached)
            t, _ = median_time(lambda model=model, z=z: resolvent(model, z), args.repeats)
            rows.append([f"d={d}, v={v}", name, t, 1e6 * t / z.size,
                         float(res.n_sweeps.mean()), float(res.residual.max()),
                         float(res.error_estimate.max()), bool(res.success)])
        z = _paths(model, args.points)["contour"]
        m = resolvent(model, z).m
        t, _ = median_time(lambda model=model, z=z, m=m: forcing_transform(model, z, m),
                           args.repeats)
        rows.append([f"d={d}, v={v}", "G_F on contour", t, 1e6 * t / z.size, 1.0, "", "",
                     ""])
    print_table(
        f"resolvent(model, z), alpha = 1, {args.points} points, median of {args.repeats} "
        "runs (G_F: forcing_transform with m given)",
        ["model", "path", "seconds", "us/point", "sweeps/point", "max residual",
         "max err. est.", "success"],
        rows,
    )

    with tempfile.TemporaryDirectory() as cache:
        cold = _first_call(cache)
        hot = _first_call(cache)
    print_table(
        "first call in a fresh process (resolvent + forcing_transform + lower_spectral_edge)",
        ["Numba cache", "import s", "first calls s", "process wall s"],
        [["empty (compiles)", *cold], ["filled by the previous run", *hot]],
    )


if __name__ == "__main__":
    main()
