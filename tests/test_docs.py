"""Documentation checks: every public function and class has a numpydoc docstring with an
``Examples`` section that doctest collects, a ``Parameters`` section whenever it takes
arguments (dataclasses may document their fields under ``Attributes`` instead), and an entry
in the API reference (docs/api.md).  Keeps issue 8's "every public function has a numpydoc
docstring with an example that runs" from regressing; the examples themselves run under
``pytest --doctest-modules``.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import inspect
import pathlib
import pkgutil
import re

import pytest

import volterra_sgd
import volterra_sgd.numba_api

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def _public_modules():
    """The package, numba_api, then every public submodule (all define ``__all__``)."""
    mods = [volterra_sgd, volterra_sgd.numba_api]
    for info in sorted(pkgutil.iter_modules(volterra_sgd.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in ("validation", "numba_api"):
            continue
        mods.append(importlib.import_module(f"volterra_sgd.{info.name}"))
    return mods


def _public():
    out, seen = [], set()
    for module in _public_modules():
        assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or callable(obj)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            out.append((f"{module.__name__}.{name}", obj))
    return out


PUBLIC = _public()
# The API reference (docs/api.md) documents the top-level names, the plotting helpers and the
# Numba kernels; the other submodules' names are reached from the pages that use them.
API_MODULES = ("volterra_sgd", "volterra_sgd.numba_api", "volterra_sgd.plotting")


def _sections(doc: str) -> set[str]:
    """Names of the numpydoc sections (a title line underlined by dashes) in ``doc``."""
    return set(re.findall(r"^([A-Z][A-Za-z ]+)\n-{3,}\s*$", doc, flags=re.M))


def _takes_arguments(obj) -> bool:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return True
    return any(p.name != "self" for p in sig.parameters.values())


def test_section_parser():
    doc = "Summary.\n\nParameters\n----------\nx : int\n\nExamples\n--------\n>>> 1\n1\n"
    assert _sections(doc) == {"Parameters", "Examples"}
    assert _sections("Summary.\n\nExamples\n\n>>> 1\n") == set()


def test_public_names_counted():
    # volterra_sgd.__all__ minus __version__, the seven Numba kernels, the submodules' extras.
    assert len(PUBLIC) >= 100
    names = {n for n, _ in PUBLIC}
    assert {"volterra_sgd.loss_curve", "volterra_sgd.PLRF",
            "volterra_sgd.numba_api.mode_recursion"} <= names


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_numpydoc_sections(name, obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{name} has no docstring"
    summary = doc.strip().splitlines()[0]
    assert summary.strip(), f"{name}: empty summary line"
    sections = _sections(doc)
    assert "Examples" in sections, f"{name}: no 'Examples' section"
    if inspect.isclass(obj):
        if dataclasses.is_dataclass(obj):
            assert sections & {"Parameters", "Attributes"}, (
                f"{name}: a dataclass documents its fields under 'Parameters' or 'Attributes'")
        elif _takes_arguments(obj) and not issubclass(obj, BaseException):
            assert "Parameters" in sections, f"{name}: no 'Parameters' section"
        elif any("__init__" in vars(c) for c in obj.__mro__
                 if c.__module__.startswith("volterra_sgd")):
            assert "Parameters" in sections, f"{name}: custom __init__ but no 'Parameters'"
    elif _takes_arguments(obj):
        assert "Parameters" in sections, f"{name}: no 'Parameters' section"
        assert "Returns" in sections or "Yields" in sections, f"{name}: no 'Returns' section"


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_examples_are_collected_by_doctest(name, obj):
    # The example must be something doctest actually runs (>>> lines in the object's own
    # docstring), not just a heading.
    tests = doctest.DocTestFinder(recurse=False).find(obj, name.rsplit(".", 1)[-1])
    assert sum(len(t.examples) for t in tests) >= 1, f"{name}: no doctest examples"


def test_api_reference_lists_every_public_name():
    api = (DOCS / "api.md").read_text()
    missing = [name for name, _ in PUBLIC
               if name.rsplit(".", 1)[0] in API_MODULES
               and not re.search(r"^\.\. auto(function|class):: " + re.escape(name) + r"\s*$",
                                api, flags=re.M)]
    assert not missing, f"not in docs/api.md: {missing}"


def test_every_page_is_reachable_from_the_index():
    # Sphinx -W fails on pages outside every toctree; the index and howto/index end with a
    # catch-all glob, which must stay.
    index = (DOCS / "index.md").read_text()
    assert re.search(r"```\{toctree\}.*?:glob:.*?^\*\s*$.*?```", index, flags=re.S | re.M)
    howto = (DOCS / "howto" / "index.md").read_text()
    assert re.search(r"```\{toctree\}.*?:glob:.*?^\*\s*$.*?```", howto, flags=re.S | re.M)


# ------------------------------------------------------------------ a self-contained project
# docs/theory.md is the project's numbered reference.  Docstrings, --help texts, comments and
# pages cite its equations ("Eq. (3.4)", "Eqs. (6.1)-(6.3)", {ref}`... <eq-3-4>`) and sections
# ("Sec. 6"); nothing may point to a file outside the repository (the team's private notes
# included), because users never see those.
ROOT = DOCS.parent
THEORY_PAGE = DOCS / "theory.md"
CHECKED = ("volterra_sgd", "docs", "README.md", "benchmarks", "tests")
TEXT_SUFFIXES = {".py", ".md", ".rst", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json"}
# Built by concatenation so that this file does not match itself.
PRIVATE_NOTES = tuple(name + ".md" for name in ("THEORY", "OPTIMIZERS", "STYLE"))
OUTSIDE_PATHS = re.compile("|".join(re.escape(p) for p in
                                    ("/work" "/", "/home" "/", "/root" "/", "/Users" "/",
                                     "/mnt" "/", "shared" "/")))
EQ_CITATION = re.compile(r"\b[Ee]qs?\.\s*\(?\d+\.\d+\)?"
                         r"(?:\s*(?:,|-|–|and|to)\s*\(?\d+\.\d+\)?(?![\d.]*\d))*")
EQ_LABEL = re.compile(r"<eq-(\d+)-(\d+)>")
SEC_CITATION = re.compile(r"\bSecs?\.\s*(\d+)(?:\s*[-–]\s*(\d+))?")
SEC_LABEL = re.compile(r"<theory-sec-(\d+)>|\(#theory-sec-(\d+)\)")


def _tracked_text_files() -> list[pathlib.Path]:
    """Tracked text files under CHECKED (git ls-files; a plain walk outside a checkout)."""
    import subprocess

    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *CHECKED], cwd=ROOT, check=True,
                             capture_output=True).stdout.decode()
        files = [ROOT / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p for top in CHECKED for p in
                 ([ROOT / top] if (ROOT / top).is_file() else (ROOT / top).rglob("*"))]
    skip = ("_build", "__pycache__", ".ipynb_checkpoints")
    return sorted(p for p in files if p.suffix in TEXT_SUFFIXES and p.is_file()
                  and not any(part in skip for part in p.relative_to(ROOT).parts))


def _theory_numbers():
    text = THEORY_PAGE.read_text()
    tags = set(re.findall(r"\\tag\{(\d+\.\d+)\}", text))
    labels = {m.replace("-", ".") for m in re.findall(r"^\(eq-(\d+-\d+)\)=\s*$", text, re.M)}
    sections = set(re.findall(r"^## (\d+)\. ", text, re.M))
    sec_labels = set(re.findall(r"^\(theory-sec-(\d+)\)=\s*$", text, re.M))
    return tags, labels, sections, sec_labels


def test_theory_page_numbers_are_consistent():
    tags, labels, sections, sec_labels = _theory_numbers()
    assert tags, "no \\tag{x.y} in docs/theory.md"
    assert tags == labels, f"tags without a label: {sorted(tags - labels)}; labels without a " \
                           f"tag: {sorted(labels - tags)}"
    assert sections == sec_labels, "every numbered section needs a (theory-sec-N)= label"
    assert all(t.split(".")[0] in sections for t in tags), "equation outside its section"


def test_no_reference_to_files_outside_the_repository():
    bad = []
    for path in _tracked_text_files():
        text = path.read_text(errors="replace")
        rel = path.relative_to(ROOT)
        for lineno, line in enumerate(text.splitlines(), 1):
            if any(n in line for n in PRIVATE_NOTES) or OUTSIDE_PATHS.search(line):
                bad.append(f"{rel}:{lineno}: {line.strip()[:100]}")
        if path.suffix == ".md":  # relative Markdown links must stay inside the repository
            for target in re.findall(r"\]\(([^)\s#]+)", text):
                if re.match(r"[a-z]+:", target):
                    continue
                resolved = (path.parent / target).resolve()
                if not resolved.is_relative_to(ROOT.resolve()):
                    bad.append(f"{rel}: link to {target}")
    assert not bad, "references outside the repository:\n" + "\n".join(bad)


def test_cited_equations_and_sections_exist_in_the_theory_page():
    tags, _, sections, _ = _theory_numbers()
    missing = []
    for path in _tracked_text_files():
        if path in (THEORY_PAGE, pathlib.Path(__file__).resolve()):
            continue  # the page itself; this file (its pattern examples are not citations)
        rel = path.relative_to(ROOT)
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            cited = set()
            for m in EQ_CITATION.finditer(line):
                cited.update(re.findall(r"\d+\.\d+", m.group(0)))
            cited.update(f"{a}.{b}" for a, b in EQ_LABEL.findall(line))
            for n in sorted(cited - tags):
                missing.append(f"{rel}:{lineno}: Eq. ({n})")
            secs = set()
            for a, b in SEC_CITATION.findall(line):
                secs.update(str(k) for k in range(int(a), int(b or a) + 1))
            secs.update(a or b for a, b in SEC_LABEL.findall(line))
            for n in sorted(secs - sections, key=int):
                missing.append(f"{rel}:{lineno}: Sec. {n}")
    assert not missing, "cited but not in docs/theory.md:\n" + "\n".join(missing)


def test_citation_patterns():
    def numbers(s):
        return sorted({n for m in EQ_CITATION.finditer(s) for n in re.findall(r"\d+\.\d+",
                                                                                m.group(0))})
    assert numbers("docs/theory.md, Eqs. (6.1)-(6.3), (6.13) and (7.2).") == \
        ["6.1", "6.13", "6.3", "7.2"]
    assert numbers("eqs. 9.11-9.14; Eq. (3.4)") == ["3.4", "9.11", "9.14"]
    assert numbers("math.log(10.0) and Eq. (2.3), then 1.5 units") == ["2.3"]
    assert SEC_CITATION.findall("Secs. 10-11, Sec. 6") == [("10", "11"), ("6", "")]
