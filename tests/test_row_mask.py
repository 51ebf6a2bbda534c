"""The row mask ``where=`` of the cross-entropy functions: masked rows add nothing to the loss, the
mean's denominator or the gradient, for every target kind, and their labels are never read.

The reference is the same call on the kept rows alone (a different shape, so a different code path
and rounding order: compared within the per-dtype tolerances).
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import FLOATS, REDUCTIONS, assert_close, assert_raises_untouched

import xentcpp as xc


def _problem(rng, shape, dtype, target):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if target == "index":
        t = rng.integers(0, shape[-1], shape[:-1])
    else:
        t = rng.dirichlet(np.ones(shape[-1]), shape[:-1]).astype(dtype)
    where = rng.random(shape[:-1]) < 0.6
    where.flat[0] = True
    return x, t, where


# Shapes that take each kernel path: few classes (lanes own rows), one segment, several segments.
SHAPES = [(37, 5), (37, 10), (9, 1000), (3, 40_000)]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target", ["index", "probs"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_masked_rows_count_for_nothing(rng, dtype, shape, reduction, target, weighted):
    x, t, where = _problem(rng, shape, dtype, target)
    options = dict(reduction=reduction, label_smoothing=0.1, z_loss=1e-3)
    if weighted:
        options["weight"] = rng.uniform(0.5, 2.0, shape[-1]).astype(dtype)
    loss, grad = xc.cross_entropy_value_and_grad(x, t, where=where, **options)
    kept_loss, kept_grad = xc.cross_entropy_value_and_grad(x[where], t[where], **options)
    if reduction == "none":
        assert_close(loss[where], kept_loss, dtype, "loss")
        assert np.all(loss[~where] == 0)
    else:
        assert_close(loss, kept_loss, dtype, "loss")
    assert_close(grad[where], kept_grad, dtype, "grad")
    assert np.all(grad[~where] == 0)
    assert_close(xc.cross_entropy(x, t, where=where, **options), loss, dtype, "loss")
    assert_close(xc.cross_entropy_grad(x, t, where=where, **options), grad, dtype, "grad")


def test_a_masked_row_is_never_read(rng):
    # Padding rows may hold anything: out-of-range labels, NaN logits.
    x, t, where = _problem(rng, (20, 7), np.float32, "index")
    x[~where] = np.nan
    t[~where] = 1_000_000
    loss, grad = xc.cross_entropy_value_and_grad(x, t, where=where)
    assert np.isfinite(loss)
    kept_loss, kept_grad = xc.cross_entropy_value_and_grad(x[where], t[where])
    assert loss == pytest.approx(kept_loss, rel=1e-6)
    np.testing.assert_allclose(grad[where], kept_grad, rtol=1e-5, atol=1e-7)
    assert np.all(grad[~where] == 0)


def test_where_broadcasts_and_follows_the_class_axis(rng):
    # PyTorch's layout (N, C, L) with axis=1: the mask has the per-row loss shape (N, L), or broadcasts to it.
    x = rng.standard_normal((4, 6, 5))
    t = rng.integers(0, 6, (4, 5))
    lengths = np.array([5, 3, 1, 4])
    where = np.arange(5)[None, :] < lengths[:, None]
    got = xc.cross_entropy(x, t, axis=1, where=where, reduction="none")
    full = xc.cross_entropy(x, t, axis=1, reduction="none")
    np.testing.assert_array_equal(got, np.where(where, full, 0.0))
    assert xc.cross_entropy(x, t, axis=1, where=np.array([True, False, True, True, True]), reduction="sum") == (
        pytest.approx(float(np.sum(np.delete(full, 1, axis=1)))))


def test_every_row_masked_is_a_mean_over_nothing(rng):
    x, t, _ = _problem(rng, (6, 4), np.float64, "probs")
    loss, grad = xc.cross_entropy_value_and_grad(x, t, where=np.zeros(6, bool))
    assert np.isnan(loss)
    np.testing.assert_array_equal(grad, np.zeros_like(x))


def test_matches_optax(rng):
    optax = pytest.importorskip("optax")
    x, t, where = _problem(rng, (16, 9), np.float32, "probs")
    expected = np.asarray(optax.softmax_cross_entropy(x, t, where=where))
    got = xc.cross_entropy(x, t, where=where, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("where", "error", "match"),
    [
        (np.ones(5, np.int64), TypeError, "boolean"),
        (np.ones((2, 3), bool), ValueError, "broadcast"),
        ([1.0, 0.0, 1.0, 1.0, 1.0], TypeError, "boolean"),
    ],
)
def test_a_bad_mask_is_refused(rng, where, error, match):
    x, t, _ = _problem(rng, (5, 4), np.float32, "index")
    assert_raises_untouched(xc.cross_entropy_value_and_grad, error, match, x, t, where=where)


def test_out_must_not_overlap_the_mask(rng):
    x, t, _ = _problem(rng, (4, 4), np.float32, "index")
    memory = np.ones(16, np.float32)
    where = memory.view(bool)[:4]
    assert_raises_untouched(xc.cross_entropy_grad, ValueError, "overlaps where", x, t, where=where,
                            out=memory.reshape(4, 4))
