"""Threads: the same bits for any OpenMP thread count (per reduction, entry point and target kind),
for concurrent Python callers, while another thread changes the thread count, and in a forked child.

(test_dispatch.py checks 1 and 2 threads on every SIMD target for value_and_grad; here the other
entry points, probability targets, from_logits=False and per-row upstream gradients.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import threadpoolctl

import xentcpp as xc

# Large enough to go parallel (>= 65 536 elements), row-split (few long rows) and small-row paths.
SHAPES = [(3000, 40), (400, 1000), (3, 70_001), (20_000, 5)]

PROGRAM = """
import hashlib, json, sys, numpy as np, xentcpp as xc
shapes = json.loads(sys.argv[1])
out = {}
for rows, classes in shapes:
    rng = np.random.default_rng(rows + classes)
    x = (rng.standard_normal((rows, classes)) * 3).astype(np.float32)
    y = rng.integers(0, classes, rows)
    y[::7] = -100
    p = rng.random((rows, classes)).astype(np.float32)
    q = rng.uniform(0.01, 0.99, (rows, classes))
    w = (rng.random(classes) + 0.5).astype(np.float32)
    g_rows = rng.standard_normal(rows).astype(np.float32)
    for name, f in (("logsumexp", xc.logsumexp), ("softmax", xc.softmax), ("log_softmax", xc.log_softmax)):
        out[f"{rows}x{classes}/{name}"] = hashlib.sha256(f(x).tobytes()).hexdigest()
    for reduction in ("none", "sum", "mean"):
        calls = {
            "loss": lambda: xc.cross_entropy(x, y, reduction=reduction, weight=w),
            "grad": lambda: xc.cross_entropy_grad(x, y, g_rows if reduction == "none" else 0.5,
                                                  reduction=reduction, label_smoothing=0.2),
            "probs": lambda: xc.cross_entropy_value_and_grad(x, p, reduction=reduction, weight=w),
            "from_probs": lambda: xc.cross_entropy_value_and_grad(q, y, reduction=reduction, from_logits=False),
        }
        for name, call in calls.items():
            result = call()
            parts = result if isinstance(result, tuple) else (result,)
            digest = hashlib.sha256(b"".join(np.asarray(r).tobytes() for r in parts))
            out[f"{rows}x{classes}/{reduction}/{name}"] = digest.hexdigest()
print(json.dumps(out))
"""


def _digests(threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(SHAPES)], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_entry_point_and_reduction_is_bitwise_identical_for_one_and_two_threads():
    one, two = _digests(1), _digests(2)
    assert len(one) == len(SHAPES) * (3 * 4 + 3)
    assert one == two


def _cases():
    """(inputs, expected) per case: the expected results computed on this thread, before any concurrency."""
    rng = np.random.default_rng(11)
    cases = []
    for rows, classes in SHAPES + [(8, 3), (64, 1000)]:
        x = (rng.standard_normal((rows, classes)) * 2).astype(np.float32)
        y = rng.integers(0, classes, rows)
        for reduction in ("none", "mean"):
            loss, grad = xc.cross_entropy_value_and_grad(x, y, reduction=reduction)
            cases.append(((x, y, reduction), (np.asarray(loss).copy(), grad.copy())))
    return cases


def _call_and_compare(case) -> bool:
    (x, y, reduction), (loss, grad) = case
    got_loss, got_grad = xc.cross_entropy_value_and_grad(x, y, reduction=reduction)
    return np.array_equal(np.asarray(got_loss), loss) and np.array_equal(got_grad, grad)


def test_eight_python_threads_at_once_get_the_single_threaded_bits():
    cases = _cases()
    start = threading.Barrier(8)

    def worker(k: int) -> list:
        start.wait()  # all eight enter the core together (the GIL is released there)
        return [_call_and_compare(cases[(k + i) % len(cases)]) for i in range(3 * len(cases))]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    assert all(all(r) for r in results)


def test_changing_the_thread_count_during_calls_is_safe_and_exact():
    assert any(d["internal_api"] == "openmp" for d in threadpoolctl.threadpool_info()), "no OpenMP runtime seen"
    cases = _cases()
    stop = threading.Event()
    changes = 0

    def toggle() -> None:
        nonlocal changes
        while not stop.is_set():
            for limit in (1, 2, 3):
                with threadpoolctl.threadpool_limits(limits=limit, user_api="openmp"):
                    changes += 1

    changer = threading.Thread(target=toggle)
    changer.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            ok = list(pool.map(_call_and_compare, cases * 6))
    finally:
        stop.set()
        changer.join()
    assert all(ok)
    assert changes > 0


FORK_PROGRAM = """
import multiprocessing as mp, numpy as np, xentcpp as xc
def loss(seed):
    x = np.random.default_rng(seed).standard_normal((2000, 1000)).astype(np.float32)
    return xc.cross_entropy(x, np.zeros(2000, np.int64))
if __name__ == "__main__":
    parent = [loss(s) for s in range(3)]  # the parent has run parallel regions (libgomp's pool exists)
    with mp.get_context("fork").Pool(2) as pool:
        child = pool.map_async(loss, range(3)).get(timeout=60)
    assert child == parent, (child, parent)
    print("ok")
"""


def test_fork_after_use_does_not_hang(tmp_path):
    # Without the fork guard (csrc/fork_guard.cpp) the child's first parallel region waits forever.
    script = tmp_path / "fork_after_use.py"
    script.write_text(FORK_PROGRAM)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
