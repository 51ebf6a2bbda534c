"""`import xentcpp.torch` without PyTorch raises an ImportError that says what to do: checked directly
where PyTorch is absent, and in a subprocess that hides it where it is installed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

MESSAGE = "xentcpp.torch needs PyTorch"


def test_import_error_without_torch():
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(ImportError, match=MESSAGE):
            import xentcpp.torch  # noqa: F401
        return
    code = "import sys; sys.modules['torch'] = None\ntry:\n import xentcpp.torch\nexcept ImportError as e:\n print(e)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert MESSAGE in run.stdout
