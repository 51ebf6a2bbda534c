"""Sphinx configuration of xentcpp's documentation.

Built with warnings as errors by scripts/run_tests.sh (``python -m sphinx -W --keep-going docs
build/docs/html``). The API reference is generated from the docstrings of the installed package: every
name in ``xentcpp.__all__`` and ``xentcpp.torch.__all__`` gets a page. The pages' ``>>>`` examples run
under pytest (``--doctest-glob='*.md'``), not here.
"""

from __future__ import annotations

import xentcpp

project = "xentcpp"
author = "the xentcpp developers"
copyright = "the xentcpp developers"
version = release = xentcpp.__version__

extensions = [
    "myst_parser",  # pages in Markdown, as README.md, RELIABILITY.md and CHANGELOG.md, which they include
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",  # the docstrings are NumPy style
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}  # autosummary writes its stubs in reST
exclude_patterns = ["_build", "examples"]
templates_path = ["_templates"]

# Markdown: anchors for headings down to ###, so that pages can link to each other's sections.
myst_heading_anchors = 3

# API reference: a module's public names are its __all__, also those it imports from private modules.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
# Without PyTorch (scripts/run_tests.sh with XENTCPP_TEST_TORCH=0), xentcpp.torch is documented against a
# stand-in: its pages stay, and the build stays free of warnings.
autodoc_mock_imports: list[str] = []
try:
    import torch  # noqa: F401
except ImportError:
    autodoc_mock_imports.append("torch")
# Likewise xentcpp.dask without Dask (the dask extra).
try:
    import dask.array  # noqa: F401
except ImportError:
    autodoc_mock_imports += ["dask", "distributed"]
autodoc_typehints = "none"  # the signatures carry the hints; numpydoc renders the documented types
numpydoc_show_class_members = False
# Checks of every docstring's form, each a warning (an error under -W): parameters documented, in the
# signature's order, with a type; a summary line; a Returns section where something is returned.
numpydoc_validation_checks = {"EX01", "GL08", "PR01", "PR02", "PR07", "RT01", "SS01"}
# simd_target is a function of the C++ extension, documented there by one line.
numpydoc_validation_exclude = {r"xentcpp\.simd_target$"}

html_theme = "furo"
html_title = f"xentcpp {release}"
html_static_path: list[str] = []
