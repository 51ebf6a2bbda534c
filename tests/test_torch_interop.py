"""xentcpp.torch against torch.nn.functional.cross_entropy: loss, .grad, gradcheck, a training loop."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
import xentcpp.torch as xt  # noqa: E402

TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def _both(fn, x, *args, **kwargs):
    """fn's loss and the gradient of sum(loss * upstream) with respect to a fresh leaf copy of x."""
    leaf = x.detach().clone().requires_grad_(True)
    loss = fn(leaf, *args, **kwargs)
    upstream = torch.linspace(0.5, 2.0, loss.numel(), dtype=x.dtype).reshape(loss.shape)
    loss.backward(upstream)
    return loss.detach(), leaf.grad


def _assert_parity(x, target, **kwargs):
    loss, grad = _both(xt.cross_entropy, x, target, **kwargs)
    expected_loss, expected_grad = _both(F.cross_entropy, x, target, **kwargs)
    tol = TOL[x.dtype]
    assert loss.dtype == x.dtype and loss.shape == expected_loss.shape
    torch.testing.assert_close(loss, expected_loss, rtol=tol, atol=tol)
    torch.testing.assert_close(grad, expected_grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(7,), (9, 5), (4, 6, 3), (2, 5, 3, 2)])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"ignore_index": 1},
                                     {"weight": True, "ignore_index": 2, "label_smoothing": 0.1}])
def test_class_index_parity(dtype, reduction, shape, options):
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, dtype=dtype, generator=gen) * 3
    classes = shape[0] if len(shape) == 1 else shape[1]
    batch = () if len(shape) == 1 else (shape[0], *shape[2:])
    target = torch.randint(0, classes, batch, generator=gen)
    if options.get("weight"):
        options = {**options, "weight": torch.rand(classes, dtype=dtype, generator=gen) + 0.5}
    _assert_parity(x, target, reduction=reduction, **options)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(9, 5), (3, 4, 2, 2)])
def test_probability_target_parity(dtype, reduction, shape):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(shape, dtype=dtype, generator=gen)
    target = torch.softmax(torch.randn(shape, dtype=dtype, generator=gen), dim=1)
    weight = torch.rand(shape[1], dtype=dtype, generator=gen) + 0.5
    _assert_parity(x, target, reduction=reduction, weight=weight, label_smoothing=0.1)


def test_non_contiguous_input_and_module():
    x = torch.randn(5, 8, dtype=torch.float64).t()  # (8, 5), a transposed view
    target = torch.randint(0, 5, (8,))
    _assert_parity(x, target)
    weight = torch.rand(5, dtype=torch.float64) + 0.5
    loss = xt.CrossEntropyLoss(weight, label_smoothing=0.05)(x, target)
    expected = torch.nn.CrossEntropyLoss(weight, label_smoothing=0.05)(x, target)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


def test_forward_shares_memory_and_needs_no_grad():
    x = torch.randn(6, 4)
    target = torch.randint(0, 4, (6,))
    with torch.no_grad():
        losses = xt.cross_entropy(x, target, reduction="none")
    assert not losses.requires_grad
    torch.testing.assert_close(losses, F.cross_entropy(x, target, reduction="none"))
    assert xt._array(x).ctypes.data == x.data_ptr()  # zero-copy view of a contiguous tensor


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_plain_backward_accumulates_like_pytorchs(reduction):
    # loss.backward() hands autograd the gradient the forward computed (no product); repeated backward
    # passes over a kept graph, and a second graph, must still add up as PyTorch's do.
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(64, 50, dtype=torch.float64, generator=gen)
    target = torch.randint(0, 50, (64,), generator=gen)
    grads = []
    for fn in (xt.cross_entropy, F.cross_entropy):
        leaf = x.clone().requires_grad_(True)
        loss = fn(leaf, target, reduction=reduction)
        for _ in range(3):
            loss.backward(retain_graph=True)
        fn(leaf, target, reduction=reduction).backward()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_float64(reduction):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(4, 5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    target = torch.randint(0, 5, (4, 3), generator=gen)
    target[0, 0] = -100
    weight = torch.rand(5, dtype=torch.float64, generator=gen) + 0.5
    assert torch.autograd.gradcheck(
        lambda t: xt.cross_entropy(t, target, weight, reduction=reduction, label_smoothing=0.1), (x,))
    probs = torch.softmax(torch.randn(4, 5, dtype=torch.float64, generator=gen), dim=1)
    y = torch.randn(4, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: xt.cross_entropy(t, probs, reduction=reduction), (y,))


def test_training_steps_of_a_tiny_model():
    """Same model, same data, same optimiser: xentcpp's loss trains exactly as PyTorch's does."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, generator=gen)
    y = (x[:, :3].argmax(dim=1) + 2 * (x[:, 3] > 0)).long()  # 5 learnable classes
    histories = []
    for loss_fn in (xt.cross_entropy, F.cross_entropy):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        history = []
        for _ in range(30):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            history.append(loss.item())
        histories.append(history)
    ours, theirs = histories
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < 0.5 * ours[0]


def test_errors():
    x = torch.randn(3, 4)
    y = torch.tensor([0, 1, 2])
    with pytest.raises(TypeError, match="float32, float64, float16 or bfloat16"):
        xt.cross_entropy(x.to(torch.complex64), y)
    with pytest.raises(TypeError, match="torch tensors"):
        xt.cross_entropy(x.numpy(), y)
    with pytest.raises(TypeError, match="dtype"):
        xt.cross_entropy(x, torch.softmax(x, 1).double())
    with pytest.raises(TypeError, match="weight"):
        xt.cross_entropy(x, y, torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="detach"):
        xt.cross_entropy(x, torch.softmax(x, 1).requires_grad_(True))
    with pytest.raises(ValueError, match="class dimension"):
        xt.cross_entropy(torch.tensor(1.0), torch.tensor(0))
    with pytest.raises(IndexError):
        xt.cross_entropy(x, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="reduction"):
        xt.cross_entropy(x, y, reduction="avg")

