"""Every error of the contract: its type, a clear message, and arguments left untouched."""

from __future__ import annotations

import numpy as np
import pytest
from cases import assert_raises_untouched

import xentcpp as xc

FUNCS = {
    "loss": xc.cross_entropy,
    "grad": xc.cross_entropy_grad,
    "value_and_grad": xc.cross_entropy_value_and_grad,
}
GRAD_FUNCS = {k: FUNCS[k] for k in ("grad", "value_and_grad")}


def _x():
    return np.array([[0.5, 1.0, -1.0, 2.0], [2.0, 0.0, 1.0, -0.5], [0.1, 0.2, 0.3, 0.4]])


Y = np.array([0, 3, 1])
P = np.full((3, 4), 0.25)


# (id, exception, message pattern, input, target, keyword arguments)
COMMON_ERRORS = [
    ("int input", TypeError, r"(?i)float", np.arange(12).reshape(3, 4), Y, {}),
    ("int8 input", TypeError, r"(?i)float", np.ones((3, 4), dtype=np.int8), Y, {}),
    ("bool input", TypeError, r"(?i)float", np.ones((3, 4), dtype=bool), Y, {}),
    ("complex input", TypeError, r"(?i)float", _x().astype(np.complex128), Y, {}),
    ("object input", TypeError, r"(?i)float", _x().astype(object), Y, {}),
    ("float labels", TypeError, r"(?i)integer", _x(), np.array([0.0, 3.0, 1.0]), {}),
    ("float32 labels", TypeError, r"(?i)integer", _x(), np.array([0, 3, 1], np.float32), {}),
    ("float label list", TypeError, r"(?i)integer", _x(), [0.0, 3.0, 1.0], {}),
    ("bool labels", TypeError, r"(?i)integer", _x(), np.array([True, False, True]), {}),
    ("complex weight", TypeError, r"weight", _x(), Y, {"weight": np.ones(4, dtype=complex)}),
    ("string weight", TypeError, r"weight", _x(), Y, {"weight": np.array(list("abcd"))}),
    ("from_logits int", TypeError, r"from_logits", _x(), Y, {"from_logits": 1}),
    ("from_logits str", TypeError, r"from_logits", _x(), Y, {"from_logits": "False"}),
    ("from_logits None", TypeError, r"from_logits", _x(), Y, {"from_logits": None}),
    ("0-d input", ValueError, r"(?i)0-d|dimension", np.array(1.5), np.array(0), {}),
    ("no classes", ValueError, r"(?i)class|empty", np.zeros((3, 0)), Y, {}),
    ("no classes 1-d", ValueError, r"(?i)class|empty", np.zeros(0), np.array(0), {}),
    ("too few labels", ValueError, r"shape", _x(), np.array([0, 1]), {}),
    ("labels (3, 1)", ValueError, r"shape", _x(), np.zeros((3, 1), dtype=np.int64), {}),
    ("transposed probs", ValueError, r"shape", _x(), np.full((4, 3), 0.25), {}),
    ("labels for axis 0", ValueError, r"shape", _x(), Y, {"axis": 0}),
    ("weight too short", ValueError, r"weight", _x(), Y, {"weight": np.ones(3)}),
    ("weight 2-d", ValueError, r"weight", _x(), Y, {"weight": np.ones((1, 4))}),
    ("weight scalar", ValueError, r"weight", _x(), Y, {"weight": 1.0}),
    ("reduction avg", ValueError, r"reduction", _x(), Y, {"reduction": "avg"}),
    ("reduction elementwise_mean", ValueError, r"reduction", _x(), Y,
     {"reduction": "elementwise_mean"}),
    ("smoothing < 0", ValueError, r"label_smoothing", _x(), Y, {"label_smoothing": -0.1}),
    ("smoothing > 1", ValueError, r"label_smoothing", _x(), Y, {"label_smoothing": 1.5}),
    ("smoothing nan", ValueError, r"label_smoothing", _x(), Y, {"label_smoothing": np.nan}),
    ("epsilon < 0", ValueError, r"epsilon", _x(), Y, {"epsilon": -1e-3}),
    ("epsilon 0.5", ValueError, r"epsilon", _x(), Y, {"epsilon": 0.5}),
    ("epsilon nan", ValueError, r"epsilon", _x(), Y, {"epsilon": np.nan}),
    ("ignore_index with probs", ValueError, r"ignore_index", _x(), P, {"ignore_index": -1}),
    ("ignore_index 0 with probs", ValueError, r"ignore_index", _x(), P, {"ignore_index": 0}),
]


@pytest.mark.parametrize("func", FUNCS.values(), ids=list(FUNCS))
@pytest.mark.parametrize(("exc", "match", "x", "t", "kw"), [c[1:] for c in COMMON_ERRORS],
                         ids=[c[0] for c in COMMON_ERRORS])
def test_argument_errors(func, exc, match, x, t, kw):
    assert_raises_untouched(func, exc, match, x, t, **kw)


@pytest.mark.parametrize("func", FUNCS.values(), ids=list(FUNCS))
def test_unknown_reduction_lists_the_choices(func):
    info = assert_raises_untouched(func, ValueError, r"reduction", _x(), Y, reduction="average")
    for name in ("none", "sum", "mean"):
        assert name in str(info.value)


@pytest.mark.parametrize("func", FUNCS.values(), ids=list(FUNCS))
@pytest.mark.parametrize("axis", [2, -3, 5])
def test_bad_axis(func, axis):
    info = assert_raises_untouched(func, np.exceptions.AxisError, r"axis", _x(), Y, axis=axis)
    assert isinstance(info.value, ValueError) and isinstance(info.value, IndexError)


@pytest.mark.parametrize("func", FUNCS.values(), ids=list(FUNCS))
@pytest.mark.parametrize(
    ("label", "dtype"),
    [(4, np.int64), (-1, np.int64), (-5, np.int8), (-101, np.int64), (2**40, np.int64),
     (2**63 - 1, np.int64), (4, np.uint8), (2**64 - 1, np.uint64), (100, np.int32)],
)
def test_label_out_of_range(func, label, dtype):
    t = np.array([0, 3, 1], dtype=dtype)
    t[1] = label
    info = assert_raises_untouched(func, IndexError, r"out of range", _x(), t)
    assert str(label) in str(info.value)


@pytest.mark.parametrize("func", FUNCS.values(), ids=list(FUNCS))
@pytest.mark.parametrize("label", [3, -2, 2**40])
def test_label_out_of_range_nd(func, label):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2))
    t = np.zeros((2, 4, 2), dtype=np.int64)
    t[1, 2, 0] = label
    info = assert_raises_untouched(func, IndexError, r"out of range", x, t, axis=1)
    assert str(label) in str(info.value)


@pytest.mark.parametrize("func", FUNCS.values(), ids=list(FUNCS))
def test_label_out_of_range_with_other_ignore_index(func):
    # -100 is an ordinary (bad) label once ignore_index is something else.
    info = assert_raises_untouched(func, IndexError, r"out of range", _x(), np.array([0, -100, 1]),
                                   ignore_index=-1)
    assert "-100" in str(info.value)


@pytest.mark.parametrize("func", GRAD_FUNCS.values(), ids=list(GRAD_FUNCS))
def test_label_error_leaves_out_and_in_place_input_untouched(func):
    t = np.array([0, 7, 1])
    out = np.full((3, 4), 3.0)
    assert_raises_untouched(func, IndexError, r"out of range", _x(), t, out=out)
    x = _x()
    with pytest.raises(IndexError, match="out of range"):
        func(x, t, out=x)
    np.testing.assert_array_equal(x, _x())


def _overlapping_input_and_out():
    buf = np.arange(16.0) / 7.0
    return buf[:12].reshape(3, 4), buf[4:].reshape(3, 4)


def _out_cases():
    x = _x()
    weight = np.ones((3, 4))  # out is this array, weight its first row
    x2, out2 = _overlapping_input_and_out()
    labels = np.array([0, 1, 2] + [0] * 9, dtype=np.int64)  # out is these bytes, the target their start
    return [
        ("list", TypeError, r"out", x, Y, {"out": np.zeros((3, 4)).tolist()}),
        ("float32", TypeError, r"dtype", x, Y, {"out": np.zeros((3, 4), np.float32)}),
        ("float16 for float32", TypeError, r"dtype", x.astype(np.float32), Y,
         {"out": np.zeros((3, 4), np.float16)}),
        ("shape", ValueError, r"shape", x, Y, {"out": np.zeros((4, 3))}),
        ("flat", ValueError, r"shape", x, Y, {"out": np.zeros(12)}),
        ("read-only", ValueError, r"(?i)read-only|writ", x, Y,
         {"out": np.lib.stride_tricks.as_strided(np.zeros((3, 4)), writeable=False)}),
        ("Fortran", ValueError, r"(?i)contiguous", x, Y, {"out": np.zeros((3, 4), order="F")}),
        ("strided", ValueError, r"(?i)contiguous", x, Y, {"out": np.zeros((3, 8))[:, ::2]}),
        ("is target", ValueError, r"(?i)overlap", x, P.copy(), {}),
        ("holds weight", ValueError, r"(?i)overlap", x, Y, {"out": weight, "weight": weight[0]}),
        ("part of input", ValueError, r"(?i)overlap", x2, Y, {"out": out2}),
        ("holds the labels", ValueError, r"(?i)overlap", x, labels[:3], {"out": labels.view(np.float64).reshape(3, 4)}),
        ("input transposed", ValueError, r"(?i)contiguous|overlap", np.ascontiguousarray(x.T).T, Y,
         {}),
    ]


@pytest.mark.parametrize("func", GRAD_FUNCS.values(), ids=list(GRAD_FUNCS))
@pytest.mark.parametrize("case", _out_cases(), ids=[c[0] for c in _out_cases()])
def test_out_errors(func, case):
    _, exc, match, x, t, kw = case
    kw = dict(kw)
    if "out" not in kw:  # out is the target itself, or a Fortran input passed as its own out
        kw["out"] = t if case[0] == "is target" else x
    assert_raises_untouched(func, exc, match, x, t, **kw)


@pytest.mark.parametrize(
    ("reduction", "grad_output"),
    [("mean", np.ones(3)), ("sum", np.ones(1)), ("sum", [1.0]), ("mean", np.ones((1, 1))),
     ("none", np.ones(2)), ("none", np.ones((3, 4))), ("none", np.ones(4)), ("none", np.ones((2, 3)))],
)
def test_grad_output_shape_errors(reduction, grad_output):
    assert_raises_untouched(xc.cross_entropy_grad, ValueError, r"grad_output", _x(), Y, grad_output,
                            reduction=reduction)
