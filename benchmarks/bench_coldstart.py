"""Benchmark: cold start, i.e. import + first ``loss_curve`` in a fresh environment.

Each repeat copies the package (without any ``__pycache__``, so no compiled kernels) into a new
temporary directory, points ``NUMBA_CACHE_DIR`` at a new empty directory, and runs a fresh
interpreter that imports the package and computes one small curve.  A second interpreter on
the same copy measures the warm start (kernels loaded from the on-disk cache), a third the
bare ``import volterra_sgd``.  Times are medians of the repeats, wall and CPU seconds of the
child process (``resource.getrusage``); targets: cold <= 8 s, warm import <= 0.5 s.  With
``--kernels`` the compile time of each kernel in the cold run is listed (CPU seconds,
inclusive of the kernels it calls).  With ``--baseline REV`` the package as of git revision
``REV`` (``git archive``) is measured the same way, alternating with the working tree, and
the ratios are printed.

Run: python benchmarks/bench_coldstart.py [--repeats 3] [--kernels] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _util import print_table

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import volterra_sgd as vs
t1 = time.perf_counter()
compile_times = {}
if "--kernels" in sys.argv:
    from numba.core import event

    class Listener(event.Listener):
        def __init__(self):
            self.start = {}

        def on_start(self, ev):
            self.start[id(ev.data["dispatcher"]), str(ev.data["args"])] = time.process_time()

        def on_end(self, ev):
            f = ev.data["dispatcher"].py_func
            key = f"{f.__module__}.{f.__qualname__}"
            t0 = self.start.pop((id(ev.data["dispatcher"]), str(ev.data["args"])))
            dt = time.process_time() - t0
            compile_times[key] = compile_times.get(key, 0.0) + dt

    event.register("numba:compile", Listener())
if "--import-only" not in sys.argv:
    model = vs.PLRF(1.0, 0.7, 1000, 100)
    vs.loss_curve(model, [1, 10, 100], learning_rate=model.reference_learning_rate(0.5))
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import": t1 - t0, "first_call": t2 - t1, "total": t2 - t0,
                  "cpu": ru.ru_utime + ru.ru_stime, "kernels": compile_times}))
"""


def child(site: Path, cache: Path, *flags: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([sys.executable, "-c", CHILD, *flags], env=env, cwd=site,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kernels", action="store_true")
    ap.add_argument("--baseline", default=None, help="git revision to compare with")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    versions = ["now"] + (["baseline"] if args.baseline else [])
    runs = {v: {"cold": [], "warm": [], "import": []} for v in versions}
    for _ in range(args.repeats):
        for version in versions:
            with tempfile.TemporaryDirectory() as tmp:
                site = Path(tmp) / "site"
                if version == "now":
                    shutil.copytree(ROOT / "volterra_sgd", site / "volterra_sgd",
                                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
                else:
                    site.mkdir()
                    tar = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline,
                                          "volterra_sgd"], check=True, capture_output=True)
                    subprocess.run(["tar", "-x", "-C", str(site)], input=tar.stdout, check=True)
                cache = Path(tmp) / "numba_cache"
                flags = ("--kernels",) if args.kernels and version == "now" else ()
                runs[version]["cold"].append(child(site, cache, *flags))
                runs[version]["warm"].append(child(site, cache))
                runs[version]["import"].append(child(site, cache, "--import-only"))
    load1 = os.getloadavg()[0]

    def med(version, kind, key):
        return statistics.median(r[key] for r in runs[version][kind])

    rows = []
    for version in versions:
        tag = "" if version == "now" else f" [{args.baseline}]"
        rows += [[f"cold: import + first loss_curve (d=100){tag}", med(version, "cold", "total"),
                  med(version, "cold", "cpu"), "<= 8 s"],
                 [f"  of which import{tag}", med(version, "cold", "import"), "", ""],
                 [f"warm: import + first loss_curve (cache){tag}",
                  med(version, "warm", "total"), med(version, "warm", "cpu"), ""],
                 [f"warm: import volterra_sgd{tag}", med(version, "import", "import"),
                  med(version, "import", "cpu"), "<= 0.5 s"]]
    if args.baseline:
        for kind, key in (("cold", "cpu"), ("import", "cpu")):
            rows.append([f"ratio baseline / now, {kind} CPU", "",
                         med("baseline", kind, key) / med("now", kind, key), ""])
    print_table(
        f"cold start: fresh copy of the package, empty NUMBA_CACHE_DIR; median of "
        f"{args.repeats}; load {load0:.1f} -> {load1:.1f} (1 min)",
        ["item", "wall s", "CPU s", "target"], rows)
    if args.kernels:
        times = runs["now"]["cold"][0]["kernels"]
        print("\ncompile CPU seconds per kernel (first repeat, inclusive of callees), top 20:")
        for name, t in sorted(times.items(), key=lambda kv: -kv[1])[:20]:
            print(f"  {t:6.2f}  {name}")


if __name__ == "__main__":
    main()
