"""linear_cross_entropy and linear_cross_entropy_value_and_grad against the unfused float64 reference:
the logits ``input @ linear_weight.T + linear_bias`` in float64, then the loss and its logit gradient
(reference.py), chained back to the layer by hand. Every option, chunk sizes that do and do not divide
the rows, ignored rows, ``(..., H)`` inputs, other layouts, half precision, 1 vs 2 threads bitwise, the
gradient filter, the BLAS's thread count, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from cases import assert_raises_untouched
from reference import central_difference, ref_grad, ref_loss

import xentcpp as xc
from xentcpp import _core

ml_dtypes = pytest.importorskip("ml_dtypes")

# Options of cross_entropy that apply: none, each alone, and all together.
OPTION_SETS = {
    "plain": {},
    "weight_ignore": {"weight": "w", "ignore_index": 2},
    "smoothing": {"label_smoothing": 0.2},
    "z_loss": {"z_loss": 0.01},
    "softcap": {"softcap": 2.5},
    "all": {"weight": "w", "ignore_index": 2, "label_smoothing": 0.1, "z_loss": 0.02, "softcap": 4.0},
}
CHUNKS = [None, 1, 3, 7, 1000]  # the default, chunks that do not divide 23 rows, one chunk larger than the batch


def make_layer(rng, n=23, h=16, v=37, dtype=np.float64, bias=True):
    x = rng.standard_normal((n, h)).astype(dtype)
    w = (0.4 * rng.standard_normal((v, h))).astype(dtype)
    b = rng.standard_normal(v).astype(dtype) if bias else None
    y = rng.integers(0, v, n)
    y[::5] = 2  # some rows on the class that ignore_index=2 ignores
    return x, w, b, y


def options_of(name, v, rng):
    opts = dict(OPTION_SETS[name])
    if opts.get("weight") == "w":
        opts["weight"] = rng.uniform(0.25, 2.0, v)
    return opts


def reference(x, w, b, y, grad_output=1.0, *, reduction="mean", **opts):
    """The loss and the gradients (d_input, d_weight, d_bias) of the unfused computation, in float64."""
    x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
    h = x64.shape[-1]
    logits = x64.reshape(-1, h) @ w64.T + (0.0 if b is None else np.asarray(b, np.float64))
    yy = np.asarray(y).reshape(-1)
    loss = ref_loss(logits, yy, reduction=reduction, **opts)
    g = ref_grad(logits, yy, np.reshape(grad_output, -1) if np.ndim(grad_output) else grad_output,
                 reduction=reduction, **opts)
    if reduction == "none":
        loss = loss.reshape(np.shape(y))
    return loss, ((g @ w64).reshape(x64.shape), g.T @ x64.reshape(-1, h), g.sum(axis=0))


def assert_grads(got, want, dtype, bias):
    """float64: to 1e-10 of the largest entry; float32: the GEMMs' float32 rounding, 2e-5 of it."""
    tol = 1e-10 if dtype == np.float64 else 2e-5
    assert len(got) == (3 if bias else 2)
    for g, e in zip(got, want):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=0, atol=tol * max(1.0, float(np.max(np.abs(e)))))


def assert_loss(got, want, dtype):
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("options", sorted(OPTION_SETS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_the_unfused_reference(rng, dtype, reduction, options, bias, chunk):
    x, w, b, y = make_layer(rng, dtype=dtype, bias=bias)
    opts = options_of(options, w.shape[0], rng)
    want_loss, want_grads = reference(x, w, b, y, reduction=reduction, **opts)
    loss = xc.linear_cross_entropy(x, w, y, linear_bias=b, reduction=reduction, chunk_size=chunk, **opts)
    if reduction == "none":
        assert loss.dtype == dtype and loss.shape == y.shape
    else:
        assert type(loss) is float
    assert_loss(loss, want_loss, dtype)
    loss2, grads = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, reduction=reduction,
                                                           chunk_size=chunk, **opts)
    assert_loss(loss2, want_loss, dtype)
    assert_grads(grads, want_grads, dtype, bias)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_z_loss_term_returned(rng, reduction):
    x, w, b, y = make_layer(rng)
    opts = dict(z_loss=0.05, ignore_index=2, weight=rng.uniform(0.5, 2.0, w.shape[0]))
    want = ref_loss(x @ w.T + b, y, reduction=reduction, return_z_loss=True, **opts)
    got = xc.linear_cross_entropy(x, w, y, linear_bias=b, reduction=reduction, return_z_loss=True, chunk_size=4,
                                  **opts)
    (got_vg, _) = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, reduction=reduction,
                                                        return_z_loss=True, chunk_size=4, **opts)
    for pair in (got, got_vg):
        np.testing.assert_allclose(pair[0], want[0], rtol=1e-12)
        np.testing.assert_allclose(pair[1], want[1], rtol=1e-12)


def test_gradients_match_finite_differences(rng):
    """Our own loss, differentiated numerically: an independent check of the gradients, every option on."""
    x, w, b, y = make_layer(rng, n=5, h=3, v=6)
    opts = dict(weight=rng.uniform(0.5, 2.0, 6), ignore_index=2, label_smoothing=0.1, z_loss=0.05, softcap=3.0)
    _, (dx, dw, db) = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, chunk_size=2, **opts)
    for arg, got in ((0, dx), (1, dw), (2, db)):
        def f(v, arg=arg):
            args = [x, w, b]
            args[arg] = v
            return xc.linear_cross_entropy(args[0], args[1], y, linear_bias=args[2], chunk_size=2, **opts)
        fd = central_difference(f, [x, w, b][arg], h=1e-6)
        assert np.sum(np.abs(fd)) > 0.01  # the differences can tell a wrong gradient
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_batched_input_and_a_single_row(rng):
    x, w, b, _ = make_layer(rng, n=24)
    xb = x.reshape(2, 3, 4, 16)
    yb = rng.integers(0, 37, (2, 3, 4))
    loss = xc.linear_cross_entropy(xb, w, yb, linear_bias=b, reduction="none", chunk_size=5)
    want_loss, want_grads = reference(xb, w, b, yb, reduction="none")
    assert loss.shape == (2, 3, 4)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    _, grads = xc.linear_cross_entropy_value_and_grad(xb, w, yb, linear_bias=b, reduction="none", chunk_size=5)
    assert grads[0].shape == (2, 3, 4, 16)
    assert_grads(grads, want_grads, np.float64, True)
    # (H,) input, a 0-d target: one row.
    one = xc.linear_cross_entropy(x[0], w, np.int64(3), reduction="none")
    assert one.shape == ()
    np.testing.assert_allclose(one, ref_loss(x[:1] @ w.T, [3], reduction="none")[0], rtol=1e-12)


def test_rows_fewer_than_a_chunk_and_no_rows(rng):
    x, w, b, y = make_layer(rng, n=3)
    want_loss, want_grads = reference(x, w, b, y)
    loss, grads = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, chunk_size=100)
    assert_loss(loss, want_loss, np.float64)
    assert_grads(grads, want_grads, np.float64, True)
    empty = np.empty((0, 16))
    labels = np.empty(0, dtype=np.int64)
    assert np.isnan(xc.linear_cross_entropy(empty, w, labels))
    assert xc.linear_cross_entropy(empty, w, labels, reduction="sum") == 0.0
    assert xc.linear_cross_entropy(empty, w, labels, reduction="none").shape == (0,)
    _, (dx, dw, db) = xc.linear_cross_entropy_value_and_grad(empty, w, labels, linear_bias=b, reduction="sum")
    assert dx.shape == (0, 16) and not dw.any() and not db.any()


@pytest.mark.parametrize("chunk", [None, 4])
def test_negative_and_zero_sum_class_weights_as_the_unfused_call(rng, chunk):
    # As cross_entropy on the logits (which follows PyTorch): negative weights, and a mean whose counted
    # rows' weights sum to zero (its loss inf or NaN, its gradients NaN and inf alike).
    x, w, b, y = make_layer(rng)
    logits = x @ w.T + b
    weight = rng.uniform(-1.0, 2.0, w.shape[0])
    for smoothing in (0.0, 0.2):
        loss, (dx, dw, db) = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, weight=weight,
                                                                     label_smoothing=smoothing, chunk_size=chunk)
        want_loss, want_g = xc.cross_entropy_value_and_grad(logits, y, weight=weight, label_smoothing=smoothing)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-10)
        np.testing.assert_allclose(dx, want_g @ w, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dw, want_g.T @ x, rtol=1e-9, atol=1e-12)
    counts = np.bincount(y, minlength=w.shape[0]).astype(np.float64)
    a, b_ = y[0], next(c for c in y if c != y[0])
    zero = np.zeros(w.shape[0])
    zero[a], zero[b_] = counts[b_], -counts[a]  # the counted rows' weights sum to exactly 0
    loss, (dx, dw, db) = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, weight=zero, chunk_size=chunk)
    want_loss, want_g = xc.cross_entropy_value_and_grad(logits, y, weight=zero)
    assert not np.isfinite(loss) and not np.isfinite(want_loss)
    with np.errstate(invalid="ignore", over="ignore"):
        np.testing.assert_array_equal(np.isnan(dx), np.isnan(want_g @ w))
        np.testing.assert_array_equal(np.isnan(db), np.isnan(want_g.sum(axis=0)))


def test_all_rows_ignored(rng):
    x, w, b, _ = make_layer(rng)
    y = np.full(23, -100)
    loss, (dx, dw, db) = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, chunk_size=4, z_loss=0.1)
    assert np.isnan(loss)  # a mean over nothing, as cross_entropy
    assert not dx.any() and not dw.any() and not db.any()
    assert xc.linear_cross_entropy(x, w, y, reduction="sum") == 0.0


def test_other_layouts_are_copied_not_modified(rng):
    x, w, b, y = make_layer(rng, n=12)
    want_loss, want_grads = reference(x, w, b, y)
    wide = np.zeros((12, 32))
    wide[:, ::2] = x
    x_strided = wide[:, ::2]
    w_fortran = np.asfortranarray(w)
    b_strided = np.repeat(b, 2)[::2]
    before = [a.copy() for a in (x_strided, w_fortran, b_strided)]
    loss, grads = xc.linear_cross_entropy_value_and_grad(x_strided, w_fortran, y, linear_bias=b_strided, chunk_size=5)
    assert_loss(loss, want_loss, np.float64)
    assert_grads(grads, want_grads, np.float64, True)
    for a, a0 in zip((x_strided, w_fortran, b_strided), before):
        np.testing.assert_array_equal(a, a0)
    # Labels of another integer type, and lists.
    assert_loss(xc.linear_cross_entropy(x.tolist(), w, y.astype(np.int16).tolist(), linear_bias=b), want_loss,
                np.float64)


@pytest.mark.parametrize("half", [np.float16, "bfloat16"])
def test_half_precision_is_read_as_float32(rng, half):
    half = ml_dtypes.bfloat16 if half == "bfloat16" else half
    x, w, b, y = make_layer(rng, dtype=np.float32)
    xh, wh = x.astype(half), w.astype(half)
    exact = xc.linear_cross_entropy_value_and_grad(xh.astype(np.float32), wh.astype(np.float32), y,
                                                   linear_bias=b, chunk_size=6)
    got = xc.linear_cross_entropy_value_and_grad(xh, wh, y, linear_bias=b, chunk_size=6)
    assert got[0] == exact[0]
    for g, e in zip(got[1], exact[1]):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, e)
    # A half input with a float32 weight is float32 too.
    assert xc.linear_cross_entropy(xh, w, y) == xc.linear_cross_entropy(xh.astype(np.float32), w, y)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bitwise_the_same_for_one_and_two_threads(rng, reduction):
    # Several class tiles (5 of 512 classes) and hidden tiles (2 of 512 columns), rows in uneven chunks.
    x, w, b, y = make_layer(rng, n=45, h=600, v=2100, dtype=np.float32)
    results = []
    for n in (1, 2):
        with xc.threads(n):
            results.append(xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, reduction=reduction,
                                                                  chunk_size=16, z_loss=0.01))
    (l1, g1), (l2, g2) = results
    np.testing.assert_array_equal(l1, l2)
    for a, c in zip(g1, g2):
        assert a.tobytes() == c.tobytes()


def test_another_chunk_size_changes_only_last_bits(rng):
    x, w, b, y = make_layer(rng, n=64, dtype=np.float32)
    l1, g1 = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, chunk_size=64)
    l2, g2 = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, chunk_size=5)
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    for a, c in zip(g1, g2):
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-6 * np.max(np.abs(a)))


def test_default_chunk_fills_64_mib():
    assert _core.linear_chunk_rows(4096, 32000, 4) == 512
    assert _core.linear_chunk_rows(1024, 128256, 4) == 128
    assert _core.linear_chunk_rows(1024, 128256, 8) == 64
    assert _core.linear_chunk_rows(10, 128256, 4) == 10


def test_blas_thread_count_is_restored_and_visible():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = _core.blas()
    assert "OpenBLAS" in blas["config"] and blas["threads"] >= 1
    info = threadpoolctl.threadpool_info()
    assert any(i["filepath"] == blas["library"] and i["user_api"] == "blas" for i in info), info
    x, w, b, y = np.ones((4, 3)), np.ones((5, 3)), None, np.zeros(4, dtype=np.int64)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _core.blas()["threads"]
        xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b)
        assert _core.blas()["threads"] == before
    config = xc.show_config("dicts")
    assert config["blas"]["name"] == "scipy-openblas32"


class TestFilter:
    """The opt-in filter on a head whose softmax mass sits on few classes."""

    @staticmethod
    def sharp_layer(rng, n=64, h=32, v=4096):
        x = rng.standard_normal((n, h))
        w = rng.standard_normal((v, h))
        w[:16] *= 4.0  # sixteen classes take almost every row's probability
        y = rng.integers(0, 16, n)
        return x, w, y

    def test_off_and_tiny_thresholds_change_nothing(self, rng):
        x, w, y = self.sharp_layer(rng)
        exact = xc.linear_cross_entropy_value_and_grad(x, w, y, chunk_size=16)
        for eps in (None, 0.0, 1e-300):
            got = xc.linear_cross_entropy_value_and_grad(x, w, y, chunk_size=16, filter_eps=eps)
            assert got[0] == exact[0]
            for g, e in zip(got[1], exact[1]):
                np.testing.assert_array_equal(g, e)

    def test_error_is_bounded_by_what_was_skipped(self, rng):
        x, w, y = self.sharp_layer(rng)
        b = rng.standard_normal(4096)
        exact_loss, exact = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, chunk_size=16)
        loss, got = xc.linear_cross_entropy_value_and_grad(x, w, y, linear_bias=b, chunk_size=16, filter_eps=1e-4)
        assert loss == exact_loss
        np.testing.assert_array_equal(got[2], exact[2])  # d_bias stays exact
        # Each skipped entry is below 1e-4 / N: the error of a d_weight entry is at most 16 rows of them
        # times |x|, far less in practice; it is not zero (stripes were skipped).
        err = np.max(np.abs(got[1] - exact[1]))
        assert 0.0 < err <= 16 * 1e-4 / 64 * np.max(np.abs(x))
        np.testing.assert_allclose(got[0], exact[0], rtol=0, atol=1e-3 * np.max(np.abs(exact[0])))

    def test_bad_values(self, rng):
        x, w, y = self.sharp_layer(rng, v=8)
        for eps in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="filter_eps"):
                xc.linear_cross_entropy_value_and_grad(x, w, y, filter_eps=eps)


class TestErrors:
    """Bad input: a clear error, and no argument modified."""

    @pytest.fixture
    def layer(self, rng):
        return make_layer(rng, n=10, h=4, v=6)

    def test_shapes(self, layer):
        x, w, _, y = layer
        assert_raises_untouched(xc.linear_cross_entropy, ValueError, r"4 features.*\(classes, 4\)", x,
                                np.ones((6, 5)), y)
        assert_raises_untouched(xc.linear_cross_entropy, ValueError, r"weight must have shape \(6,\)", x, w, y,
                                weight=np.ones(5))
        assert_raises_untouched(xc.linear_cross_entropy, ValueError, r"linear_bias must have shape \(6,\)", x, w,
                                y, linear_bias=np.ones(7))
        assert_raises_untouched(xc.linear_cross_entropy, ValueError, "target has shape", x, w, y[:-1])
        assert_raises_untouched(xc.linear_cross_entropy, ValueError, "2-D", x, w[None], y)
        assert_raises_untouched(xc.linear_cross_entropy, ValueError, "no classes", x, np.ones((0, 4)), y)

    def test_labels_out_of_range_in_the_last_chunk(self, layer):
        x, w, b, y = layer
        for bad in (6, -1, 100):
            y2 = y.copy()
            y2[9] = bad
            assert_raises_untouched(xc.linear_cross_entropy_value_and_grad, IndexError, rf"target\[9\] = {bad}",
                                    x, w, y2, linear_bias=b, chunk_size=2)
        yb = y.reshape(2, 5).copy()
        yb[1, 3] = 6
        with pytest.raises(IndexError, match=r"target\[1, 3\]"):
            xc.linear_cross_entropy(x.reshape(2, 5, 4), w, yb)

    def test_options(self, layer):
        x, w, b, y = layer
        nan = float("nan")
        for kw, exc, match in (
            ({"label_smoothing": nan}, ValueError, "label_smoothing"),
            ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
            ({"z_loss": nan}, ValueError, "z_loss"),
            ({"softcap": nan}, ValueError, "softcap"),
            ({"softcap": 0.0}, ValueError, "softcap"),
            ({"reduction": "avg"}, ValueError, "reduction"),
            ({"chunk_size": 0}, ValueError, "chunk_size"),
            ({"chunk_size": 2.5}, TypeError, "chunk_size"),
            ({"ignore_index": True}, TypeError, "ignore_index"),
            ({"weight": np.array([1, 1, nan, 1, 1, 1])}, ValueError, "weight must be finite"),
            ({"weight": np.array([1, 1, 1, -np.inf, 1, 1])}, ValueError, "weight must be finite"),
        ):
            assert_raises_untouched(xc.linear_cross_entropy_value_and_grad, exc, match, x, w, y, linear_bias=b, **kw)

    def test_types(self, layer):
        x, w, _, y = layer
        assert_raises_untouched(xc.linear_cross_entropy, TypeError, "same precision", x.astype(np.float32), w, y)
        assert_raises_untouched(xc.linear_cross_entropy, TypeError, "input must be", x.astype(np.int64), w, y)
        assert_raises_untouched(xc.linear_cross_entropy, TypeError, "class indices \\(integers\\)", x, w,
                                y.astype(np.float64))
        probs = np.full((10, 6), 1 / 6)
        assert_raises_untouched(xc.linear_cross_entropy, TypeError, "not probability targets", x, w, probs)
