"""Hypothesis properties (profile "xentcpp" in conftest.py: deadline=None, 50 examples)."""

from __future__ import annotations

import numpy as np
from cases import assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import ref_grad, ref_loss

import xentcpp as xc

DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def problems(draw, max_rows=8, max_classes=40, bound=30.0):
    """(logits, labels, dtype): finite logits of a random shape and class labels in range."""
    dtype = draw(DTYPES)
    rows = draw(st.integers(1, max_rows))
    classes = draw(st.integers(1, max_classes))
    x = draw(hnp.arrays(dtype, (rows, classes),
                        elements=st.floats(-bound, bound, width=np.finfo(dtype).bits)))
    y = draw(hnp.arrays(np.int64, rows, elements=st.integers(0, classes - 1)))
    return x, y, dtype


@given(problems(), st.booleans())
def test_loss_is_nonnegative_without_smoothing(problem, weighted):
    x, y, dtype = problem
    w = np.linspace(0.0, 2.0, x.shape[1]).astype(dtype) if weighted else None
    loss = xc.cross_entropy(x, y, weight=w, reduction="none")
    assert np.all(loss >= 0.0)


@given(problems(), st.data())
def test_shift_invariance_per_row(problem, data):
    x, y, dtype = problem
    shifts = data.draw(hnp.arrays(np.float64, (x.shape[0], 1), elements=st.floats(-1e3, 1e3)))
    shifted = (x.astype(np.float64) + shifts).astype(dtype)
    # Rounding the shifted logits to dtype moves them by at most eps * (|x| + |shift|).
    eps = np.finfo(dtype).eps
    atol = 4 * eps * (30.0 + 1e3) + 1e-6 * (dtype == np.float32)
    for reduction in ("none", "sum"):
        np.testing.assert_allclose(xc.cross_entropy(shifted, y, reduction=reduction),
                                   xc.cross_entropy(x, y, reduction=reduction),
                                   rtol=1e-5 if dtype == np.float32 else 1e-10,
                                   atol=atol * x.shape[0])
    np.testing.assert_allclose(xc.cross_entropy_grad(shifted, y, reduction="sum"),
                               xc.cross_entropy_grad(x, y, reduction="sum"), rtol=0, atol=atol)


@given(problems(max_classes=300), st.sampled_from(["sum", "mean", "none"]))
def test_gradient_rows_sum_to_zero(problem, reduction):
    x, y, dtype = problem
    g = xc.cross_entropy_grad(x, y, reduction=reduction).astype(np.float64)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(g.sum(axis=-1), 0.0, atol=16 * eps * np.sqrt(x.shape[1]))


@given(problems(), st.data())
def test_agrees_with_reference(problem, data):
    x, y, dtype = problem
    n_rows, n_classes = x.shape
    kind = data.draw(st.sampled_from(["index", "prob"]))
    reduction = data.draw(st.sampled_from(["none", "sum", "mean"]))
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    if kind == "index":
        ignored = data.draw(hnp.arrays(np.bool_, n_rows))
        t = np.where(ignored, -100, y)
    else:
        t = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(0.0, 1.0, width=np.finfo(dtype).bits)))
    w = None
    if data.draw(st.booleans()):
        w = data.draw(hnp.arrays(dtype, n_classes, elements=st.floats(0.25, 4.0, width=np.finfo(dtype).bits)))
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    assert_close(xc.cross_entropy(x, t, **kw), ref_loss(x, t, **kw), dtype, "loss")
    _, g = xc.cross_entropy_value_and_grad(x, t, **kw)
    expected = ref_grad(x, t, **kw)
    # A mean's denominator can be tiny here (small weights): compare relative to the largest entry.
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    assert_close(g / scale, expected / scale, dtype, "grad")
