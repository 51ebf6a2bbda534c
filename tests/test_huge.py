"""An array of more than 2**31 elements: 32 800 x 65 536 float32 (8.6 GB).

Rows 32 768 and up start past element 2**31, where a 32-bit index would wrap. Their losses and their
in-place gradient (out=input, so no second 8.6 GB buffer) are compared with a float64 reference
computed on those rows only. Marked slow and opt-in: set XENTCPP_TEST_HUGE=1 (scripts/run_tests.sh
does, once) on a machine with about 10 GB of free memory.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np
import pytest
from reference import ref_grad, ref_loss

import xentcpp as xc

ROWS, CLASSES = 32_800, 65_536
BOUNDARY_ROW = 2**31 // CLASSES  # the first row that starts at element 2**31
BLOCK = 512  # rows filled per step: the array is built in place, never copied whole

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("XENTCPP_TEST_HUGE") != "1",
                       reason="8.6 GB test: set XENTCPP_TEST_HUGE=1 to run it"),
]


def _huge_problem():
    x = np.empty((ROWS, CLASSES), np.float32)
    for begin in range(0, ROWS, BLOCK):
        np.random.default_rng(begin).standard_normal(out=x[begin : begin + BLOCK], dtype=np.float32)
        x[begin : begin + BLOCK] *= 4
    y = np.random.default_rng(1).integers(0, CLASSES, ROWS)
    # The very last element of the array is the target of the last row, and its row maximum.
    y[-1] = CLASSES - 1
    x[-1, -1] = 40.0
    y[-2] = -100  # an ignored row past the boundary
    return x, y


def test_rows_past_two_to_the_31_elements():
    assert ROWS * CLASSES > 2**31 and BOUNDARY_ROW == 32_768
    start = time.perf_counter()
    x, y = _huge_problem()
    checked = np.r_[BOUNDARY_ROW - 4 : BOUNDARY_ROW + 4, ROWS - 8 : ROWS]  # both sides, and the end
    rows64 = x[checked].astype(np.float64)
    built = time.perf_counter()

    losses = xc.cross_entropy(x, y, reduction="none")
    np.testing.assert_allclose(losses[checked], ref_loss(rows64, y[checked], reduction="none"), rtol=1e-5, atol=1e-5)
    assert losses[-2] == 0.0
    total, grad = xc.cross_entropy_value_and_grad(x, y, reduction="sum", out=x)
    assert grad is x
    done = time.perf_counter()

    np.testing.assert_allclose(total, losses.astype(np.float64).sum(), rtol=1e-6)
    np.testing.assert_allclose(x[checked], ref_grad(rows64, y[checked], reduction="sum"), rtol=1e-5, atol=1e-6)
    assert not np.any(x[-2])
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\nhuge: build {built - start:.1f} s, loss + in-place value_and_grad {done - built:.1f} s, "
          f"peak RSS {peak_gib:.2f} GiB")
