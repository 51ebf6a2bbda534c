"""Loss values of xc.cross_entropy against the float64 reference, for every option and odd shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import FLOATS, REDUCTIONS, check_loss, make_problem
from reference import ref_loss

import xentcpp as xc

INF = np.inf


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", ["index", "prob"])
def test_every_option_matches_reference(rng, target, reduction, smoothing, weighted, from_logits,
                                        dtype):
    x, t, w = make_problem(rng, (9, 7), target=target, dtype=dtype, weighted=weighted,
                           ignored=target == "index", from_logits=from_logits)
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing, from_logits=from_logits)
    check_loss(xc.cross_entropy(x, t, **kw), ref_loss(x, t, **kw), dtype, reduction)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, -1, 2, 10**6])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ignore_index(rng, ignore_index, reduction, weighted):
    x, t, w = make_problem(rng, (10, 5), weighted=weighted, ignored=True, ignore_index=ignore_index)
    kw = dict(weight=w, reduction=reduction, ignore_index=ignore_index)
    got = xc.cross_entropy(x, t, **kw)
    check_loss(got, ref_loss(x, t, **kw), np.float64, reduction)
    if reduction == "none":
        assert np.all(got[t == ignore_index] == 0.0)
        assert np.all(got[t != ignore_index] > 0.0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("weighted", [False, True])
def test_all_rows_ignored(dtype, weighted):
    x = np.array([[1.0, 2.0, 3.0], [-np.inf, -np.inf, -np.inf], [np.nan, 0.0, 1.0]], dtype=dtype)
    t = np.full(3, -100)
    w = np.array([1.0, 2.0, 3.0], dtype=dtype) if weighted else None
    mean = xc.cross_entropy(x, t, weight=w)
    assert type(mean) is float and math.isnan(mean)
    total = xc.cross_entropy(x, t, weight=w, reduction="sum")
    assert type(total) is float and total == 0.0
    none = xc.cross_entropy(x, t, weight=w, reduction="none")
    np.testing.assert_array_equal(none, np.zeros(3, dtype=dtype))


@pytest.mark.parametrize("target", ["index", "prob"])
def test_zero_rows(target):
    x = np.zeros((0, 4))
    t = np.zeros(0, dtype=np.int64) if target == "index" else np.zeros((0, 4))
    mean = xc.cross_entropy(x, t)
    assert type(mean) is float and math.isnan(mean)
    assert xc.cross_entropy(x, t, reduction="sum") == 0.0
    none = xc.cross_entropy(x, t, reduction="none")
    assert none.shape == (0,) and none.dtype == np.float64


def test_zero_weight_mean_is_nan():
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
    mean = xc.cross_entropy(x, [0, 0], weight=[0.0, 1.0, 1.0])
    assert type(mean) is float and math.isnan(mean)


def test_textbook_probabilities():
    got = xc.cross_entropy([[0.1, 0.3, 0.6], [0.2, 0.3, 0.5]], [0, 2], reduction="none",
                           from_logits=False)
    np.testing.assert_allclose(got, [2.30258509, 0.69314718], rtol=1e-8)
    got = xc.cross_entropy([[0.6, 0.2, 0.2]], [[0, 0, 1]], from_logits=False)
    assert type(got) is float
    assert got == pytest.approx(1.6094379, rel=1e-7)


@pytest.mark.parametrize("epsilon", [0.0, 1e-7, 1e-3, 0.1, 0.49])
@pytest.mark.parametrize("target", ["index", "prob"])
def test_epsilon_clips_probabilities(epsilon, target):
    q = np.array([[0.0, 0.3, 0.7], [1.0, 0.0, 0.0], [0.05, 0.9, 0.05], [0.2, 0.2, 0.6]])
    y = np.array([0, 0, 1, 2])
    t = y if target == "index" else np.array([[0.5, 0.5, 0.0], [1, 0, 0], [0, 1, 0], [0.1, 0.2, 0.7]])
    kw = dict(reduction="none", from_logits=False, epsilon=epsilon)
    check_loss(xc.cross_entropy(q, t, **kw), ref_loss(q, t, **kw), np.float64, "none")


def test_default_epsilon():
    got = xc.cross_entropy([[0.0, 1.0], [1.0, 0.0]], [0, 0], reduction="none", from_logits=False)
    np.testing.assert_allclose(got, [-math.log(1e-7), -math.log(1.0 - 1e-7)], rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", ["index", "prob"])
def test_float16_is_computed_in_float32(rng, target, reduction):
    x, t, w = make_problem(rng, (6, 9), target=target, dtype=np.float16, weighted=True,
                           ignored=target == "index")
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.1)
    check_loss(xc.cross_entropy(x, t, **kw), ref_loss(x, t, **kw), np.float16, reduction)


@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(5, 1), (6, 7), (4, 33), (3, 1000), (1, 100000)])
def test_odd_shapes(rng, shape, dtype, target):
    x, t, w = make_problem(rng, shape, target=target, dtype=dtype, weighted=True)
    for reduction in REDUCTIONS:
        kw = dict(weight=w, reduction=reduction, label_smoothing=0.05)
        check_loss(xc.cross_entropy(x, t, **kw), ref_loss(x, t, **kw), dtype, reduction)


def test_float32_sums_accumulate_in_float64():
    # A float32 running sum of a million ~1.2 losses would be off by ~1e-4 relative.
    n = 1_000_000
    x = np.tile(np.array([0.3, -1.2, 2.0], dtype=np.float32), (n, 1))
    y = np.zeros(n, dtype=np.uint8)
    row = float(xc.cross_entropy(x, y, reduction="none")[0])
    assert row == pytest.approx(ref_loss(x[:1], y[:1]), rel=1e-6)
    assert xc.cross_entropy(x, y, reduction="sum") == pytest.approx(n * row, rel=1e-7)
    assert xc.cross_entropy(x, y, reduction="mean") == pytest.approx(row, rel=1e-7)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("label", [3, np.int32(3), np.array(3, dtype=np.uint8)])
def test_one_dimensional_input_with_scalar_target(dtype, label):
    x = np.array([0.5, -1.0, 2.0, 1.5, 0.0], dtype=dtype)
    none = xc.cross_entropy(x, label, reduction="none")
    assert isinstance(none, np.ndarray) and none.shape == ()
    check_loss(none, ref_loss(x, 3, reduction="none"), dtype, "none")
    for reduction in ("sum", "mean"):
        check_loss(xc.cross_entropy(x, label, reduction=reduction), ref_loss(x, 3), dtype, reduction)


def test_one_dimensional_input_with_probability_target():
    x = np.array([0.5, -1.0, 2.0])
    t = np.array([0.2, 0.3, 0.5])
    none = xc.cross_entropy(x, t, reduction="none")
    assert none.shape == ()
    check_loss(none, ref_loss(x, t, reduction="none"), np.float64, "none")


@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("shape", "axis"),
    [((2, 3, 4), -1), ((2, 5, 3, 4), 1), ((5, 3), 0), ((4, 3, 6), 0), ((2, 3, 4), -2), ((3, 4), -2)],
)
def test_axes(rng, shape, axis, dtype, target):
    x, t, w = make_problem(rng, shape, axis=axis, target=target, dtype=dtype, weighted=True,
                           ignored=target == "index")
    for reduction in REDUCTIONS:
        kw = dict(axis=axis, weight=w, reduction=reduction, label_smoothing=0.1)
        got = xc.cross_entropy(x, t, **kw)
        if reduction == "none":
            assert got.shape == tuple(np.delete(np.array(shape), axis))
        check_loss(got, ref_loss(x, t, **kw), dtype, reduction)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint8, np.bool_])
def test_one_hot_integer_targets(rng, dtype):
    x, onehot, w = make_problem(rng, (6, 4), target="onehot", weighted=True)
    labels = np.argmax(onehot, axis=-1)
    for reduction in REDUCTIONS:
        kw = dict(weight=w, reduction=reduction, label_smoothing=0.2)
        got = xc.cross_entropy(x, onehot.astype(dtype), **kw)
        check_loss(got, ref_loss(x, onehot.astype(np.float64), **kw), np.float64, reduction)
        if reduction != "mean":  # a probability-target mean divides by the row count instead
            check_loss(got, ref_loss(x, labels, **kw), np.float64, reduction)


class TestEdgeValues:
    @pytest.mark.parametrize("dtype", FLOATS)
    def test_masked_classes_give_finite_loss(self, dtype):
        x = np.array([[-INF, 1.0, 2.0, -INF], [0.0, -INF, -INF, 3.0]], dtype=dtype)
        t = np.array([2, 0])
        got = xc.cross_entropy(x, t, reduction="none")
        assert np.all(np.isfinite(got))
        check_loss(got, ref_loss(x, t, reduction="none"), dtype, "none")
        # Smoothing spreads mass onto the masked classes: the loss becomes +inf (never NaN).
        got = xc.cross_entropy(x, t, reduction="none", label_smoothing=0.1)
        np.testing.assert_array_equal(got, [INF, INF])

    @pytest.mark.parametrize("smoothing", [0.0, 0.5, 1.0])
    @pytest.mark.parametrize("dtype", FLOATS)
    def test_target_logit_minus_inf_gives_inf(self, dtype, smoothing):
        x = np.array([[1.0, -INF, 0.5], [1.0, 2.0, 0.5]], dtype=dtype)
        t = np.array([1, 0])
        got = xc.cross_entropy(x, t, reduction="none", label_smoothing=smoothing)
        assert got[0] == INF
        check_loss(got, ref_loss(x, t, reduction="none", label_smoothing=smoothing), dtype, "none")

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_all_minus_inf_row_is_nan(self, dtype):
        x = np.array([[1.0, 2.0, 3.0], [-INF, -INF, -INF], [0.0, 0.0, 1.0]], dtype=dtype)
        t = np.array([0, 1, 2])
        got = xc.cross_entropy(x, t, reduction="none")
        assert np.isnan(got[1]) and not np.any(np.isnan(got[[0, 2]]))
        check_loss(got, ref_loss(x, t, reduction="none"), dtype, "none")
        assert math.isnan(xc.cross_entropy(x, t))
        # ... unless that row is ignored.
        t[1] = -100
        check_loss(xc.cross_entropy(x, t), ref_loss(x, t), dtype, "mean")
        assert math.isfinite(xc.cross_entropy(x, t))

    @pytest.mark.parametrize("bad", [np.nan, INF])
    @pytest.mark.parametrize("column", [0, 3, 6])
    @pytest.mark.parametrize("dtype", FLOATS)
    def test_nan_or_plus_inf_poisons_only_its_row(self, rng, dtype, column, bad):
        x, t, _ = make_problem(rng, (5, 7), dtype=dtype)
        x[2, column] = bad
        got = xc.cross_entropy(x, t, reduction="none")
        assert np.isnan(got[2])
        assert np.all(np.isfinite(np.delete(got, 2)))
        check_loss(got, ref_loss(x, t, reduction="none"), dtype, "none")
        assert math.isnan(xc.cross_entropy(x, t, reduction="sum"))

    @pytest.mark.parametrize("target", ["index", "prob"])
    @pytest.mark.parametrize("dtype", FLOATS)
    def test_large_logits(self, rng, dtype, target):
        x, t, _ = make_problem(rng, (4, 9), dtype=dtype, target=target)
        x64 = x.astype(np.float64)
        x = np.concatenate([x64 + 1e4, x64 - 1e4, x64 * 1e3]).astype(dtype)
        t = np.concatenate([t, t, t])
        check_loss(xc.cross_entropy(x, t, reduction="none"), ref_loss(x, t, reduction="none"), dtype,
                   "none")

    @pytest.mark.parametrize("shift", [1.0, -37.0, 1000.0, -1e4])
    @pytest.mark.parametrize("dtype", FLOATS)
    def test_shift_invariance(self, rng, dtype, shift):
        # Multiples of 1/64 in [-8, 8] plus an integer shift are exact in float32: x - max(x) is
        # the same array, so the results must agree to the last bits.
        x = (rng.integers(-512, 512, (6, 11)) / 64.0).astype(dtype)
        t = rng.integers(0, 11, 6)
        base = xc.cross_entropy(x, t, reduction="none")
        shifted = xc.cross_entropy(x + dtype(shift), t, reduction="none")
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(shifted, base, rtol=4 * eps, atol=4 * eps)
        check_loss(base, ref_loss(x, t, reduction="none"), dtype, "none")

    def test_single_class_loss_is_zero(self):
        x = np.array([[3.0], [-2.0], [1e4]])
        np.testing.assert_array_equal(xc.cross_entropy(x, [0, 0, 0], reduction="none"), 0.0)

    def test_zero_probability_on_masked_class_contributes_zero(self):
        # Documented deviation from PyTorch (which gives NaN): t[c] == 0 where x[c] = -inf.
        x = np.array([[-INF, 1.0, 2.0], [0.0, 1.0, 2.0]])
        t = np.array([[0.0, 0.25, 0.75], [0.2, 0.3, 0.5]])
        got = xc.cross_entropy(x, t, reduction="none")
        assert np.all(np.isfinite(got))
        check_loss(got, ref_loss(x, t, reduction="none"), np.float64, "none")
        np.testing.assert_allclose(got[0], ref_loss(x[:1, 1:], t[:1, 1:], reduction="sum"), rtol=1e-12)


@pytest.mark.parametrize("classes", [3, 10, 17, 26, 32])
def test_a_dominant_logit_keeps_p_minus_one_accurate_for_few_classes(classes):
    # Few classes: lanes own rows, and each row's exponentials are added pairwise. In one running
    # sum, the small terms added to the max's 1 one by one all rounded the same way: p - 1 at the
    # target was 1.2e-6 off for 26 classes (found by test_properties' hypothesis run).
    x = np.array([[8.0] + [0.5] * (classes - 1)], np.float32)
    grad = xc.cross_entropy_grad(x, np.array([0]), reduction="none")
    p = np.exp(x.astype(np.float64) - 8.0)
    p /= p.sum()
    p[0, 0] -= 1.0
    np.testing.assert_allclose(grad, p, rtol=0, atol=2e-7)
