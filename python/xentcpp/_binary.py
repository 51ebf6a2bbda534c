"""Binary (multi-label) cross-entropy on logits, as torch.nn.functional.binary_cross_entropy_with_logits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._validation import as_rows, check_reduction, float_array

__all__ = ["binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad"]

_FORMULA = """\
    Per element, with ``w`` the weight and ``pw`` the positive-class weight of its class (last axis)::

        loss = w * ((1 - t) * x + (1 + (pw - 1) * t) * log(1 + exp(-x)))
        grad = w * ((1 + (pw - 1) * t) * sigmoid(x) - pw * t)

    computed with ``exp(-|x|)``, so any ``x`` is exact (no overflow at ``|x| = 1e4``)."""


@dataclass
class _Call:
    x: np.ndarray  # (rows, classes), classes = the input's last axis
    t: np.ndarray
    options: Dict[str, Any]
    shape: Tuple[int, ...]
    reduction: str


def _class_vector(
    value: Any, shape: Tuple[int, ...], dtype: np.dtype, name: str
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(per-class vector, per-element array): a value that varies along the last axis only is a vector."""
    if value is None:
        return None, None
    v = float_array(value, name).astype(dtype, copy=False)
    try:
        np.broadcast_shapes(v.shape, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {v.shape} does not broadcast to the input's shape {shape}") from None
    if np.broadcast_shapes(v.shape, shape) != shape:
        raise ValueError(f"{name} of shape {v.shape} would broadcast the input's shape {shape}")
    classes = shape[-1] if shape else 1
    if all(d == 1 for d in v.shape[:-1]):
        return np.ascontiguousarray(np.broadcast_to(v.reshape(v.shape[-1:]), (classes,))), None
    return None, as_rows(np.broadcast_to(v, shape))


def _prepare(input: ArrayLike, target: ArrayLike, weight: Any, pos_weight: Any, reduction: str) -> _Call:
    x = float_array(input, "input")
    t = float_array(target, "target")
    if t.shape != x.shape:
        raise ValueError(f"target must have the input's shape {x.shape}, got {t.shape}")
    dtype = np.result_type(x.dtype, t.dtype)
    shape = x.shape
    class_weight, element_weight = _class_vector(weight, shape, dtype, "weight")
    pos, pos_full = _class_vector(pos_weight, shape, dtype, "pos_weight")
    if pos_full is not None:
        raise ValueError("pos_weight must vary along the last (class) axis only")
    options = dict(weight=element_weight, class_weight=class_weight, pos_weight=pos,
                   reduction=check_reduction(reduction))
    return _Call(as_rows(x, dtype=dtype), as_rows(t, dtype=dtype), options, shape, reduction)


def binary_cross_entropy_with_logits(input: ArrayLike, target: ArrayLike, weight: Optional[ArrayLike] = None, *,
                                     pos_weight: Optional[ArrayLike] = None, reduction: str = "mean") -> Any:
    """Sigmoid cross-entropy of independent binary targets, as PyTorch's function of the same name.

{formula}

    Parameters
    ----------
    input : array_like
        Logits, any shape (float32 or float64; other real dtypes are converted).
    target : array_like
        Targets in [0, 1] of the input's shape.
    weight : array_like, optional
        Broadcastable to the input's shape: a rescaling weight per element (or per class).
    pos_weight : array_like, optional
        Weight of the positive term per class (the last axis), broadcastable to ``(C,)``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` divides by the number of elements.

    Returns
    -------
    float or ndarray
        A float for ``"sum"`` and ``"mean"``; per-element losses of the input's shape for ``"none"``.

    Examples
    --------
    >>> import xentcpp as xc
    >>> round(xc.binary_cross_entropy_with_logits([0.0], [1.0]), 6)
    0.693147
    """
    call = _prepare(input, target, weight, pos_weight, reduction)
    losses = _core.empty(call.x.dtype, call.x.shape) if reduction == "none" else None
    total = _core.bce_with_logits(call.x, call.t, losses=losses, **call.options) if call.x.size else 0.0
    if losses is not None:
        return losses.reshape(call.shape)
    return float(total) if call.x.size or reduction == "sum" else float("nan")


def binary_cross_entropy_with_logits_grad(input: ArrayLike, target: ArrayLike, grad_output: ArrayLike = 1.0,
                                          weight: Optional[ArrayLike] = None, *,
                                          pos_weight: Optional[ArrayLike] = None,
                                          reduction: str = "mean") -> np.ndarray:
    """Gradient of :func:`binary_cross_entropy_with_logits` with respect to ``input``, times ``grad_output``.

{formula}

    Parameters
    ----------
    input, target, weight, pos_weight, reduction
        As in :func:`binary_cross_entropy_with_logits`.
    grad_output : float or array_like, default 1.0
        A scalar; for ``"none"`` also an array broadcastable to the input's shape.

    Returns
    -------
    ndarray
        Of the input's shape (``"mean"`` divides by the number of elements).

    Examples
    --------
    >>> import xentcpp as xc
    >>> xc.binary_cross_entropy_with_logits_grad([0.0, 0.0], [1.0, 0.0], reduction="sum")
    array([-0.5,  0.5])
    """
    call = _prepare(input, target, weight, pos_weight, reduction)
    grad = _core.empty(call.x.dtype, call.x.shape)
    elements = None
    if np.ndim(grad_output) != 0:
        if reduction != "none":
            raise ValueError(f"grad_output must be a scalar for reduction {reduction!r}")
        go = float_array(grad_output, "grad_output").astype(call.x.dtype, copy=False)
        elements = np.ascontiguousarray(np.broadcast_to(go, call.shape)).reshape(call.x.shape)
        grad_output = 1.0
    if call.x.size:
        _core.bce_with_logits(call.x, call.t, grad=grad, grad_output=float(grad_output),  # type: ignore[arg-type]
                              grad_output_elements=elements, **call.options)
    return grad.reshape(call.shape)


for _function in (binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad):
    _function.__doc__ = (_function.__doc__ or "").replace("{formula}", _FORMULA)
