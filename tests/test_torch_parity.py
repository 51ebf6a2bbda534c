"""Loss and autograd gradient against torch.nn.functional.cross_entropy (skipped without torch).

The documented deviation (t = 0 where x = -inf adds 0) is avoided here and tested directly in
test_values.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import FLOATS, REDUCTIONS, assert_close, make_problem

import xentcpp as xc


def _torch_value_and_grad(torch, x, t, grad_output, *, weight=None, ignore_index=-100,
                          reduction="mean", label_smoothing=0.0):
    """PyTorch's loss and d(grad_output . loss)/dx; PyTorch's class axis is 1."""
    tx = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t)
    tw = None if weight is None else torch.tensor(weight)
    loss = torch.nn.functional.cross_entropy(tx, tt, weight=tw, ignore_index=ignore_index,
                                             reduction=reduction, label_smoothing=label_smoothing)
    loss.backward(torch.tensor(grad_output, dtype=tx.dtype))
    return loss.detach().numpy(), tx.grad.numpy()


def _compare(torch, x, t, *, axis, dtype, reduction, rng, **kw):
    batch = tuple(np.delete(np.array(x.shape), axis))
    go = rng.uniform(0.5, 2.0, batch) if reduction == "none" else 1.3
    expected_loss, expected_grad = _torch_value_and_grad(torch, x, t, go, reduction=reduction, **kw)
    loss = xc.cross_entropy(x, t, axis=axis, reduction=reduction, **kw)
    assert_close(loss, expected_loss, dtype, "loss")
    g = xc.cross_entropy_grad(x, t, go, axis=axis, reduction=reduction, **kw)
    assert g.dtype == dtype
    assert_close(g, expected_grad, dtype, "grad")
    loss, g = xc.cross_entropy_value_and_grad(x, t, axis=axis, reduction=reduction, **kw)
    _, expected_grad = _torch_value_and_grad(torch, x, t, np.ones(batch) if reduction == "none"
                                             else 1.0, reduction=reduction, **kw)
    assert_close(loss, expected_loss, dtype, "loss")
    assert_close(g, expected_grad, dtype, "grad")


@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_class_index_targets(torch, rng, dtype, reduction, smoothing, weighted, ignore_index):
    x, t, w = make_problem(rng, (12, 7), dtype=dtype, weighted=weighted, ignored=True,
                           ignore_index=ignore_index)
    _compare(torch, x, t, axis=-1, dtype=dtype, reduction=reduction, rng=rng, weight=w,
             ignore_index=ignore_index, label_smoothing=smoothing)


@pytest.mark.parametrize("onehot", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_probability_targets(torch, rng, dtype, reduction, smoothing, weighted, onehot):
    x, t, w = make_problem(rng, (10, 6), dtype=dtype, weighted=weighted,
                           target="onehot" if onehot else "prob")
    t = t.astype(dtype)  # PyTorch wants probabilities of the input's dtype
    _compare(torch, x, t, axis=-1, dtype=dtype, reduction=reduction, rng=rng, weight=w,
             label_smoothing=smoothing)


@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (3, 4, 7), (2, 3, 1, 2, 2)])
def test_k_dimensional_axis_1(torch, rng, shape, dtype, reduction, target):
    x, t, w = make_problem(rng, shape, axis=1, dtype=dtype, weighted=True, target=target,
                           ignored=target == "index")
    _compare(torch, x, t, axis=1, dtype=dtype, reduction=reduction, rng=rng, weight=w,
             label_smoothing=0.1)


@pytest.mark.parametrize("dtype", FLOATS)
def test_edge_rows_match_pytorch(torch, rng, dtype):
    """Masked classes, a -inf target logit, a NaN row, an all -inf row, +-1e4 logits."""
    x, t, _ = make_problem(rng, (7, 5), dtype=dtype)
    x[0, [1, 3]] = -np.inf
    t[0] = 0
    x[1, 2] = -np.inf
    t[1] = 2
    x[2, 4] = np.nan
    x[3] = -np.inf
    x[4] += 1e4
    x[5] -= 1e4
    go = np.linspace(0.5, 2.0, 7)
    expected_loss, expected_grad = _torch_value_and_grad(torch, x, t, go, reduction="none")
    assert_close(xc.cross_entropy(x, t, reduction="none"), expected_loss, dtype, "loss")
    assert_close(xc.cross_entropy_grad(x, t, go, reduction="none"), expected_grad, dtype, "grad")


# Negative class weights, as PyTorch's own reference samples use them -------------------------------

@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(12, 7), (40, 300)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_negative_class_weights(torch, rng, dtype, shape, reduction, smoothing, target):
    x, t, _ = make_problem(rng, shape, dtype=dtype, target=target, ignored=target == "index")
    w = rng.uniform(-1.0, 2.0, shape[-1]).astype(dtype)
    if target == "prob":
        t = t.astype(dtype)
    _compare(torch, x, t, axis=-1, dtype=dtype, reduction=reduction, rng=rng, weight=w, label_smoothing=smoothing)


@pytest.mark.parametrize("smoothing", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("classes", [5, 300])
@pytest.mark.parametrize("dtype", FLOATS)
def test_a_mean_over_weights_summing_to_zero_is_pytorchs(torch, rng, dtype, classes, smoothing):
    # The loss is +-inf or NaN (each sum over zero), the gradient PyTorch's pattern of NaN and +-inf.
    x = rng.standard_normal((4, classes)).astype(dtype)
    t = np.array([0, 1, 2, -100])
    w = np.ones(classes, dtype)
    w[:3] = [1.0, -2.0, 1.0]  # counted rows' weights: 1 - 2 + 1 = 0
    tx = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(tx, torch.tensor(t), weight=torch.tensor(w), label_smoothing=smoothing)
    expected.backward()
    loss, grad = xc.cross_entropy_value_and_grad(x, t, weight=w, label_smoothing=smoothing)
    np.testing.assert_array_equal(loss, expected.item())
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(tx.grad.numpy()))
    finite = ~np.isnan(grad)
    np.testing.assert_array_equal(grad[finite], tx.grad.numpy()[finite])  # +-inf and 0 alike


def test_nll_loss_with_negative_and_zero_sum_weights(torch, rng):
    lp = np.log(rng.dirichlet(np.ones(6), 5))
    t = np.array([0, 1, 2, 3, -100])
    for w in (rng.uniform(-1.0, 2.0, 6), np.array([1.0, -1.0, 2.0, -2.0, 5.0, 5.0])):
        tx = torch.tensor(lp, requires_grad=True)
        expected = torch.nn.functional.nll_loss(tx, torch.tensor(t), weight=torch.tensor(w))
        expected.backward()
        loss, grad = xc.nll_loss(lp, t, weight=w), xc.nll_loss_grad(lp, t, weight=w)
        np.testing.assert_allclose(loss, expected.item(), rtol=1e-12)
        np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-12)
