"""Run the validation scripts and assemble a report (``volterra-sgd validate``).

Every module ``volterra_sgd.validation.<name>`` that defines

.. code-block:: python

    def run(out: pathlib.Path, quick: bool = False) -> dict

is a validation script.  :func:`run_validation` calls each one with its own output
directory ``DIR/<name>/`` and collects the returned dicts (keys ``title``, ``description``,
``figures``, ``tables``, ``comparisons``, ``numbers``, ``seconds``; see
:data:`RESULT_KEYS` and docs/validation.md) into

* ``DIR/report.md``: header (date, package version, machine, command line), a summary table
  (status, comparisons passed, wall time per script), then one section per script with its
  description, tables, figures (relative links) and a comparison table
  (value / tolerance / PASS or FAIL);
* ``DIR/summary.json``: the same information with every number the scripts returned.

The discovered scripts run in worker processes, ``jobs`` at a time (default: two, or one on
a one-core machine), each with one BLAS thread: the scripts' matrices are small, and threaded
BLAS on them costs 10-30 times the CPU time of one thread when the cores are busy (an SVD of
a 2000 x 200 matrix: 1.36 s of CPU with two OpenBLAS threads on the loaded 2-core machine,
0.045 s with one).  A worker process also isolates the scripts from each other (a crash is
reported, the others still run).  Scripts that set ``EXCLUSIVE = True`` (``timings``: it
measures wall time) run alone after the others.  Every script's wall time and CPU time
(user + system, its child processes included) are in the report and in ``summary.json``.

A script that raises is reported as failed (with its traceback) and the others still run.
Nothing here is hard-coded: every number in the report is computed by the scripts in that run.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import io
import json
import math
import os
import pkgutil
import platform
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RESULT_KEYS",
    "ScriptResult",
    "ValidationReport",
    "available_scripts",
    "idle_wall_estimate",
    "run_validation",
]

#: Keys of the dict a validation script's ``run(out, quick)`` returns (all optional except
#: that a missing ``title`` falls back to the module name).
RESULT_KEYS = ("title", "description", "figures", "tables", "comparisons", "numbers",
               "seconds")

#: Scripts run in this order (others afterwards, alphabetically); timings run last so
#: that the Numba caches are warm.
_ORDER = ("spectrum_figure", "deterministic_vs_empirical", "curve_vs_exact",
          "sgd_vs_deterministic", "spectral_model_vs_exact", "ridge_vs_simulation",
          "phase_exponents", "finite_size", "compute_optimal_study", "data_fitting",
          "curve_calibration", "optimizers_vs_exact", "timings")

_PACKAGE = "volterra_sgd.validation"

#: Started first when the scripts run in parallel (longest first, so that the two workers
#: finish together; measured CPU seconds of the quick report, docs/validation.md).
_START_FIRST = ("compute_optimal_study", "sgd_vs_deterministic", "data_fitting",
                "curve_vs_exact", "ridge_vs_simulation", "spectral_model_vs_exact",
                "spectrum_figure", "finite_size", "phase_exponents",
                "deterministic_vs_empirical")

#: Thread variables of the worker processes (set to 1 unless the caller's environment sets
#: them): one BLAS thread per script, the parallelism is one script per core.
_SERIAL_BLAS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


# ------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ScriptResult:
    """Outcome of one validation script.

    Attributes
    ----------
    name : str
        Module name inside ``volterra_sgd.validation``.
    status : str
        ``"passed"`` (ran, every comparison within tolerance), ``"failed"`` (ran, some
        comparison outside its tolerance), ``"error"`` (raised; see ``error``) or
        ``"no comparisons"`` (ran, returned no comparison).
    title, description : str
    figures : tuple of str
        File names relative to the report directory (``<name>/<file>``).
    tables : tuple of str
        Markdown tables.
    comparisons : tuple of dict
        ``{"name", "value", "tolerance", "passed", "detail"}``.
    numbers : dict
        JSON-serialisable measured numbers.
    seconds : float
        Wall time measured by the runner (the script's own figure is in ``numbers``); in a
        worker process, from its start to its exit (interpreter start and imports included).
    cpu_seconds : float or None
        CPU time (user + system) of the script, its threads and its child processes
        included: the whole worker process, or the runner's process while the script ran
        in it.  None if the worker process died without reporting it.
    load_average : tuple of float
        One-minute load average of the machine when the script started and when it ended.
    error : str or None
        Traceback when the script raised.
    log : str or None
        Path (relative to the report directory) of the captured stdout/stderr.
    warnings : tuple of str
        Warnings issued while the script ran.

    Examples
    --------
    >>> import tempfile
    >>> from volterra_sgd.validate import run_validation
    >>> def run(out, quick=False):
    ...     return {"title": "Two", "description": "1 + 1 vs 2",
    ...             "comparisons": [{"name": "1 + 1", "value": 2.0, "tolerance": 0.0,
    ...                              "passed": 1 + 1 == 2}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = run_validation(tmp, scripts={"two": run}).scripts[0]
    >>> res.name, res.status, res.title, res.comparisons[0]["passed"]
    ('two', 'passed', 'Two', True)
    """

    name: str
    status: str
    title: str
    description: str = ""
    figures: tuple = ()
    tables: tuple = ()
    comparisons: tuple = ()
    numbers: dict = field(default_factory=dict, repr=False)
    seconds: float = 0.0
    cpu_seconds: float | None = None
    load_average: tuple = ()
    error: str | None = None
    log: str | None = None
    warnings: tuple = ()

    @property
    def ok(self) -> bool:
        """True unless the script raised or a comparison failed."""
        return self.status in ("passed", "no comparisons")

    def to_dict(self) -> dict:
        """JSON-serialisable dict (NaN and infinities become None)."""
        return _json_safe({
            "name": self.name, "status": self.status, "title": self.title,
            "description": self.description, "figures": list(self.figures),
            "tables": list(self.tables), "comparisons": list(self.comparisons),
            "numbers": self.numbers, "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds, "load_average": list(self.load_average),
            "error": self.error, "log": self.log, "warnings": list(self.warnings)})

    @classmethod
    def from_dict(cls, d: Mapping) -> ScriptResult:
        """Inverse of :meth:`to_dict` (lists become tuples)."""
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in ("figures", "tables", "comparisons", "load_average", "warnings"):
            if k in kw:
                kw[k] = tuple(kw[k] or ())
        kw["numbers"] = dict(kw.get("numbers") or {})
        return cls(**kw)


@dataclass(frozen=True)
class ValidationReport:
    """Result of :func:`run_validation`.

    Attributes
    ----------
    out : pathlib.Path
        Report directory.
    report_path, summary_path : pathlib.Path
        ``out / "report.md"`` and ``out / "summary.json"``.
    scripts : tuple of ScriptResult
        In the order they ran.
    quick : bool
    seconds : float
        Total wall time.
    cpu_seconds : float
        Total CPU time: the scripts' plus the runner's own (discovery, Numba warm-up,
        report).
    jobs : int
        Worker processes running scripts at the same time (0: the scripts ran in the
        runner's process, one after the other).
    success : bool
        Every script ran and every comparison passed.
    status : int
        0 on success, 1 otherwise (the exit status of ``volterra-sgd validate``).
    message : str
        One-line summary.

    Examples
    --------
    A script whose comparison fails makes the report fail (exit status 1):

    >>> import tempfile
    >>> from volterra_sgd.validate import run_validation
    >>> def run(out, quick=False):
    ...     return {"title": "Pi", "description": "22/7 vs pi",
    ...             "comparisons": [{"name": "|22/7 - pi|", "value": 1.26e-3,
    ...                              "tolerance": 1e-6, "passed": False}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     rep = run_validation(tmp, scripts={"pi": run})
    ...     written = rep.report_path.is_file() and rep.summary_path.is_file()
    >>> rep.success, rep.status, rep.scripts[0].status, written
    (False, 1, 'failed', True)
    """

    out: Path
    report_path: Path
    summary_path: Path
    scripts: tuple
    quick: bool
    seconds: float
    cpu_seconds: float
    jobs: int
    success: bool
    status: int
    message: str


# ----------------------------------------------------------------------------- discovery
def _order_key(name: str):
    return (_ORDER.index(name), "") if name in _ORDER else (len(_ORDER), name)


def available_scripts() -> list[str]:
    """Names of the modules of ``volterra_sgd.validation``, in the order they run.

    Only the names are listed; whether a module defines ``run`` is checked when it is
    imported by :func:`run_validation` (modules without it are skipped).

    Returns
    -------
    list of str

    Examples
    --------
    >>> from volterra_sgd.validate import available_scripts
    >>> names = available_scripts()
    >>> names[0], "timings" in names
    ('spectrum_figure', True)
    """
    pkg = importlib.import_module(_PACKAGE)
    names = [m.name for m in pkgutil.iter_modules(pkg.__path__)
             if not m.ispkg and not m.name.startswith("_")]
    return sorted(names, key=_order_key)


def _discover(only):
    """Return a mapping name -> ``run`` callable (or the exception raised by the import)."""
    names = available_scripts()
    if only is not None:
        only = list(dict.fromkeys(only))
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(f"only: unknown validation script(s) {unknown}; "
                             f"available: {names}")
        names = [n for n in names if n in only]
    scripts = {}
    for name in names:
        try:
            mod = importlib.import_module(f"{_PACKAGE}.{name}")
        except Exception as exc:  # noqa: BLE001 - reported as an error of that script
            scripts[name] = exc
            continue
        fn = getattr(mod, "run", None)
        if callable(fn):
            scripts[name] = fn
    return scripts


# ---------------------------------------------------------------------------- helpers
def _json_safe(obj):
    """Numpy scalars/arrays -> Python; NaN/inf -> None; tuples -> lists; keys -> str."""
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy array/scalar
        return _json_safe(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return str(obj)


def _as_float(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _normalise_comparison(c, i) -> dict:
    if not isinstance(c, Mapping):
        raise TypeError(f"comparison {i} must be a dict; got {type(c).__name__}")
    value = _as_float(c.get("value"))
    tol = _as_float(c.get("tolerance"))
    if "passed" in c and c["passed"] is not None:
        passed = bool(c["passed"])
    else:  # default criterion: |value| <= tolerance
        passed = bool(abs(value) <= tol)
    if math.isnan(value):
        passed = False
    return {"name": str(c.get("name", f"comparison {i + 1}")), "value": value,
            "tolerance": tol, "passed": passed, "detail": str(c.get("detail", ""))}


def _normalise(name, res, cost, log, warns, sub=None) -> ScriptResult:
    if not isinstance(res, Mapping):
        raise TypeError(f"run() must return a dict; got {type(res).__name__}")
    unknown = set(res) - set(RESULT_KEYS)
    if unknown:
        raise ValueError(f"run() returned unknown keys {sorted(unknown)}")
    comps = tuple(_normalise_comparison(c, i) for i, c in enumerate(res.get("comparisons")
                                                                     or ()))
    figs = []
    for f in res.get("figures") or ():
        path = Path(str(f))
        if path.is_absolute() and sub is not None:
            try:
                path = path.relative_to(sub.resolve())
            except ValueError:
                path = Path(path.name)
        if sub is not None and not (sub / path).exists():
            warns = (*warns, f"figure {path.as_posix()} was listed but not written")
        figs.append(f"{name}/{path.as_posix()}")
    figs = tuple(figs)
    numbers = dict(res.get("numbers") or {})
    if "seconds" in res:
        numbers.setdefault("script_seconds", _as_float(res["seconds"]))
    if not comps:
        status = "no comparisons"
    else:
        status = "passed" if all(c["passed"] for c in comps) else "failed"
    return ScriptResult(name=name, status=status, title=str(res.get("title") or name),
                        description=str(res.get("description") or ""), figures=figs,
                        tables=tuple(str(t) for t in (res.get("tables") or ())),
                        comparisons=comps, numbers=_json_safe(numbers), log=log,
                        warnings=warns, **cost)


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        if x == 0 or 1e-3 <= abs(x) < 1e5:
            return f"{x:.4g}"
        return f"{x:.3e}"
    return str(x)


def _machine() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "python": platform.python_version(),
            "cpu_count": os.cpu_count()}
    try:
        info["load_average"] = list(os.getloadavg())
    except (AttributeError, OSError):  # pragma: no cover - not on every OS
        info["load_average"] = None
    for mod in ("numpy", "scipy", "numba", "mpmath", "matplotlib"):
        try:
            info[mod] = importlib.import_module(mod).__version__
        except Exception:  # noqa: BLE001 - optional
            info[mod] = None
    info["threads_env"] = {k: os.environ.get(k) for k in
                           ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                            "NUMBA_NUM_THREADS")}
    return info


def _git_commit():
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
    except Exception:  # noqa: BLE001 - metadata only
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# --------------------------------------------------------------------------------- run
def _cpu_now() -> float:
    """CPU seconds (user + system) of this process and of its waited-for children."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on every OS
        return time.process_time()
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _load1():
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # pragma: no cover - not on every OS
        return None


def _run_one(name, fn, out: Path, quick: bool, capture: bool = True) -> ScriptResult:
    """Run one script in this process; ``capture``: its output goes to ``name/log.txt``."""
    sub = out / name
    sub.mkdir(parents=True, exist_ok=True)
    log_path = sub / "log.txt"
    load0 = _load1()
    t0, c0 = time.perf_counter(), _cpu_now()
    if isinstance(fn, BaseException):  # import failed
        err = "".join(traceback.format_exception(type(fn), fn, fn.__traceback__))
        return ScriptResult(name=name, status="error", title=name, error=err, seconds=0.0,
                            cpu_seconds=0.0, load_average=(load0, load0))
    buf = io.StringIO()
    redirect = (contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf)) \
        if capture else (contextlib.nullcontext(), contextlib.nullcontext())

    def costs():
        return {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_now() - c0,
                "load_average": (load0, _load1())}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with redirect[0], redirect[1]:
                res = fn(out=sub, quick=quick)
            cost = costs()
            warns = tuple(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
            if capture:
                log_path.write_text(buf.getvalue())
            return _normalise(name, res, cost, f"{name}/log.txt", warns, sub)
        except Exception:  # noqa: BLE001 - every failure is reported, the others still run
            cost = costs()
            if capture:
                log_path.write_text(buf.getvalue())
            warns = tuple(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
            return ScriptResult(name=name, status="error", title=name,
                                error=traceback.format_exc(), log=f"{name}/log.txt",
                                warnings=warns, **cost)


def _worker_main(spec: Mapping) -> None:
    """Entry point of a worker process: run one script, write its result as JSON.

    Output goes to the worker's stdout/stderr, which the runner points at the script's
    ``log.txt``.  The CPU time reported covers the whole process (interpreter start,
    imports, Numba cache loads) and its child processes.
    """
    import faulthandler

    faulthandler.enable()
    name, out = spec["name"], Path(spec["out"])
    try:
        fn = importlib.import_module(f"{spec['package']}.{name}").run
    except Exception as exc:  # noqa: BLE001 - reported as an error of that script
        fn = exc
    res = _run_one(name, fn, out, bool(spec["quick"]), capture=False)
    sys.stdout.flush()
    sys.stderr.flush()
    d = res.to_dict()
    d["cpu_seconds"] = _cpu_now()  # the whole worker process, not only run()
    tmp = Path(spec["result"] + ".tmp")
    tmp.write_text(json.dumps(_json_safe(d)))
    os.replace(tmp, spec["result"])


#: Source run by ``python -c`` in a worker process (argv[1]: the JSON spec).
_WORKER_SOURCE = ("import json, sys; spec = json.loads(sys.argv[1]); "
                  "sys.path[:0] = [p for p in spec['path'] if p not in sys.path]; "
                  "import importlib; importlib.import_module(spec['runner'])"
                  "._worker_main(spec)")


class _Worker:
    """One script running in a worker process (``python -c _WORKER_SOURCE``)."""

    def __init__(self, name: str, out: Path, quick: bool, env: Mapping[str, str]):
        self.name = name
        sub = out / name
        sub.mkdir(parents=True, exist_ok=True)
        self.result = sub / "_result.json"
        self.result.unlink(missing_ok=True)
        spec = {"name": name, "package": _PACKAGE, "runner": __name__, "out": str(out),
                "quick": bool(quick), "result": str(self.result),
                "path": [p for p in sys.path if p]}
        self.load0 = _load1()
        self.t0 = time.perf_counter()
        self.log = open(sub / "log.txt", "w")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER_SOURCE, json.dumps(spec)],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=dict(env))

    def finish(self) -> ScriptResult:
        """Collect the finished process's result (an ``error`` result if it wrote none)."""
        seconds = time.perf_counter() - self.t0
        self.log.close()
        code = self.proc.returncode
        load = (self.load0, _load1())
        if code == 0 and self.result.is_file():
            d = json.loads(self.result.read_text())
            self.result.unlink()
            d["seconds"] = seconds
            d["load_average"] = load
            return ScriptResult.from_dict(d)
        tail = (self.result.parent / "log.txt").read_text(errors="replace")[-4000:]
        return ScriptResult(name=self.name, status="error", title=self.name,
                            error=f"worker process exited with status {code} without a "
                                  f"result; end of its output:\n{tail}",
                            seconds=seconds, load_average=load, log=f"{self.name}/log.txt")


def _is_exclusive(fn) -> bool:
    mod = sys.modules.get(getattr(fn, "__module__", None) or "")
    return bool(getattr(mod, "EXCLUSIVE", False))


def _worker_env() -> dict:
    env = dict(os.environ)
    for key in _SERIAL_BLAS:
        env.setdefault(key, "1")
    return env


def _run_parallel(found: Mapping, out: Path, quick: bool, jobs: int, echo):
    """Run the discovered scripts in worker processes, ``jobs`` at a time.

    Returns the results by name and the launch order (the exclusive scripts last).
    """
    names = list(found)
    first = [n for n in _START_FIRST if n in found]
    queue = first + [n for n in names if n not in first]
    alone = [n for n in queue if _is_exclusive(found[n])]
    queue = [n for n in queue if n not in alone]
    order = queue + alone
    env = _worker_env()
    results, running = {}, []
    started = 0

    def launch(name):
        nonlocal started
        started += 1
        if echo:
            echo(f"[{started}/{len(names)}] {name} ...")
        if isinstance(found[name], BaseException):  # import failed in this process too
            done(_run_one(name, found[name], out, quick))
        else:
            running.append(_Worker(name, out, quick, env))

    def done(res):
        results[res.name] = res
        if echo:
            echo(_progress_line(res))

    try:
        while queue or alone or running:
            while queue and len(running) < jobs:
                launch(queue.pop(0))
            if not queue and not running and alone:
                launch(alone.pop(0))
            for w in [w for w in running if w.proc.poll() is not None]:
                running.remove(w)
                done(w.finish())
            if running:
                time.sleep(0.1)
    finally:  # interrupted (Ctrl-C, an exception in echo): leave no worker behind
        for w in running:
            w.proc.kill()
            w.proc.wait()
            w.log.close()
    return results, order


def idle_wall_estimate(cpu_seconds: Sequence[float], exclusive: Sequence[float],
                       jobs: int, cpus: int, serial: float = 0.0) -> float:
    """Wall time the scripts would take on idle CPUs, from their measured CPU times.

    Replays the runner's schedule with every script taking its CPU time: the scripts in
    ``cpu_seconds`` (launch order) go to the first free of ``min(jobs, cpus)`` workers, then
    the ``exclusive`` ones run alone; ``serial`` (the runner's own work) is added.  On a
    loaded machine this is the figure to compare with a wall-time budget: CPU time grows
    little with load, wall time a lot.  It is an upper estimate when scripts use more than
    one thread while the other worker is idle.

    Parameters
    ----------
    cpu_seconds : sequence of float
        CPU seconds of the scripts that share the workers, in launch order.
    exclusive : sequence of float
        CPU seconds of the scripts that run alone afterwards.
    jobs, cpus : int
        Workers and CPUs.
    serial : float, default 0
        Seconds of work that overlaps with none of the scripts (the runner's discovery,
        Numba warm-up and report).

    Returns
    -------
    float

    Examples
    --------
    >>> from volterra_sgd.validate import idle_wall_estimate
    >>> idle_wall_estimate([50, 30, 25, 10], [15], jobs=2, cpus=2, serial=1)
    76.0
    """
    slots = [0.0] * max(1, min(jobs, cpus))
    for c in cpu_seconds:
        i = slots.index(min(slots))
        slots[i] += float(c)
    return float(serial) + max(slots) + float(sum(exclusive))


def _progress_line(res: ScriptResult) -> str:
    npass = sum(c["passed"] for c in res.comparisons)
    cpu = "" if res.cpu_seconds is None else f", CPU {res.cpu_seconds:.1f} s"
    return (f"    {res.name}: {res.status.upper()}: {npass}/{len(res.comparisons)} comparisons "
            f"within tolerance (wall {res.seconds:.1f} s{cpu})"
            + (f"\n    {res.error.strip().splitlines()[-1]}" if res.error else ""))


def _warmup(jobs: int):
    """Compile or load every Numba kernel once, before the workers start.

    Otherwise each worker compiles the kernels it needs on a cold cache: the same
    compilation in two processes at once, twice the CPU time.
    """
    if jobs < 2 or _PACKAGE != f"{__package__}.validation":
        return None
    from ._numba import warmup

    c0 = time.perf_counter(), _cpu_now()
    warmup()
    return {"seconds": time.perf_counter() - c0[0], "cpu_seconds": _cpu_now() - c0[1]}


def run_validation(out, *, quick: bool = False, only: Sequence[str] | None = None,
                   scripts: Mapping[str, Callable] | None = None,
                   command: str | None = None, echo: Callable[[str], None] | None = None,
                   jobs: int | None = None) -> ValidationReport:
    """Run the validation scripts and write ``out/report.md`` and ``out/summary.json``.

    Parameters
    ----------
    out : str or path-like
        Report directory (created).  Script ``name`` writes its files into ``out/name/``.
    quick : bool, default False
        Passed to every script: small sizes and few draws (the whole quick report fits in
        5 minutes of wall time on two idle cores; the full run takes under an hour).
    only : sequence of str, optional
        Run only these scripts (names as in :func:`available_scripts`).
    scripts : mapping of str to callable, optional
        Use these ``run(out, quick)`` callables instead of discovering
        ``volterra_sgd.validation`` (for testing and for users' own checks).  They run in
        this process, one after the other.
    command : str, optional
        Command line recorded in the report (default: ``sys.argv``).
    echo : callable, optional
        Called with one progress line when a script starts and one when it ends (the CLI
        passes ``print``).
    jobs : int, optional
        Discovered scripts run in worker processes, ``jobs`` at a time, with one BLAS
        thread each (``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and
        ``VECLIB_MAXIMUM_THREADS`` default to 1 in the workers).  Default
        ``min(2, os.cpu_count())``.  ``jobs=0`` runs them in this process, one after the
        other, with the process's own thread settings.

    Returns
    -------
    ValidationReport
        ``success`` is True when every script ran and every comparison passed.

    Raises
    ------
    ValueError
        If ``only`` names an unknown script, or ``jobs`` is negative.
    TypeError
        If ``out`` is not path-like, or ``jobs`` is not an integer.
    ImportError
        If matplotlib (the ``plot`` extra) is missing and ``scripts`` is not given.

    Examples
    --------
    A validation script is any callable ``run(out, quick) -> dict``:

    >>> import tempfile
    >>> from volterra_sgd.validate import run_validation
    >>> def run(out, quick=False):
    ...     value = abs(sum(1 / 2**k for k in range(60)) - 2)
    ...     return {"title": "Geometric series", "description": "sum of 2^-k vs 2",
    ...             "comparisons": [{"name": "|sum - 2|", "value": value,
    ...                              "tolerance": 1e-15, "passed": value <= 1e-15}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     rep = run_validation(tmp, scripts={"series": run})
    ...     text = rep.report_path.read_text()
    >>> rep.success, rep.status, rep.scripts[0].status
    (True, 0, 'passed')
    >>> "## Geometric series" in text and "| PASS |" in text
    True
    """
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a path; got {type(out).__name__}")
    if jobs is None:
        jobs = min(2, os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise TypeError(f"jobs must be an integer; got {jobs!r}")
    if jobs < 0:
        raise ValueError(f"jobs must be >= 0; got {jobs}")
    out = Path(out)
    if only is not None and isinstance(only, str):
        only = [only]
    if scripts is None:
        try:  # the scripts draw figures; fail early with the fix instead of in every script
            import matplotlib  # noqa: F401
        except ImportError:
            raise ImportError("the validation report needs matplotlib: "
                              "pip install 'volterra-sgd[plot]'") from None
        found = _discover(only)
    else:
        found = dict(scripts)
        if only is not None:
            unknown = [n for n in only if n not in found]
            if unknown:
                raise ValueError(f"only: unknown validation script(s) {unknown}; "
                                 f"available: {list(found)}")
            found = {n: f for n, f in found.items() if n in only}
        jobs = 0
    out.mkdir(parents=True, exist_ok=True)
    from . import __version__

    started = _dt.datetime.now(_dt.timezone.utc)
    machine_start = _machine()
    t0, c0 = time.perf_counter(), _cpu_now()
    warm = _warmup(jobs) if found else None
    order = None
    if jobs >= 1:
        by_name, order = _run_parallel(found, out, quick, jobs, echo)
        results = [by_name[n] for n in found]
    else:
        results = []
        for i, (name, fn) in enumerate(found.items()):
            if echo:
                echo(f"[{i + 1}/{len(found)}] {name} ...")
            results.append(_run_one(name, fn, out, quick))
            if echo:
                echo(_progress_line(results[-1]))
    seconds = time.perf_counter() - t0
    # this process and its waited-for children: the workers and everything they started
    cpu_total = _cpu_now() - c0
    estimate = None
    if order is not None and None not in [r.cpu_seconds for r in results]:
        cpu = {r.name: r.cpu_seconds for r in results}
        alone = [cpu[n] for n in order if _is_exclusive(found[n])]
        shared = [cpu[n] for n in order if not _is_exclusive(found[n])]
        # the runner's own work (discovery, warm-up, the report) is serial
        estimate = idle_wall_estimate(shared, alone, jobs, os.cpu_count() or 1,
                                      serial=max(cpu_total - sum(cpu.values()), 0.0))
    try:
        load_end = list(os.getloadavg())
    except (AttributeError, OSError):  # pragma: no cover
        load_end = None
    success = bool(results) and all(r.ok for r in results)
    n_comp = sum(len(r.comparisons) for r in results)
    n_pass = sum(c["passed"] for r in results for c in r.comparisons)
    n_err = sum(r.status == "error" for r in results)
    message = (f"{len(results)} scripts, {n_err} raised; {n_pass}/{n_comp} comparisons "
               f"within tolerance; {seconds:.0f} s wall, {cpu_total:.0f} s CPU")
    meta = {
        "date_utc": started.isoformat(timespec="seconds"),
        "package_version": __version__, "git_commit": _git_commit(),
        "command": command if command is not None else " ".join(sys.argv),
        "quick": bool(quick), "machine": machine_start, "load_average_end": load_end,
        "seconds": seconds, "cpu_seconds": cpu_total, "idle_wall_estimate": estimate,
        "jobs": jobs, "worker_env": ({k: _worker_env()[k] for k in _SERIAL_BLAS}
                                    if jobs >= 1 else None),
        "warmup": warm, "success": success, "message": message,
        "scripts_run": [r.name for r in results],
    }
    report_path = out / "report.md"
    summary_path = out / "summary.json"
    summary = {"meta": meta, "scripts": {r.name: r.to_dict() for r in results}}
    summary_path.write_text(json.dumps(_json_safe(summary), indent=1))
    report_path.write_text(_render(meta, results))
    return ValidationReport(out=out, report_path=report_path, summary_path=summary_path,
                            scripts=tuple(results), quick=bool(quick), seconds=seconds,
                            cpu_seconds=cpu_total, jobs=jobs, success=success,
                            status=0 if success else 1, message=message)


# ----------------------------------------------------------------------------- report
def _cell(text) -> str:
    """Escape a value for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _anchor(title: str) -> str:
    keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return keep.strip().replace(" ", "-")


def _fmt_s(x) -> str:
    return "–" if x is None else f"{x:.1f}"


def _jobs_line(meta: dict) -> str:
    jobs = meta.get("jobs", 0)
    if not jobs:
        return "scripts run one after the other in the runner's process"
    env = ", ".join(f"{k}={v}" for k, v in (meta.get("worker_env") or {}).items())
    ncpu = meta["machine"].get("cpu_count") or 1
    est = meta.get("idle_wall_estimate")
    return (f"scripts run in worker processes, {jobs} at a time ({env})"
            + ("" if est is None else
               f"; on {ncpu} idle CPUs this schedule would take about {est:.0f} s of wall "
               "time (each script's CPU time replayed on the workers, "
               "`idle_wall_estimate`)"))


def _render(meta: dict, results: list) -> str:
    m = meta["machine"]
    load = m.get("load_average")
    load_s = ", ".join(f"{x:.2f}" for x in load) if load else "n/a"
    load_e = ", ".join(f"{x:.2f}" for x in meta["load_average_end"]) \
        if meta.get("load_average_end") else "n/a"
    lines = [
        "# volterra_sgd validation report",
        "",
        f"- **Result:** {'all checks passed' if meta['success'] else 'SOME CHECKS FAILED'} "
        f"({meta['message']})",
        f"- **Date (UTC):** {meta['date_utc']}",
        f"- **Package version:** volterra_sgd {meta['package_version']}"
        + (f" (git {meta['git_commit'][:12]})" if meta.get("git_commit") else ""),
        f"- **Mode:** {'quick (--quick)' if meta['quick'] else 'full'}",
        f"- **Command:** `{meta['command']}`",
        f"- **Machine:** {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, "
        f"NumPy {m['numpy']}, SciPy {m['scipy']}, Numba {m['numba']}",
        "- **Threads:** " + ", ".join(f"{k}={v}" for k, v in m["threads_env"].items()),
        f"- **Load average (1, 5, 15 min):** {load_s} at the start; {load_e} at the end",
        f"- **Cost:** {meta['seconds']:.1f} s wall, {meta['cpu_seconds']:.1f} s CPU "
        f"(user + system, all processes); " + _jobs_line(meta),
        "",
        "Every number below was computed in this run; `summary.json` holds all of them "
        "(and the per-script `numbers`). Each comparison states its value, its tolerance "
        "and whether it is within it.",
        "",
        "## Summary",
        "",
        "| script | status | comparisons within tolerance | wall time (s) | CPU time (s) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        npass = sum(c["passed"] for c in r.comparisons)
        lines.append(f"| [{_cell(r.title)}](#{_anchor(r.title)}) (`{r.name}`) | "
                     f"{r.status.upper()} | {npass}/{len(r.comparisons)} | {r.seconds:.1f} | "
                     f"{_fmt_s(r.cpu_seconds)} |")
    if meta.get("warmup"):
        lines.append(f"| Numba warm-up (runner) | | | {meta['warmup']['seconds']:.1f} | "
                     f"{meta['warmup']['cpu_seconds']:.1f} |")
    lines.append(f"| **total** | | | {meta['seconds']:.1f} | {meta['cpu_seconds']:.1f} |")
    lines.append("")
    for r in results:
        load = ", ".join("–" if x is None else f"{x:.2f}" for x in r.load_average)
        lines += ["", f"## {r.title}", "", f"Script `volterra_sgd.validation.{r.name}`; "
                  f"status **{r.status.upper()}**; {r.seconds:.1f} s wall, "
                  f"{_fmt_s(r.cpu_seconds)} s CPU"
                  + (f" (load average {load} at its start, end)" if load else "")
                  + (f"; log: [{r.log}]({r.log})" if r.log else "") + ".", ""]
        if r.error:
            lines += ["The script raised an exception:", "", "```text", r.error.rstrip(),
                      "```", ""]
        if r.description:
            lines += [r.description.strip(), ""]
        if r.comparisons:
            lines += ["| comparison | value | tolerance | result | detail |",
                      "|---|---|---|---|---|"]
            for c in r.comparisons:
                lines.append(f"| {_cell(c['name'])} | {_fmt(c['value'])} | "
                             f"{_fmt(c['tolerance'])} | "
                             f"{'PASS' if c['passed'] else '**FAIL**'} | "
                             f"{_cell(c['detail'])} |")
            lines.append("")
        for t in r.tables:
            lines += [t.strip(), ""]
        for f in r.figures:
            lines += [f"![{Path(f).stem}]({f})", ""]
        if r.warnings:
            lines += ["Warnings issued:", ""] + [f"- {_cell(w)}" for w in r.warnings] + [""]
    return "\n".join(lines).rstrip() + "\n"
