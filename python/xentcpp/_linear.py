"""Cross-entropy of a linear layer's output, ``logits = input @ linear_weight.T + linear_bias``, and its
gradients, computed chunk by chunk without the ``(rows, classes)`` logits array."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np
from numpy.typing import ArrayLike

from . import _core, _validation

__all__ = ["linear_cross_entropy", "linear_cross_entropy_value_and_grad"]

Loss = Union[float, np.ndarray]
Grads = Tuple[np.ndarray, ...]

# The default chunk: as many rows as fill this many bytes of logits (their workspace).
WORKSPACE_BYTES = 64 << 20

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class LinearCall:
    """One call, checked and converted for ``_core.linear_cross_entropy``."""

    input: np.ndarray  # (rows, hidden), C-contiguous, float32 or float64
    weight: np.ndarray  # (classes, hidden), the same
    labels: np.ndarray  # (rows,) int64
    bias: Optional[np.ndarray]
    options: dict[str, Any]  # the remaining keyword arguments of _core.linear_cross_entropy
    reduction: str
    batch_shape: Tuple[int, ...]
    input_shape: Tuple[int, ...]

    @property
    def dtype(self) -> np.dtype:
        return self.input.dtype


def _floats(a: Any, name: str) -> np.ndarray:
    """A float array of the input kinds: float16, bfloat16, float32 or float64 (else TypeError)."""
    x: np.ndarray = a if isinstance(a, np.ndarray) else np.asarray(a)
    if not ((x.dtype.kind == "f" and x.dtype.itemsize in (2, 4, 8)) or _validation.is_half(x.dtype)):
        raise TypeError(f"{name} must be a float16, bfloat16, float32 or float64 array, got dtype {x.dtype}")
    return x


def _compute_dtype(x: np.ndarray, w: np.ndarray) -> np.dtype:
    """float64 when both are float64, float32 when both are float32 or half; a float32/float64 mix is refused
    rather than promoted (promoting would copy the larger array)."""
    kinds = {np.dtype(np.float32) if _validation.is_half(d) else d.newbyteorder("=") for d in (x.dtype, w.dtype)}
    if len(kinds) != 1:
        raise TypeError(
            f"input ({x.dtype}) and linear_weight ({w.dtype}) must have the same precision: both float64, or "
            "float32/float16/bfloat16 (computed in float32); convert one, e.g. with .astype(np.float32)"
        )
    return kinds.pop()


def prepare(
    input: Any, linear_weight: Any, target: Any, *, linear_bias: Any, weight: Any, ignore_index: Any,
    reduction: Any, label_smoothing: Any, z_loss: Any, softcap: Any, chunk_size: Any, filter_eps: Any = None,
) -> LinearCall:
    """Checks every argument and converts the arrays for the core (see the public functions' docstrings)."""
    x = _floats(input, "input")
    w = _floats(linear_weight, "linear_weight")
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension (the hidden features), got a 0-d array")
    if w.ndim != 2:
        raise ValueError(
            f"linear_weight must be 2-D (classes, hidden) as torch.nn.Linear stores it, got shape {w.shape}"
        )
    hidden = x.shape[-1]
    classes = w.shape[0]
    if w.shape[1] != hidden:
        raise ValueError(
            f"linear_weight has shape {w.shape} but input has {hidden} features (its last axis): "
            f"expected linear_weight of shape (classes, {hidden})"
        )
    if hidden == 0 or classes == 0:
        raise ValueError(f"the layer has no {'features' if hidden == 0 else 'classes'}: linear_weight {w.shape}")
    dtype = _compute_dtype(x, w)
    batch_shape = x.shape[:-1]

    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    if t.shape == batch_shape + (classes,) and t.dtype.kind == "f":
        raise TypeError(
            "linear_cross_entropy takes class indices, not probability targets: their (rows, classes) array "
            "is the very thing it avoids; use cross_entropy on the logits for those"
        )
    if t.shape != batch_shape:
        raise ValueError(f"target has shape {t.shape}; expected class indices of shape {batch_shape} (input's "
                         "shape without its last axis)")
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must hold class indices (integers), got dtype {t.dtype}")
    labels = _validation._labels(t)

    bias = None
    if linear_bias is not None:
        b = linear_bias if isinstance(linear_bias, np.ndarray) else np.asarray(linear_bias)
        if b.dtype.kind not in "biuf" and not _validation.is_half(b.dtype):
            raise TypeError(f"linear_bias must be real numbers, got dtype {b.dtype}")
        if b.shape != (classes,):
            raise ValueError(f"linear_bias must have shape ({classes},), one entry per class, got {b.shape}")
        bias = np.require(b, dtype=dtype, requirements=["C", "A"])

    class_weight = None
    if weight is not None:
        cw = weight if isinstance(weight, np.ndarray) else np.asarray(weight)
        if cw.dtype.kind not in "biuf" and not _validation.is_half(cw.dtype):
            raise TypeError(f"weight must be real numbers, got dtype {cw.dtype}")
        if cw.shape != (classes,):
            raise ValueError(
                f"weight must have shape ({classes},), one entry per class of linear_weight, got {cw.shape}"
            )
        class_weight = np.require(cw, dtype=dtype, requirements=["C", "A"])

    ignore_index = _validation._int64(ignore_index, "ignore_index")
    _validation.check_reduction(reduction)
    label_smoothing = _validation._real(label_smoothing, "label_smoothing")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    z_loss = _validation._real(z_loss, "z_loss")
    if not 0.0 <= z_loss < math.inf:
        raise ValueError(f"z_loss must be finite and >= 0, got {z_loss}")
    cap = 0.0 if softcap is None else _validation._real(softcap, "softcap")
    if softcap is not None and not 0.0 < cap < math.inf:
        raise ValueError(f"softcap must be finite and > 0 (or None), got {softcap}")
    chunk_rows = 0
    if chunk_size is not None:
        chunk_rows = _validation._int64(chunk_size, "chunk_size")
        if chunk_rows < 1:
            raise ValueError(f"chunk_size must be at least 1 (or None for the default), got {chunk_size}")
    eps = 0.0 if filter_eps is None else _validation._real(filter_eps, "filter_eps")
    if not 0.0 <= eps < math.inf:
        raise ValueError(f"filter_eps must be finite and >= 0 (or None), got {filter_eps}")

    # "A": a misaligned buffer is copied too; a view of another layout, or half precision, is copied once.
    rows = int(np.prod(batch_shape, dtype=np.int64))
    x2 = np.require(x, dtype=dtype, requirements=["C", "A"]).reshape(rows, hidden)
    w2 = np.require(w, dtype=dtype, requirements=["C", "A"])
    options = dict(class_weight=class_weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
                   reduction=reduction, z_loss=z_loss, softcap=cap, chunk_rows=chunk_rows,
                   workspace_bytes=WORKSPACE_BYTES, filter_eps=eps)
    return LinearCall(input=x2, weight=w2, labels=labels, bias=bias, options=options, reduction=reduction,
                      batch_shape=batch_shape, input_shape=x.shape)


def run(
    call: LinearCall, *, return_z_loss: bool = False, input_grad: bool = False, weight_grad: bool = False,
    bias_grad: bool = False, grad_output: Any = 1.0,
) -> Tuple[Any, Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]]:
    """Runs the core: the loss as the caller asked (per row for "none", with the z-loss term when asked) and
    the gradients asked for (None for the others). ``grad_output``: a scalar, or per row for "none"."""
    rows = call.input.shape[0]
    none = call.reduction == "none"
    losses = np.empty(rows, call.dtype) if none else None
    z_losses = np.empty(rows, call.dtype) if none and return_z_loss else None
    # NumPy's arrays, not _core.empty's: the reuse of one idle buffer cannot serve two results of
    # different sizes a call, and its 2 MiB rounding would count against the memory budget.
    d_input = np.empty(call.input.shape, call.dtype) if input_grad else None
    d_weight = np.empty(call.weight.shape, call.dtype) if weight_grad else None
    d_bias = np.empty(call.weight.shape[0], call.dtype) if bias_grad and call.bias is not None else None
    scalar, per_row = 1.0, None
    if np.ndim(grad_output) == 0:
        scalar = _validation._real(grad_output, "grad_output")
    elif none:
        per_row = np.require(np.broadcast_to(np.asarray(grad_output, dtype=call.dtype), call.batch_shape),
                             requirements=["C", "A"]).reshape(-1)
    else:
        raise ValueError(f"grad_output must be a scalar for reduction {call.reduction!r}")
    try:
        totals = _core.linear_cross_entropy(
            call.input, call.weight, call.labels, bias=call.bias, **call.options, row_losses=losses,
            row_z_losses=z_losses, d_input=d_input, d_weight=d_weight, d_bias=d_bias, grad_output=scalar,
            grad_output_rows=per_row,
        )
    except IndexError as err:
        raise _validation.locate_label_error(err, call.batch_shape) from None
    loss: Loss = losses.reshape(call.batch_shape) if losses is not None else float(totals[0])
    result: Any = loss
    if return_z_loss:
        result = (loss, z_losses.reshape(call.batch_shape) if z_losses is not None else float(totals[1]))
    if d_input is not None:
        d_input = d_input.reshape(call.input_shape)
    return result, (d_input, d_weight, d_bias)


_PARAMETERS = """\
    input : array_like
        The layer's input (hidden states), of shape ``(N, H)`` or ``(..., H)``: float32 or float64, or
        float16/bfloat16 (``ml_dtypes``), which is read as float32 (one float32 copy). A strided view,
        Fortran order or another byte order is copied once into C order.
    linear_weight : array_like of shape (V, H)
        The layer's weight as ``torch.nn.Linear`` stores it (``logits = input @ linear_weight.T``), of
        ``input``'s precision: both float64, or float32/float16/bfloat16 (a float32/float64 mix is a
        ``TypeError``). Copied once when not C-contiguous (``V x H`` elements: as large as its gradient).
    target : array_like of int
        Class indices in ``[0, V)`` (or ``ignore_index``), of ``input``'s shape without its last axis.
        Probability targets are not taken: their ``(N, V)`` array is what this function avoids.
    linear_bias : array_like of shape (V,), optional
        The layer's bias.
    weight : array_like of shape (V,), optional
        A finite weight per class (as :func:`cross_entropy`, negative ones included).
    ignore_index : int, default -100
        Targets equal to it add nothing to the loss nor to the mean's denominator, and no gradient.
    reduction : {"mean", "sum", "none"}, default "mean"
        As :func:`cross_entropy`: ``"mean"`` divides by the summed ``weight[y]`` of the rows not ignored.
    label_smoothing : float in [0, 1], default 0.0
        As :func:`cross_entropy`.
    z_loss : float >= 0, default 0.0
        As :func:`cross_entropy`: ``z_loss * lse**2`` per row, a ``"mean"`` divides it by the number of
        rows not ignored.
    softcap : float > 0, optional
        As :func:`cross_entropy`: every logit becomes ``softcap * tanh(logit / softcap)``.
    chunk_size : int >= 1, optional
        Rows per chunk. By default as many as fill 64 MiB with the chunk's logits (``rows x V``
        elements), evened out over the chunks; that workspace is all the memory used beyond the inputs
        and the results, whatever ``N``."""

_NOTES = """\
    The rows are processed in chunks: for each, GEMMs (scipy-openblas32) write the chunk's logits into
    the workspace, xentcpp's fused kernel turns them into the chunk's losses and, in place, the logits'
    gradient ``G``, and GEMMs fold ``G`` into the gradients (``d_input`` rows ``= G @ linear_weight``,
    ``d_linear_weight += G.T @ input`` rows, accumulated in the result). The GEMMs are cut into tiles
    whose bounds depend on the shapes alone, each one a single-threaded BLAS call, shared out over
    xentcpp's threads (:func:`set_num_threads`, :func:`threads`): results are bitwise the same for any
    thread count. While a call runs, the BLAS's own thread count (process-wide) is held at 1 and then
    restored. The results equal the unfused computation (logits, then :func:`cross_entropy`) to the
    rounding of the GEMMs; another ``chunk_size`` changes how ``d_linear_weight`` and a reduced loss
    are summed, so their last bits."""


def _doc(function: Any) -> Any:
    function.__doc__ = function.__doc__.format(parameters=_PARAMETERS, notes=_NOTES)
    return function


@overload
def linear_cross_entropy(
    input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *, linear_bias: Optional[ArrayLike] = ...,
    weight: Optional[ArrayLike] = ..., ignore_index: int = ..., reduction: Literal["mean", "sum"] = ...,
    label_smoothing: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    return_z_loss: Literal[False] = ..., chunk_size: Optional[int] = ...,
) -> float: ...
@overload
def linear_cross_entropy(
    input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *, linear_bias: Optional[ArrayLike] = ...,
    weight: Optional[ArrayLike] = ..., ignore_index: int = ..., reduction: Literal["none"],
    label_smoothing: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    return_z_loss: Literal[False] = ..., chunk_size: Optional[int] = ...,
) -> np.ndarray: ...
@overload
def linear_cross_entropy(
    input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *, linear_bias: Optional[ArrayLike] = ...,
    weight: Optional[ArrayLike] = ..., ignore_index: int = ..., reduction: str = ...,
    label_smoothing: float = ..., z_loss: float = ..., softcap: Optional[float] = ...,
    return_z_loss: bool = ..., chunk_size: Optional[int] = ...,
) -> Any: ...
@_doc
def linear_cross_entropy(
    input: ArrayLike,
    linear_weight: ArrayLike,
    target: ArrayLike,
    *,
    linear_bias: Optional[ArrayLike] = None,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    return_z_loss: bool = False,
    chunk_size: Optional[int] = None,
) -> Any:
    """Softmax cross-entropy of ``input @ linear_weight.T + linear_bias`` without the logits array, as
    PyTorch's ``torch.nn.functional.linear_cross_entropy``.

    Equal to ``cross_entropy(input @ linear_weight.T + linear_bias, target, ...)`` (same options, same
    results to float rounding), in memory independent of the number of rows.

{notes}

    Parameters
    ----------
{parameters}
    return_z_loss : bool, default False
        Also return the z-loss term on its own (reduced like the loss).

    Returns
    -------
    float or ndarray
        A Python float for ``"sum"`` and ``"mean"`` (accumulated in float64); for ``"none"`` an array of
        ``input``'s shape without its last axis, in the compute dtype. With ``return_z_loss=True``, a pair
        ``(loss, z_loss)``.

    Raises
    ------
    TypeError
        Arrays that are not real numbers, class indices that are not integers, probability targets, a
        float32/float64 mix of ``input`` and ``linear_weight``, options of the wrong type.
    ValueError
        Shapes that do not fit (``linear_weight``'s ``H`` against ``input``'s, ``weight`` or
        ``linear_bias`` not of length ``V``), options out of range (NaN included).
    IndexError
        A class index outside ``[0, V)`` that is not ``ignore_index``: every label is checked before
        anything is computed.

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> h = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> w = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    >>> round(xc.linear_cross_entropy(h, w, [0, 1]), 6)
    0.493313
    >>> round(xc.cross_entropy(h @ w.T, [0, 1]), 6)
    0.493313
    """
    call = prepare(input, linear_weight, target, linear_bias=linear_bias, weight=weight, ignore_index=ignore_index,
                   reduction=reduction, label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
                   chunk_size=chunk_size)
    return run(call, return_z_loss=bool(return_z_loss))[0]


@_doc
def linear_cross_entropy_value_and_grad(
    input: ArrayLike,
    linear_weight: ArrayLike,
    target: ArrayLike,
    *,
    linear_bias: Optional[ArrayLike] = None,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    return_z_loss: bool = False,
    chunk_size: Optional[int] = None,
    filter_eps: Optional[float] = None,
) -> Tuple[Any, Grads]:
    """:func:`linear_cross_entropy` and its gradients with respect to ``input``, ``linear_weight`` and
    ``linear_bias``, in one pass over the chunks (three GEMMs per chunk, no logits array).

    For ``"none"`` the gradients are those of the sum of the per-row losses.

{notes}

    Parameters
    ----------
{parameters}
    return_z_loss : bool, default False
        As :func:`linear_cross_entropy`.
    filter_eps : float >= 0, optional
        Opt-in gradient filtering (as Cut Cross-Entropy's): the backward GEMMs skip each stripe of
        ``chunk rows x 512`` classes of the logits' gradient whose entries are all, in absolute value,
        below ``filter_eps`` times the gradient's scale (1 over the mean's denominator for ``"mean"``,
        1 otherwise): with plain targets, the stripes whose softmax probabilities are all below
        ``filter_eps`` and that hold no target. What they would add to ``d_input`` and
        ``d_linear_weight`` is lost; the loss and ``d_linear_bias`` stay exact. Off by default (None or 0).
        Measured on a head whose rows hold 1.7 nats (``benchmarks/linear/filter_eps.py``, 2048 x 512 x
        32 000): ``1e-4`` skipped 81 % of the stripes and took 0.52x the time, with a largest error of
        1.6e-4 of the largest ``d_input`` entry and 7e-6 of the largest ``d_linear_weight`` entry;
        ``1e-5``: 37 %, 0.74x, 2.3e-5 and 7e-7. A flatter head (2.9 nats) skips nothing below ``1e-3``.

    Returns
    -------
    loss : float or ndarray, or a pair of them
        As :func:`linear_cross_entropy`.
    grads : tuple of ndarray
        ``(d_input, d_linear_weight)``, or ``(d_input, d_linear_weight, d_linear_bias)`` when
        ``linear_bias`` is given: of the shapes of ``input``, ``linear_weight`` and ``linear_bias``, in
        the compute dtype (float32 for half-precision arrays, whose ``d_linear_weight`` is so
        accumulated in float32).

    Raises
    ------
    TypeError, ValueError, IndexError
        As :func:`linear_cross_entropy`; ValueError also for a ``filter_eps`` that is negative or not finite.

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> h = np.array([[1.0, 0.0]])
    >>> w = np.array([[0.0, 0.0], [0.0, 0.0]])
    >>> loss, (d_h, d_w) = xc.linear_cross_entropy_value_and_grad(h, w, [1])
    >>> round(loss, 6), d_w
    (0.693147, array([[ 0.5,  0. ],
           [-0.5,  0. ]]))
    """
    call = prepare(input, linear_weight, target, linear_bias=linear_bias, weight=weight, ignore_index=ignore_index,
                   reduction=reduction, label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
                   chunk_size=chunk_size, filter_eps=filter_eps)
    loss, (d_input, d_weight, d_bias) = run(call, return_z_loss=bool(return_z_loss), input_grad=True,
                                            weight_grad=True, bias_grad=True)
    assert d_input is not None and d_weight is not None
    grads: Grads = (d_input, d_weight) if d_bias is None else (d_input, d_weight, d_bias)
    return loss, grads
