"""logsumexp with SciPy's signature: scale factors ``b`` (zeros and negatives), ``return_sign``,
tuples of axes and ``keepdims``, against scipy.special.logsumexp, and against mpmath where the sum
nearly cancels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xentcpp as xc

special = pytest.importorskip("scipy.special")

EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps), np.dtype(np.float64): float(np.finfo(np.float64).eps)}


def _scipy(*args, **kwargs):
    with np.errstate(all="ignore"):
        return special.logsumexp(*args, **kwargs)


def _condition(a, b, axis, keepdims=False):
    """sum|b e^a| / |sum b e^a| per slice: how much the sum's rounding errors grow in log|sum|."""
    with np.errstate(all="ignore"):
        top = np.max(np.where(b != 0, a, -np.inf), axis=axis, keepdims=True)
        terms = b * np.exp(a - top)
        return np.sum(np.abs(terms), axis=axis, keepdims=keepdims) / np.abs(np.sum(terms, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [-1, 0, 1, (0, 2), (1, 2), None, ()])
def test_scale_factors_match_scipy(rng, dtype, axis):
    a = (3.0 * rng.standard_normal((5, 6, 7))).astype(dtype)
    b = rng.choice([0.0, 0.5, 1.0, 2.0, -1.0, -0.25], size=a.shape).astype(dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    for keepdims in (False, True):
        value, sign = xc.logsumexp(a, axis, b=b, keepdims=keepdims, return_sign=True)
        want, want_sign = _scipy(a64, axis=axis, b=b64, keepdims=keepdims, return_sign=True)
        assert value.shape == np.shape(want) and sign.shape == np.shape(want_sign)
        assert value.dtype == dtype and sign.dtype == dtype
        condition = _condition(a64, b64, axis, keepdims)
        clear = condition < 1e6  # elsewhere the sum is ~0 and its sign is rounding noise
        np.testing.assert_array_equal(sign[clear], want_sign[clear])
        finite = np.isfinite(want) & clear
        tolerance = 4 * EPS[np.dtype(dtype)] * np.abs(want[finite]) + 16 * EPS[np.dtype(np.float64)] * condition[finite]
        assert np.all(np.abs(value[finite] - want[finite]) <= tolerance)
        np.testing.assert_array_equal(value[~finite], want[~finite].astype(dtype))
        # Without return_sign a negative sum is NaN, as in SciPy.
        plain, want_plain = xc.logsumexp(a, axis, b, keepdims), _scipy(a64, axis=axis, b=b64, keepdims=keepdims)
        np.testing.assert_array_equal(np.isnan(plain)[clear], np.isnan(want_plain)[clear])


@pytest.mark.parametrize(
    ("a", "b", "value", "sign"),
    [
        ([], None, -np.inf, 0.0),  # an empty sum (SciPy's sign is -1, that of its -inf)
        ([], [], -np.inf, 0.0),
        ([np.inf], None, np.inf, 1.0),
        ([-np.inf], None, -np.inf, 0.0),
        ([np.nan], None, np.nan, np.nan),
        ([-np.inf, -np.inf], None, -np.inf, 0.0),
        ([np.inf], [-1.0], np.inf, -1.0),  # SciPy's gh-23548
        ([1.0, 1.0, 1.0], [1.0, -1.0, -1.0], 1.0, -1.0),
        ([1.0, 1.0], [1.0, -1.0], -np.inf, 0.0),  # an exactly cancelled sum
        ([1.0, 10000.0], [1.0, 0.0], 1.0, 1.0),  # b = 0 leaves a huge entry out
        ([1.0, 2.0], [0.0, 0.0], -np.inf, 0.0),  # all-zero b
        ([np.inf, 1.0], [0.0, 1.0], 1.0, 1.0),  # b = 0 leaves +inf out
        ([np.nan, 1.0], [0.0, 1.0], 1.0, 1.0),  # and NaN
        ([np.nan, -np.inf], [0.0, 1.0], -np.inf, 0.0),  # SciPy: NaN (its fallback multiplies 0 by NaN)
        ([np.inf, np.inf], [0.0, 1.0], np.inf, 1.0),  # SciPy: NaN (0 * inf in the same fallback)
        ([np.inf, np.inf], [1.0, -1.0], np.nan, np.nan),  # inf - inf
        ([np.inf, 1.0], [1.0, np.nan], np.nan, np.nan),
        ([-np.inf, 1.0], [2.0, 0.0], -np.inf, 0.0),
        ([1000.0, 1000.0], [1.2, 1.2], 1000.0 + np.log(2.4), 1.0),
        ([1.0, 2.0], [1.0, -1.0], np.log(np.e**2 - np.e), -1.0),
        ([1000.0, 1000.0, 999.0], [1.0, -1.0, 1.0], 999.0, 1.0),  # maxima cancel (SciPy: inf - inf = NaN)
    ],
)
def test_edge_cases(a, b, value, sign):
    got, got_sign = xc.logsumexp(a, None, b, return_sign=True)
    np.testing.assert_allclose(got, value, rtol=1e-15)
    np.testing.assert_array_equal(got_sign, sign)
    assert np.ndim(got) == 0 and np.ndim(got_sign) == 0
    plain = xc.logsumexp(a, None, b)
    np.testing.assert_array_equal(plain, np.nan if sign < 0 else got)


def test_special_values_agree_with_scipy_but_where_b_zero_leaves_them_out():
    """Every pair of special entries and scale factors, and triples of fewer: SciPy's value and sign,
    except where SciPy's fallback for a non-finite result multiplies a b = 0 by an infinite or NaN
    entry (its own rule says such entries add nothing: the expected value is then the sum of the
    others)."""
    entries = [-np.inf, np.inf, np.nan, 0.0, 1.0]
    factors = [0.0, 1.0, -1.0, 2.0, np.nan, np.inf]
    cases = [(a, b) for n in (1, 2) for a in itertools.product(entries, repeat=n)
             for b in itertools.product(factors, repeat=n)]
    cases += list(itertools.product(itertools.product([-np.inf, np.inf, np.nan, 1.0], repeat=3),
                                    itertools.product([0.0, 1.0, -1.0, np.inf], repeat=3)))
    assert len(cases) == 5 * 6 + 25 * 36 + 64 * 64
    for a, b in cases:
        a_, b_ = np.array(a), np.array(b)
        got, got_sign = xc.logsumexp(a_, None, b_, return_sign=True)
        want, want_sign = _scipy(a_, b=b_, return_sign=True)
        keep = b_ != 0
        if np.any(~keep & ~np.isfinite(a_)) and not np.isfinite(want):
            want, want_sign = _scipy(a_[keep], b=b_[keep], return_sign=True) if keep.any() else (-np.inf, 0.0)
        # finite values to rounding: where maxima cancel, SciPy sums b * exp(a) directly
        np.testing.assert_allclose(got, want, rtol=4e-16, atol=4e-16, err_msg=f"a={a} b={b}")
        np.testing.assert_array_equal(got_sign, want_sign, err_msg=f"a={a} b={b}")


def _mp_log_abs_sum(a, b):
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(60):
        total = mpmath.fsum(mpmath.mpf(float(w)) * mpmath.exp(mpmath.mpf(float(x))) for x, w in zip(a, b))
        return float(mpmath.log(abs(total)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([0.0, -40.0], [1.0, 1.0]),  # SciPy's gh-18295: log1p keeps 4.2e-18
        ([0.0, -1.0], [1.0, -1.0]),
        ([0.0, -0.5], [1.0, -1.0]),
        ([0.0, -0.01], [1.0, -0.9]),
        ([5.0, 5.0, 3.0], [1.0, -0.5, -2.0]),
        ([0.0, -2.0, -3.0, -4.0], [1.0, -1.0, -1.0, -1.0]),
        ([2.0, 1.0], [-1.0, 1.0]),
        ([300.0, 299.0, 298.0], [1.0, -2.0, 0.5]),
    ],
)
def test_at_least_as_precise_as_scipy_where_the_sum_nearly_cancels(dtype, a, b):
    a_, b_ = np.array(a, dtype), np.array(b, dtype)
    exact = _mp_log_abs_sum(a_, b_)
    got = float(xc.logsumexp(a_, None, b_, return_sign=True)[0])
    theirs = float(_scipy(a_, b=b_, return_sign=True)[0])
    eps = EPS[np.dtype(dtype)]
    # float32 input is summed in float64 and rounded once: within half a float32 ulp (plus a little).
    bound = max(abs(theirs - exact), eps * max(abs(exact), 1e-300)) if dtype == np.float64 else 0.6 * eps * abs(exact)
    assert abs(got - exact) <= bound, (got, theirs, exact)


def test_shapes_broadcasting_and_dtypes(rng):
    a = np.zeros((4, 1, 2, 1))
    b = np.ones((3, 1, 5))
    got = xc.logsumexp(a, None, b)
    assert float(got) == pytest.approx(np.log(120.0), rel=1e-15)
    r, s = xc.logsumexp(np.ones((1, 2, 3, 4)), (1, 3), b=np.ones((1, 2, 3, 4)), return_sign=True)
    assert r.shape == s.shape == (1, 3)
    r = xc.logsumexp(a, 1, b, keepdims=True)
    assert r.shape == (4, 1, 2, 5)
    assert xc.logsumexp(np.float64(2.0), b=3.0) == pytest.approx(2.0 + np.log(3.0), rel=1e-15)
    assert np.shape(xc.logsumexp(np.float64(2.0), b=3.0, keepdims=True)) == ()
    a32 = np.array([2.0, 1.0], np.float32)
    assert xc.logsumexp(a32, b=np.array([1.0, -1.0], np.float32)).dtype == np.float32
    assert xc.logsumexp(a32, b=np.array([1.0, -1.0])).dtype == np.float64  # NumPy's promotion, as SciPy
    assert xc.logsumexp(a32, b=[1, -1]).dtype == _scipy(a32, b=[1, -1]).dtype == np.float64
    assert xc.logsumexp(a32, b=np.array([True, False])).dtype == np.float32
    assert xc.logsumexp(a32.astype(np.float16), b=[True, True]).dtype == np.float32
    assert xc.logsumexp([1, 2], b=[1, 1]).dtype == np.float64
    # positional order of scipy.special.logsumexp(a, axis, b, keepdims, return_sign)
    x = rng.standard_normal((3, 4))
    w = rng.uniform(0.5, 2.0, (3, 4))
    np.testing.assert_allclose(xc.logsumexp(x, 0, w, True, True), _scipy(x, 0, w, True, True), rtol=1e-14)


def test_out_and_no_writeback(rng):
    a = rng.standard_normal((6, 5))
    b = rng.standard_normal((6, 5))
    a0, b0 = a.copy(), b.copy()
    out = np.empty(6)
    value, sign = xc.logsumexp(a, 1, b, return_sign=True, out=out)
    assert value is out
    want, want_sign = _scipy(a, axis=1, b=b, return_sign=True)
    np.testing.assert_allclose(out, want, rtol=1e-13)
    np.testing.assert_array_equal(sign, want_sign)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    lse, lse_sign = xc.logsumexp(a, 1, return_sign=True, out=out)
    assert lse is out and np.all(lse_sign == 1.0)


def test_sign_without_b_matches_scipy():
    x = np.array([[0.0, 1.0], [-np.inf, -np.inf], [np.inf, 0.0], [np.nan, 0.0], [-np.inf, 3.0]], np.float32)
    value, sign = xc.logsumexp(x, 1, return_sign=True)
    want, want_sign = _scipy(x.astype(np.float64), axis=1, return_sign=True)
    np.testing.assert_allclose(value, want, rtol=1e-6)
    np.testing.assert_array_equal(sign, want_sign)
    assert sign.dtype == np.float32
    value, sign = xc.logsumexp(np.zeros((2, 0)), 1, return_sign=True)
    np.testing.assert_array_equal(value, [-np.inf, -np.inf])
    np.testing.assert_array_equal(sign, [0.0, 0.0])  # the sign of an empty sum (SciPy: -1)


def test_errors():
    with pytest.raises(ValueError, match="does not broadcast"):
        xc.logsumexp(np.zeros((2, 3)), b=np.ones(2))
    with pytest.raises(TypeError, match="b must be an array of real numbers"):
        xc.logsumexp(np.zeros(2), b=np.array([1j, 1j]))
    with pytest.raises(TypeError, match="b must be an array of real numbers"):
        xc.logsumexp(np.zeros(2), b=["a", "b"])
    with pytest.raises(ValueError, match="repeated axis"):
        xc.logsumexp(np.zeros((2, 3)), (0, 0), b=np.ones((2, 3)))
    with pytest.raises(ValueError, match="out must have"):
        xc.logsumexp(np.zeros((2, 3)), 1, np.ones(3), out=np.empty(3))


@given(st.data())
def test_positive_scale_factors_are_a_shift_of_the_logits(data):
    """sum(b * exp(x)) = sum(exp(x + log b)): the float64 b= path agrees with the C++ core's."""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=6))
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-50, 50)))
    log_b = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-20, 20)))
    axis = data.draw(st.sampled_from([None, -1, 0, tuple(range(len(shape)))]))
    got = xc.logsumexp(x, axis, np.exp(log_b))
    want = xc.logsumexp(x + log_b, axis)
    # log b rounded (1 ulp of up to 20), the sums' rounding, and the core's precision today
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
