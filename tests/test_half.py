"""float16 and bfloat16 inputs: read as they are (no copy), computed in float32, the loss returned
as a float or a float32 array and the gradient rounded once to the input's dtype."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from cases import REDUCTIONS, make_problem
from reference import ref_grad, ref_loss

import xentcpp as xc

ml_dtypes = pytest.importorskip("ml_dtypes")

HALVES = [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]
# One rounding to the half type: 2^-11 (float16) and 2^-8 (bfloat16) relative, on top of float32 arithmetic.
GRAD_RTOL = {np.dtype(np.float16): 2**-10, np.dtype(ml_dtypes.bfloat16): 2**-7}
PATH_SHAPES = [(37, 10), (9, 1000), (5, 70000), (2, 70000)]


def _exact(x):
    """The half values themselves, in float64: what the reference is evaluated on."""
    return np.asarray(x).astype(np.float64)


def _check_grad(g, expected, dtype):
    assert g.dtype == dtype
    scale = np.max(np.abs(expected)) if expected.size else 1.0
    np.testing.assert_allclose(g.astype(np.float64), expected, rtol=GRAD_RTOL[dtype], atol=1e-6 * scale)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", PATH_SHAPES)
@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_paths_match_reference(rng, dtype, shape, reduction):
    x, t, w = make_problem(rng, shape, dtype=np.float32, weighted=True, ignored=True)
    x = x.astype(dtype)
    w = w.astype(np.float32)
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.1)
    expected = ref_loss(_exact(x), t, **kw)
    loss = xc.cross_entropy(x, t, **kw)
    if reduction == "none":
        assert loss.dtype == np.float32
    else:
        assert type(loss) is float
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)

    go = rng.uniform(0.5, 2.0, shape[0]) if reduction == "none" else 1.3
    _check_grad(xc.cross_entropy_grad(x, t, go, **kw), ref_grad(_exact(x), t, go, **kw), dtype)
    loss, g = xc.cross_entropy_value_and_grad(x, t, **kw)
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)
    _check_grad(g, ref_grad(_exact(x), t, 1.0 if reduction != "none" else np.ones(shape[0]), **kw), dtype)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_options_and_probability_targets(rng, dtype):
    x, t, w = make_problem(rng, (6, 50), target="prob", dtype=np.float32, weighted=True)
    x, t = x.astype(dtype), t.astype(dtype)
    kw = dict(weight=w, label_smoothing=0.2, z_loss=1e-3, softcap=5.0)
    loss, g = xc.cross_entropy_value_and_grad(x, t, **kw)
    np.testing.assert_allclose(loss, ref_loss(_exact(x), _exact(t), **kw), rtol=1e-5)
    _check_grad(g, ref_grad(_exact(x), _exact(t), **kw), dtype)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_half_weights_are_their_float32_values(rng, dtype):
    # PyTorch wants the weight in the input's dtype; a half weight is widened (exactly) to float32.
    x, t, w = make_problem(rng, (8, 30), dtype=np.float32, weighted=True, ignored=True)
    x, w = x.astype(dtype), w.astype(dtype)
    for target in (t, make_problem(rng, (8, 30), target="prob", dtype=np.float32)[1].astype(dtype)):
        loss, g = xc.cross_entropy_value_and_grad(x, target, weight=w, reduction="sum")
        loss32, g32 = xc.cross_entropy_value_and_grad(x, target, weight=w.astype(np.float32), reduction="sum")
        assert loss == loss32
        np.testing.assert_array_equal(g.view(np.uint16), g32.view(np.uint16))
        np.testing.assert_allclose(loss, ref_loss(_exact(x), _exact(target), weight=_exact(w), reduction="sum"),
                                   rtol=1e-5)


def test_float32_probability_targets_with_half_logits_are_not_rounded(rng):
    # Targets of another dtype are not rounded to float16: the call computes from a float32 copy.
    x, t, _ = make_problem(rng, (4, 7), target="prob", dtype=np.float32)
    x16 = x.astype(np.float16)
    loss, g = xc.cross_entropy_value_and_grad(x16, t)
    np.testing.assert_allclose(loss, ref_loss(_exact(x16), t.astype(np.float64)), rtol=1e-6)
    assert g.dtype == np.float16


def test_float16_extremes_give_the_float32_result():
    # Logits of +-60000 are exact in float16; the arithmetic is float32's, so nothing overflows.
    x = np.array([[60000.0, -60000.0, 0.0], [-60000.0, -60000.0, -59968.0]], dtype=np.float16)
    y = np.array([1, 0])
    loss = xc.cross_entropy(x, y, reduction="none")
    expected = xc.cross_entropy(x.astype(np.float32), y, reduction="none")
    np.testing.assert_array_equal(loss, expected)
    np.testing.assert_allclose(loss, [120000.0, 32.0], rtol=1e-7)
    g = xc.cross_entropy_grad(x, y, reduction="sum")
    assert np.all(np.isfinite(g.astype(np.float32)))
    np.testing.assert_array_equal(g, [[1, -1, 0], [-1, 0, 1]])


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_masked_classes_and_nan_rows(dtype):
    x = np.array([[0.0, -np.inf, 1.0], [np.nan, 0.0, 1.0]]).astype(dtype)
    loss = xc.cross_entropy(x, [0, 1], reduction="none")
    assert loss[0] == pytest.approx(np.log(1 + np.e), rel=1e-6)
    assert np.isnan(loss[1])
    g = xc.cross_entropy_grad(x, [0, 1], reduction="sum").astype(np.float32)
    assert g[0, 1] == 0.0 and np.all(np.isfinite(g[0]))


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("shape", [(40, 10), (8, 500), (2, 70000)])
def test_in_place_gradient(rng, dtype, shape):
    x, t, _ = make_problem(rng, shape, dtype=np.float32)
    x = x.astype(dtype)
    expected_loss, expected_grad = xc.cross_entropy_value_and_grad(x, t)
    loss, g = xc.cross_entropy_value_and_grad(x, t, out=x)
    assert g is x and loss == expected_loss
    np.testing.assert_array_equal(g.view(np.uint16), expected_grad.view(np.uint16))


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_half_input_is_not_copied(rng, dtype):
    x = rng.standard_normal((2048, 1000)).astype(dtype)  # 4 MB
    y = rng.integers(0, 1000, 2048)
    out = np.empty_like(x)
    before = x.copy()
    tracemalloc.start()
    try:
        xc.cross_entropy(x, y)
        xc.cross_entropy_value_and_grad(x, y, out=out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes // 8, peak
    np.testing.assert_array_equal(x.view(np.uint16), before.view(np.uint16))


def test_bfloat16_rounds_the_gradient_to_nearest_even():
    # softmax of two equal logits is 0.5 exactly; 0.5 - 1 = -0.5: exact in bfloat16. A gradient of
    # 1/3 must come back as the nearest bfloat16 (0x3EAB), not a truncation (0x3EAA).
    x = np.zeros((1, 3), dtype=ml_dtypes.bfloat16)
    g = xc.cross_entropy_grad(x, [0], reduction="sum")
    assert g.view(np.uint16)[0, 1] == np.array(1 / 3, dtype=np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)
    assert g.view(np.uint16)[0, 1] == 0x3EAB
