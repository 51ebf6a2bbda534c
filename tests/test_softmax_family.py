"""logsumexp, softmax and log_softmax against scipy.special and float64 formulas, along every axis."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from cases import FLOATS

import xentcpp as xc

special = pytest.importorskip("scipy.special")

TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-6}
SHAPES = [(7,), (3, 70), (4, 5, 6), (2, 3, 40000)]


def _close(actual, expected, dtype):
    np.testing.assert_allclose(actual, expected, rtol=TOL[np.dtype(dtype)], atol=TOL[np.dtype(dtype)])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_every_axis_matches_scipy(rng, dtype, shape):
    x = (10.0 * rng.standard_normal(shape)).astype(dtype)
    x64 = x.astype(np.float64)
    for axis in range(-len(shape), len(shape)):
        lse = xc.logsumexp(x, axis)
        assert lse.dtype == dtype
        _close(lse, special.logsumexp(x64, axis=axis), dtype)
        _close(xc.logsumexp(x, axis, keepdims=True), special.logsumexp(x64, axis=axis, keepdims=True), dtype)
        _close(xc.softmax(x, axis), special.softmax(x64, axis=axis), dtype)
        _close(xc.log_softmax(x, axis), special.log_softmax(x64, axis=axis), dtype)
    _close(xc.logsumexp(x, None), special.logsumexp(x64), dtype)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_shift_invariance_at_huge_magnitudes(rng, axis):
    x = rng.integers(-20, 20, (6, 5)).astype(np.float64)  # + 2**50 and + 1e300 * k stay exact
    for shift in (2.0**50, -(2.0**50)):
        np.testing.assert_allclose(xc.softmax(x + shift, axis), xc.softmax(x, axis), rtol=1e-13)
        np.testing.assert_allclose(xc.log_softmax(x + shift, axis), xc.log_softmax(x, axis), rtol=1e-13, atol=1e-13)
        # the result is rounded to the spacing of the shift's magnitude
        np.testing.assert_allclose(xc.logsumexp(x + shift, axis) - shift, xc.logsumexp(x, axis),
                                   atol=np.spacing(abs(shift)))
    huge = 1e300 * np.array([[1.0, 1.0, 0.5], [-1.0, -1.0, -0.5]])
    for a in (huge, huge.T):
        np.testing.assert_allclose(xc.softmax(a), special.softmax(a, axis=-1), rtol=1e-15)
        np.testing.assert_array_equal(xc.logsumexp(a), special.logsumexp(a, axis=-1))
        np.testing.assert_allclose(xc.log_softmax(a), special.log_softmax(a, axis=-1), rtol=1e-15)


def test_masked_entries_and_special_rows():
    x = np.array([[0.0, -np.inf, 0.0], [-np.inf, -np.inf, -np.inf], [np.nan, 1.0, 2.0]])
    lse = xc.logsumexp(x)
    assert lse[0] == pytest.approx(np.log(2.0)) and lse[1] == -np.inf and np.isnan(lse[2])
    p = xc.softmax(x)
    np.testing.assert_array_equal(p[0], [0.5, 0.0, 0.5])
    assert np.isnan(p[1]).all() and np.isnan(p[2]).all()
    lp = xc.log_softmax(x)
    assert lp[0, 1] == -np.inf and lp[0, 0] == pytest.approx(-np.log(2.0))
    assert xc.log_softmax(np.array([0.0, -1000.0]))[1] == -1000.0


@pytest.mark.parametrize("function", [xc.softmax, xc.log_softmax])
@pytest.mark.parametrize("axis", [0, -1])
def test_out_and_in_place(rng, function, axis):
    x = rng.standard_normal((5, 9))
    expected = function(x, axis)
    out = np.empty_like(x)
    assert function(x, axis, out=out) is out
    np.testing.assert_array_equal(out, expected)
    y = x.copy()
    function(y, axis, out=y)
    np.testing.assert_array_equal(y, expected)


def test_input_not_copied_nor_modified(rng):
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    before = x.copy()
    xc.softmax(x, axis=1)
    xc.logsumexp(x, axis=0)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("function", [xc.softmax, xc.log_softmax])
def test_a_converted_input_becomes_the_result(rng, function):
    # Half precision (and another layout) is converted once; the result overwrites that copy, so the
    # call takes one float32 buffer, not two. The caller's memory is never written, whatever shares it.
    x = rng.standard_normal((512, 1000)).astype(np.float16)
    before = x.copy()
    tracemalloc.start()
    try:
        result = function(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.1 * x.size * 4, peak
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(result, function(x.astype(np.float32)), rtol=0, atol=2e-6)
    transposed = rng.standard_normal((300, 40)).astype(np.float32).T
    copy = transposed.copy()
    np.testing.assert_array_equal(function(transposed), function(copy))
    np.testing.assert_array_equal(transposed, copy)
    buffer = rng.standard_normal((20, 7)).astype(np.float32)
    kept = buffer.copy()
    for shared in (memoryview(buffer), buffer.view(np.matrix), np.lib.stride_tricks.as_strided(buffer)):
        function(shared)
        np.testing.assert_array_equal(buffer, kept)


@pytest.mark.parametrize("axis", [0, 1])
def test_logsumexp_of_a_long_float32_axis_is_within_two_ulp(rng, axis):
    # The class axis in the middle (axis 0 here) is summed by lanes that own positions; in one chain
    # of float additions per lane, 300 000 classes were up to 24 ulp off.
    x = rng.standard_normal((300_000, 16)).astype(np.float32)
    x = x if axis == 0 else np.ascontiguousarray(x.T)
    got = xc.logsumexp(x, axis=axis)
    want = special.logsumexp(x.astype(np.float64), axis=axis)
    ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32))
    assert ulps.max() <= 2.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1])
def test_logsumexp_of_infinite_entries_is_scipys(dtype, axis):
    x = np.zeros((3, 40), dtype)
    x[0, 5] = np.inf  # +inf wins
    x[1, 7], x[1, 9] = np.inf, np.nan  # NaN wins over +inf
    x[2, :] = -np.inf  # nothing to sum
    x = x if axis == 1 else np.ascontiguousarray(x.T)
    got = xc.logsumexp(x, axis=axis)
    with np.errstate(invalid="ignore"):
        want = special.logsumexp(x.astype(np.float64), axis=axis)
    np.testing.assert_array_equal(got, want.astype(dtype))
    assert got[0] == np.inf and np.isnan(got[1]) and got[2] == -np.inf


def test_empty_axis_and_other_dtypes():
    assert xc.logsumexp(np.zeros((2, 0)), -1).tolist() == [-np.inf, -np.inf]
    assert xc.softmax(np.zeros((2, 0))).shape == (2, 0)
    np.testing.assert_allclose(xc.softmax([1, 2, 3]), special.softmax([1.0, 2.0, 3.0]), rtol=1e-15)
    assert xc.softmax(np.zeros(3, np.float16)).dtype == np.float32


def test_errors():
    with pytest.raises(TypeError, match="real numbers"):
        xc.softmax(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="real numbers"):
        xc.logsumexp(np.array([1j]))
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):  # numpy's AxisError is a ValueError
        xc.softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(ValueError, match="shape"):
        xc.softmax(np.zeros((2, 3)), out=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="read-only"):
        out = np.zeros((2, 3))
        out.flags.writeable = False
        xc.log_softmax(np.zeros((2, 3)), out=out)
    with pytest.raises(TypeError, match="ndarray"):
        xc.softmax(np.zeros(3), out=[0.0, 0.0, 0.0])
    # One out= checker for every function: a wrong dtype is a TypeError, as for the gradient's out=.
    with pytest.raises(TypeError, match="dtype float64"):
        xc.softmax(np.zeros(3), out=np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="dtype float64"):
        xc.cross_entropy_grad(np.zeros((1, 3)), [0], out=np.zeros((1, 3), np.float32))


# SciPy's signatures: 0-d input, tuples of axes ----------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("value", [3.5, -np.inf, np.inf, np.nan])
def test_zero_dimensional_input_keeps_its_shape(dtype, value):
    x = np.array(value, dtype)
    with np.errstate(invalid="ignore"):
        expected = {xc.softmax: special.softmax(x.astype(np.float64)),
                    xc.log_softmax: special.log_softmax(x.astype(np.float64)),
                    xc.logsumexp: special.logsumexp(x.astype(np.float64))}
    for function, want in expected.items():
        for axis in (-1, 0, None, (), (0,)):
            got = function(x, axis)
            assert np.shape(got) == () and got.dtype == dtype, (function, axis)
            np.testing.assert_array_equal(got, np.asarray(want, dtype))
        out = np.full((), 7.0, dtype)
        assert function(x, out=out) is out
        np.testing.assert_array_equal(out, np.asarray(want, dtype))
    assert xc.logsumexp(x, keepdims=True).shape == ()  # no axis to keep (NumPy's keepdims on 0-d)
    with pytest.raises(ValueError, match="out of bounds"):
        xc.softmax(x, axis=1)


def _axis_choices(ndim):
    """Every tuple of distinct axes of an ndim array, in both orders and with negative spellings."""
    import itertools

    choices = [None, ()]
    for k in range(1, ndim + 1):
        for axes in itertools.combinations(range(ndim), k):
            choices.append(axes)
            choices.append(tuple(reversed([a - ndim for a in axes])))
    return choices


@pytest.mark.parametrize("dtype", FLOATS)
def test_tuples_of_axes_match_scipy(rng, dtype):
    x = (4.0 * rng.standard_normal((3, 4, 5, 6))).astype(dtype)
    x[0, 1, 2, :3] = -np.inf  # masked entries on some slices
    x64 = x.astype(np.float64)
    for axis in _axis_choices(x.ndim):
        for keepdims in (False, True):
            got = xc.logsumexp(x, axis, keepdims=keepdims)
            want = special.logsumexp(x64, axis=axis, keepdims=keepdims)
            assert got.shape == want.shape and got.dtype == dtype, (axis, keepdims)
            _close(got, want, dtype)
        for function, reference in ((xc.softmax, special.softmax), (xc.log_softmax, special.log_softmax)):
            got = function(x, axis)
            assert got.shape == x.shape and got.dtype == dtype, (function, axis)
            with np.errstate(invalid="ignore"):  # axis=(): a lone -inf has no softmax (NaN)
                _close(got, reference(x64, axis=axis), dtype)
            out = np.empty_like(x)
            assert function(x, axis, out=out) is out
            np.testing.assert_array_equal(out, got)


def test_adjacent_axes_are_read_in_place(rng):
    # Adjacent axes of a C-contiguous array are one (outer, classes, inner) block: no copy of the input.
    x = rng.standard_normal((4, 64, 64, 8))
    before = x.copy()
    for axis in ((1, 2), (2, 3), (1, 2, 3), (0, 1), None):
        tracemalloc.start()
        try:
            xc.logsumexp(x, axis)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 0.05 * x.nbytes, (axis, peak)
    # Axes that are not adjacent take one transposed copy, and the input is left alone.
    np.testing.assert_allclose(xc.softmax(x, (0, 2)), special.softmax(x, axis=(0, 2)), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(x, before)


def test_bad_tuples_of_axes():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="repeated axis"):
        xc.logsumexp(x, (1, 1))
    with pytest.raises(ValueError, match="repeated axis"):
        xc.softmax(x, (0, -3))
    with pytest.raises(ValueError, match="out of bounds"):
        xc.log_softmax(x, (0, 3))
    with pytest.raises(TypeError, match="axis"):
        xc.logsumexp(x, (0, 1.5))
    with pytest.raises(TypeError, match="axis"):
        xc.softmax(x, "0")
