"""Gradients: cross_entropy_grad and value_and_grad against the analytic reference and against
central finite differences of xc.cross_entropy itself (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import FLOATS, REDUCTIONS, assert_close, make_problem
from reference import central_difference, ref_grad

import xentcpp as xc

INF = np.inf


def _grad_output(rng, reduction, batch):
    return rng.uniform(-2.0, 2.0, batch) if reduction == "none" else 1.7


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", ["index", "prob"])
def test_grad_matches_reference_and_finite_differences(rng, target, reduction, smoothing, weighted,
                                                       from_logits):
    x, t, w = make_problem(rng, (4, 5), target=target, weighted=weighted,
                           ignored=target == "index", from_logits=from_logits)
    go = _grad_output(rng, reduction, 4)
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing, from_logits=from_logits)

    g = xc.cross_entropy_grad(x, t, go, **kw)
    assert isinstance(g, np.ndarray) and g.dtype == np.float64 and g.shape == x.shape
    assert_close(g, ref_grad(x, t, go, **kw), np.float64, "grad")

    def f(xx):
        return float(np.sum(go * np.asarray(xc.cross_entropy(xx, t, **kw))))

    np.testing.assert_allclose(g, central_difference(f, x, h=1e-6), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_grad_nd_axis1_finite_differences(rng, reduction, target):
    x, t, w = make_problem(rng, (2, 3, 2, 2), axis=1, target=target, weighted=True,
                           ignored=target == "index")
    go = _grad_output(rng, reduction, (2, 2, 2))
    kw = dict(axis=1, weight=w, reduction=reduction, label_smoothing=0.1)
    g = xc.cross_entropy_grad(x, t, go, **kw)
    assert_close(g, ref_grad(x, t, go, **kw), np.float64, "grad")

    def f(xx):
        return float(np.sum(go * np.asarray(xc.cross_entropy(xx, t, **kw))))

    np.testing.assert_allclose(g, central_difference(f, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", (np.float16, *FLOATS))
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize(("shape", "axis"), [((7, 33), -1), ((3, 5, 2, 4), 1), ((6, 3), 0)])
def test_grad_every_dtype_matches_reference(rng, shape, axis, target, reduction, smoothing,
                                            from_logits, dtype):
    x, t, w = make_problem(rng, shape, axis=axis, target=target, dtype=dtype, weighted=True,
                           ignored=target == "index", from_logits=from_logits)
    batch = tuple(np.delete(np.array(shape), axis))
    go = _grad_output(rng, reduction, batch)
    kw = dict(axis=axis, weight=w, reduction=reduction, label_smoothing=smoothing,
              from_logits=from_logits)
    g = xc.cross_entropy_grad(x, t, go, **kw)
    assert g.dtype == dtype and g.shape == x.shape
    expected = ref_grad(x, t, go, **kw)
    assert_close(g, expected, dtype, "grad")
    # The gradient is not trivially zero.
    assert np.abs(expected).max() > 1e-2


@pytest.mark.parametrize(
    ("reduction", "grad_output"),
    [("sum", 2.5), ("mean", -0.75), ("sum", np.array(-0.5)), ("mean", np.float64(3.0)), ("sum", 0),
     ("mean", np.array(2.0, dtype=np.float32))],
)
def test_scalar_grad_output_scales_reduced_gradient(rng, reduction, grad_output):
    x, t, w = make_problem(rng, (5, 6), weighted=True, ignored=True)
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.1)
    g = xc.cross_entropy_grad(x, t, grad_output, **kw)
    assert_close(g, ref_grad(x, t, float(grad_output), **kw), np.float64, "grad")
    np.testing.assert_allclose(g, float(grad_output) * xc.cross_entropy_grad(x, t, **kw),
                               rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("go_shape", [None, (), (5,), (4, 1), (2, 4, 5), (1, 4, 5), (2, 1, 1)])
def test_none_grad_output_broadcasts(rng, go_shape):
    x, t, w = make_problem(rng, (2, 3, 4, 5), axis=1, weighted=True, ignored=True)
    go = 1.25 if go_shape is None else rng.uniform(-2.0, 2.0, go_shape)
    kw = dict(axis=1, weight=w, reduction="none")
    g = xc.cross_entropy_grad(x, t, go, **kw)
    assert_close(g, ref_grad(x, t, go, **kw), np.float64, "grad")


def test_default_grad_output_is_one(rng):
    x, t, _ = make_problem(rng, (4, 6))
    for reduction in REDUCTIONS:
        g = xc.cross_entropy_grad(x, t, reduction=reduction)
        assert_close(g, ref_grad(x, t, 1.0, reduction=reduction), np.float64, "grad")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_gives_zero_gradient(dtype, reduction):
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]], dtype=dtype)
    t = np.array([-100, -100])
    g = xc.cross_entropy_grad(x, t, reduction=reduction, label_smoothing=0.2)
    np.testing.assert_array_equal(g, np.zeros_like(x))
    loss, g2 = xc.cross_entropy_value_and_grad(x, t, reduction=reduction)
    np.testing.assert_array_equal(g2, np.zeros_like(x))
    assert (math.isnan(loss) if reduction == "mean" else np.all(loss == 0.0))


@pytest.mark.parametrize("dtype", FLOATS)
def test_every_row_ignored_gives_a_nan_loss_and_a_zero_gradient(dtype):
    # As PyTorch: a mean over nothing.
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]], dtype=dtype)
    t = np.array([-100, -100])
    g = xc.cross_entropy_grad(x, t)
    np.testing.assert_array_equal(g, np.zeros_like(x))
    loss, g2 = xc.cross_entropy_value_and_grad(x, t, label_smoothing=0.1)
    assert math.isnan(loss)
    np.testing.assert_array_equal(g2, np.zeros_like(x))


@pytest.mark.parametrize("dtype", (np.float16, *FLOATS))
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", ["index", "prob"])
def test_value_and_grad_equals_separate_calls(rng, target, reduction, from_logits, dtype):
    x, t, w = make_problem(rng, (6, 10), target=target, dtype=dtype, weighted=True,
                           ignored=target == "index", from_logits=from_logits)
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.1, from_logits=from_logits)
    loss, g = xc.cross_entropy_value_and_grad(x, t, **kw)
    expected_loss = xc.cross_entropy(x, t, **kw)
    expected_g = xc.cross_entropy_grad(x, t, **kw)
    assert type(loss) is type(expected_loss)
    if reduction == "none":
        assert loss.dtype == expected_loss.dtype and loss.shape == expected_loss.shape
    np.testing.assert_array_equal(loss, expected_loss)
    assert g.dtype == expected_g.dtype
    np.testing.assert_array_equal(g, expected_g)
    assert_close(g, ref_grad(x, t, **kw), dtype, "grad")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("shape", "axis"), [((8, 1), -1), ((8, 7), -1), ((3, 1000), -1),
                                             ((2, 33, 3), 1), ((5, 4), 0)])
def test_gradient_rows_sum_to_zero(rng, shape, axis, dtype):
    x, t, _ = make_problem(rng, shape, axis=axis, dtype=dtype)
    for reduction in ("sum", "mean"):
        g = xc.cross_entropy_grad(x, t, reduction=reduction, axis=axis)
        atol = 16 * np.sqrt(shape[axis]) * np.finfo(dtype).eps
        np.testing.assert_allclose(g.astype(np.float64).sum(axis=axis), 0.0, atol=atol)
        assert np.abs(g).max() > 0 or shape[axis] == 1


class TestEdgeGradients:
    @pytest.mark.parametrize("dtype", FLOATS)
    def test_masked_classes_get_zero_gradient(self, dtype):
        x = np.array([[-INF, 1.0, 2.0, -INF], [0.0, -INF, -INF, 3.0]], dtype=dtype)
        t = np.array([2, 0])
        g = xc.cross_entropy_grad(x, t, reduction="sum")
        assert np.all(g[np.isneginf(x)] == 0.0)
        assert_close(g, ref_grad(x, t, reduction="sum"), dtype, "grad")

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_target_logit_minus_inf_has_finite_gradient(self, dtype):
        x = np.array([[1.0, -INF, 0.5], [1.0, 2.0, 0.5]], dtype=dtype)
        t = np.array([1, 0])
        g = xc.cross_entropy_grad(x, t, reduction="sum")
        assert np.all(np.isfinite(g))
        assert g[0, 1] == -1.0
        assert_close(g, ref_grad(x, t, reduction="sum"), dtype, "grad")

    @pytest.mark.parametrize("bad", ["all -inf", "nan", "+inf"])
    @pytest.mark.parametrize("dtype", FLOATS)
    def test_bad_row_gradient_is_nan_and_isolated(self, rng, dtype, bad):
        x, t, _ = make_problem(rng, (4, 5), dtype=dtype)
        if bad == "all -inf":
            x[1] = -INF
        else:
            x[1, 2] = np.nan if bad == "nan" else INF
        g = xc.cross_entropy_grad(x, t, reduction="sum")
        assert np.all(np.isnan(g[1]))
        assert np.all(np.isfinite(np.delete(g, 1, axis=0)))
        assert_close(g, ref_grad(x, t, reduction="sum"), dtype, "grad")
        # An ignored bad row has zero gradient and does not disturb the others.
        t[1] = -100
        for reduction in REDUCTIONS:
            g = xc.cross_entropy_grad(x, t, reduction=reduction)
            np.testing.assert_array_equal(g[1], 0.0)
            assert_close(g, ref_grad(x, t, reduction=reduction), dtype, "grad")

    def test_single_class_gradient_is_zero(self):
        x = np.array([[3.0], [-2.0], [1e4]])
        loss, g = xc.cross_entropy_value_and_grad(x, [0, 0, 0], reduction="sum")
        assert loss == 0.0
        np.testing.assert_array_equal(g, 0.0)

    @pytest.mark.parametrize("target", ["index", "prob"])
    def test_clipped_probabilities_have_zero_gradient(self, target):
        q = np.array([[1e-9, 0.3, 0.7], [1.0, 0.2, 0.4], [0.02, 0.9, 0.5]])
        t = (np.array([0, 0, 1]) if target == "index"
             else np.array([[0.5, 0.5, 0.0], [0.6, 0.4, 0.0], [0.1, 0.7, 0.2]]))
        kw = dict(reduction="sum", from_logits=False, label_smoothing=0.1)
        g = xc.cross_entropy_grad(q, t, **kw)
        assert g[0, 0] == 0.0 and g[1, 0] == 0.0
        assert np.all(g[2] < 0.0)
        assert_close(g, ref_grad(q, t, **kw), np.float64, "grad")
        g = xc.cross_entropy_grad(q, t, epsilon=0.25, **kw)
        assert g[2, 0] == 0.0 and g[2, 1] == 0.0 and g[1, 1] == 0.0 and g[2, 2] < 0.0
        assert_close(g, ref_grad(q, t, epsilon=0.25, **kw), np.float64, "grad")

    def test_zero_probability_on_masked_class_has_finite_gradient(self):
        x = np.array([[-INF, 1.0, 2.0], [0.0, 1.0, 2.0]])
        t = np.array([[0.0, 0.25, 0.75], [0.2, 0.3, 0.5]])
        g = xc.cross_entropy_grad(x, t, reduction="sum")
        assert g[0, 0] == 0.0 and np.all(np.isfinite(g))
        assert_close(g, ref_grad(x, t, reduction="sum"), np.float64, "grad")
