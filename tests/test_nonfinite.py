"""NaN and infinity, through every kernel path: what a bad row does to its own loss and gradient, and
that it does nothing to the others (bit for bit) unless the result is reduced.

The semantics (README "Edge values", RELIABILITY.md):

* NaN anywhere in a row: that row's loss and gradient are NaN; "sum" and "mean" are NaN.
* +inf logit: that row NaN (inf - inf in the softmax), as PyTorch.
* every logit -inf: that row NaN (no softmax exists), as PyTorch.
* -inf on classes other than the target (masked classes): finite loss, gradient exactly 0 there.
* an ignored row is never read: whatever it holds, its loss and gradient are 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference import ref_grad, ref_loss

import xentcpp as xc

INF = np.inf
# (rows, classes, target kind): lanes own rows (C <= 32), one row per task, rows split in segments
# (a few rows of more than 32 768 classes), and probability targets.
PATHS = [(6, 7, "index"), (6, 300, "index"), (3, 40_000, "index"), (6, 300, "prob")]
BAD_ROWS = {
    "nan": lambda row: _put(row, [1], np.nan),
    "nan last": lambda row: _put(row, [-1], np.nan),
    "+inf": lambda row: _put(row, [2], INF),
    "+inf twice": lambda row: _put(row, [0, -1], INF),
    "all -inf": lambda row: _put(row, slice(None), -INF),
    "nan and -inf": lambda row: _put(row, [0], np.nan) | _put(row, [1], -INF),
}


def _put(row, where, value):
    row[where] = value
    return True


def _problem(rows, classes, kind, dtype):
    rng = np.random.default_rng(classes)
    x = (rng.standard_normal((rows, classes)) * 2).astype(dtype)
    if kind == "index":
        t = rng.integers(0, classes, rows)
        t[2] = 3  # the bad row's target, away from the columns made bad
    else:
        t = rng.random((rows, classes)).astype(dtype)
        t /= t.sum(axis=1, keepdims=True)
    return x, t


def _run(x, t, reduction):
    loss, grad = xc.cross_entropy_value_and_grad(x, t, reduction=reduction)
    return np.asarray(loss), grad


@pytest.mark.parametrize("bad", BAD_ROWS)
@pytest.mark.parametrize(("rows", "classes", "kind"), PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_bad_row_is_nan_and_leaves_the_others_bitwise(dtype, rows, classes, kind, bad):
    x, t = _problem(rows, classes, kind, dtype)
    good_loss, good_grad = _run(x, t, "none")
    BAD_ROWS[bad](x[2])
    loss, grad = _run(x, t, "none")
    assert np.isnan(loss[2]) and np.all(np.isnan(grad[2]))
    others = np.arange(rows) != 2
    np.testing.assert_array_equal(loss[others], good_loss[others])
    np.testing.assert_array_equal(grad[others], good_grad[others])
    for reduction in ("sum", "mean"):
        total, reduced_grad = _run(x, t, reduction)
        assert math.isnan(total)
        assert np.all(np.isnan(reduced_grad[2])) and np.all(np.isfinite(reduced_grad[others]))


@pytest.mark.parametrize("bad", BAD_ROWS)
@pytest.mark.parametrize(("rows", "classes"), [(6, 7), (6, 300), (3, 40_000)])
def test_an_ignored_row_is_never_read(rows, classes, bad):
    x, t = _problem(rows, classes, "index", np.float32)
    t[2] = -100
    expected_loss, expected_grad = _run(x, t, "sum")
    BAD_ROWS[bad](x[2])
    loss, grad = _run(x, t, "sum")
    assert loss == expected_loss and math.isfinite(loss)
    np.testing.assert_array_equal(grad, expected_grad)
    assert not np.any(grad[2])


@pytest.mark.parametrize(("rows", "classes", "kind"), PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_classes_have_zero_gradient_and_the_reference_loss(dtype, rows, classes, kind):
    x, t = _problem(rows, classes, kind, dtype)
    mask = np.random.default_rng(1).random(x.shape) < 0.3
    if kind == "index":
        mask[np.arange(rows), t] = False  # the target class stays finite
    else:
        t = np.where(mask, 0, t).astype(dtype)  # no probability on a masked class
    x[mask] = -INF
    loss, grad = _run(x, t, "none")
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    assert np.all(grad[mask] == 0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss, ref_loss(x, t, reduction="none"), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, ref_grad(x, t, reduction="none"), rtol=tol, atol=tol)


@pytest.mark.parametrize("bad", BAD_ROWS)
@pytest.mark.parametrize(("rows", "classes"), [(6, 7), (6, 300)])
def test_nan_pattern_matches_torch(torch, rows, classes, bad):
    x, t = _problem(rows, classes, "index", np.float64)
    x[1, 4] = -INF  # a masked class in a good row
    BAD_ROWS[bad](x[2])
    loss, grad = _run(x, t, "none")
    xt = torch.from_numpy(x).requires_grad_()
    expected = torch.nn.functional.cross_entropy(xt, torch.from_numpy(t), reduction="none")
    expected.sum().backward()
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(expected.detach().numpy()))
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(xt.grad.numpy()))
    finite = ~np.isnan(loss)
    np.testing.assert_allclose(loss[finite], expected.detach().numpy()[finite], rtol=1e-12)
