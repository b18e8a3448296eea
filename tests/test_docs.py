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
