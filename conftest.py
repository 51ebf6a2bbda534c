"""pytest's settings for the documentation's examples: the ``>>>`` examples of README.md and docs/*.md run
as doctests (``--doctest-glob='*.md'`` in pyproject.toml). A page whose examples import an optional package
is skipped where that package is not installed, as the tests that need it are.

(At the root rather than in docs/: a second conftest.py beside tests/conftest.py, in a directory that is not
a package, would be imported under the same module name when ``--doctest-modules`` collects both.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

collect_ignore = ["docs/conf.py"]  # Sphinx's configuration, not a module of examples

DOCS = Path(__file__).resolve().parent / "docs"
# Page -> the optional package its examples import.
NEEDS = {"guide/layouts.md": "ml_dtypes", "guide/torch.md": "torch", "guide/sharded.md": "dask"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DOCS not in item.path.parents:
            continue
        package = NEEDS.get(item.path.relative_to(DOCS).as_posix())
        if package and importlib.util.find_spec(package) is None:
            item.add_marker(pytest.mark.skip(reason=f"the examples of {item.path.name} need {package}"))
