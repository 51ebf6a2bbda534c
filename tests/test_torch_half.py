"""xentcpp.torch on the half-precision dtypes PyTorch trains with on CPU (bfloat16, float16): the loss
and the gradient in the input's dtype, against the float64 reference (one rounding) and against
torch.nn.functional.cross_entropy (which rounds the log-probabilities first)."""

from __future__ import annotations

import numpy as np
import pytest
from reference import ref_grad, ref_loss

torch = pytest.importorskip("torch")
F = torch.nn.functional
import xentcpp.torch as xt  # noqa: E402

HALVES = [torch.bfloat16, torch.float16]
EPS = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}  # the spacing of the format at 1
# The smallest subnormal: float16 rounds tiny gradients to multiples of it (bfloat16 has float32's range).
TINY = {torch.bfloat16: 2.0**-133, torch.float16: 2.0**-24}
F32 = float(np.finfo(np.float32).eps)  # the core computes in float32


def _problem(dtype, shape, target, weighted, seed):
    gen = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(shape, generator=gen)).to(dtype)
    classes = shape[0] if len(shape) == 1 else shape[1]
    batch = () if len(shape) == 1 else (shape[0], *shape[2:])
    if target == "index":
        t = torch.randint(0, classes, batch, generator=gen)
        if t.dim():
            t.view(-1)[::3] = -100
    else:
        t = torch.softmax(torch.randn(shape, generator=gen), dim=0 if len(shape) == 1 else 1).to(dtype)
    w = (torch.rand(classes, generator=gen) + 0.5).to(dtype) if weighted else None
    return x, t, w


def _loss_and_grad(fn, x, t, upstream=None, **kwargs):
    leaf = x.detach().clone().requires_grad_(True)
    loss = fn(leaf, t, **kwargs)
    loss.backward(torch.ones_like(loss) if upstream is None else upstream)
    return loss.detach(), leaf.grad


def _reference(x, t, w, reduction, upstream=None, **kwargs):
    """Loss and gradient in float64 on the half values themselves; PyTorch's class axis is 1."""
    axis = 0 if x.dim() == 1 else 1
    x64 = x.double().numpy()
    t_ = t.double().numpy() if t.is_floating_point() else t.numpy()
    kw = dict(axis=axis, weight=None if w is None else w.double().numpy(), reduction=reduction, **kwargs)
    if upstream is None:
        upstream = np.ones(np.shape(ref_loss(x64, t_, **kw))) if reduction == "none" else 1.0
    return ref_loss(x64, t_, **kw), ref_grad(x64, t_, upstream, **kw)


def _float32_slack(x, reduction):
    """What float32 arithmetic may add to a loss: a few float32 eps of the logits' size, per row summed."""
    rows = max(1, x.numel() // (x.shape[0] if x.dim() == 1 else x.shape[1]))
    return 16 * F32 * max(1.0, float(x.double().abs().max())) * (rows if reduction == "sum" else 1)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(7,), (9, 5), (4, 6, 3)])
@pytest.mark.parametrize(("target", "weighted", "smoothing"),
                         [("index", False, 0.0), ("index", True, 0.1), ("prob", True, 0.0), ("prob", False, 0.2)])
def test_half_precision_matches_the_reference_and_pytorch(dtype, reduction, shape, target, weighted, smoothing):
    x, t, w = _problem(dtype, shape, target, weighted, seed=sum(shape) + len(reduction))
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    loss, grad = _loss_and_grad(xt.cross_entropy, x, t, **kw)
    torch_loss, torch_grad = _loss_and_grad(F.cross_entropy, x, t, **kw)
    ref, ref_g = _reference(x, t, w, reduction, label_smoothing=smoothing)
    assert loss.dtype == grad.dtype == dtype
    assert loss.shape == torch_loss.shape and grad.shape == x.shape

    eps, slack = EPS[dtype], _float32_slack(x, reduction)
    # One rounding of a float32 (or, reduced, float64) result: half an eps, relative.
    np.testing.assert_allclose(loss.double().numpy(), ref, rtol=eps / 2 + 2.0**-20, atol=slack)
    scale = float(np.max(np.abs(ref_g))) if ref_g.size else 0.0
    np.testing.assert_allclose(grad.double().numpy(), ref_g, rtol=eps / 2 + 2.0**-20,
                               atol=TINY[dtype] + 8 * F32 * scale)
    # PyTorch rounds each log-probability to the half format before it reduces or differentiates, and
    # x - lse loses the digits below half an eps of the logits' magnitude (a loss of 0.046 from logits
    # near 5 was 0.0459 in bfloat16, 0.0476 exactly); measured: its gradient within 2 eps of the
    # reference's largest entry.
    np.testing.assert_allclose(loss.double().numpy(), torch_loss.double().numpy(), rtol=3 * eps,
                               atol=slack + eps * max(1.0, float(x.double().abs().max())))
    np.testing.assert_allclose(grad.double().numpy(), torch_grad.double().numpy(), rtol=0, atol=3 * eps * scale)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_an_upstream_gradient_scales_the_half_gradient(dtype, reduction):
    x, t, w = _problem(dtype, (12, 10), "index", True, seed=5)
    upstream = torch.tensor(1.75, dtype=dtype) if reduction == "mean" else torch.linspace(0.5, 2, 12).to(dtype)
    _, grad = _loss_and_grad(xt.cross_entropy, x, t, upstream, weight=w, reduction=reduction)
    _, ref_g = _reference(x, t, w, reduction, upstream.double().numpy() if reduction == "none"
                          else float(upstream))
    assert grad.dtype == dtype
    # two roundings: the gradient's, then its product with the upstream gradient
    np.testing.assert_allclose(grad.double().numpy(), ref_g, rtol=EPS[dtype] + 2.0**-20,
                               atol=TINY[dtype] + 8 * F32 * float(np.max(np.abs(ref_g))))


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_half_tensors_are_read_and_written_in_place(dtype):
    pytest.importorskip("ml_dtypes")
    x = torch.randn(6, 4).to(dtype)
    array = xt._array(x)
    assert array.ctypes.data == x.data_ptr() and array.dtype.itemsize == 2
    assert array.dtype.name == ("bfloat16" if dtype == torch.bfloat16 else "float16")
    back = xt._tensor(array, dtype)
    assert back.dtype == dtype and back.data_ptr() == x.data_ptr()
    torch.testing.assert_close(back, x, rtol=0, atol=0)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_bfloat16_without_ml_dtypes_gives_the_same_bits(monkeypatch, reduction):
    pytest.importorskip("ml_dtypes")
    x, t, w = _problem(torch.bfloat16, (16, 40), "index", True, seed=9)
    p = _problem(torch.bfloat16, (16, 40), "prob", False, seed=10)[1]
    results = []
    for available in (True, False):
        if not available:  # as if ml_dtypes were not installed: one float32 copy instead of a view
            monkeypatch.setattr(xt, "_numpy_bfloat16", lambda: None)
            assert xt._array(x).dtype == np.float32
        results.append(_loss_and_grad(xt.cross_entropy, x, t, weight=w, reduction=reduction, label_smoothing=0.1)
                       + _loss_and_grad(xt.cross_entropy, x, p, reduction=reduction))
    for with_ml_dtypes, without in zip(*results):
        assert with_ml_dtypes.dtype == without.dtype == torch.bfloat16
        assert torch.equal(with_ml_dtypes.view(torch.int16), without.view(torch.int16))


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_module_with_a_half_weight_buffer(dtype):
    x, t, w = _problem(dtype, (10, 7), "index", True, seed=3)
    ours = xt.CrossEntropyLoss(w, ignore_index=-100, label_smoothing=0.05)
    theirs = torch.nn.CrossEntropyLoss(w, label_smoothing=0.05)
    loss, torch_loss = ours(x, t), theirs(x, t)
    assert loss.dtype == dtype
    torch.testing.assert_close(loss, torch_loss, rtol=3 * EPS[dtype], atol=0)


def test_half_errors():
    x = torch.randn(3, 4)
    y = torch.tensor([0, 1, 2])
    with pytest.raises(TypeError, match="weight"):  # PyTorch refuses it too
        xt.cross_entropy(x.bfloat16(), y, torch.ones(4))
    with pytest.raises(TypeError, match="dtype"):
        xt.cross_entropy(x.half(), torch.softmax(x, 1).bfloat16())
    with pytest.raises(TypeError, match="float16 or bfloat16"):
        xt.cross_entropy(x.to(torch.int32), y)
