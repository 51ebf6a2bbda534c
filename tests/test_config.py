"""show_config, __version__, `python -m xentcpp info`, and the thread count with threadpoolctl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import xentcpp as xc


def test_version_is_the_distributions_or_the_builds():
    assert xc.__version__ == xc._core.__version__  # both come from pyproject.toml
    assert xc.__version__.count(".") >= 2
    try:
        dist = metadata.distribution("xentcpp")
    except metadata.PackageNotFoundError:
        return  # imported from a build tree with no installed copy: the compiled version is the answer
    if Path(str(dist.locate_file("xentcpp/__init__.py"))).resolve() == Path(xc.__file__).resolve():
        assert xc.__version__ == dist.version


def test_show_config_dicts_describe_this_build():
    info = xc.show_config("dicts")
    assert info["xentcpp"]["version"] == xc.__version__
    assert info["numpy"]["version"] == np.__version__
    assert info["compiler"]["name"].split()[0] in ("GCC", "Clang", "MSVC")
    simd = info["simd"]
    assert simd["in_use"] == xc.simd_target()
    assert "baseline" in simd["compiled"] and "baseline" in simd["cpu_supports"]
    assert set(simd["cpu_supports"]) <= set(simd["compiled"])
    assert simd["in_use"] in simd["cpu_supports"]
    assert simd["forced_by_XENTCPP_SIMD"] == (os.environ.get("XENTCPP_SIMD") or None)
    omp = info["openmp"]
    assert omp["max_threads"] == xc.get_num_threads()
    if omp["enabled"]:
        assert omp["version"] >= 200505 and os.path.exists(omp["library"])


def test_show_config_prints(capsys):
    assert xc.show_config() is None
    out = capsys.readouterr().out
    assert out.startswith(f"xentcpp {xc.__version__}\n")
    assert f"simd in use   {xc.simd_target()}" in out and "threads" in out and "compiler" in out
    with pytest.raises(ValueError, match="'stdout' or 'dicts'"):
        xc.show_config("json")  # type: ignore[call-overload]


def test_command_line_info():
    run = subprocess.run([sys.executable, "-m", "xentcpp", "info", "--json"], capture_output=True, text=True,
                         check=True)
    info = json.loads(run.stdout)
    assert info["simd"]["in_use"] == xc.simd_target()
    text = subprocess.run([sys.executable, "-m", "xentcpp", "info"], capture_output=True, text=True, check=True)
    assert text.stdout.startswith("xentcpp ") and "simd compiled" in text.stdout
    bad = subprocess.run([sys.executable, "-m", "xentcpp"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "info" in bad.stderr


@pytest.fixture
def restore_threads():
    before = xc.get_num_threads()
    yield before
    xc.set_num_threads(before)


def test_set_get_and_context_manager(restore_threads):
    before = restore_threads
    xc.set_num_threads(1)
    assert xc.get_num_threads() == 1
    xc.set_num_threads(before)
    with xc.threads(1):
        assert xc.get_num_threads() == 1
        with xc.threads(3):
            assert xc.get_num_threads() == 3
        assert xc.get_num_threads() == 1
    assert xc.get_num_threads() == before
    with pytest.raises(RuntimeError), xc.threads(1):
        raise RuntimeError  # restored on an exception too
    assert xc.get_num_threads() == before
    xc.set_num_threads(np.int64(2))
    assert xc.get_num_threads() == 2


@pytest.mark.parametrize(("n", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError),
                                          ("2", TypeError)])
def test_bad_thread_counts(restore_threads, n, error):
    with pytest.raises(error, match="number of threads"):
        xc.set_num_threads(n)
    assert xc.get_num_threads() == restore_threads


def test_count_is_per_python_thread(restore_threads):
    """OpenMP's count is per calling thread: setting it here leaves another Python thread's default."""
    xc.set_num_threads(1)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(xc.get_num_threads()))
    worker.start()
    worker.join()
    assert xc.get_num_threads() == 1
    assert seen == [restore_threads]


def test_results_do_not_depend_on_the_count(rng):
    x = rng.standard_normal((512, 300)).astype(np.float32)  # above the one-thread cutoff (65 536 elements)
    y = rng.integers(0, 300, 512)
    results = []
    for n in (1, 2, 3):
        with xc.threads(n):
            loss, grad = xc.cross_entropy_value_and_grad(x, y)
            results.append((loss, grad))
    for loss, grad in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(grad, results[0][1])


def test_threadpoolctl_finds_and_limits_our_openmp(restore_threads):
    omp = xc.show_config("dicts")["openmp"]
    if not omp["enabled"]:  # a serial build (say, Apple Clang without libomp): one thread, whatever is asked
        with xc.threads(4), threadpool_limits(limits=2):
            assert xc.get_num_threads() == 1
        return
    ours = os.path.realpath(omp["library"])
    found = [m for m in threadpool_info() if m["user_api"] == "openmp"]
    assert ours in {os.path.realpath(m["filepath"]) for m in found}, found
    with threadpool_limits(limits=1, user_api="openmp"):
        assert xc.get_num_threads() == 1
        assert xc.show_config("dicts")["openmp"]["max_threads"] == 1
    assert xc.get_num_threads() == restore_threads
    with xc.threads(1):  # and threadpoolctl sees what set_num_threads set
        mine = [m for m in threadpool_info() if os.path.realpath(m["filepath"]) == ours]
        assert mine[0]["num_threads"] == 1
