"""Full relative precision for confident rows: where the target (or the maximum) dominates a row.

The loss of such a row is ``log1p(r)`` with ``r = sum_{c != y} exp(x_c - x_y)``; forming ``1 + r`` first
(as PyTorch and JAX do) rounds away every term below eps, so a float32 row ``[20, 0, 0]`` gets loss 0
instead of 4.1e-9. The same holds for ``logsumexp`` and ``log_softmax`` of such rows and for the
gradient's target entry ``p_y - 1 = -r / (1 + r)``. The references are exact (mpmath at 50 digits, or
float64 sums for float32 rows), evaluated on the very values the kernels read; ``r`` walks from about 1
down to the smallest normal number, with every term of it a normal number of the input's type.
Errors are measured in units of the type's eps, relative to the exact result.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import xentcpp as xc

mp.mp.dps = 50

# Relative error bounds, in eps of the compute type: the exponentials' error (vector_math.hpp:
# exp_sum; with FMA, float terms near the underflow are up to 4.8 ulp off) plus log1p's and the final
# rounding. Measured: float32 3.5 eps (1.2 on the baseline target), float64 1.9.
BOUND = {np.dtype(np.float32): 4.0, np.dtype(np.float64): 2.5}

# Class counts that take each kernel path: few classes (lanes own rows, with a compile-time count
# and without), one segment, several segments with kept exponentials, more segments than are kept.
CLASSES = [2, 3, 10, 29, 32, 33, 1000, 40_000, 140_000]


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def _relative_error(got, exact: mp.mpf, dtype) -> float:
    return float(abs(mp.mpf(float(got)) - exact) / abs(exact)) / _eps(dtype)


def _confident_rows(dtype, classes: int, count: int, seed: int) -> np.ndarray:
    """Rows whose target (class 0) holds the max, 0, and the others below it, so that r runs from
    about 1 down to about the smallest normal number, each term exp(x_c) a normal number."""
    rng = np.random.default_rng(seed)
    lowest = math.log(float(np.finfo(dtype).tiny)) + 1.0  # every term stays a normal number
    top = -math.log(classes - 1)  # r near 1 for the first row
    rows = np.zeros((count, classes), dtype)
    for i, gap in enumerate(np.linspace(-top, -lowest - 2.0, count)):
        others = -(gap + rng.exponential(1.0, classes - 1))
        rows[i, 1:] = np.maximum(others, lowest).astype(dtype)
    return rows


# x86-64's long double carries 11 bits beyond double: a reference for float64 rows of many classes
# (mpmath takes seconds per row there). Elsewhere mpmath does it all.
_EXTENDED = np.finfo(np.longdouble).eps < 1e-18


def _exact_r(row: np.ndarray) -> mp.mpf:
    """sum_{c >= 1} exp(row[c] - row[0]), exactly for the row's own values (to far below their eps)."""
    if row.size > 2000 and row.dtype == np.float32:  # float64 terms: 1e-16, against float32's 1e-7
        return mp.mpf(math.fsum(np.exp(row[1:].astype(np.float64) - float(row[0])).tolist()))
    if row.size > 2000 and _EXTENDED:
        terms = np.exp(row[1:].astype(np.longdouble) - np.longdouble(row[0]))
        return mp.mpf(str(np.sum(np.sort(terms))))  # smallest first: 1e-19, against float64's 2e-16
    shift = mp.mpf(float(row[0]))
    return mp.fsum(mp.exp(mp.mpf(float(v)) - shift) for v in row[1:])


def _rows_for(dtype, classes):
    return _confident_rows(dtype, classes, 8 if classes > 2000 else 24, seed=classes)


@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_and_target_gradient_of_confident_rows(dtype, classes):
    x = _rows_for(dtype, classes)
    y = np.zeros(len(x), np.int64)
    losses = xc.cross_entropy(x, y, reduction="none")
    grad = xc.cross_entropy_grad(x, y, reduction="sum")
    onehot = np.zeros_like(x)
    onehot[:, 0] = 1
    soft_losses = xc.cross_entropy(x, onehot, reduction="none")
    worst = {"loss": 0.0, "grad": 0.0, "one-hot": 0.0}
    for i, row in enumerate(x):
        r = _exact_r(row)
        worst["loss"] = max(worst["loss"], _relative_error(losses[i], mp.log1p(r), dtype))
        worst["grad"] = max(worst["grad"], _relative_error(grad[i, 0], -r / (1 + r), dtype))
        worst["one-hot"] = max(worst["one-hot"], _relative_error(soft_losses[i], mp.log1p(r), dtype))
        assert losses[i] > 0  # a positive loss, not a rounded 0
    assert max(worst.values()) <= BOUND[np.dtype(dtype)], worst


@pytest.mark.parametrize("classes", [140_000])
def test_a_single_confident_row_split_across_threads(classes):
    # One row of many segments is shared out among the threads: the statistics merge segment by segment.
    x = _confident_rows(np.float32, classes, 8, seed=5)
    for row in x:
        r = _exact_r(row)
        loss, grad = xc.cross_entropy_value_and_grad(row[None], [0])
        assert _relative_error(loss, mp.log1p(r), np.float32) <= BOUND[np.dtype(np.float32)]
        assert _relative_error(grad[0, 0], -r / (1 + r), np.float32) <= BOUND[np.dtype(np.float32)]


@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_and_log_softmax_of_confident_rows(dtype, classes):
    x = _rows_for(dtype, classes)
    lse = xc.logsumexp(x)
    top = xc.log_softmax(x)[:, 0]
    lse_columns = xc.logsumexp(np.ascontiguousarray(x[:, :64].T), axis=0)  # the class axis not last
    worst = 0.0
    for i, row in enumerate(x):
        r = _exact_r(row)
        worst = max(worst, _relative_error(lse[i], mp.log1p(r), dtype), _relative_error(top[i], -mp.log1p(r), dtype))
        worst = max(worst, _relative_error(lse_columns[i], mp.log1p(_exact_r(row[:64])), dtype))
    assert worst <= BOUND[np.dtype(dtype)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_rows_are_computed_in_float32_to_full_precision(dtype):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    storage = np.dtype(np.float16) if dtype == "float16" else np.dtype(ml_dtypes.bfloat16)
    gaps = np.linspace(2.0, 60.0 if dtype == "bfloat16" else 9.0, 16)  # float16 stops at 65504
    x = np.zeros((len(gaps), 7), np.float32)
    x[:, 0] = gaps
    x = x.astype(storage)
    losses = xc.cross_entropy(x, np.zeros(len(x), np.int64), reduction="none")
    for i, row in enumerate(x.astype(np.float64)):
        r = mp.fsum(mp.exp(mp.mpf(v) - mp.mpf(row[0])) for v in row[1:])
        assert _relative_error(losses[i], mp.log1p(r), np.float32) <= BOUND[np.dtype(np.float32)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_issues_examples(dtype):
    assert xc.cross_entropy(np.array([[40.0, 0.0]], dtype), [0], reduction="none")[0] == pytest.approx(
        4.248354255291589e-18, rel=4 * _eps(dtype))
    assert xc.cross_entropy(np.array([[20.0, 0.0, 0.0]], dtype), [0], reduction="none")[0] == pytest.approx(
        4.122307227883699e-09, rel=4 * _eps(dtype))
    assert xc.cross_entropy(np.array([[10.0, 0.0, 0.0]], dtype), [0], reduction="none")[0] == pytest.approx(
        9.079573746724446e-05, rel=4 * _eps(dtype))
    assert float(xc.logsumexp(np.array([0.0, -40.0], dtype))) == pytest.approx(4.248354255291589e-18,
                                                                               rel=4 * _eps(dtype))


def test_sum_of_many_confident_rows_keeps_its_digits():
    # Evaluation sums the log-likelihood of long, well-predicted sequences: every term must count.
    rng = np.random.default_rng(3)
    x = np.zeros((20_000, 16), np.float32)
    x[:, 1:] = -rng.uniform(12.0, 30.0, (20_000, 15)).astype(np.float32)
    y = np.zeros(20_000, np.int64)
    exact = math.fsum(math.log1p(math.fsum(np.exp(row[1:].astype(np.float64)).tolist())) for row in x)
    assert xc.cross_entropy(x, y, reduction="sum") == pytest.approx(exact, rel=2 * _eps(np.float32))


@given(
    classes=st.integers(2, 40),
    scale=st.floats(0.0, 60.0),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
# r = 4.75e-38 with a term of 9.3e-40 below the smallest normal float, which exp_sum dropped on AVX2
# and the baseline (a loss 2 % low) before it underflowed gradually there too.
@example(classes=3, scale=30.0, seed=374, dtype=np.float32)
def test_a_row_whose_target_holds_the_max_has_loss_log1p_r(classes, scale, seed, dtype):
    # Logits off a grid: each difference z = x_c - x_y is rounded once in the input's type, by up to
    # |z| eps / 2, which exp turns into a relative error of the same size: the loss is within a few
    # eps plus that conditioning, sum_c exp(z_c) |z_c| / r times eps / 2 (0 when the differences are
    # exact, as on a grid or with the max at 0: the tests above).
    rng = np.random.default_rng(seed)
    row = (rng.standard_normal(classes) * scale).astype(dtype)
    y = int(np.argmax(row))
    loss = xc.cross_entropy(row[None], [y], reduction="none")[0]
    z = np.delete(row, y).astype(np.float64) - float(row[y])
    terms = np.exp(z)
    r = math.fsum(terms.tolist())
    assert loss >= 0
    tiny = float(np.finfo(dtype).tiny)
    if r >= tiny:
        condition = math.fsum((terms * np.abs(z)).tolist()) / r
        tolerance = (BOUND[np.dtype(dtype)] + condition / 2) * _eps(dtype) * math.log1p(r)
        assert abs(float(loss) - math.log1p(r)) <= tolerance
    else:  # below the normal range the terms lose bits (or flush to 0 without AVX-512)
        assert abs(float(loss) - math.log1p(r)) <= tiny


@given(
    classes=st.integers(1, 40),
    scale=st.floats(0.0, 1e3),
    seed=st.integers(0, 2**32 - 1),
    smoothing=st.sampled_from([0.0, 0.1]),
)
def test_a_loss_is_never_negative(classes, scale, seed, smoothing):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((5, classes)) * scale).astype(np.float32)
    y = rng.integers(0, classes, 5)
    w = rng.uniform(0.0, 2.0, classes).astype(np.float32)
    assert np.all(xc.cross_entropy(x, y, reduction="none", weight=w, label_smoothing=smoothing) >= 0)
