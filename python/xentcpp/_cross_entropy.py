"""Softmax cross-entropy: the loss, its gradient, and both at once."""

from __future__ import annotations

from typing import Any, Callable, Literal, Optional, Tuple, TypeVar, Union, overload

import numpy as np
from numpy.typing import ArrayLike

from . import _validation

try:
    from . import _core
except ImportError as err:  # pragma: no cover - only without a build
    raise ImportError(
        "xentcpp's C++ extension (xentcpp._core) is missing: build and install the package with "
        "`pip install .` from the source tree"
    ) from err

__all__ = ["cross_entropy", "cross_entropy_grad", "cross_entropy_value_and_grad"]

Loss = Union[float, np.ndarray]
_F = TypeVar("_F", bound=Callable[..., Any])

_PARAMETERS = """\
    input : array_like
        Logits (or, with ``from_logits=False``, probabilities): float16, bfloat16 (``ml_dtypes``),
        float32 or float64, with the classes along ``axis``. Half precision is read as it is and
        computed in float32.
    target : array_like
        Either class indices, integers of ``input``'s shape without ``axis`` (any integer dtype), or
        probabilities of ``input``'s shape (soft or one-hot; any real dtype).
    axis : int, default -1
        The class axis. ``axis=1`` on ``(N, C, d1, ...)`` is PyTorch's layout.
    weight : array_like of shape (C,), optional
        A weight per class (PyTorch's ``weight``): any finite value, negative ones included, with
        PyTorch's results; NaN and infinite weights raise ``ValueError`` (PyTorch takes them and
        returns NaN). A ``"mean"`` over rows whose weights sum to zero gives PyTorch's ``inf`` or
        ``nan`` loss and gradient.
    ignore_index : int, default -100
        Class-index targets equal to it add nothing to the loss, nor to the mean's denominator, and
        get a zero gradient. Not allowed with probability targets.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` gives one loss per row; ``"sum"`` their sum; ``"mean"`` their sum divided by the
        summed weight of the rows that are not ignored (class indices) or by the number of rows
        (probabilities), as in PyTorch. A mean over nothing is ``nan``.
    label_smoothing : float in [0, 1], default 0.0
        Mixes the target with the uniform distribution: ``(1 - a) * target + a / C``.
    from_logits : bool, default True
        ``False``: ``input`` holds probabilities, used as given (not renormalised) and clipped to
        ``[epsilon, 1 - epsilon]`` as Keras does; the gradient is 0 where the clip applies.
    epsilon : float in [0, 0.5), default 1e-7
        The clip for ``from_logits=False``.
    z_loss : float >= 0, default 0.0
        PaLM's auxiliary term: ``z_loss * lse**2`` is added to each row's loss (``lse`` the row's
        log-sum-exp, after the cap), with its gradient. Not class-weighted; ignored rows add nothing;
        a ``"mean"`` divides it by the number of rows that are not ignored (Liger-Kernel's convention).
    softcap : float > 0, optional
        Logit soft-capping (Gemma 2): every logit ``x`` becomes ``softcap * tanh(x / softcap)``
        before the softmax; the gradient flows through the tanh.
    where : array_like of bool, optional
        A row mask (optax's ``where``), broadcastable to the per-row loss shape (``input``'s shape
        without ``axis``): rows where it is False add nothing to the loss, nor to the mean's
        denominator, and get a zero gradient, whatever their target (as ``ignore_index`` does for
        class indices; their labels are not read). For padding in soft-label training."""

_FORMULA = """\
    For a row ``x`` of ``C`` logits with ``lse = logsumexp(x)`` and class weights ``w`` (default 1),
    a class-index target ``y`` and label smoothing ``a`` give::

        loss = (1 - a) * w[y] * (lse - x[y]) + (a / C) * sum_c w[c] * (lse - x[c])

    and a probability target ``t`` (smoothed to ``t' = (1 - a) t + a / C``) gives::

        loss = sum_c w[c] * t'[c] * (lse - x[c])

    ``lse - x[c]`` is computed with the row maximum subtracted, never as ``-log(softmax(x))``."""


def _doc(function: _F) -> _F:
    function.__doc__ = (function.__doc__ or "").format(parameters=_PARAMETERS, formula=_FORMULA)
    return function


_LOSS, _GRAD, _VALUE_AND_GRAD = _core.Want.loss, _core.Want.grad, _core.Want.value_and_grad


def _fast(
    want: _core.Want, input: Any, target: Any, axis: Any, weight: Any, ignore_index: Any, reduction: Any,
    label_smoothing: Any, from_logits: Any, epsilon: Any, z_loss: Any, softcap: Any, out: Any = None,
    grad_output: Any = 1.0,
) -> Any:
    """The common call (2-D C-contiguous float32/float64 logits, int64 labels, no weight, an out= usable
    as it is) straight to the core, which checks its form and returns None for anything else: the general path
    then converts, or words the error. Keeps small calls within a few microseconds."""
    if (
        weight is None and from_logits is True and type(axis) is int and (axis == -1 or axis == 1) and softcap is None
        and type(z_loss) is float and z_loss == 0.0
        and type(epsilon) is float and 0.0 <= epsilon < 0.5 and type(grad_output) is float
    ):
        return _core.fast(input, target, want, reduction, ignore_index, label_smoothing, grad_output, out)
    return None


def _run(call: _validation.Call, **kwargs: Any) -> Tuple[float, float]:
    """The core's totals: the loss (z-loss included) and the z-loss term."""
    try:
        totals: Tuple[float, float] = _core.cross_entropy(
            call.input, call.target, **call.options, **kwargs
        )
        return totals
    except IndexError as err:
        raise _validation.locate_label_error(err, call.batch_shape) from None


class _Losses:
    """The per-row buffers for reduction "none" (losses, and z-losses when asked), and the result."""

    def __init__(self, call: _validation.Call, return_z_loss: bool) -> None:
        self.call, self.return_z_loss = call, return_z_loss
        rows = call.input.shape[0]
        self.none = call.reduction == "none"
        self.losses = np.empty(rows, dtype=call.dtype) if self.none else None
        self.z_losses = np.empty(rows, dtype=call.dtype) if self.none and return_z_loss else None

    def buffers(self) -> dict[str, Optional[np.ndarray]]:
        return {"row_losses": self.losses, "row_z_losses": self.z_losses}

    def result(self, totals: Tuple[float, float]) -> Any:
        """The loss as the caller asked: per row or reduced, with the z-loss term when asked."""
        shape = self.call.batch_shape
        loss: Loss = float(totals[0])
        z_loss: Loss = float(totals[1])
        if self.losses is not None:
            loss = self.losses.reshape(shape)
        if self.z_losses is not None:
            z_loss = self.z_losses.reshape(shape)
        return (loss, z_loss) if self.return_z_loss else loss


def _gradient(
    call: _validation.Call, out: Optional[np.ndarray], **kwargs: Any
) -> Tuple[Tuple[float, float], np.ndarray]:
    """Runs the core with a gradient buffer; writes straight into ``out`` (or the new result) when its
    layout is the core's, else into a scratch buffer that is converted once."""
    if out is not None:
        _validation.check_gradient_out(call, out)
    # A misaligned out= is written through an aligned scratch buffer, like another layout.
    direct = call.class_axis_last and call.input.dtype == call.input_dtype and (out is None or out.flags.aligned)
    if out is not None:
        buffer = out.reshape(call.input.shape) if direct else _core.empty(call.input.dtype, call.input.shape)
    else:
        buffer = _core.empty(call.input.dtype, call.input.shape)
    total = _run(call, grad=buffer, **kwargs)
    if direct:
        return total, out if out is not None else buffer.reshape(call.input_shape)
    moved = np.moveaxis(buffer.reshape(call.batch_shape + (call.input.shape[1],)), -1, call.axis)
    if out is None:
        return total, moved.astype(call.input_dtype, copy=False)
    np.copyto(out, moved, casting="same_kind")
    return total, out


# Overloads: the result's type follows `reduction` (a float for "mean" and "sum", an array for "none",
# either for a str known only at run time), so `loss: float = cross_entropy(x, y)` type-checks. A new
# keyword goes into every overload as into the implementation (tests/typing/check_overloads.py checks).
@overload
def cross_entropy(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: Literal["mean", "sum"] = ..., label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[False] = ...,
) -> float: ...
@overload
def cross_entropy(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: Literal["none"], label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[False] = ...,
) -> np.ndarray: ...
@overload
def cross_entropy(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: Literal["mean", "sum"] = ..., label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[True],
) -> Tuple[float, float]: ...
@overload
def cross_entropy(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: Literal["none"], label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[True],
) -> Tuple[np.ndarray, np.ndarray]: ...
@overload
def cross_entropy(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: str = ..., label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[False] = ...,
) -> Loss: ...
@overload
def cross_entropy(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: str = ..., label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: bool = ...,
) -> Any: ...
@_doc
def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    from_logits: bool = True,
    epsilon: float = 1e-7,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    where: Optional[ArrayLike] = None,
    return_z_loss: bool = False,
) -> Any:
    """Softmax cross-entropy between logits and targets, as ``torch.nn.functional.cross_entropy``.

{formula}

    Parameters
    ----------
{parameters}

    return_z_loss : bool, default False
        Also return the z-loss term on its own (reduced like the loss), as Liger-Kernel does.

    Returns
    -------
    float or ndarray
        A Python float for ``"sum"`` and ``"mean"`` (accumulated in float64); for ``"none"`` an array
        of ``input``'s shape without ``axis``, in the compute dtype (float32 for half precision).
        The z-loss term is included. With ``return_z_loss=True``, a pair ``(loss, z_loss)``.

    Raises
    ------
    TypeError
        Input not a float array, class indices not integers, bad option types.
    ValueError
        Shapes that do not fit, an empty class axis, an unknown reduction, options out of range.
    IndexError
        A class index outside ``[0, C)`` that is not ``ignore_index`` (checked by the C++ core).

    Examples
    --------
    >>> import xentcpp as xc
    >>> xc.cross_entropy([[0.1, 0.3, 0.6], [0.2, 0.3, 0.5]], [0, 2], reduction="none", from_logits=False)
    array([2.30258509, 0.69314718])
    >>> round(xc.cross_entropy([[2.0, 1.0, 0.1]], [0]), 6)
    0.41703
    """
    if not return_z_loss and where is None:
        result = _fast(
            _LOSS, input, target, axis, weight, ignore_index, reduction, label_smoothing, from_logits, epsilon, z_loss,
            softcap,
        )
        if result is not None:
            return result
    call = _validation.prepare(
        input, target, axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, from_logits=from_logits, epsilon=epsilon, z_loss=z_loss, softcap=softcap,
        where=where,
    )
    losses = _Losses(call, bool(return_z_loss))
    return losses.result(_run(call, **losses.buffers()))


@_doc
def cross_entropy_grad(
    input: ArrayLike,
    target: ArrayLike,
    grad_output: ArrayLike = 1.0,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    from_logits: bool = True,
    epsilon: float = 1e-7,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    where: Optional[ArrayLike] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Gradient of :func:`cross_entropy` with respect to ``input``, times ``grad_output``.

    For logits it is ``scale * (softmax(x) * sum_c w[c] t'[c] - w * t')`` per row (``softmax(x) - t``
    for plain targets), where ``scale`` is ``grad_output`` (divided by the mean's denominator for
    ``"mean"``). Ignored rows, and every row of a mean over nothing, get a zero gradient.

{formula}

    Parameters
    ----------
{parameters}
    grad_output : float or array_like, default 1.0
        The upstream gradient: a scalar for ``"sum"`` and ``"mean"``; for ``"none"`` a scalar or an
        array broadcastable to the per-row loss shape.
    out : ndarray, optional
        A writeable C-contiguous array of ``input``'s shape and dtype to write the gradient into;
        ``out=input`` overwrites the logits with their gradient (no second buffer when the class axis
        is last and the dtype is float32 or float64).

    Returns
    -------
    ndarray
        The gradient, of ``input``'s shape and dtype (``out`` when given).

    Raises
    ------
    TypeError, ValueError, IndexError
        As :func:`cross_entropy`; also for an ``out`` of the wrong type, dtype, shape or layout, read-only,
        or overlapping another argument, and for a ``grad_output`` of the wrong shape.

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> x = np.array([[0.0, 0.0]])
    >>> xc.cross_entropy_grad(x, [1])
    array([[ 0.5, -0.5]])
    """
    if where is None:
        result = _fast(
            _GRAD, input, target, axis, weight, ignore_index, reduction, label_smoothing, from_logits, epsilon, z_loss,
            softcap, out, grad_output,
        )
        if result is not None:
            return result  # type: ignore[no-any-return]
    call = _validation.prepare(
        input, target, axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, from_logits=from_logits, epsilon=epsilon, z_loss=z_loss, softcap=softcap,
        where=where,
    )
    scalar, rows = _validation.grad_output_rows(call, grad_output)
    return _gradient(call, out, grad_output=scalar, grad_output_rows=rows)[1]


# Overloads on `reduction`, as cross_entropy's.
@overload
def cross_entropy_value_and_grad(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: Literal["mean", "sum"] = ..., label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[False] = ..., out: Optional[np.ndarray] = ...,
) -> Tuple[float, np.ndarray]: ...
@overload
def cross_entropy_value_and_grad(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: Literal["none"], label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[False] = ..., out: Optional[np.ndarray] = ...,
) -> Tuple[np.ndarray, np.ndarray]: ...
@overload
def cross_entropy_value_and_grad(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: Literal["mean", "sum"] = ..., label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[True], out: Optional[np.ndarray] = ...,
) -> Tuple[Tuple[float, float], np.ndarray]: ...
@overload
def cross_entropy_value_and_grad(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: Literal["none"], label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[True], out: Optional[np.ndarray] = ...,
) -> Tuple[Tuple[np.ndarray, np.ndarray], np.ndarray]: ...
@overload
def cross_entropy_value_and_grad(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: str = ..., label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: Literal[False] = ..., out: Optional[np.ndarray] = ...,
) -> Tuple[Loss, np.ndarray]: ...
@overload
def cross_entropy_value_and_grad(
    input: ArrayLike, target: ArrayLike, *, axis: int = ..., weight: Optional[ArrayLike] = ...,
    ignore_index: int = ..., reduction: str = ..., label_smoothing: float = ...,
    from_logits: bool = ..., epsilon: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    where: Optional[ArrayLike] = ..., return_z_loss: bool = ..., out: Optional[np.ndarray] = ...,
) -> Tuple[Any, np.ndarray]: ...
@_doc
def cross_entropy_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    from_logits: bool = True,
    epsilon: float = 1e-7,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    where: Optional[ArrayLike] = None,
    return_z_loss: bool = False,
    out: Optional[np.ndarray] = None,
) -> Tuple[Any, np.ndarray]:
    """:func:`cross_entropy` and :func:`cross_entropy_grad` in one fused pass over the input.

    For ``"none"`` the gradient is that of each row's own loss (an upstream gradient of ones).

{formula}

    Parameters
    ----------
{parameters}
    return_z_loss : bool, default False
        As in :func:`cross_entropy`.
    out : ndarray, optional
        As in :func:`cross_entropy_grad`; ``out=input`` replaces the logits by the gradient.

    Returns
    -------
    loss : float or ndarray, or a pair of them
        As :func:`cross_entropy` (``(loss, z_loss)`` with ``return_z_loss=True``).
    grad : ndarray
        As :func:`cross_entropy_grad` with ``grad_output=1``.

    Raises
    ------
    TypeError, ValueError, IndexError
        As :func:`cross_entropy_grad`.

    Examples
    --------
    >>> import xentcpp as xc
    >>> loss, grad = xc.cross_entropy_value_and_grad([[0.0, 0.0]], [1])
    >>> round(loss, 6), grad
    (0.693147, array([[ 0.5, -0.5]]))
    """
    if not return_z_loss and where is None:
        result = _fast(
            _VALUE_AND_GRAD, input, target, axis, weight, ignore_index, reduction, label_smoothing, from_logits,
            epsilon, z_loss, softcap, out,
        )
        if result is not None:
            return result  # type: ignore[no-any-return]
    call = _validation.prepare(
        input, target, axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, from_logits=from_logits, epsilon=epsilon, z_loss=z_loss, softcap=softcap,
        where=where,
    )
    losses = _Losses(call, bool(return_z_loss))
    totals, grad = _gradient(call, out, **losses.buffers())
    return losses.result(totals), grad
