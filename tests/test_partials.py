"""Cross-entropy from shards of classes (xentcpp.cross_entropy_partials, merge_partials,
cross_entropy_from_partials, cross_entropy_grad_from_partials): any split of the class axis, merged in
any order and grouping, gives the loss and gradient of the whole rows, against the float64 reference
and the in-memory functions; and the errors say which row."""

from __future__ import annotations

import numpy as np
import pytest
from cases import FLOATS, REDUCTIONS, assert_close, make_problem
from hypothesis import given
from hypothesis import strategies as st
from reference import ref_grad, ref_loss

import xentcpp as xc

# Options of the whole-row functions, and how make_problem builds the case.
CASES = {
    "plain": ({}, {}),
    "weights, smoothing, ignored": (dict(label_smoothing=0.1), dict(weighted=True, ignored=True)),
    "z_loss": (dict(z_loss=1e-2), {}),
    "softcap": (dict(softcap=5.0), {}),
    "probabilities": (dict(label_smoothing=0.2), dict(target="prob", weighted=True)),
}
SPLITS = {"one shard": lambda c: [0, c], "one class each": lambda c: list(range(c + 1)),
          "ragged": lambda c: [0, 3, 4, 11, c]}


def shards(x, t, cuts, weight=None, **options):
    """The records of each shard [cuts[k], cuts[k + 1]) of the last axis."""
    c = x.shape[-1]
    prob = t.shape == x.shape
    shard_options = {k: v for k, v in options.items() if k in ("ignore_index", "label_smoothing", "softcap", "where")}
    return [
        xc.cross_entropy_partials(
            x[..., a:b], t[..., a:b] if prob else t, class_start=a, num_classes=c, weight=weight, **shard_options
        )
        for a, b in zip(cuts[:-1], cuts[1:])
    ]


def fold(parts):
    total = parts[0]
    for p in parts[1:]:
        total = xc.merge_partials(total, p)
    return total


def loss_options(options):
    return {k: v for k, v in options.items() if k not in ("softcap",)}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_any_split_gives_the_whole_rows_loss_and_gradient(rng, dtype, case, split):
    options, build = CASES[case]
    x, t, weight = make_problem(rng, (4, 3, 13), dtype=dtype, **build)
    x0, t0 = x.copy(), t.copy()
    cuts = SPLITS[split](13)
    merged = fold(shards(x, t, cuts, weight, **options))
    target = None if t.shape == x.shape else t
    assert merged.shape == (4, 3)
    for reduction in REDUCTIONS:
        got = xc.cross_entropy_from_partials(
            merged, target, num_classes=13, weight=weight, reduction=reduction, **loss_options(options)
        )
        whole = xc.cross_entropy(x, t, weight=weight, reduction=reduction, **options)
        assert_close(got, whole, dtype, "loss")
        assert_close(got, ref_loss(x, t, weight=weight, reduction=reduction, **options), dtype, "loss")
        if reduction == "none":
            assert got.dtype == np.float64 and got.shape == (4, 3)
        else:
            assert type(got) is float
    whole_grad = xc.cross_entropy_grad(x, t, 0.7, weight=weight, **options)
    reference = ref_grad(x, t, 0.7, weight=weight, **options)
    for a, b in zip(cuts[:-1], cuts[1:]):
        g = xc.cross_entropy_grad_from_partials(
            x[..., a:b], t[..., a:b] if target is None else t, merged, 0.7, class_start=a, num_classes=13,
            weight=weight, **options,
        )
        assert g.dtype == x.dtype and g.shape == x[..., a:b].shape
        assert_close(g, whole_grad[..., a:b], dtype, "grad")
        assert_close(g, reference[..., a:b], dtype, "grad")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(t, t0)


def test_the_gradient_matches_finite_differences_of_the_loss_from_partials(rng):
    x, t, weight = make_problem(rng, (3, 7), weighted=True)
    options = dict(label_smoothing=0.1, z_loss=1e-2)

    def loss(z):
        return xc.cross_entropy_from_partials(fold(shards(z, t, [0, 2, 7], weight, **options)), t, num_classes=7,
                                              weight=weight, **options)

    merged = fold(shards(x, t, [0, 2, 7], weight, **options))
    g = np.concatenate([
        xc.cross_entropy_grad_from_partials(x[:, a:b], t, merged, class_start=a, num_classes=7, weight=weight,
                                            **options)
        for a, b in ((0, 2), (2, 7))
    ], axis=1)
    h = 1e-6
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        fd[i] = (loss(up) - loss(down)) / (2 * h)
    np.testing.assert_allclose(g, fd, atol=1e-8)
    assert np.abs(fd).sum() > 0.1


def test_per_row_upstream_gradients_and_every_reduction(rng):
    x, t, weight = make_problem(rng, (4, 5, 9), weighted=True, ignored=True)
    merged = fold(shards(x, t, [0, 4, 9], weight))
    upstream = rng.standard_normal((4, 1))  # broadcast over the second row axis
    for reduction, g_out in (("none", upstream), ("none", 0.5), ("sum", 0.5), ("mean", 0.5)):
        g = xc.cross_entropy_grad_from_partials(x[..., 4:], t, merged, g_out, class_start=4, num_classes=9,
                                                weight=weight, reduction=reduction)
        want = xc.cross_entropy_grad(x, t, g_out, weight=weight, reduction=reduction)[..., 4:]
        assert_close(g, want, np.float64, "grad")
        assert_close(g, ref_grad(x, t, g_out, weight=weight, reduction=reduction)[..., 4:], np.float64, "grad")
    with pytest.raises(ValueError, match="grad_output must be a scalar"):
        xc.cross_entropy_grad_from_partials(x[..., 4:], t, merged, upstream, class_start=4, num_classes=9)


@st.composite
def splits_and_trees(draw):
    """A class count, cut points and a merge tree over the shards (pairs merged in a drawn order)."""
    classes = draw(st.integers(1, 40))
    inner = draw(st.lists(st.integers(1, classes - 1), unique=True, max_size=8)) if classes > 1 else []
    cuts = [0, *sorted(inner), classes]
    picks = [draw(st.integers(0, 100)) for _ in range(len(cuts) - 2)]
    return classes, cuts, picks, draw(st.booleans())


@given(splits_and_trees(), st.integers(0, 2**32 - 1))
def test_merges_in_any_order_and_grouping_agree(drawn, seed):
    classes, cuts, picks, swap = drawn
    rng = np.random.default_rng(seed)
    x, t, weight = make_problem(rng, (5, classes), dtype=np.float32, weighted=True)
    parts = shards(x, t, cuts, weight, label_smoothing=0.1)
    pool = list(parts)
    for pick in picks:  # merge two shards chosen by the draw, either way round, until one is left
        a = pool.pop(pick % len(pool))
        b = pool.pop(pick % len(pool))
        pool.append(xc.merge_partials(b, a) if swap else xc.merge_partials(a, b))
    (tree,) = pool
    options = dict(num_classes=classes, weight=weight, label_smoothing=0.1, reduction="none")
    got = xc.cross_entropy_from_partials(tree, t, **options)
    left_to_right = xc.cross_entropy_from_partials(fold(parts), t, **options)
    np.testing.assert_allclose(got, left_to_right, rtol=1e-13, atol=1e-15)
    assert_close(got, xc.cross_entropy(x, t, weight=weight, label_smoothing=0.1, reduction="none"), np.float32, "loss")
    np.testing.assert_array_equal(tree["classes"], classes)
    np.testing.assert_array_equal(tree["targets"], 1)


def test_a_confident_row_keeps_full_relative_precision():
    x = np.full((1, 40), -45.0)
    x[0, 17] = 0.0
    want = np.log1p(39 * np.exp(-45.0))  # 1.1e-18: 1 + r is 1 in float64
    for cuts in ([0, 40], list(range(41)), [0, 17, 18, 40]):
        got = xc.cross_entropy_from_partials(fold(shards(x, np.array([17]), cuts)), [17], num_classes=40)
        assert got == pytest.approx(want, rel=1e-13)


def test_half_precision_blocks_are_computed_in_float32(rng):
    x, t, _ = make_problem(rng, (6, 9), dtype=np.float16)
    merged = fold(shards(x, t, [0, 4, 9]))
    got = xc.cross_entropy_from_partials(merged, t, num_classes=9, reduction="none")
    assert_close(got, xc.cross_entropy(x, t, reduction="none"), np.float32, "loss")
    g = xc.cross_entropy_grad_from_partials(x[:, 4:], t, merged, class_start=4, num_classes=9)
    assert g.dtype == np.float16
    assert_close(g, xc.cross_entropy_grad(x, t)[:, 4:], np.float16, "grad")


def test_a_row_mask_and_a_mean_over_weights_summing_to_zero_are_the_whole_rows(rng):
    x, t, _ = make_problem(rng, (6, 5))
    t[:] = [0, 1, 0, 1, 2, 3]
    weight = np.array([1.0, -1.0, 0.5, 2.0, 1.0])
    where = np.array([True, True, True, True, False, False])  # counted weights: 1 - 1 + 1 - 1 = 0
    for a in (0.0, 0.3):
        options = dict(weight=weight, where=where, label_smoothing=a)
        merged = fold(shards(x, t, [0, 2, 5], **options))
        loss = xc.cross_entropy_from_partials(merged, t, num_classes=5, **options)
        whole = xc.cross_entropy(x, t, **options)
        assert np.isinf(whole) or np.isnan(whole)
        np.testing.assert_array_equal(loss, whole)
        g = xc.cross_entropy_grad_from_partials(x[:, 2:], t, merged, class_start=2, num_classes=5, **options)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(xc.cross_entropy_grad(x, t, **options)[:, 2:]))
        np.testing.assert_array_equal(g[np.isinf(g)], xc.cross_entropy_grad(x, t, **options)[:, 2:][np.isinf(g)])
    losses = xc.cross_entropy_from_partials(merged, t, num_classes=5, reduction="none", **options)
    np.testing.assert_array_equal(losses[4:], 0.0)


def test_non_finite_logits_give_the_whole_rows_results(rng):
    x, t, _ = make_problem(rng, (5, 8))
    x[0, 1], x[1, 6], x[2, :] = np.nan, np.inf, -np.inf
    x[3, :4] = -np.inf
    t[3] = 6
    got = xc.cross_entropy_from_partials(fold(shards(x, t, [0, 4, 8])), t, num_classes=8, reduction="none")
    whole = xc.cross_entropy(x, t, reduction="none")
    np.testing.assert_allclose(got, whole, rtol=1e-12)
    assert np.isnan(got[:3]).all() and np.isfinite(got[3:]).all()


def test_records_do_not_depend_on_the_thread_count(rng):
    x, t, weight = make_problem(rng, (20000, 12), dtype=np.float32, weighted=True)
    results = []
    for n in (1, 2):
        with xc.threads(n):
            results.append(xc.cross_entropy_partials(x, t, class_start=0, num_classes=12, weight=weight,
                                                     label_smoothing=0.1))
    assert results[0].tobytes() == results[1].tobytes()


def test_a_bad_label_names_its_row_in_the_callers_indexing(rng):
    x, t, _ = make_problem(rng, (3, 4, 10))
    t[2, 1] = 10
    with pytest.raises(IndexError, match=r"target\[2, 1\] = 10 is out of range"):
        xc.cross_entropy_partials(x[..., :5], t, class_start=0, num_classes=10)
    merged = np.zeros((3, 4), dtype=xc.cross_entropy_partials(x[:1, 0], t[:1, 0] * 0, class_start=0,
                                                              num_classes=10).dtype)
    with pytest.raises(IndexError, match=r"target\[2, 1\]"):
        xc.cross_entropy_from_partials(merged, t, num_classes=10)
    with pytest.raises(IndexError, match=r"target\[2, 1\]"):
        xc.cross_entropy_grad_from_partials(x[..., 5:], t, merged, class_start=5, num_classes=10)


def test_records_that_miss_or_repeat_a_block_are_refused(rng):
    x, t, _ = make_problem(rng, (2, 3, 10))
    left, right = shards(x, t, [0, 6, 10])
    with pytest.raises(ValueError, match=r"partials\[0, 0\] cover 6 of the 10 classes"):
        xc.cross_entropy_from_partials(left, t, num_classes=10)
    with pytest.raises(ValueError, match="each once"):
        xc.cross_entropy_from_partials(fold([left, right, right]), t, num_classes=10)
    with pytest.raises(ValueError, match="each once"):
        xc.cross_entropy_grad_from_partials(x[..., 6:], t, right, class_start=6, num_classes=10)


def test_bad_arguments_are_refused_clearly(rng):
    x, t, _ = make_problem(rng, (3, 10))
    part = xc.cross_entropy_partials(x[:, :4], t, class_start=0, num_classes=10)
    with pytest.raises(ValueError, match=r"\[8, 12\) must lie in \[0, num_classes\)"):
        xc.cross_entropy_partials(x[:, :4], t, class_start=8, num_classes=10)
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        xc.cross_entropy_partials(x[:, :4], t, class_start=0, num_classes=10.0)
    with pytest.raises(ValueError, match="weight must have shape"):
        xc.cross_entropy_partials(x[:, :4], t, class_start=0, num_classes=10, weight=np.ones(4))
    with pytest.raises(TypeError, match="array of partial records"):
        xc.merge_partials(part, np.zeros(3))
    with pytest.raises(ValueError, match="one shape"):
        xc.merge_partials(part, part[:2])
    with pytest.raises(ValueError, match="expected class indices of the partials' shape"):
        xc.cross_entropy_from_partials(part, t[:2], num_classes=10)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        xc.cross_entropy_from_partials(part, t, num_classes=10, label_smoothing=2.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        xc.cross_entropy_from_partials(part, t, num_classes=10, reduction="avg")
