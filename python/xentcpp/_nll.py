"""PyTorch's nll_loss on log-probabilities, and its gradient."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _core, _validation

__all__ = ["nll_loss", "nll_loss_grad"]


def _prepare(input: ArrayLike, target: ArrayLike, axis: int, weight: Any, ignore_index: int,
             reduction: str) -> _validation.Call:
    call = _validation.prepare(
        input, target, axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=0.0, from_logits=True, epsilon=1e-7,
    )
    if call.target.ndim != 1:
        raise ValueError("nll_loss takes class indices: target must have input's shape without axis")
    if _validation.is_half(call.input.dtype):  # the NLL kernels are float32/float64: one conversion
        call.input = call.input.astype(np.float32)
        if call.weight is not None:
            call.options["weight"] = call.weight.astype(np.float32)
    return call


def _run(call: _validation.Call, **kwargs: Any) -> float:
    try:
        total: float = _core.nll_loss(call.input, call.target, weight=call.weight,
                                      ignore_index=call.options["ignore_index"], reduction=call.reduction, **kwargs)
        return total
    except IndexError as err:
        raise _validation.locate_label_error(err, call.batch_shape) from None


def nll_loss(input: ArrayLike, target: ArrayLike, *, axis: int = -1, weight: Optional[ArrayLike] = None,
             ignore_index: int = -100, reduction: str = "mean") -> Any:
    """Negative log-likelihood of class indices under log-probabilities, as ``torch.nn.functional.nll_loss``.

    Per row ``loss = -w[y] * input[y]``; a ``"mean"`` divides the sum by the summed ``w[y]`` of the
    rows that are not ignored. ``cross_entropy(x, y) == nll_loss(log_softmax(x), y)`` to rounding.

    Parameters
    ----------
    input : array_like
        Log-probabilities (float32 or float64; half precision is computed in float32), classes along ``axis``.
    target : array_like of int
        Class indices, of ``input``'s shape without ``axis``.
    axis : int, default -1
        The class axis (``axis=1`` for PyTorch's ``(N, C, d1, ...)``).
    weight : array_like of shape (C,), optional
        A weight per class: any finite value, as in :func:`cross_entropy`.
    ignore_index : int, default -100
        Rows with this label add nothing (and get a zero gradient).
    reduction : {"mean", "sum", "none"}, default "mean"
        As in :func:`cross_entropy`.

    Returns
    -------
    float or ndarray
        A float for ``"sum"`` and ``"mean"``; per-row losses for ``"none"``.

    Raises
    ------
    TypeError, ValueError, IndexError
        As :func:`cross_entropy`; also ValueError for probability targets.

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> xc.nll_loss(np.log([[0.5, 0.25, 0.25]]), [1])
    1.3862943611198906
    """
    call = _prepare(input, target, axis, weight, ignore_index, reduction)
    losses = np.empty(call.input.shape[0], call.input.dtype) if call.reduction == "none" else None
    total = _run(call, row_losses=losses)
    return losses.reshape(call.batch_shape) if losses is not None else float(total)


def nll_loss_grad(input: ArrayLike, target: ArrayLike, grad_output: ArrayLike = 1.0, *, axis: int = -1,
                  weight: Optional[ArrayLike] = None, ignore_index: int = -100,
                  reduction: str = "mean") -> np.ndarray:
    """Gradient of :func:`nll_loss` with respect to ``input``, times ``grad_output``.

    Zero everywhere but at each counted row's label, where it is ``-scale * w[y]`` (``scale`` as in
    :func:`cross_entropy_grad`).

    Parameters
    ----------
    input, target, axis, weight, ignore_index, reduction
        As in :func:`nll_loss`.
    grad_output : float or array_like, default 1.0
        A scalar, or for ``"none"`` an array broadcastable to the per-row loss shape.

    Returns
    -------
    ndarray
        Of ``input``'s shape, in the compute dtype (float32 for half precision).

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> xc.nll_loss_grad(np.log([[0.5, 0.5]]), [1])
    array([[ 0., -1.]])
    """
    call = _prepare(input, target, axis, weight, ignore_index, reduction)
    scalar, rows = _validation.grad_output_rows(call, grad_output)
    grad = _core.empty(call.input.dtype, call.input.shape)
    _run(call, grad=grad, grad_output=scalar, grad_output_rows=rows)
    moved = grad.reshape(call.batch_shape + (call.input.shape[1],))
    return np.ascontiguousarray(np.moveaxis(moved, -1, call.axis)) if not call.class_axis_last else moved
