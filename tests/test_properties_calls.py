"""Hypothesis properties over whole calls: any number of dimensions and class axis, float16/32/64,
1 class to a few hundred thousand, 1 row or many, class indices (any integer dtype, some ignored),
probabilities or one-hot integers, weights, smoothing, every reduction, logits or probabilities.

The arrays come from a drawn seed (hypothesis shrinks the shape and options; NumPy fills the values),
so a C of 300 000 costs milliseconds. Profile "xentcpp" (conftest.py): 50 examples, no deadline;
the large-C tests run 25.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from cases import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import ref_grad, ref_loss

import xentcpp as xc

FLOATS = st.sampled_from([np.float16, np.float32, np.float64])
LABEL_DTYPES = st.sampled_from([np.int64, np.int32, np.uint8, np.int16, np.uint64])
SMALL_C = st.one_of(st.integers(1, 40), st.sampled_from([1, 16, 32, 33, 64, 1000]))
LARGE_C = st.sampled_from([32_768, 32_769, 65_539, 131_072, 300_007])
FLOAT_32_64 = st.sampled_from([np.float32, np.float64])
KINDS = ("index", "index", "prob", "onehot")


@dataclass
class Call:
    x: np.ndarray
    t: np.ndarray
    kw: dict[str, Any] = field(default_factory=dict)

    @property
    def dtype(self):
        return self.x.dtype


@st.composite
def calls(draw, classes=SMALL_C, max_rows=6, dtypes=FLOATS, exact=False, kinds=KINDS):
    """A whole call. exact: logits are multiples of 1/64 in [-8, 8] (so that integer shifts are exact)."""
    dtype = np.dtype(draw(dtypes))
    n_classes = draw(classes)
    batch = draw(st.lists(st.integers(1 if n_classes > 1000 else 0, max_rows), min_size=0, max_size=2))
    axis = draw(st.integers(0, len(batch)))
    shape = tuple(batch[:axis]) + (n_classes,) + tuple(batch[axis:])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if exact:
        x = (rng.integers(-512, 513, shape) / 64.0).astype(dtype)
    else:
        x = (rng.standard_normal(shape) * draw(st.sampled_from([0.1, 3.0, 30.0]))).astype(dtype)
    kind = draw(st.sampled_from(kinds))
    labels = rng.integers(0, n_classes, tuple(batch))
    if kind == "index":
        t = np.where(rng.random(labels.shape) < 0.2, -100, labels) if draw(st.booleans()) else labels
        narrow = np.dtype(draw(LABEL_DTYPES))
        if t.min(initial=0) >= 0 and np.can_cast(np.min_scalar_type(n_classes - 1), narrow):
            t = t.astype(narrow)
    elif kind == "prob":
        t = rng.random(shape)
        t = (t / t.sum(axis=axis, keepdims=True)).astype(dtype)
    else:
        onehot = np.zeros(labels.shape + (n_classes,), np.int8)
        np.put_along_axis(onehot, labels[..., None], 1, axis=-1)
        t = np.moveaxis(onehot, -1, axis)
    kw: dict[str, Any] = {"axis": axis - len(shape) if draw(st.booleans()) else axis}
    kw["reduction"] = draw(st.sampled_from(["none", "sum", "mean"]))
    kw["label_smoothing"] = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))
    if draw(st.booleans()):
        kw["weight"] = rng.uniform(0.25, 4.0, n_classes).astype(dtype)
    return Call(x, np.asarray(t), kw)


LARGE_CALLS = calls(classes=LARGE_C, max_rows=2, dtypes=FLOAT_32_64)
large_c = settings(max_examples=25)  # each example holds up to 1.2 million logits


def _bits_equal(a, b) -> None:
    assert type(a) is type(b)
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


@given(calls())
def test_value_and_grad_is_loss_and_grad_bit_for_bit(call):
    loss, grad = xc.cross_entropy_value_and_grad(call.x, call.t, **call.kw)
    _bits_equal(loss, xc.cross_entropy(call.x, call.t, **call.kw))
    _bits_equal(grad, xc.cross_entropy_grad(call.x, call.t, **call.kw))


def _check_reference(call: Call) -> None:
    loss, grad = xc.cross_entropy_value_and_grad(call.x, call.t, **call.kw)
    assert_close(loss, ref_loss(call.x, call.t, **call.kw), call.dtype, "loss")
    expected = ref_grad(call.x, call.t, **call.kw)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))  # a mean's denominator may be small
    assert_close(grad / scale, expected / scale, call.dtype, "grad")


@given(calls())
def test_agrees_with_the_float64_reference(call):
    _check_reference(call)


@large_c
@given(LARGE_CALLS)
def test_agrees_with_the_float64_reference_for_large_c(call):
    _check_reference(call)


def _logits_only(call: Call) -> dict[str, Any]:
    return {k: v for k, v in call.kw.items() if k != "label_smoothing"}


@given(calls(kinds=("index",)))
def test_loss_is_nonnegative_without_smoothing(call):
    # (lse - max) >= 0 and (x_y - max) <= 0 exactly, so the computed loss cannot round below 0.
    loss = xc.cross_entropy(call.x, call.t, **dict(_logits_only(call), reduction="none"))
    assert np.all(loss >= 0)


def _check_gradient_rows_sum_to_zero(call: Call) -> None:
    # Row sum of p_c W - w_c t'_c with W = sum_c w_c t'_c: W - W = 0 for any target, weight and
    # smoothing. p_c = exp(x_c - lse) carries a few ulp from exp plus the rounding of its argument,
    # eps |x_c - lse| relative, whose p-weighted sum is the entropy of p, at most log C. Hence a bound
    # of a few eps * W * (1 + log C), with W <= max(w) (t' sums to 1); reduction none keeps each
    # row's scale at 1.
    kw = dict(call.kw, reduction="none")
    grad = xc.cross_entropy_grad(call.x, call.t, **kw).astype(np.float64)
    max_weight = float(np.max(call.kw.get("weight", 1.0)))
    classes = call.x.shape[call.kw["axis"]]
    bound = 16 * np.finfo(call.dtype).eps * max_weight * (1 + np.log(classes))
    assert np.all(np.abs(grad.sum(axis=call.kw["axis"])) <= bound)


@given(calls(dtypes=FLOAT_32_64))
def test_gradient_rows_sum_to_zero(call):
    _check_gradient_rows_sum_to_zero(call)


@pytest.mark.parametrize("classes", [65_539, 131_072])
def test_long_rows_sum_their_exponentials_without_drift(classes):
    # A row's sum of exponentials is accumulated in runs of 16 vectors, then the runs: in one chain
    # per lane (1 024 additions a block for doubles on the baseline) it drifted by up to 160 eps
    # here, 46 on AVX-512. The gradient's row sum shows that drift (softmax minus a smoothed one-hot).
    rng = np.random.default_rng(classes)
    worst = 0.0
    for _ in range(10):
        x = rng.standard_normal(classes)
        t = np.zeros(classes, np.int8)
        t[rng.integers(classes)] = 1
        grad = xc.cross_entropy_grad(x, t, axis=0, reduction="none", label_smoothing=0.1)
        worst = max(worst, abs(float(grad.sum())))
    assert worst <= 32 * np.finfo(np.float64).eps


@large_c
@given(LARGE_CALLS)
def test_gradient_rows_sum_to_zero_for_large_c(call):
    _check_gradient_rows_sum_to_zero(call)


@given(calls(dtypes=FLOAT_32_64, exact=True), st.integers(-1000, 1000))
def test_an_exact_shift_changes_no_bit(call, shift):
    # x and x + shift differ by an exact integer, so x - max(x) is the same array: same bits out.
    shifted = call.x + call.x.dtype.type(shift)
    loss, grad = xc.cross_entropy_value_and_grad(call.x, call.t, **dict(call.kw, reduction="none"))
    loss2, grad2 = xc.cross_entropy_value_and_grad(shifted, call.t, **dict(call.kw, reduction="none"))
    _bits_equal(loss2, loss)
    _bits_equal(grad2, grad)
