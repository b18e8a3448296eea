"""Sphinx configuration for the volterra_sgd documentation.

Build with ``pip install ".[docs]"`` and
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
The pages are MyST markdown; the API reference is generated from the numpydoc docstrings.
"""

from __future__ import annotations

import logging
import os
import sys

# Use the checked-out sources even without an installed package (the CI installs it anyway).
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import volterra_sgd  # noqa: E402

project = "volterra_sgd"
author = "volterra_sgd developers"
copyright = "2024-2026, volterra_sgd developers"  # noqa: A001
release = volterra_sgd.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/.ipynb_checkpoints"]
# The toctrees end with a catch-all glob ("*") so that a new page is always included; when
# every page is already listed explicitly the glob matches nothing.  Sphinx warns about that
# without a warning type (so suppress_warnings cannot select it); setup() below drops exactly
# that message and nothing else.
_EMPTY_CATCH_ALL = "toctree glob pattern '*' didn't match any documents"

# MyST: $-math and $$-math (with labels), amsmath environments, ::: fences, anchors for
# in-page links such as [x](#parallelism-and-kernels).
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_dmath_double_inline = True
myst_heading_anchors = 3

# autodoc + numpydoc
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"volterra_sgd {release}"
html_static_path: list[str] = []


class _DropEmptyCatchAllGlob(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _EMPTY_CATCH_ALL not in record.getMessage()


def setup(app):
    # sphinx.util.logging.getLogger("sphinx.directives.other") is the stdlib logger
    # "sphinx.sphinx.directives.other"; the filter sits where the record is created.
    logging.getLogger("sphinx.sphinx.directives.other").addFilter(_DropEmptyCatchAllGlob())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
