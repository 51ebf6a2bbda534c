"""Shared fixtures: a seeded generator, torch when installed, the hypothesis profile."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# reference.py and cases.py sit beside this file; make them importable whatever the import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# When a property fails, hypothesis's pytest plugin imports its patch writer, which imports libcst,
# which warns (DeprecationWarning from mypy_extensions); with warnings as errors that turns the
# failure report into an INTERNALERROR that hides the failing example. Import it once here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst not installed: the plugin skips the patch
        pass

settings.register_profile(
    "xentcpp", deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("xentcpp")


@pytest.fixture
def rng():
    """A generator seeded the same way in every test, so failures reproduce."""
    return np.random.default_rng(20240611)


@pytest.fixture(scope="session")
def torch():
    """PyTorch, or skip the test when it is not installed."""
    return pytest.importorskip("torch")
