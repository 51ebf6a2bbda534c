"""nll_loss, binary_cross_entropy_with_logits, entropy and kl_div against float64 formulas written
here, finite differences, PyTorch and SciPy (when installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import FLOATS, REDUCTIONS, assert_close, make_problem
from reference import central_difference

import xentcpp as xc


def _reduce(rows, reduction, denominator):
    if reduction == "none":
        return rows
    return float(np.sum(rows)) / (denominator if reduction == "mean" else 1.0)


# nll_loss ----------------------------------------------------------------------------------------

def _ref_nll(lp, y, w, reduction, ignore_index=-100):
    w = np.ones(lp.shape[1]) if w is None else w.astype(np.float64)
    keep = y != ignore_index
    ys = np.where(keep, y, 0)
    rows = np.where(keep, -w[ys] * lp.astype(np.float64)[np.arange(len(y)), ys], 0.0)
    return _reduce(rows, reduction, np.sum(w[ys][keep]))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_nll_matches_formula_and_cross_entropy(rng, dtype, reduction, weighted):
    x, y, w = make_problem(rng, (9, 6), dtype=dtype, weighted=weighted, ignored=True)
    lp = xc.log_softmax(x)
    assert_close(xc.nll_loss(lp, y, weight=w, reduction=reduction), _ref_nll(lp, y, w, reduction), dtype, "loss")
    assert_close(xc.nll_loss(lp, y, weight=w, reduction=reduction),
                 xc.cross_entropy(x, y, weight=w, reduction=reduction), dtype, "loss")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_gradient_by_finite_differences(rng, reduction):
    x, y, w = make_problem(rng, (5, 4), weighted=True, ignored=True)
    go = rng.uniform(0.5, 2.0, 5) if reduction == "none" else 1.7
    g = xc.nll_loss_grad(x, y, go, weight=w, reduction=reduction)
    f = lambda z: float(np.sum(go * np.asarray(xc.nll_loss(z, y, weight=w, reduction=reduction))))  # noqa: E731
    np.testing.assert_allclose(g, central_difference(f, x), rtol=1e-7, atol=1e-8)


def test_nll_axis1_and_errors(rng):
    x, y, _ = make_problem(rng, (2, 3, 4), axis=1)
    lp = xc.log_softmax(x, axis=1)
    assert xc.nll_loss(lp, y, axis=1) == pytest.approx(xc.cross_entropy(x, y, axis=1), rel=1e-13)
    g = xc.nll_loss_grad(lp, y, axis=1, reduction="sum")
    assert g.shape == x.shape and np.sum(g) == pytest.approx(-y.size)
    with pytest.raises(IndexError, match="out of range"):
        xc.nll_loss(lp, np.full((2, 4), 3), axis=1)
    with pytest.raises(ValueError, match="class indices"):
        xc.nll_loss(lp, np.full(lp.shape, 0.25), axis=1)


def test_nll_torch_parity(torch, rng):
    x, y, w = make_problem(rng, (8, 5), weighted=True, ignored=True)
    lp = xc.log_softmax(x)
    for reduction in REDUCTIONS:
        t = torch.tensor(lp, requires_grad=True)
        loss = torch.nn.functional.nll_loss(t, torch.tensor(y), weight=torch.tensor(w), reduction=reduction)
        loss.sum().backward()
        assert_close(xc.nll_loss(lp, y, weight=w, reduction=reduction), loss.detach().numpy(), np.float64, "loss")
        go = np.ones(8) if reduction == "none" else 1.0
        assert_close(xc.nll_loss_grad(lp, y, go, weight=w, reduction=reduction), t.grad.numpy(), np.float64, "grad")


# binary_cross_entropy_with_logits -----------------------------------------------------------------

def _ref_bce(x, t, w, pw, reduction):
    x, t = x.astype(np.float64), t.astype(np.float64)
    w = 1.0 if w is None else w
    pw = 1.0 if pw is None else pw
    softplus = np.logaddexp(0.0, -x)  # log(1 + exp(-x)), written independently of the kernel's form
    rows = w * ((1.0 - t) * x + (1.0 + (pw - 1.0) * t) * softplus)
    grad = w * ((1.0 + (pw - 1.0) * t) / (1.0 + np.exp(-x)) - pw * t)
    return _reduce(rows, reduction, x.size), grad / (x.size if reduction == "mean" else 1.0)


@pytest.mark.parametrize("weights", ["none", "class", "element", "pos", "both"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_bce_matches_formula(rng, dtype, reduction, weights):
    x = (4.0 * rng.standard_normal((7, 5))).astype(dtype)
    t = rng.random((7, 5)).astype(dtype)
    w = {"class": rng.random(5), "element": rng.random((7, 1)), "both": rng.random((7, 5))}.get(weights)
    pw = rng.uniform(0.5, 3.0, 5) if weights in ("pos", "both") else None
    expected, grad = _ref_bce(x, t, w, pw, reduction)
    assert_close(xc.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw, reduction=reduction), expected, dtype,
                 "loss")
    go = np.ones((7, 5)) if reduction == "none" else 1.0
    assert_close(xc.binary_cross_entropy_with_logits_grad(x, t, go, w, pos_weight=pw, reduction=reduction), grad,
                 dtype, "grad")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_gradient_by_finite_differences(rng, reduction):
    x, t = 3.0 * rng.standard_normal((4, 3)), rng.random((4, 3))
    w, pw = rng.random(3), rng.uniform(0.5, 2.0, 3)
    go = rng.uniform(0.5, 2.0, (4, 3)) if reduction == "none" else 0.7
    g = xc.binary_cross_entropy_with_logits_grad(x, t, go, w, pos_weight=pw, reduction=reduction)
    f = lambda z: float(np.sum(go * np.asarray(  # noqa: E731
        xc.binary_cross_entropy_with_logits(z, t, w, pos_weight=pw, reduction=reduction))))
    np.testing.assert_allclose(g, central_difference(f, x), rtol=1e-7, atol=1e-9)


def test_bce_is_stable_far_out():
    x = np.array([1e4, -1e4, 1e4, -1e4, 800.0, -800.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    np.testing.assert_allclose(xc.binary_cross_entropy_with_logits(x, t, reduction="none"),
                               [0.0, 0.0, 1e4, 1e4, 400.0, 400.0], rtol=1e-15)
    np.testing.assert_allclose(xc.binary_cross_entropy_with_logits_grad(x, t, reduction="sum"),
                               [0.0, 0.0, 1.0, -1.0, 0.5, -0.5], rtol=1e-15)
    tiny = xc.binary_cross_entropy_with_logits([40.0], [1.0], reduction="none")[0]
    assert tiny == pytest.approx(np.exp(-40.0), rel=1e-14)  # log1p keeps full precision


def test_bce_torch_parity_and_errors(torch, rng):
    x, t = 5.0 * rng.standard_normal((3, 4, 6)), rng.random((3, 4, 6))
    w, pw = rng.random((4, 1)), rng.uniform(0.5, 2.0, 6)
    tx = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(t), weight=torch.tensor(w),
                                                                pos_weight=torch.tensor(pw))
    loss.backward()
    assert_close(xc.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw), loss.item(), np.float64, "loss")
    assert_close(xc.binary_cross_entropy_with_logits_grad(x, t, 1.0, w, pos_weight=pw), tx.grad.numpy(),
                 np.float64, "grad")
    with pytest.raises(ValueError, match="shape"):
        xc.binary_cross_entropy_with_logits(x, t[0])
    with pytest.raises(ValueError, match="broadcast"):
        xc.binary_cross_entropy_with_logits(x, t, np.ones(5))
    with pytest.raises(ValueError, match="reduction"):
        xc.binary_cross_entropy_with_logits(x, t, reduction="avg")


# entropy and kl_div ------------------------------------------------------------------------------

def _distributions(rng, shape, axis=-1):
    p = rng.random(shape) + 1e-3
    return p / p.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("base", [None, 2.0, 10.0])
def test_measures_match_scipy(rng, axis, base):
    stats = pytest.importorskip("scipy.stats")
    p, q = _distributions(rng, (4, 7, 5), axis), _distributions(rng, (4, 7, 5), axis)
    np.testing.assert_allclose(xc.entropy(p, axis, base=base), stats.entropy(p, axis=axis, base=base), rtol=1e-12)
    np.testing.assert_allclose(xc.kl_div(p, q, axis, base=base), stats.entropy(p, q, axis=axis, base=base),
                               rtol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (4, 7, 5), (3, 0, 2)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_keepdims_matches_scipy(rng, shape, dtype):
    stats = pytest.importorskip("scipy.stats")
    for axis in range(-len(shape), len(shape)):
        if shape[axis] == 0:
            continue
        p, q = _distributions(rng, shape, axis).astype(dtype), _distributions(rng, shape, axis).astype(dtype)
        p64, q64 = p.astype(np.float64), q.astype(np.float64)
        for got, want in ((xc.entropy(p, axis, keepdims=True), stats.entropy(p64, axis=axis, keepdims=True)),
                          (xc.kl_div(p, q, axis, base=2.0, keepdims=True),
                           stats.entropy(p64, q64, axis=axis, base=2.0, keepdims=True))):
            assert isinstance(got, np.ndarray) and got.shape == want.shape and got.dtype == dtype, (axis, got)
            # float32: a few float32 roundings of terms of size ~1 (SciPy also renormalises the input)
            np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == np.float64 else 1e-5,
                                       atol=0 if dtype == np.float64 else 1e-6)
        np.testing.assert_array_equal(xc.entropy(p, axis, keepdims=True),
                                      np.expand_dims(xc.entropy(p, axis), axis))


def test_cross_entropy_is_entropy_plus_divergence(rng):
    p, q = _distributions(rng, (6, 9)), _distributions(rng, (6, 9))
    h_pq = xc.cross_entropy(q, p, from_logits=False, reduction="none")  # -sum p log q
    np.testing.assert_allclose(h_pq, xc.entropy(p) + xc.kl_div(p, q), rtol=1e-13)
    np.testing.assert_allclose(h_pq, -np.sum(p * np.log(q), axis=1), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_measures_of_subnormal_probabilities(dtype):
    # p log p and p log(p / q) with p or q below the smallest normal number: finite, as in float64
    # (the vector log once gave -inf for subnormals, so entropy was +inf and KL +inf).
    info = np.finfo(dtype)
    eps = float(info.eps)  # a Python float: pytest.approx refuses a NumPy scalar tolerance (pytest >= 9.2)
    for tiny in (info.smallest_subnormal, info.smallest_subnormal * 999, info.tiny / 3):
        p = np.array([tiny, 1 - tiny] + [0.0] * 17, dtype)  # 19 classes: whole vectors and a tail
        want = -float(tiny) * np.log(float(tiny))
        # The product is subnormal too: it has only the absolute precision of the subnormals.
        assert float(xc.entropy(p)) == pytest.approx(want, rel=4 * eps, abs=2 * float(info.smallest_subnormal))
        half, q = np.zeros(19, dtype), np.zeros(19, dtype)
        half[0] = half[-1] = 0.5
        q[0], q[-1] = tiny, 1 - tiny
        want_kl = 0.5 * (np.log(0.5) - np.log(float(q[0]))) + 0.5 * (np.log(0.5) - np.log(float(q[-1])))
        assert float(xc.kl_div(half, q)) == pytest.approx(want_kl, rel=8 * eps)


def test_measure_edge_values():
    assert float(xc.entropy([0.5, 0.5], base=2)) == pytest.approx(1.0, rel=1e-15)
    assert float(xc.entropy([1.0, 0.0, 0.0])) == 0.0  # 0 log 0 = 0
    assert float(xc.kl_div([0.5, 0.5, 0.0], [0.5, 0.25, 0.25])) == pytest.approx(0.5 * np.log(2.0), rel=1e-15)
    assert float(xc.kl_div([0.5, 0.5], [1.0, 0.0])) == np.inf
    assert float(xc.kl_div([0.0, 1.0], [0.0, 1.0])) == 0.0
    p = np.array([0.3, 0.7])
    q = p * (1 + np.array([1e-9, -3e-9 / 7]))  # nearly equal: KL ~ sum (p - q)^2 / (2 q)
    expected = np.sum(p * np.log1p((p - q) / q))
    assert float(xc.kl_div(p, q)) == pytest.approx(expected, rel=1e-6)
    assert xc.entropy(np.ones((3, 4), np.float32) / 4).dtype == np.float32
    with pytest.raises(ValueError, match="base"):
        xc.entropy([0.5, 0.5], base=1.0)
    with pytest.raises(ValueError, match="same shape"):
        xc.kl_div(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4)
    with pytest.raises(ValueError, match="dimension"):
        xc.entropy(0.5)


# KL terms far from 1: p * log(p / q) to the relative precision of the result -------------------

def _exact_term(p: float, q: float):
    import mpmath as mp

    return mp.mpf(p) * mp.log(mp.mpf(p) / mp.mpf(q))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kl_terms_keep_their_relative_precision_over_the_whole_range(dtype):
    # p / q from the smallest normal ratio to the largest, and near 1: each term alone (the other
    # entry's term is 0 because its p is 0), against mpmath on the values the kernel reads.
    mp = pytest.importorskip("mpmath")
    info = np.finfo(dtype)
    exponents = np.linspace(math.log(float(info.tiny)), math.log(float(info.max)), 400)
    q = np.full(len(exponents), 0.5, dtype)
    p = (0.5 * np.exp(exponents)).astype(dtype)
    keep = np.isfinite(p) & (p > 0) & (p < float(info.max) / 2)
    near = (0.5 * (1 + np.linspace(-1e-3, 1e-3, 41) * np.sqrt(float(info.eps)))).astype(dtype)
    p = np.concatenate([p[keep], near, np.array([1e-30 if dtype == np.float32 else 1e-200], dtype)])
    q = np.concatenate([q[keep], np.full(41, 0.5, dtype), np.array([1e30 if dtype == np.float32 else 1e200], dtype)])
    got = xc.kl_div(np.stack([p, np.zeros_like(p)], axis=1), np.stack([q, np.ones_like(q)], axis=1))
    worst = 0.0
    for g, pi, qi in zip(got, p.tolist(), q.tolist()):
        exact = _exact_term(pi, qi)
        if exact == 0:
            assert g == 0
            continue
        if abs(exact) > float(info.max):  # beyond the type: +-inf is the representable answer
            assert g == (math.inf if exact > 0 else -math.inf)
            continue
        worst = max(worst, float(abs(mp.mpf(float(g)) - exact) / abs(exact)) / float(info.eps))
    assert worst <= 3.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kl_of_distributions_far_apart_is_finite_and_scipys(dtype):
    sp = pytest.importorskip("scipy.special")
    p = np.array([1e-17, 1 - 1e-17], dtype)
    half = np.array([0.5, 0.5], dtype)
    expected = float(np.sum(sp.rel_entr(p.astype(np.float64), half.astype(np.float64))))
    assert float(xc.kl_div(p, half)) == pytest.approx(expected, rel=4 * float(np.finfo(dtype).eps))
    confident = xc.softmax(np.array([0.0, -40.0], dtype))
    expected = float(np.sum(sp.rel_entr(confident.astype(np.float64), half.astype(np.float64))))
    assert float(xc.kl_div(confident, half)) == pytest.approx(expected, rel=4 * float(np.finfo(dtype).eps))
    assert float(xc.kl_div([1e-200], [1e200])) == pytest.approx(float(sp.rel_entr(1e-200, 1e200)), rel=1e-15)
