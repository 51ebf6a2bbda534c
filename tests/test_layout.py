"""Memory and layout: in-place and out= gradients, inputs never modified, every layout and dtype
gives the result of the C-contiguous float case."""

from __future__ import annotations

import numpy as np
import pytest
from cases import FLOATS, REDUCTIONS, assert_close, make_problem
from reference import ref_grad

import xentcpp as xc

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _all_results(x, t, **kw):
    """(loss, grad, value_and_grad) of one call each, for comparing layouts."""
    return (xc.cross_entropy(x, t, **kw), xc.cross_entropy_grad(x, t, **kw),
            xc.cross_entropy_value_and_grad(x, t, **kw))


def _assert_same_results(got, expected):
    for a, b in zip(got[:2] + got[2], expected[:2] + expected[2]):
        assert type(a) is type(b)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_gradient_in_place(rng, dtype, target, reduction):
    x, t, w = make_problem(rng, (6, 9), target=target, dtype=dtype, weighted=True,
                           ignored=target == "index")
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.1)
    x0 = x.copy()
    expected = xc.cross_entropy_grad(x0, t, **kw)
    g = xc.cross_entropy_grad(x, t, out=x, **kw)
    assert g is x
    np.testing.assert_array_equal(x, expected)
    assert_close(x, ref_grad(x0, t, **kw), dtype, "grad")

    x = x0.copy()
    loss, g = xc.cross_entropy_value_and_grad(x, t, out=x, **kw)
    assert g is x
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(loss, xc.cross_entropy(x0, t, **kw))


@pytest.mark.parametrize("func", ["grad", "value_and_grad"])
@pytest.mark.parametrize(
    ("shape", "axis", "dtype"),
    [((4, 7), -1, np.float16), ((7, 4), 0, np.float64), ((2, 5, 3, 2), 1, np.float32),
     ((9,), -1, np.float64), ((9,), 0, np.float32)],
)
def test_out_is_input(rng, shape, axis, dtype, func):
    x, t, _ = make_problem(rng, shape, axis=axis, dtype=dtype, ignored=True)
    x0 = x.copy()
    expected = xc.cross_entropy_grad(x0, t, axis=axis)
    if func == "grad":
        g = xc.cross_entropy_grad(x, t, axis=axis, out=x)
    else:
        loss, g = xc.cross_entropy_value_and_grad(x, t, axis=axis, out=x)
        assert loss == xc.cross_entropy(x0, t, axis=axis)
    assert g is x
    np.testing.assert_array_equal(x, expected)


def test_in_place_on_a_contiguous_slice_leaves_the_rest_alone(rng):
    big, t, _ = make_problem(rng, (8, 5))
    before = big.copy()
    x = big[2:6]
    g = xc.cross_entropy_grad(x, t[2:6], out=x)
    assert g is x
    np.testing.assert_array_equal(big[2:6], xc.cross_entropy_grad(before[2:6], t[2:6]))
    np.testing.assert_array_equal(big[:2], before[:2])
    np.testing.assert_array_equal(big[6:], before[6:])


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", (np.float16, *FLOATS))
def test_out_separate_array(rng, dtype, layout):
    x, t, w = make_problem(rng, (5, 6), dtype=dtype, weighted=True, target="prob")
    expected = xc.cross_entropy_grad(x, t, weight=w)
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "strided":
        wide = np.zeros((5, 12), dtype=dtype)
        wide[:, ::2] = x
        x = wide[:, ::2]
    out = np.full(x.shape, 7.0, dtype=dtype)
    g = xc.cross_entropy_grad(x, t, weight=w, out=out)
    assert g is out
    assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(out, expected)
    out2 = np.full(x.shape, 7.0, dtype=dtype)
    _, g = xc.cross_entropy_value_and_grad(x, t, weight=w, out=out2)
    assert g is out2
    np.testing.assert_array_equal(out2, expected)


@pytest.mark.parametrize("dtype", (np.float16, *FLOATS))
def test_results_do_not_share_memory_with_arguments(rng, dtype):
    x, t, w = make_problem(rng, (5, 6), dtype=dtype, weighted=True, target="prob")
    go = np.ones(5, dtype=dtype)
    loss = xc.cross_entropy(x, t, weight=w, reduction="none")
    g = xc.cross_entropy_grad(x, t, go, weight=w, reduction="none")
    loss2, g2 = xc.cross_entropy_value_and_grad(x, t, weight=w, reduction="none")
    for result in (loss, g, loss2, g2):
        for arg in (x, t, w, go):
            assert not np.shares_memory(result, arg)
    assert not np.shares_memory(loss2, g2)


def _layout(x, t, axis, layout):
    """The same problem in another memory layout: (x, t, axis)."""
    if layout == "C":
        return x, t, axis
    if layout == "F":
        return np.asfortranarray(x), (np.asfortranarray(t) if t.shape == x.shape else t), axis
    if layout == "strided":  # every other column of a wider array
        wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2], t, axis
    if layout == "reversed":  # negative strides, same values
        flipped = x[::-1, ::-1].copy()
        tf = t[::-1, ::-1].copy()[::-1, ::-1] if t.shape == x.shape else t
        return flipped[::-1, ::-1], tf, axis
    if layout == "axis0":  # class axis first, C-contiguous
        tt = np.ascontiguousarray(t.T) if t.shape == x.shape else t
        return np.ascontiguousarray(x.T), tt, 0
    if layout == "axis0-view":  # class axis first, a transposed view
        return x.T, (t.T if t.shape == x.shape else t), 0
    raise ValueError(layout)


LAYOUTS = ["C", "F", "strided", "reversed", "axis0", "axis0-view"]


@pytest.mark.parametrize("func", ["loss", "grad", "value_and_grad"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("dtype", (np.float16, *FLOATS))
def test_inputs_never_modified(rng, dtype, target, layout, func):
    x, t, w = make_problem(rng, (5, 6), target=target, dtype=dtype, weighted=True,
                           ignored=target == "index")
    x, t, axis = _layout(x, t, -1, layout)
    go = np.linspace(0.5, 1.5, 5)
    copies = [a.copy() for a in (x, t, w, go)]
    kw = dict(axis=axis, weight=w, reduction="none", label_smoothing=0.1)
    if func == "loss":
        xc.cross_entropy(x, t, **kw)
    elif func == "grad":
        xc.cross_entropy_grad(x, t, go, **kw)
    else:
        xc.cross_entropy_value_and_grad(x, t, **kw)
    for a, a0 in zip((x, t, w, go), copies):
        np.testing.assert_array_equal(a, a0)
        assert a.flags.writeable


@pytest.mark.parametrize("layout", LAYOUTS[1:])
@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("dtype", (np.float16, *FLOATS))
def test_layouts_give_the_contiguous_results(rng, dtype, target, layout):
    x, t, w = make_problem(rng, (7, 10), target=target, dtype=dtype, weighted=True,
                           ignored=target == "index")
    for reduction in REDUCTIONS:
        kw = dict(weight=w, reduction=reduction, label_smoothing=0.1)
        expected = _all_results(x, t, **kw)
        xl, tl, axis = _layout(x, t, -1, layout)
        got = _all_results(xl, tl, axis=axis, **kw)
        if axis == 0:  # the gradients come back in the caller's layout
            got = (got[0], got[1].T, (got[2][0], got[2][1].T))
        _assert_same_results(got, expected)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_label_widths(rng, dtype):
    x, t, w = make_problem(rng, (9, 5), weighted=True)
    for reduction in REDUCTIONS:
        kw = dict(weight=w, reduction=reduction, label_smoothing=0.1)
        _assert_same_results(_all_results(x, t.astype(dtype), **kw), _all_results(x, t, **kw))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32])
def test_narrow_signed_labels_with_ignore_index(rng, dtype):
    x, t, _ = make_problem(rng, (9, 5), ignored=True, ignore_index=-1)
    kw = dict(ignore_index=-1)
    _assert_same_results(_all_results(x, t.astype(dtype), **kw), _all_results(x, t, **kw))


@pytest.mark.parametrize("target", ["index", "prob"])
def test_python_lists(rng, target):
    x, t, w = make_problem(rng, (4, 3), target=target, weighted=True)
    for reduction in REDUCTIONS:
        kw = dict(reduction=reduction, label_smoothing=0.1)
        expected = _all_results(x, t, weight=w, **kw)
        got = _all_results(x.tolist(), t.tolist(), weight=w.tolist(), **kw)
        _assert_same_results(got, expected)


@pytest.mark.parametrize("target", ["index", "prob"])
def test_float16_is_float32_arithmetic(rng, target):
    x, t, w = make_problem(rng, (6, 11), target=target, dtype=np.float16, weighted=True)
    as32 = [None if a is None else (a.astype(np.float32) if a.dtype == np.float16 else a)
            for a in (x, t, w)]
    for reduction in REDUCTIONS:
        kw = dict(reduction=reduction, label_smoothing=0.1)
        loss = xc.cross_entropy(x, t, weight=w, **kw)
        loss32 = xc.cross_entropy(as32[0], as32[1], weight=as32[2], **kw)
        if reduction == "none":
            assert loss.dtype == np.float32
        np.testing.assert_array_equal(loss, loss32)
        g = xc.cross_entropy_grad(x, t, weight=w, **kw)
        assert g.dtype == np.float16
        g32 = xc.cross_entropy_grad(as32[0], as32[1], weight=as32[2], **kw)
        np.testing.assert_array_equal(g, g32.astype(np.float16))
