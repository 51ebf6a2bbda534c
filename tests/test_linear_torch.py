"""xentcpp.torch.linear_cross_entropy against PyTorch's F.linear_cross_entropy (its reference and its
chunked path) and F.linear + F.cross_entropy, under gradcheck in float64, and in a few training steps
(skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import xentcpp.torch as xt  # noqa: E402

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-5, atol=2e-6)}


def layer(dtype, n=29, h=12, v=41, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, dtype=dtype, generator=gen, requires_grad=True)
    w = (0.5 * torch.randn(v, h, dtype=dtype, generator=gen)).requires_grad_()
    b = torch.randn(v, dtype=dtype, generator=gen, requires_grad=True)
    y = torch.randint(0, v, (n,), generator=gen)
    y[::6] = -100
    return x, w, b, y


def loss_and_grads(fn, x, w, b, y, upstream, **kw):
    loss = fn(x, w, y, linear_bias=b, **kw)
    grads = torch.autograd.grad(loss, (x, w, b), upstream(loss))
    return loss.detach(), grads


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_pytorch(dtype, reduction, weighted, smoothing):
    x, w, b, y = layer(dtype)
    cw = torch.rand(41, dtype=dtype, generator=torch.Generator().manual_seed(1)) + 0.5 if weighted else None
    kw = dict(weight=cw, reduction=reduction, label_smoothing=smoothing)

    def upstream(loss):
        return torch.linspace(0.5, 2.0, loss.numel(), dtype=dtype).reshape(loss.shape) if loss.dim() else \
            torch.tensor(1.7, dtype=dtype)

    ours = loss_and_grads(xt.linear_cross_entropy, x, w, b, y, upstream, chunk_size=5, **kw)
    references = [
        loss_and_grads(F.linear_cross_entropy, x, w, b, y, upstream, **kw),
        loss_and_grads(lambda x, w, y, linear_bias, **k: F.cross_entropy(F.linear(x, w, linear_bias), y, **k),
                       x, w, b, y, upstream, **kw),
    ]
    if smoothing == 0.0:  # PyTorch's chunked path does not smooth (it warns and falls back)
        references.append(loss_and_grads(F.linear_cross_entropy, x, w, b, y, upstream,
                                         options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=8), **kw))
    for theirs in references:
        torch.testing.assert_close(ours[0], theirs[0], **TOL[dtype])
        for a, e in zip(ours[1], theirs[1]):
            torch.testing.assert_close(a, e, **TOL[dtype])


def test_ignore_index_default_and_options():
    x, w, b, y = layer(torch.float64)
    y2 = y.clone()
    y2[y2 == -100] = 3
    # None means -100, as PyTorch's; another value ignores that class; options' chunk size is taken.
    for ignore in (None, 3):
        ours = xt.linear_cross_entropy(x, w, y2, linear_bias=b, ignore_index=ignore,
                                       options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4))
        theirs = F.linear_cross_entropy(x, w, y2, linear_bias=b, ignore_index=ignore)
        torch.testing.assert_close(ours, theirs, **TOL[torch.float64])


def test_only_what_requires_grad_gets_one():
    x, w, _, y = layer(torch.float64)
    x.requires_grad_(False)
    loss = xt.linear_cross_entropy(x, w, y)  # no bias
    loss.backward()
    assert x.grad is None and w.grad is not None
    ref_w = w.detach().clone().requires_grad_()
    F.cross_entropy(F.linear(x, ref_w), y).backward()
    torch.testing.assert_close(w.grad, ref_w.grad, **TOL[torch.float64])
    with torch.no_grad():
        torch.testing.assert_close(xt.linear_cross_entropy(x, w, y), loss.detach())


def test_batched_input_and_retained_graph():
    x, w, b, _ = layer(torch.float64, n=24)
    xb = x.detach().reshape(2, 3, 4, 12).requires_grad_()
    yb = torch.randint(0, 41, (2, 3, 4), generator=torch.Generator().manual_seed(3))
    loss = xt.linear_cross_entropy(xb, w, yb, linear_bias=b, chunk_size=7)
    first = torch.autograd.grad(loss, (xb, w, b), retain_graph=True)
    second = torch.autograd.grad(loss, (xb, w, b), torch.tensor(2.0, dtype=torch.float64))  # runs the chunks again
    for a, c in zip(first, second):
        torch.testing.assert_close(2 * a, c, **TOL[torch.float64])
    assert first[0].shape == (2, 3, 4, 12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_float64(reduction):
    x, w, b, y = layer(torch.float64, n=7, h=3, v=5)
    cw = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.75], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x, w, b: xt.linear_cross_entropy(x, w, y, linear_bias=b, weight=cw, reduction=reduction,
                                                label_smoothing=0.1, chunk_size=3),
        (x, w, b))


def test_training_steps_match_pytorch():
    """A small model whose head and loss go through xentcpp trains step by step as with nn.Linear +
    F.cross_entropy (float64: the same losses to 1e-12)."""
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(96, 10, generator=gen, dtype=torch.float64)
    labels = (data[:, :4].argmax(dim=1) + 4 * (data[:, 4] > 0)).long()
    histories = []
    for fused in (True, False):
        torch.manual_seed(0)
        body = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh()).double()
        head = torch.nn.Linear(16, 8).double()
        opt = torch.optim.SGD([*body.parameters(), *head.parameters()], lr=0.5)
        history = []
        for _ in range(25):
            opt.zero_grad()
            h = body(data)
            if fused:
                loss = xt.linear_cross_entropy(h, head.weight, labels, linear_bias=head.bias, chunk_size=40)
            else:
                loss = F.cross_entropy(head(h), labels)
            loss.backward()
            opt.step()
            history.append(loss.item())
        histories.append(history)
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-12)
    assert histories[0][-1] < 0.5 * histories[0][0]


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32_and_returned_in_its_dtype(half):
    x, w, b, y = layer(torch.float32)
    xh, wh, bh = (t.detach().to(half).requires_grad_() for t in (x, w, b))
    loss = xt.linear_cross_entropy(xh, wh, y, linear_bias=bh)
    loss.backward()
    x32, w32, b32 = (t.detach().float().requires_grad_() for t in (xh, wh, bh))  # the same values, in float32
    want = F.cross_entropy(F.linear(x32, w32, b32), y)
    want.backward()
    assert loss.dtype == half and xh.grad.dtype == half and wh.grad.dtype == half and bh.grad.dtype == half
    assert loss.item() == pytest.approx(want.to(half).item(), rel=1e-2)
    for got, ref in ((xh.grad, x32.grad), (wh.grad, w32.grad), (bh.grad, b32.grad)):
        torch.testing.assert_close(got, ref.to(half))  # one rounding of the float32 gradient


def test_errors():
    x, w, _, y = layer(torch.float32)
    with pytest.raises(TypeError, match="linear_weight must have input's dtype"):
        xt.linear_cross_entropy(x, w.double(), y)
    with pytest.raises(TypeError, match="float32 or float64"):
        xt.linear_cross_entropy(x.to(torch.int32), w.to(torch.int32), y)
    with pytest.raises(TypeError, match="not probability targets"):
        xt.linear_cross_entropy(x, w, torch.rand(29, 41))
    with pytest.raises(TypeError, match="torch tensors"):
        xt.linear_cross_entropy(x, w, y.numpy())
    with pytest.raises(ValueError, match="expected linear_weight of shape"):
        xt.linear_cross_entropy(x, w[:, :5], y)
    y_bad = y.clone()
    y_bad[-1] = 41
    with pytest.raises(IndexError, match=r"target\[28\] = 41"):
        xt.linear_cross_entropy(x, w, y_bad)
