"""The validation-report runner (volterra_sgd.validate, ``volterra-sgd validate``).

Fake validation packages (written to tmp_path, discovered through the real pkgutil route by
monkeypatching the package name) exercise discovery, failure handling, the PASS/FAIL
rendering and summary.json; one real quick script runs end to end.
"""

import inspect
import json
import os
import sys
import textwrap
import time

import numpy as np
import pytest

import volterra_sgd as vs
from volterra_sgd import cli, validate

GOOD = '''
import numpy as np

def run(out, quick=False):
    (out / "curve.txt").write_text("x")
    value = abs(float(np.sum(0.5 ** np.arange(60))) - 2.0)
    return {"title": "Good script", "description": "geometric series vs 2",
            "figures": ["fig.png"], "tables": ["| a | b |\\n|---|---|\\n| 1 | 2 |"],
            "comparisons": [
                {"name": "|sum - 2|", "value": value, "tolerance": 1e-12,
                 "passed": value <= 1e-12, "detail": "closed form"},
                {"name": "default criterion", "value": -0.5, "tolerance": 1.0}],
            "numbers": {"quick": quick, "array": np.arange(3), "nan": float("nan")},
            "seconds": 0.01}
'''

BAD = '''
def run(out, quick=False):
    print("some progress output")
    return {"title": "Bad script",
            "comparisons": [{"name": "too far", "value": 3.0, "tolerance": 1.0},
                            {"name": "nan value", "value": float("nan"), "tolerance": 1.0,
                             "passed": True},
                            {"name": "fine", "value": 0.5, "tolerance": 1.0, "passed": True}]}
'''

BOOM = '''
def run(out, quick=False):
    print("started")
    raise RuntimeError("kaboom in the fake script")
'''

NORUN = '''
def helper():
    return 1
'''

BROKEN_IMPORT = '''
raise ImportError("missing optional dependency of the fake script")
'''


def _package(tmp_path, monkeypatch, prefix, modules):
    """Write a package ``<prefix>_<id>`` of ``modules`` and make it the validation package."""
    name = f"{prefix}_{id(tmp_path)}"
    pkg = tmp_path / "src" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for mod, text in modules:
        (pkg / f"{mod}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(validate, "_PACKAGE", name)
    return name


def _forget(name):
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package ``fakeval_<id>`` with good/bad/boom/norun/broken/_private modules."""
    name = _package(tmp_path, monkeypatch, "fakeval",
                    (("good", GOOD), ("bad", BAD), ("boom", BOOM), ("norun", NORUN),
                     ("broken", BROKEN_IMPORT), ("_private", GOOD)))
    yield name
    _forget(name)


# Scripts that only succeed when they run at the same time: each writes its own marker file
# and waits for the other's (a serial runner would time them out).
RENDEZVOUS = """
import os, time

def run(out, quick=False):
    mine, other = out.parent / "{me}.here", out.parent / "{other}.here"
    mine.write_text(str(os.getpid()))
    t0 = time.time()
    while not other.exists() and time.time() - t0 < 120:
        time.sleep(0.05)
    met = other.exists()
    return {{"title": "{me}", "numbers": {{"pid": os.getpid(), "start": t0, "end": time.time(),
             "blas": os.environ.get("OPENBLAS_NUM_THREADS")}},
            "comparisons": [{{"name": "met {other}", "value": 0.0, "tolerance": 0.0,
                              "passed": met}}]}}
"""

SOLO = """
import time

EXCLUSIVE = True

def run(out, quick=False):
    t0 = time.time()
    return {"title": "solo", "numbers": {"start": t0, "end": time.time()}}
"""

CRASH = """
import os

def run(out, quick=False):
    print("about to die", flush=True)
    os._exit(3)
"""

# CPU time spent in a child process must be counted (compute_optimal uses a process pool).
BURN = r"""
import subprocess, sys

CHILD = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass"

def run(out, quick=False):
    subprocess.run([sys.executable, "-c", CHILD], check=True)
    return {"title": "burn"}
"""


@pytest.fixture
def parallel_package(tmp_path, monkeypatch):
    """A package ``parval_<id>`` with two rendezvous scripts, an exclusive one, a crash and
    a CPU burner."""
    name = _package(tmp_path, monkeypatch, "parval",
                    (("ping", RENDEZVOUS.format(me="ping", other="pong")),
                     ("pong", RENDEZVOUS.format(me="pong", other="ping")),
                     ("solo", SOLO), ("crash", CRASH), ("burn", BURN)))
    yield name
    _forget(name)


def test_discovery_order_and_skips(fake_package):
    # alphabetical (none of the fake names is in the preferred order); _private is skipped
    assert validate.available_scripts() == ["bad", "boom", "broken", "good", "norun"]
    found = validate._discover(None)
    assert sorted(found) == ["bad", "boom", "broken", "good"]  # norun has no run()
    assert isinstance(found["broken"], ImportError)


def test_failures_are_reported_and_others_still_run(fake_package, tmp_path):
    out = tmp_path / "report"
    rep = validate.run_validation(out, quick=True, command="test")
    status = {r.name: r.status for r in rep.scripts}
    assert status == {"bad": "failed", "boom": "error", "broken": "error", "good": "passed"}
    assert not rep.success and rep.status == 1
    assert rep.message.startswith("4 scripts, 2 raised; 3/5 comparisons")
    # the failing script's traceback and captured output are kept
    boom = next(r for r in rep.scripts if r.name == "boom")
    assert "kaboom in the fake script" in boom.error
    assert (out / "boom" / "log.txt").read_text() == "started\n"
    assert (out / "bad" / "log.txt").read_text() == "some progress output\n"
    # every script got its own directory and the quick flag
    assert (out / "good" / "curve.txt").exists()

    text = rep.report_path.read_text()
    assert text.startswith("# volterra_sgd validation report")
    assert f"volterra_sgd {vs.__version__}" in text and "`test`" in text
    assert "SOME CHECKS FAILED" in text
    assert "| [Good script](#good-script) (`good`) | PASSED | 2/2 |" in text
    assert "| [Bad script](#bad-script) (`bad`) | FAILED | 1/3 |" in text
    assert "| [boom](#boom) (`boom`) | ERROR | 0/0 |" in text
    # comparison rows: value, tolerance, PASS/FAIL; '|' escaped inside cells
    assert "| \\|sum - 2\\| | 0 | 1.000e-12 | PASS | closed form |" in text
    assert "| default criterion | -0.5 | 1 | PASS |  |" in text
    assert "| too far | 3 | 1 | **FAIL** |  |" in text
    assert "| nan value | – | 1 | **FAIL** |  |" in text  # NaN never passes
    assert "RuntimeError: kaboom in the fake script" in text
    assert "![fig](good/fig.png)" in text
    assert "- figure fig.png was listed but not written" in text  # GOOD never writes it
    assert "| a | b |\n|---|---|\n| 1 | 2 |" in text

    summary = json.loads(rep.summary_path.read_text())
    assert summary["meta"]["quick"] is True and summary["meta"]["success"] is False
    assert summary["meta"]["package_version"] == vs.__version__
    good = summary["scripts"]["good"]
    assert good["numbers"] == {"quick": True, "array": [0, 1, 2], "nan": None,
                               "script_seconds": 0.01}
    assert good["comparisons"][1] == {"name": "default criterion", "value": -0.5,
                                      "tolerance": 1.0, "passed": True, "detail": ""}
    assert summary["scripts"]["bad"]["comparisons"][1]["value"] is None
    assert summary["scripts"]["boom"]["status"] == "error"
    assert summary["meta"]["scripts_run"] == ["bad", "boom", "broken", "good"]


def test_only_and_success(fake_package, tmp_path):
    rep = validate.run_validation(tmp_path / "r", only=["good"])
    assert [r.name for r in rep.scripts] == ["good"]
    assert rep.success and rep.status == 0
    assert rep.scripts[0].numbers["quick"] is False
    assert "all checks passed" in rep.report_path.read_text()
    with pytest.raises(ValueError, match="unknown validation script"):
        validate.run_validation(tmp_path / "r", only=["nope"])
    with pytest.raises(TypeError, match="out must be a path"):
        validate.run_validation(3)


def test_parallel_workers(parallel_package, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    lines = []
    rep = validate.run_validation(tmp_path / "r", quick=True, jobs=2, echo=lines.append)
    st = {r.name: r.status for r in rep.scripts}
    assert st == {"burn": "no comparisons", "crash": "error", "ping": "passed",
                  "pong": "passed", "solo": "no comparisons"}
    assert [r.name for r in rep.scripts] == ["burn", "crash", "ping", "pong", "solo"]
    res = {r.name: r for r in rep.scripts}
    # ping and pong ran at the same time, each in its own process with one BLAS thread
    assert res["ping"].numbers["pid"] != res["pong"].numbers["pid"]
    assert res["ping"].numbers["blas"] == res["pong"].numbers["blas"] == "1"
    # the exclusive script started after every other script had ended
    others_end = max(res[n].numbers["end"] for n in ("ping", "pong"))
    assert res["solo"].numbers["start"] > others_end
    # a worker that dies is an error with its output; the others still ran
    assert "exited with status 3" in res["crash"].error
    assert "about to die" in res["crash"].error
    assert (tmp_path / "r" / "crash" / "log.txt").read_text() == "about to die\n"
    assert res["crash"].cpu_seconds is None
    # CPU time includes the script's child processes; wall and CPU are in the report
    assert res["burn"].cpu_seconds >= 1.0
    assert all(r.seconds > 0 for r in rep.scripts)
    assert rep.cpu_seconds >= res["burn"].cpu_seconds + res["ping"].cpu_seconds
    assert rep.jobs == 2 and rep.message.endswith("s CPU")
    summary = json.loads(rep.summary_path.read_text())
    assert summary["meta"]["jobs"] == 2
    assert summary["meta"]["worker_env"]["OPENBLAS_NUM_THREADS"] == "1"
    assert summary["meta"]["cpu_seconds"] == pytest.approx(rep.cpu_seconds)
    assert summary["meta"]["idle_wall_estimate"] is None  # the crash reported no CPU time
    burn = summary["scripts"]["burn"]
    assert burn["cpu_seconds"] == pytest.approx(res["burn"].cpu_seconds)
    assert burn["seconds"] == pytest.approx(res["burn"].seconds)
    assert len(burn["load_average"]) == 2
    text = rep.report_path.read_text()
    assert "| script | status | comparisons within tolerance | wall time (s) | CPU time (s) |" \
        in text
    assert (f"| [burn](#burn) (`burn`) | NO COMPARISONS | 0/0 | {res['burn'].seconds:.1f} | "
            f"{res['burn'].cpu_seconds:.1f} |") in text
    assert f"| **total** | | | {rep.seconds:.1f} | {rep.cpu_seconds:.1f} |" in text
    assert "worker processes, 2 at a time (OPENBLAS_NUM_THREADS=1" in text
    # progress: one line when a script starts, one when it ends
    assert sum(line.startswith("[") for line in lines) == 5
    assert any("ping: PASSED: 1/1" in line for line in lines)


def test_interrupted_run_leaves_no_worker(parallel_package, tmp_path):
    out = tmp_path / "i"

    def echo(line):
        # when pong is about to start, ping runs (waiting for pong): stop the run there
        if line.startswith("[") and "pong" in line:
            marker = out / "ping.here"
            t0 = time.time()
            while not marker.exists() and time.time() - t0 < 120:
                time.sleep(0.05)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        validate.run_validation(out, only=["ping", "pong"], jobs=2, echo=echo)
    pid = int((out / "ping.here").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left waiting for pong


def test_jobs_argument(parallel_package, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # the caller's setting wins
    rep = validate.run_validation(tmp_path / "s", only=["solo", "burn"], jobs=1)
    assert rep.success and rep.jobs == 1
    meta = json.loads(rep.summary_path.read_text())["meta"]
    assert meta["worker_env"]["OPENBLAS_NUM_THREADS"] == "3"
    # one worker: everything is serial, the estimate is the total CPU time (no warm-up for
    # a package other than volterra_sgd.validation)
    assert meta["warmup"] is None
    assert meta["idle_wall_estimate"] == pytest.approx(meta["cpu_seconds"])
    assert meta["cpu_seconds"] >= sum(r.cpu_seconds for r in rep.scripts)
    assert f"this schedule would take about {meta['idle_wall_estimate']:.0f} s" in \
        rep.report_path.read_text()
    # jobs=0: in this process; CPU time is measured there too
    rep = validate.run_validation(tmp_path / "t", only=["burn"], jobs=0)
    assert rep.jobs == 0 and rep.scripts[0].cpu_seconds >= 1.0
    assert "one after the other in the runner's process" in rep.report_path.read_text()
    with pytest.raises(ValueError, match="jobs must be >= 0; got -1"):
        validate.run_validation(tmp_path, jobs=-1)
    with pytest.raises(TypeError, match="jobs must be an integer; got 1.5"):
        validate.run_validation(tmp_path, jobs=1.5)


def test_idle_wall_estimate():
    est = validate.idle_wall_estimate
    # two workers: 50 | 30 + 25 -> 55; then 10 joins the first -> 60; exclusive 15 after
    assert est([50, 30, 25, 10], [15], jobs=2, cpus=2, serial=1) == 61 + 15
    assert est([50, 30, 25, 10], [], jobs=1, cpus=2) == 115
    assert est([50, 30, 25, 10], [], jobs=4, cpus=2) == 60  # not more workers than CPUs
    assert est([10, 10, 10], [], jobs=3, cpus=8) == 10
    assert est([], [5.0], jobs=2, cpus=2) == 5.0


def test_bad_return_value_is_an_error(tmp_path):
    rep = validate.run_validation(tmp_path, scripts={
        "list": lambda out, quick: [1, 2],
        "keys": lambda out, quick: {"title": "x", "comparison": []},
        "none": lambda out, quick: {"title": "Nothing to compare"}})
    st = {r.name: r.status for r in rep.scripts}
    assert st == {"list": "error", "keys": "error", "none": "no comparisons"}
    assert "must return a dict" in rep.scripts[0].error
    assert "unknown keys ['comparison']" in rep.scripts[1].error
    assert not rep.success


def test_cli_validate(fake_package, tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli.main(["validate", "--out", str(out), "--only", "good", "--quick"]) == 0
    printed = capsys.readouterr().out
    assert "[1/1] good ..." in printed and "PASSED: 2/2" in printed
    text = (out / "report.md").read_text()
    assert f"`volterra-sgd validate --quick --out {out} --only good`" in text
    assert (out / "report.md").exists() and (out / "summary.json").exists()
    assert cli.main(["validate", "--out", str(out), "--only", "good", "bad"]) == 1
    assert "SOME CHECKS FAILED" in capsys.readouterr().out
    assert cli.main(["validate", "--out", str(out), "--only", "nope"]) == 2
    assert "unknown validation script" in capsys.readouterr().err
    assert cli.main(["validate"]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    assert cli.main(["validate", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["bad", "boom", "broken", "good", "norun"]


def test_real_scripts_follow_the_protocol():
    names = validate.available_scripts()
    for name in ("spectrum_figure", "deterministic_vs_empirical", "curve_vs_exact",
                 "sgd_vs_deterministic", "phase_exponents", "finite_size", "timings"):
        assert name in names
    found = validate._discover(None)
    for name in names:
        fn = found[name]
        assert callable(fn), (name, fn)
        params = inspect.signature(fn).parameters
        assert list(params)[:2] == ["out", "quick"], name
        assert params["quick"].default is False, name
    assert names[-1] == "timings"


def test_finite_size_quick_end_to_end(tmp_path):
    # The real finite_size script in quick mode (~10 s): every comparison is computed in
    # the run; check one ratio against an independent recomputation.
    rep = validate.run_validation(tmp_path, quick=True, only=["finite_size"])
    (res,) = rep.scripts
    assert res.status == "passed", [c for c in res.comparisons if not c["passed"]]
    assert (tmp_path / "finite_size" / "finite_size.png").stat().st_size > 10_000
    assert len(res.comparisons) == 2 * 6 * 3  # two checks x six cases x three d
    summary = json.loads(rep.summary_path.read_text())
    curves = summary["scripts"]["finite_size"]["numbers"]["curves"]
    row = next(c for c in curves if (c["alpha"], c["beta"], c["d"]) == (0.75, 0.25, 100))
    model = vs.PLRF(alpha=0.75, beta=0.25, v=1000, d=100)
    g = model.reference_learning_rate(0.5)
    r_end = int(np.round(20 * 100**1.5 / g))
    exact = vs.loss_curve(model, [r_end], learning_rate=g).loss[0]
    est = vs.asymptotic_parts(model, [r_end], learning_rate=g, cutoff=True)["loss_sum"][0]
    assert row["end"] == pytest.approx(exact / est, rel=1e-9)
    # the report shows the same number in the comparison table
    text = rep.report_path.read_text()
    assert f"ratio {row['end']:.5f} at r = {r_end}" in text


def test_missing_matplotlib_is_one_clear_error(fake_package, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    with pytest.raises(ImportError, match=r"pip install 'volterra-sgd\[plot\]'"):
        validate.run_validation(tmp_path)
    assert cli.main(["validate", "--out", str(tmp_path)]) == 2
    assert "needs matplotlib" in capsys.readouterr().err
    # explicit scripts need no matplotlib
    rep = validate.run_validation(tmp_path, scripts={"x": lambda out, quick: {"title": "x"}})
    assert rep.success


def test_ratio_check_rule():
    from volterra_sgd.validation._common import markdown_table, ratio_check

    ratio = np.array([1.0, 1.05, 0.9, 1.02])
    rel_se = np.array([0.0, 0.02, 0.01, 0.0])
    c = ratio_check(ratio, rel_se, 0.03)
    # tolerances 0.03, 0.09, 0.06, 0.03 -> margins -0.03, -0.04, +0.04, -0.01: index 2 fails
    assert c["index"] == 2 and not c["passed"]
    assert c["value"] == pytest.approx(0.1) and c["tolerance"] == pytest.approx(0.06)
    assert c["worst"] == pytest.approx(0.1)
    c = ratio_check(ratio, rel_se, 0.03, mask=[True, True, False, True])
    assert c["index"] == 3 and c["passed"] and c["value"] == pytest.approx(0.02)
    c = ratio_check([np.nan, 1.0], 0.0, 0.01, mask=[True, False])
    assert c["index"] is None and not c["passed"]
    assert markdown_table(["a|b", "c"], [[1, "x|y"]]) == \
        "| a\\|b | c |\n|---|---|\n| 1 | x\\|y |"
