"""PyTorch interop: :func:`cross_entropy`, a drop-in for ``torch.nn.functional.cross_entropy`` on CPU
float32, float64, float16 and bfloat16 tensors, :class:`CrossEntropyLoss`, for
``torch.nn.CrossEntropyLoss``, and :func:`linear_cross_entropy`, for
``torch.nn.functional.linear_cross_entropy`` (a model's output layer and loss in one, without the logits).

The forward pass runs xentcpp's fused kernel on the tensors' own memory (``Tensor.numpy()`` shares it;
a non-contiguous tensor is made contiguous first) and keeps the gradient it computed in the same pass;
the backward pass hands it on as it is for an upstream gradient of 1 (``loss.backward()``) and scales
it otherwise. Half-precision tensors are read in place too and computed in float32, as PyTorch does
on CPU; NumPy has no bfloat16 of its own, so a bfloat16 tensor's bits reach the core as ``ml_dtypes``'
bfloat16 when that package is installed (``pip install ml_dtypes``), and otherwise through float32
copies of the input and the gradient, which give the same bits but cost more than the loss itself.
Importable only when PyTorch is installed.

Example::

    import torch
    import xentcpp.torch as xt

    logits = torch.tensor([[2.0, 1.0, 0.1]], requires_grad=True)
    loss = xt.cross_entropy(logits, torch.tensor([0]))   # tensor(0.4170, grad_fn=...)
    loss.backward()                                       # logits.grad: softmax - onehot
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

try:
    import torch
except ImportError as err:  # pragma: no cover - exercised in a subprocess without torch
    raise ImportError("xentcpp.torch needs PyTorch: install it (`pip install torch`), or use xentcpp's "
                      "NumPy functions directly") from err

import numpy as np
from torch.autograd.function import FunctionCtx, once_differentiable

from ._cross_entropy import cross_entropy as _np_cross_entropy
from ._cross_entropy import cross_entropy_value_and_grad as _np_value_and_grad
from ._linear import prepare as _linear_prepare
from ._linear import run as _linear_run

__all__ = ["CrossEntropyLoss", "cross_entropy", "linear_cross_entropy"]

_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


@functools.cache
def _numpy_bfloat16() -> Optional[np.dtype]:
    """ml_dtypes' bfloat16, the NumPy dtype the core reads bfloat16 as; None without ml_dtypes."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    bfloat16: np.dtype = np.dtype(ml_dtypes.bfloat16)
    return bfloat16


def _array(tensor: torch.Tensor) -> Any:
    """The tensor's memory as a NumPy array (shared: no copy when it is contiguous). bfloat16 is viewed
    as ml_dtypes' bfloat16, or without ml_dtypes copied to float32 (the values the core would compute on)."""
    tensor = tensor.detach().contiguous()
    if tensor.dtype != torch.bfloat16:
        return tensor.numpy()
    bfloat16 = _numpy_bfloat16()
    if bfloat16 is None:
        return tensor.float().numpy()
    return tensor.view(torch.int16).numpy().view(bfloat16)


def _tensor(array: Any, dtype: torch.dtype) -> torch.Tensor:
    """A NumPy result as a tensor of ``dtype``: its memory shared when it already has that dtype."""
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array).to(dtype)


def _check(input: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor]) -> None:
    if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("xentcpp.torch.cross_entropy takes torch tensors for input and target")
    for name, t in (("input", input), ("target", target), ("weight", weight)):
        if t is not None and t.device.type != "cpu":
            raise ValueError(f"xentcpp.torch runs on CPU tensors; {name} is on {t.device}")
    if input.dtype not in _DTYPES:
        raise TypeError(f"input must be float32, float64, float16 or bfloat16, got {input.dtype}")
    if input.dim() == 0:
        raise ValueError("input must have a class dimension: (C,), (N, C) or (N, C, d1, ...)")
    if target.is_floating_point():
        if target.dtype != input.dtype:
            raise TypeError(f"probability targets must have the input's dtype {input.dtype}, got {target.dtype}")
        if target.requires_grad:
            raise ValueError("xentcpp.torch gives no gradient with respect to probability targets: detach them")
    if weight is not None and (weight.dtype != input.dtype or weight.dim() != 1):
        raise TypeError(f"weight must be a 1-D tensor of the input's dtype {input.dtype}")


class _CrossEntropy(torch.autograd.Function):
    """Loss forward; d(loss)/d(input) computed in the same fused pass, handed on (or scaled) in backward."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                ignore_index: int, reduction: str, label_smoothing: float) -> torch.Tensor:
        axis = 1 if input.dim() > 1 else 0  # PyTorch's class dimension
        x, t, w = _array(input), _array(target), None if weight is None else _array(weight)
        loss: Any
        if ctx.needs_input_grad[0]:  # type: ignore[attr-defined]
            loss, grad = _np_value_and_grad(x, t, axis=axis, weight=w, ignore_index=ignore_index,
                                            reduction=reduction, label_smoothing=label_smoothing)
            ctx.save_for_backward(_tensor(grad, input.dtype))
        else:
            loss = _np_cross_entropy(x, t, axis=axis, weight=w, ignore_index=ignore_index, reduction=reduction,
                                     label_smoothing=label_smoothing)
        ctx.axis, ctx.reduction = axis, reduction  # type: ignore[attr-defined]
        if reduction == "none":
            return _tensor(loss, input.dtype)  # half precision: float32 losses, rounded once
        return torch.tensor(loss, dtype=input.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Optional[torch.Tensor], None, None, None, None, None]:
        (grad,) = ctx.saved_tensors
        if ctx.reduction == "none":
            grad_output = grad_output.unsqueeze(ctx.axis)  # one upstream value per row, across its classes
        elif grad_output.item() == 1.0:
            # loss.backward(): the gradient as computed, with no product of the gradient's size (whose
            # fresh pages cost more than the fused pass). Autograd copies it if it must keep it intact.
            return grad, None, None, None, None, None
        return grad * grad_output, None, None, None, None, None


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``torch.nn.functional.cross_entropy`` computed by xentcpp, with autograd.

    Same arguments and results as PyTorch's (but ``size_average`` and ``reduce``, deprecated there, are
    absent, and the options after ``weight`` are keyword-only): ``input`` of shape ``(C,)``, ``(N, C)``
    or ``(N, C, d1, ...)``; ``target`` class indices of ``input``'s shape without ``C``, or probabilities
    of ``input``'s shape. xentcpp's documented deviation applies (a probability target of 0 on a ``-inf``
    logit adds 0, not ``nan``).

    Parameters
    ----------
    input : torch.Tensor
        CPU float32, float64, float16 or bfloat16 logits; a gradient is computed when it requires one.
        Half precision is computed in float32 (as PyTorch does on CPU); the loss and the gradient are
        rounded to the input's dtype only at the end (PyTorch rounds the log-probabilities first).
    target : torch.Tensor
        Class indices (an integer tensor) or probabilities (the input's dtype, no gradient).
    weight : torch.Tensor of shape (C,), optional
        A weight per class, of the input's dtype (half precision included, as in PyTorch).
    ignore_index : int, default -100
        Class-index targets equal to it are left out (of the loss, the mean's denominator, the gradient).
    reduction : {"mean", "sum", "none"}, default "mean"
        As in PyTorch.
    label_smoothing : float in [0, 1], default 0.0
        As in PyTorch.

    Returns
    -------
    torch.Tensor
        In the input's dtype: a scalar for ``"mean"`` and ``"sum"`` (accumulated in float64);
        for ``"none"``, the loss of each row, of ``target``'s shape without ``C``.

    Raises
    ------
    TypeError
        Not tensors, a dtype other than float32/float64/float16/bfloat16, a weight or probability
        target of another dtype (as PyTorch refuses a weight of another dtype).
    ValueError
        A tensor not on the CPU, a probability target that requires a gradient, and what
        :func:`xentcpp.cross_entropy` refuses (shapes, options).
    IndexError
        A class index outside ``[0, C)`` that is not ``ignore_index``.

    Examples
    --------
    >>> import torch
    >>> import xentcpp.torch as xt
    >>> logits = torch.tensor([[2.0, 1.0, 0.1]], requires_grad=True)
    >>> loss = xt.cross_entropy(logits, torch.tensor([0]))
    >>> round(loss.item(), 4)
    0.417
    >>> loss.backward()
    >>> logits.grad
    tensor([[-0.3410,  0.2424,  0.0986]])
    """
    _check(input, target, weight)
    apply: Callable[..., torch.Tensor] = _CrossEntropy.apply  # untyped in torch's stubs
    return apply(input, target, weight, ignore_index, reduction, label_smoothing)


class CrossEntropyLoss(torch.nn.Module):
    """``torch.nn.CrossEntropyLoss`` computed by xentcpp: the options are stored, :func:`cross_entropy` is
    called in ``forward``.

    Parameters
    ----------
    weight : torch.Tensor of shape (C,), optional
        Registered as a buffer, as PyTorch does.
    ignore_index, reduction, label_smoothing
        As :func:`cross_entropy`.

    Examples
    --------
    >>> import torch
    >>> import xentcpp.torch as xt
    >>> criterion = xt.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]), ignore_index=0)
    >>> criterion(torch.zeros(3, 2), torch.tensor([1, 0, 1]))  # the label-0 row is ignored
    tensor(0.6931)
    """

    weight: Optional[torch.Tensor]

    def __init__(self, weight: Optional[torch.Tensor] = None, *, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, label_smoothing

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """:func:`cross_entropy` of ``input`` and ``target`` with the stored options.

        Parameters
        ----------
        input, target : torch.Tensor
            As in :func:`cross_entropy`.

        Returns
        -------
        torch.Tensor
            As :func:`cross_entropy`.
        """
        return cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                             label_smoothing=self.label_smoothing)


class _LinearCrossEntropy(torch.autograd.Function):
    """The loss forward; for "mean" and "sum" the gradients that are needed come from the same pass and
    are handed on (or scaled) in backward. For "none" the upstream gradient is per row, known only in
    backward, which runs the chunks again with it."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: torch.Tensor, linear_weight: torch.Tensor, target: torch.Tensor,
                linear_bias: Optional[torch.Tensor], weight: Optional[torch.Tensor], reduction: str,
                ignore_index: int, label_smoothing: float, chunk_size: Optional[int]) -> torch.Tensor:
        call = _linear_prepare(
            _array(input), _array(linear_weight), _array(target),
            linear_bias=None if linear_bias is None else _array(linear_bias),
            weight=None if weight is None else _array(weight), ignore_index=ignore_index, reduction=reduction,
            label_smoothing=label_smoothing, z_loss=0.0, softcap=None, chunk_size=chunk_size,
        )
        needs = tuple(ctx.needs_input_grad[i] for i in (0, 1, 3))  # type: ignore[attr-defined]
        ctx.call, ctx.needs, ctx.reduction, ctx.dtype = call, needs, reduction, input.dtype  # type: ignore[attr-defined]
        ctx.grads = None  # type: ignore[attr-defined]
        if reduction != "none" and any(needs):
            loss, grads = _linear_run(call, input_grad=needs[0], weight_grad=needs[1], bias_grad=needs[2])
            ctx.grads = tuple(None if g is None else torch.from_numpy(g) for g in grads)  # type: ignore[attr-defined]
        else:
            loss = _linear_run(call)[0]
        if reduction == "none":
            return torch.from_numpy(loss)
        return torch.tensor(loss, dtype=input.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
        grads = ctx.grads
        if grads is not None:
            # Released before autograd takes them, which then keeps them as .grad without a copy.
            ctx.grads = None
            scale = grad_output.item()
            if scale != 1.0:
                grads = tuple(None if g is None else g * scale for g in grads)
        else:  # "none", or a second backward through a retained graph: the chunks again
            upstream = grad_output.detach().to(ctx.dtype)
            upstream_array = upstream.item() if ctx.reduction != "none" else upstream.contiguous().numpy()
            _, computed = _linear_run(ctx.call, input_grad=ctx.needs[0], weight_grad=ctx.needs[1],
                                      bias_grad=ctx.needs[2], grad_output=upstream_array)
            grads = tuple(None if g is None else torch.from_numpy(g) for g in computed)
        d_input, d_weight, d_bias = grads
        return d_input, d_weight, None, d_bias, None, None, None, None, None


def linear_cross_entropy(
    input: torch.Tensor,
    linear_weight: torch.Tensor,
    target: torch.Tensor,
    *,
    linear_bias: Optional[torch.Tensor] = None,
    weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    ignore_index: Optional[int] = None,
    label_smoothing: float = 0.0,
    options: Any = None,
    chunk_size: Optional[int] = None,
) -> torch.Tensor:
    """``torch.nn.functional.linear_cross_entropy`` computed by xentcpp on CPU, with autograd, without
    the ``(N, V)`` logits (see :func:`xentcpp.linear_cross_entropy`).

    Same arguments and results as PyTorch's for class-index targets: ``loss =
    cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``. Gradients reach ``input``,
    ``linear_weight`` and ``linear_bias``, whichever require them (the GEMM of one that does not is
    skipped). For ``"mean"`` and ``"sum"`` they are computed in the forward pass, in the same sweep as
    the loss, and kept until the backward pass (``input``'s and ``linear_weight``'s size, as PyTorch's
    chunked path does); for ``"none"``, and a second backward through a retained graph, the backward
    pass runs the chunks again with the upstream gradient. Not for double backward (the gradient's own
    gradient).

    Parameters
    ----------
    input : torch.Tensor
        CPU hidden states, ``(H,)``, ``(N, H)`` or ``(..., H)``: float32 or float64, or float16 and
        bfloat16, computed in float32 and returned (loss and gradients) in the input's dtype.
    linear_weight : torch.Tensor
        ``(V, H)``, of ``input``'s dtype (``torch.nn.Linear.weight``).
    target : torch.Tensor
        Class indices (an integer tensor) of ``input``'s shape without ``H``.
    linear_bias : torch.Tensor of shape (V,), optional
        ``torch.nn.Linear.bias``.
    weight : torch.Tensor of shape (V,), optional
        A weight per class.
    reduction : {"mean", "sum", "none"}, default "mean"
        As in PyTorch.
    ignore_index : int, optional
        None (PyTorch's default) means -100.
    label_smoothing : float in [0, 1], default 0.0
        As in PyTorch.
    options : torch.nn.LinearCrossEntropyOptions, optional
        Accepted for PyTorch's signature; its ``batch_chunk_size``, when set, is the chunk size. Its
        other fields (PyTorch's own chunking and accumulation policies) do not apply.
    chunk_size : int, optional
        Rows per chunk (default: 64 MiB of logits); overrides ``options``.

    Returns
    -------
    torch.Tensor
        A scalar for ``"mean"`` and ``"sum"`` (accumulated in float64, returned in ``input``'s dtype);
        for ``"none"``, the loss of each row, of ``target``'s shape.

    Raises
    ------
    TypeError
        Not tensors, dtypes other than floating ones or that differ, probability targets.
    ValueError
        A tensor not on the CPU, and what :func:`xentcpp.linear_cross_entropy` refuses.
    IndexError
        A class index outside ``[0, V)`` that is not ``ignore_index``.

    Examples
    --------
    >>> import torch
    >>> import xentcpp.torch as xt
    >>> hidden = torch.tensor([[1.0, 0.0]], requires_grad=True)
    >>> head = torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    >>> loss = xt.linear_cross_entropy(hidden, head, torch.tensor([1]))
    >>> round(loss.item(), 4)
    0.6931
    >>> loss.backward()
    >>> head.grad
    tensor([[ 0.5000,  0.0000],
            [-0.5000,  0.0000]])
    """
    tensors = (("input", input), ("linear_weight", linear_weight), ("target", target),
               ("linear_bias", linear_bias), ("weight", weight))
    for name, t in tensors:
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"xentcpp.torch.linear_cross_entropy takes torch tensors; {name} is {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(f"xentcpp.torch runs on CPU tensors; {name} is on {t.device}")
    for name, t in tensors[:2] + tensors[3:]:
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{name} must have input's dtype {input.dtype}, got {t.dtype}")
    if input.dtype not in _DTYPES:
        raise TypeError(f"input must be float16, bfloat16, float32 or float64, got {input.dtype}")
    if target.is_floating_point():
        raise TypeError("xentcpp.torch.linear_cross_entropy takes class indices, not probability targets")
    if chunk_size is None and options is not None:
        chunk_size = getattr(options, "batch_chunk_size", None)
    if input.dtype in (torch.float16, torch.bfloat16):
        # Half precision is computed in float32 (one copy of each tensor; the GEMMs accumulate in
        # float32), through autograd's casts: the loss and the gradients come back in the input's dtype.
        def single(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if t is None else t.float()

        loss = linear_cross_entropy(input.float(), linear_weight.float(), target, linear_bias=single(linear_bias),
                                    weight=single(weight), reduction=reduction, ignore_index=ignore_index,
                                    label_smoothing=label_smoothing, chunk_size=chunk_size)
        return loss.to(input.dtype)
    apply: Callable[..., torch.Tensor] = _LinearCrossEntropy.apply
    return apply(input, linear_weight, target, linear_bias, weight, reduction,
                 -100 if ignore_index is None else ignore_index, label_smoothing, chunk_size)
