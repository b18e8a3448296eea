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
          "phase_exponents", "finite_size", "compute_optimal_study", "timings")

_PACKAGE = "volterra_sgd.validation"


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
        Wall time measured by the runner (the script's own figure is in ``numbers``).
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
            "numbers": self.numbers, "seconds": self.seconds, "error": self.error,
            "log": self.log, "warnings": list(self.warnings)})


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


def _normalise(name, res, seconds, log, warns, sub=None) -> ScriptResult:
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
                        comparisons=comps, numbers=_json_safe(numbers), seconds=seconds,
                        log=log, warnings=warns)


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
def _run_one(name, fn, out: Path, quick: bool) -> ScriptResult:
    sub = out / name
    sub.mkdir(parents=True, exist_ok=True)
    log_path = sub / "log.txt"
    t0 = time.perf_counter()
    if isinstance(fn, BaseException):  # import failed
        err = "".join(traceback.format_exception(type(fn), fn, fn.__traceback__))
        return ScriptResult(name=name, status="error", title=name, error=err, seconds=0.0)
    buf = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                res = fn(out=sub, quick=quick)
            seconds = time.perf_counter() - t0
            warns = tuple(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
            log_path.write_text(buf.getvalue())
            return _normalise(name, res, seconds, f"{name}/log.txt", warns, sub)
        except Exception:  # noqa: BLE001 - every failure is reported, the others still run
            seconds = time.perf_counter() - t0
            log_path.write_text(buf.getvalue())
            warns = tuple(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
            return ScriptResult(name=name, status="error", title=name,
                                error=traceback.format_exc(), seconds=seconds,
                                log=f"{name}/log.txt", warnings=warns)


def run_validation(out, *, quick: bool = False, only: Sequence[str] | None = None,
                   scripts: Mapping[str, Callable] | None = None,
                   command: str | None = None, echo: Callable[[str], None] | None = None
                   ) -> ValidationReport:
    """Run the validation scripts and write ``out/report.md`` and ``out/summary.json``.

    Parameters
    ----------
    out : str or path-like
        Report directory (created).  Script ``name`` writes its files into ``out/name/``.
    quick : bool, default False
        Passed to every script: small sizes and few draws (each script about a minute on
        two cores; the full run is meant to stay under an hour).
    only : sequence of str, optional
        Run only these scripts (names as in :func:`available_scripts`).
    scripts : mapping of str to callable, optional
        Use these ``run(out, quick)`` callables instead of discovering
        ``volterra_sgd.validation`` (for testing and for users' own checks).
    command : str, optional
        Command line recorded in the report (default: ``sys.argv``).
    echo : callable, optional
        Called with one progress line per script (the CLI passes ``print``).

    Returns
    -------
    ValidationReport
        ``success`` is True when every script ran and every comparison passed.

    Raises
    ------
    ValueError
        If ``only`` names an unknown script.
    TypeError
        If ``out`` is not path-like.
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
    out.mkdir(parents=True, exist_ok=True)
    from . import __version__

    started = _dt.datetime.now(_dt.timezone.utc)
    machine_start = _machine()
    t0 = time.perf_counter()
    results = []
    for i, (name, fn) in enumerate(found.items()):
        if echo:
            echo(f"[{i + 1}/{len(found)}] {name} ...")
        res = _run_one(name, fn, out, quick)
        results.append(res)
        if echo:
            npass = sum(c["passed"] for c in res.comparisons)
            echo(f"    {res.status.upper()}: {npass}/{len(res.comparisons)} comparisons "
                 f"within tolerance ({res.seconds:.1f} s)"
                 + (f"\n    {res.error.strip().splitlines()[-1]}" if res.error else ""))
    seconds = time.perf_counter() - t0
    try:
        load_end = list(os.getloadavg())
    except (AttributeError, OSError):  # pragma: no cover
        load_end = None
    success = bool(results) and all(r.ok for r in results)
    n_comp = sum(len(r.comparisons) for r in results)
    n_pass = sum(c["passed"] for r in results for c in r.comparisons)
    n_err = sum(r.status == "error" for r in results)
    message = (f"{len(results)} scripts, {n_err} raised; {n_pass}/{n_comp} comparisons "
               f"within tolerance; {seconds:.0f} s")
    meta = {
        "date_utc": started.isoformat(timespec="seconds"),
        "package_version": __version__, "git_commit": _git_commit(),
        "command": command if command is not None else " ".join(sys.argv),
        "quick": bool(quick), "machine": machine_start, "load_average_end": load_end,
        "seconds": seconds, "success": success, "message": message,
        "scripts_run": [r.name for r in results],
    }
    report_path = out / "report.md"
    summary_path = out / "summary.json"
    summary = {"meta": meta, "scripts": {r.name: r.to_dict() for r in results}}
    summary_path.write_text(json.dumps(_json_safe(summary), indent=1))
    report_path.write_text(_render(meta, results))
    return ValidationReport(out=out, report_path=report_path, summary_path=summary_path,
                            scripts=tuple(results), quick=bool(quick), seconds=seconds,
                            success=success, status=0 if success else 1, message=message)


# ----------------------------------------------------------------------------- report
def _cell(text) -> str:
    """Escape a value for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _anchor(title: str) -> str:
    keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return keep.strip().replace(" ", "-")


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
        "",
        "Every number below was computed in this run; `summary.json` holds all of them "
        "(and the per-script `numbers`). Each comparison states its value, its tolerance "
        "and whether it is within it.",
        "",
        "## Summary",
        "",
        "| script | status | comparisons within tolerance | wall time (s) |",
        "|---|---|---|---|",
    ]
    for r in results:
        npass = sum(c["passed"] for c in r.comparisons)
        lines.append(f"| [{_cell(r.title)}](#{_anchor(r.title)}) (`{r.name}`) | "
                     f"{r.status.upper()} | {npass}/{len(r.comparisons)} | {r.seconds:.1f} |")
    lines.append(f"| **total** | | | {meta['seconds']:.1f} |")
    lines.append("")
    for r in results:
        lines += ["", f"## {r.title}", "", f"Script `volterra_sgd.validation.{r.name}`; "
                  f"status **{r.status.upper()}**; {r.seconds:.1f} s"
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
