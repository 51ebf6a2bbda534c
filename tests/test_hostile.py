"""Hostile and unusual inputs.

Refused: each a TypeError, ValueError or IndexError that says what was expected, with every array
argument (out= included) left as it was. Accepted: misaligned, read-only and byte-swapped arrays
give exactly the results of their plain copies; empty batches give PyTorch's results.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import assert_raises_untouched

import xentcpp as xc
from xentcpp import _core

C = 5
FUNCS = {
    "loss": xc.cross_entropy,
    "grad": xc.cross_entropy_grad,
    "value_and_grad": xc.cross_entropy_value_and_grad,
}
I64 = np.iinfo(np.int64)


def _x(dtype=np.float32):
    return (np.arange(4 * C).reshape(4, C) % 7 - 3.0).astype(dtype)


def _y():
    return np.array([0, 4, 2, 1])


def _with_out(name, x):
    """For the gradient functions, also pass an out= buffer: it must stay untouched on an error."""
    return {} if name == "loss" else {"out": np.full_like(x, 7.0)}


# ---- labels ---------------------------------------------------------------------------------

BAD_LABELS = [C, C + 7, -1, -2, -101, 2**31, 2**40, -(2**40), int(I64.max), int(I64.min)]


# Each bad label in every label dtype that can hold it (int64 takes the C++ fast path, the others a copy).
LABEL_CASES = [(label, dtype) for label in BAD_LABELS for dtype in (np.int64, np.int32, np.uint64)
               if np.can_cast(np.min_scalar_type(label), dtype)]


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize(("label", "label_dtype"), LABEL_CASES)
def test_bad_label_is_an_index_error_naming_it(name, label, label_dtype):
    x = _x()
    y = _y().astype(label_dtype)
    y[2] = label
    kw = _with_out(name, x)
    assert_raises_untouched(FUNCS[name], IndexError, rf"target\[2\] = {label} is out of range", x, y, **kw)


def test_bad_scalar_label_of_a_single_row_is_named_plainly():
    assert_raises_untouched(xc.cross_entropy, IndexError, r"^target = 9 is out of range", np.zeros(C), 9)


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("label", [2**64 - 1, 2**64 - 100, 2**63])
def test_uint64_labels_beyond_int64_never_wrap(byteorder, label):
    # 2**64 - 100 would wrap to -100, the default ignore_index: the row would be silently skipped.
    y = _y().astype(f"{byteorder}u8")
    y[1] = label
    assert_raises_untouched(xc.cross_entropy, IndexError, str(label), _x(), y)


def test_label_too_large_for_any_integer_dtype_in_a_list():
    # NumPy makes [0, 2**64 - 1, ...] float64 (int64 and uint64 have no common integer type).
    assert_raises_untouched(xc.cross_entropy, TypeError, "integers", _x(), [0, 2**64 - 1, 1, 0])


@pytest.mark.parametrize("name", FUNCS)
def test_negative_label_other_than_a_custom_ignore_index(name):
    y = _y()
    y[0] = -100  # the default ignore_index, no longer ignored
    x = _x()
    assert_raises_untouched(FUNCS[name], IndexError, r"target\[0\] = -100", x, y, ignore_index=-1,
                            **_with_out(name, x))


# ---- wrong kinds and shapes -------------------------------------------------------------------

WRONG_TARGETS = [
    ("strings", TypeError, "integers", np.array(list("0421"))),
    ("bytes", TypeError, "integers", np.array([b"0", b"4", b"2", b"1"])),
    ("objects", TypeError, "integers", np.array([0, 4, 2, 1], dtype=object)),
    ("complex probabilities", TypeError, "real", np.ones((4, C), complex) / C),
    ("string probabilities", TypeError, "real", np.full((4, C), "a")),
    ("None", ValueError, "shape", None),
    ("scalar", ValueError, "shape", 1),
    ("extra axis", ValueError, "shape", np.zeros((4, 1), np.int64)),
    ("too many", ValueError, "shape", np.zeros(5, np.int64)),
    ("probabilities transposed", ValueError, "shape", np.full((C, 4), 1.0 / C)),
    ("ragged", ValueError, "inhomogeneous", [[0], [1, 2]]),
]


@pytest.mark.parametrize(("exc", "match", "target"), [c[1:] for c in WRONG_TARGETS], ids=[c[0] for c in WRONG_TARGETS])
@pytest.mark.parametrize("name", FUNCS)
def test_wrong_target(name, exc, match, target):
    x = _x()
    assert_raises_untouched(FUNCS[name], exc, match, x, target, **_with_out(name, x))


WRONG_INPUTS = [
    ("strings", TypeError, "float", np.full((4, C), "1.0")),
    ("bytes", TypeError, "float", np.full((4, C), b"1")),
    ("datetime", TypeError, "float", np.zeros((4, C), "M8[s]")),
    ("structured", TypeError, "float", np.zeros((4, C), [("a", "f4")])),
    ("longdouble", TypeError, "float", np.zeros((4, C), np.longdouble)),
    ("complex64", TypeError, "float", np.zeros((4, C), np.complex64)),
    ("list of strings", TypeError, "float", [["a"] * C] * 4),
    ("0-d", ValueError, "0-d", np.float32(1.0)),
    ("zero classes", ValueError, "no classes", np.zeros((4, 0), np.float32)),
]


@pytest.mark.parametrize(("exc", "match", "x"), [c[1:] for c in WRONG_INPUTS], ids=[c[0] for c in WRONG_INPUTS])
@pytest.mark.parametrize("name", FUNCS)
def test_wrong_input(name, exc, match, x):
    assert_raises_untouched(FUNCS[name], exc, match, x, _y() if np.ndim(x) else 0)


def test_zero_classes_on_another_axis():
    assert_raises_untouched(xc.cross_entropy, ValueError, "no classes", np.zeros((2, 0, 3)),
                            np.zeros((2, 3), np.int64), axis=1)


# ---- option values ----------------------------------------------------------------------------

BAD_OPTIONS = [
    ("label_smoothing", np.nan, ValueError),
    ("label_smoothing", np.inf, ValueError),
    ("label_smoothing", -np.inf, ValueError),
    ("label_smoothing", "0.1", TypeError),
    ("label_smoothing", None, TypeError),
    ("label_smoothing", 0.1j, TypeError),
    ("label_smoothing", np.array([0.1]), TypeError),
    ("epsilon", np.nan, ValueError),
    ("epsilon", np.inf, ValueError),
    ("epsilon", "1e-7", TypeError),
    ("epsilon", None, TypeError),
    ("ignore_index", -100.0, TypeError),
    ("ignore_index", np.nan, TypeError),
    ("ignore_index", np.inf, TypeError),
    ("ignore_index", True, TypeError),
    ("ignore_index", "-100", TypeError),
    ("ignore_index", None, TypeError),
    ("ignore_index", 2**70, ValueError),
    ("axis", 1.0, TypeError),
    ("axis", "1", TypeError),
    ("reduction", None, ValueError),
    ("reduction", "MEAN", ValueError),
    ("reduction", b"mean", ValueError),
]


@pytest.mark.parametrize(("option", "value", "exc"), BAD_OPTIONS, ids=[f"{o}={v!r}" for o, v, _ in BAD_OPTIONS])
@pytest.mark.parametrize("name", FUNCS)
def test_bad_option_value(name, option, value, exc):
    x = _x()
    assert_raises_untouched(FUNCS[name], exc, option, x, _y(), **{option: value}, **_with_out(name, x))


@pytest.mark.parametrize("grad_output", ["1.0", None, b"1"])
def test_bad_grad_output(grad_output):
    assert_raises_untouched(xc.cross_entropy_grad, TypeError, "grad_output", _x(), _y(), grad_output)


# ---- weights: any finite value, as in PyTorch; NaN and infinities are refused -----------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", FUNCS)
def test_nan_or_infinite_weight_is_a_value_error(name, bad):
    x = _x()
    w = np.ones(C, np.float32)
    w[3] = bad
    assert_raises_untouched(FUNCS[name], ValueError, "weight must be finite", x, _y(), weight=w, **_with_out(name, x))


def test_core_refuses_infinite_weight_too():
    # The check is the core's own, so a direct caller of _core (or of the C++ API) gets it as well.
    w = np.array([1, 1, np.inf, 1, 1], np.float32)
    with pytest.raises(ValueError, match="weight"):
        _core.cross_entropy(_x(), _y(), weight=w)


def test_zero_and_negative_zero_weights_are_allowed():
    w = np.array([0.0, -0.0, 1.0, 2.0, 1.0])
    got = xc.cross_entropy(_x(np.float64), _y(), weight=w, reduction="none")
    assert got[0] == 0.0 and np.all(np.isfinite(got))


# ---- out= aliasing ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["grad", "value_and_grad"])
def test_out_aliasing_the_probability_target(name):
    x = _x()
    p = np.full_like(x, 1.0 / C)
    for out in (p, p.reshape(4, C), p[::-1][::-1]):  # the target itself, and views of it
        assert_raises_untouched(FUNCS[name], ValueError, "overlaps target", x, p, out=out)


# ---- accepted: computed exactly as their plain copies -----------------------------------------

def _misaligned(a):
    """A C-contiguous copy of `a` whose data starts one byte off its alignment."""
    raw = np.zeros(a.nbytes + 1, np.uint8)
    m = raw[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned
    return m


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _byteswapped(a):
    return a.astype(a.dtype.newbyteorder("S"))


def _all(x, t, **kw):
    return xc.cross_entropy(x, t, reduction="none", **kw), xc.cross_entropy_value_and_grad(x, t, **kw)


def _assert_same(got, expected):
    (l1, (v1, g1)), (l2, (v2, g2)) = got, expected
    np.testing.assert_array_equal(l1, l2)
    assert v1 == v2 or (np.isnan(v1) and np.isnan(v2))
    assert g1.shape == g2.shape
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("transform", [_misaligned, _read_only, _byteswapped])
@pytest.mark.parametrize("which", ["input", "labels", "probabilities", "weight"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_unusual_arrays_give_the_plain_results(transform, which, dtype):
    x = (np.random.default_rng(3).standard_normal((6, 37)) * 3).astype(dtype)
    y = np.random.default_rng(4).integers(0, 37, 6)
    p = np.full_like(x, 1.0 / 37)
    w = np.linspace(0.5, 2.0, 37).astype(dtype)
    args = {"input": x, "labels": y, "probabilities": p, "weight": w}
    changed = dict(args, **{which: transform(args[which])})
    copies = {k: v.copy() for k, v in changed.items()}
    target = "probabilities" if which == "probabilities" else "labels"
    got = _all(changed["input"], changed[target], weight=changed["weight"], label_smoothing=0.1)
    expected = _all(x, args[target], weight=w, label_smoothing=0.1)
    _assert_same(got, expected)
    for k, v in changed.items():  # never written to, never re-read differently
        np.testing.assert_array_equal(v, copies[k])


@pytest.mark.parametrize("transform", [_misaligned, _byteswapped])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unusual_out_and_in_place(transform, dtype):
    x = (np.random.default_rng(5).standard_normal((4, 9))).astype(dtype)
    y = np.array([1, 8, 0, 3])
    expected = xc.cross_entropy_value_and_grad(x, y)
    out = transform(np.zeros_like(x))  # out= has the input's dtype, byte order included
    loss, g = xc.cross_entropy_value_and_grad(transform(x), y, out=out)
    assert g is out and loss == expected[0]
    np.testing.assert_array_equal(out, expected[1])
    inplace = transform(x)  # out=input, where the input itself is misaligned or byte-swapped
    loss, g = xc.cross_entropy_value_and_grad(inplace, y, out=inplace)
    assert g is inplace and loss == expected[0]
    np.testing.assert_array_equal(inplace, expected[1])


BLOCKS = {  # the building blocks, each called on a (6, 37) array
    "softmax": lambda a: xc.softmax(a, axis=-1),
    "log_softmax": lambda a: xc.log_softmax(a, axis=0),
    "logsumexp": lambda a: xc.logsumexp(a, axis=-1),
    "entropy": lambda a: xc.entropy(xc.softmax(a, axis=-1)),
    "kl_div": lambda a: xc.kl_div(np.abs(a) + 1e-3, np.full(a.shape, 0.5, a.dtype)),
    "nll_loss": lambda a: xc.nll_loss_grad(a, np.arange(6) % 37, reduction="sum"),
    "bce_with_logits": lambda a: xc.binary_cross_entropy_with_logits_grad(a, np.full(a.shape, 0.25, a.dtype)),
}


@pytest.mark.parametrize("transform", [_misaligned, _read_only, _byteswapped])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BLOCKS)
def test_unusual_arrays_in_the_building_blocks(name, dtype, transform):
    x = (np.random.default_rng(6).standard_normal((6, 37)) * 3).astype(dtype)
    changed = transform(x)
    got, expected = BLOCKS[name](changed), BLOCKS[name](x)
    assert np.asarray(got).dtype == np.asarray(expected).dtype == dtype  # the caller's precision, native order
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(changed, x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nll_loss_refuses_nan_or_infinite_weight(bad):
    w = np.ones(C)
    w[2] = bad
    assert_raises_untouched(xc.nll_loss, ValueError, "weight must be finite", _x(np.float64), _y(), weight=w)


def test_core_refuses_misaligned_arrays():
    # The Python layer copies them; the binding itself never lets the kernels read one.
    with pytest.raises(ValueError, match="aligned"):
        _core.cross_entropy(_misaligned(_x()), _y())
    assert _core.fast(_misaligned(_x()), _y(), _core.Want.loss, "mean", -100, 0.0, 1.0, None) is None


# ---- empty batches: PyTorch's results ---------------------------------------------------------

EMPTY = [((0, C), (0,), -1), ((2, C, 0), (2, 0), 1), ((0, C, 3), (0, 3), 1)]


@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize(("shape", "batch", "axis"), EMPTY)
def test_empty_batches_match_torch(torch, shape, batch, axis, reduction, target):
    x = np.zeros(shape, np.float32)
    t = np.zeros(batch, np.int64) if target == "index" else np.zeros(shape, np.float32)
    xt = torch.from_numpy(np.moveaxis(x, axis, 1).copy()).requires_grad_()
    tt = torch.from_numpy(t if target == "index" else np.moveaxis(t, axis, 1).copy())
    expected = torch.nn.functional.cross_entropy(xt, tt, reduction=reduction)
    expected.sum().backward()
    loss, grad = xc.cross_entropy_value_and_grad(x, t, axis=axis, reduction=reduction)
    np.testing.assert_array_equal(np.asarray(loss), expected.detach().numpy())
    assert grad.shape == x.shape
    np.testing.assert_array_equal(grad, np.moveaxis(xt.grad.numpy(), 1, axis))
