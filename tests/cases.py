"""Test inputs and per-dtype comparisons shared by the test files (no xentcpp calls here)."""

from __future__ import annotations

import numpy as np
import pytest

__all__ = [
    "FLOATS",
    "REDUCTIONS",
    "assert_close",
    "assert_raises_untouched",
    "check_loss",
    "loss_dtype",
    "make_problem",
]

FLOATS = (np.float32, np.float64)
REDUCTIONS = ("none", "sum", "mean")

# (rtol, atol) against the float64 reference evaluated on the exact input values (the float32 and
# float16 inputs cast to float64). float16 is computed in float32, so its loss has float32 tolerances
# and its gradient those of one float16 rounding on top of float32 arithmetic.
_TOL = {
    np.dtype(np.float64): {"loss": (1e-11, 1e-12), "grad": (1e-11, 1e-13)},
    np.dtype(np.float32): {"loss": (1e-5, 1e-5), "grad": (1e-5, 1e-6)},
    np.dtype(np.float16): {"loss": (1e-5, 1e-5), "grad": (1.5e-3, 1e-6)},
}


def loss_dtype(dtype):
    """dtype of the "none" losses for an input of `dtype` (float16 is computed in float32)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def assert_close(actual, expected, dtype, what):
    """Compare with the tolerance of `dtype` for `what` ("loss" or "grad"); NaN must match NaN."""
    rtol, atol = _TOL[np.dtype(dtype)][what]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def assert_raises_untouched(func, exc, match, *args, **kw):
    """func(*args, **kw) raises exc whose message matches, and no array argument changed (not even
    an out= buffer: errors are raised before anything is written)."""
    arrays = [a for a in (*args, *kw.values()) if isinstance(a, np.ndarray)]
    copies = [a.copy() for a in arrays]
    with pytest.raises(exc, match=match) as info:
        func(*args, **kw)
    for a, a0 in zip(arrays, copies):
        assert a.dtype == a0.dtype
        np.testing.assert_array_equal(a, a0)
    return info


def check_loss(actual, expected, dtype, reduction):
    """The loss has the contract's type (float for sum/mean, array of the batch shape for none)."""
    if reduction == "none":
        assert isinstance(actual, np.ndarray), type(actual)
        assert actual.dtype == loss_dtype(dtype)
        assert actual.shape == np.shape(expected)
    else:
        assert type(actual) is float, type(actual)
    assert_close(actual, expected, dtype, "loss")


def make_problem(rng, shape, *, axis=-1, target="index", dtype=np.float64, weighted=False,
                 ignored=False, ignore_index=-100, from_logits=True):
    """Random input, target and weight.

    target: "index" (int64 class labels; with `ignored`, every third row gets `ignore_index`),
    "prob" (soft probabilities, same shape and dtype as the input) or "onehot" (int64 one-hot of
    the input's shape). Logits are 3 * N(0, 1); probability inputs are uniform in [0.05, 0.95],
    not normalised (they are used as given), away from the clip bounds.
    """
    shape = tuple(shape)
    axis = axis % len(shape)
    n_classes = shape[axis]
    batch = shape[:axis] + shape[axis + 1:]
    if from_logits:
        x = 3.0 * rng.standard_normal(shape)
    else:
        x = rng.uniform(0.05, 0.95, shape)
    x = x.astype(dtype)
    labels = rng.integers(0, n_classes, batch)
    if target == "index":
        t = np.asarray(labels, dtype=np.int64)
        if ignored:
            skip = (np.arange(t.size) % 3 == 1).reshape(batch)
            t = np.where(skip, ignore_index, t)
    elif target == "prob":
        t = rng.random(shape) + 0.05
        t = (t / t.sum(axis=axis, keepdims=True)).astype(dtype)
    elif target == "onehot":
        t = np.moveaxis(np.eye(n_classes, dtype=np.int64)[labels], -1, axis)
    else:
        raise ValueError(target)
    weight = rng.uniform(0.5, 2.0, n_classes).astype(dtype) if weighted else None
    return x, t, weight
