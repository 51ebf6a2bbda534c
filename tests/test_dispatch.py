"""SIMD dispatch and thread-count determinism.

Each SIMD target and each OpenMP thread count is fixed per process, so these tests run small
programs in subprocesses (XENTCPP_SIMD, OMP_NUM_THREADS) and compare what they print.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from xentcpp import _core

TARGETS = [t for t in ("avx512", "avx2", "baseline") if _core.simd_target_supported(t)]

# Slow: about 20 s of subprocesses (each imports xentcpp anew, which an editable install makes a CMake
# check), the half of `pytest -m "not slow"`. Each test sets XENTCPP_SIMD in its own subprocesses, so
# scripts/run_tests.sh runs them once, with the slow tests, rather than once per forced target.
pytestmark = pytest.mark.slow

# Shapes that take each kernel path: few classes (lanes own rows), one row per task, a row split
# across threads (1 row of more than one segment), and many long rows.
PROGRAM = """
import hashlib, json, numpy as np, xentcpp as xc
from xentcpp import _core
out = {"target": _core.simd_target(), "runs": {}}
rng = np.random.default_rng(7)
for rows, classes in [(3000, 10), (300, 1000), (1, 200_003), (3, 70_001)]:
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal((rows, classes)) * 4).astype(dtype)
        y = rng.integers(0, classes, rows)
        y[1::5] = -100
        w = rng.random(classes).astype(dtype) + 0.5
        for reduction in ("none", "sum", "mean"):
            for opts in ({}, {"weight": w, "label_smoothing": 0.1}):
                loss, grad = xc.cross_entropy_value_and_grad(x, y, reduction=reduction, **opts)
                key = f"{rows}x{classes}/{np.dtype(dtype).name}/{reduction}/{len(opts)}"
                out["runs"][key] = {
                    "loss": hashlib.sha256(np.asarray(loss, dtype=np.float64).tobytes()).hexdigest(),
                    "grad": hashlib.sha256(grad.tobytes()).hexdigest(),
                    "value": float(np.sum(loss)),
                }
print(json.dumps(out))
"""


def run(program: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", program], env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
        check=False,
    )


def results(target: str, threads: int) -> dict:
    done = run(PROGRAM, XENTCPP_SIMD=target, OMP_NUM_THREADS=str(threads))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_is_bitwise_identical_for_one_and_two_threads(target: str) -> None:
    one, two = results(target, 1), results(target, 2)
    assert one["target"] == two["target"] == target
    assert one["runs"] == two["runs"]


def test_targets_agree_to_rounding() -> None:
    values = {t: results(t, 2)["runs"] for t in TARGETS}
    for key, run_ in values[TARGETS[-1]].items():
        for target in TARGETS:
            assert values[target][key]["value"] == pytest.approx(run_["value"], rel=2e-6), (target, key)


def test_the_default_target_is_the_best_supported() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XENTCPP_SIMD"}
    done = subprocess.run(
        [sys.executable, "-c", "from xentcpp import _core; print(_core.simd_target())"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.stdout.strip() == TARGETS[0]


@pytest.mark.parametrize("name, message", [("sse9", "not a target"), ("AVX2", "not a target")])
def test_an_unknown_target_fails_at_import(name: str, message: str) -> None:
    done = run("import xentcpp", XENTCPP_SIMD=name)
    assert done.returncode != 0
    assert message in done.stderr and "XENTCPP_SIMD" in done.stderr


def test_the_forced_target_is_the_one_used() -> None:
    for target in TARGETS:
        done = run("from xentcpp import _core; print(_core.simd_target())", XENTCPP_SIMD=target)
        assert done.stdout.strip() == target


@pytest.mark.parametrize("target", TARGETS)
def test_small_class_path_matches_the_row_path(target: str) -> None:
    # 32 classes take the lanes-own-rows kernel, 33 the per-row kernel: the same numbers to float
    # rounding (rtol 1e-6, about 8 eps: each sums its exponentials in float lanes in another order).
    # (Smoothing is checked on both paths against the reference: C = 7 and C = 33, 1000 there.)
    program = """
import numpy as np, xentcpp as xc
rng = np.random.default_rng(3)
x = rng.standard_normal((257, 33)).astype(np.float32) * 3
x[5, 7] = -np.inf
y = rng.integers(0, 32, 257); y[9] = -100
w = rng.random(33).astype(np.float32)
x[:, 32] = -np.inf; w[32] = 0  # class 32: masked and weightless, so it changes nothing
a = xc.cross_entropy_value_and_grad(x[:, :32].copy(), y, weight=w[:32], reduction="none")
b = xc.cross_entropy_value_and_grad(x, y, weight=w, reduction="none")
assert np.isfinite(a[0]).all() and a[0][9] == 0
np.testing.assert_allclose(a[0], b[0], rtol=1e-6, atol=1e-7)
np.testing.assert_allclose(a[1], b[1][:, :32], rtol=1e-6, atol=1e-7)
assert not b[1][:, 32].any()
"""
    done = run(program, XENTCPP_SIMD=target)
    assert done.returncode == 0, done.stderr


def test_the_determinism_program_covers_every_case() -> None:
    runs = results(TARGETS[0], 2)["runs"]
    assert len(runs) == 4 * 2 * 3 * 2
    assert all(np.isfinite(r["value"]) and r["value"] > 0 for r in runs.values())
