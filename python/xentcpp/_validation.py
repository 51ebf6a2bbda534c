"""Checks and conversions between the public API and the C++ core.

Everything the core is given is a C-contiguous ``(rows, classes)`` block of float16, bfloat16,
float32 or float64 with the class axis last. An input that already is one passes through uncopied;
anything else (another axis, another layout, a list) is converted once, here. Half-precision logits
are read as they are (the core computes in float32); half-precision probability inputs
(``from_logits=False``), or half logits with probability targets of another dtype, are converted to
float32 once.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple, TypeVar

import numpy as np

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_index
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import normalize_axis_index  # type: ignore[no-redef]

REDUCTIONS = ("none", "sum", "mean")
DEFAULT_IGNORE_INDEX = -100
_INT64_MAX = int(np.iinfo(np.int64).max)
_INT64_MIN = int(np.iinfo(np.int64).min)
_FLOAT32 = np.dtype(np.float32)


def is_half(dtype: np.dtype) -> bool:
    """float16, or ml_dtypes' bfloat16 (recognised by name: ml_dtypes need not be imported)."""
    return dtype == np.float16 or (dtype.itemsize == 2 and dtype.name == "bfloat16")


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the core computes in, and that of per-row losses: float32 for half precision."""
    return _FLOAT32 if is_half(dtype) else dtype


@dataclass
class Call:
    """One call, converted: what the core needs and how to give results back the caller's way."""

    input: np.ndarray  # (rows, classes), C-contiguous, the storage dtype (half, float32 or float64)
    target: np.ndarray  # int64 (rows,) or the storage dtype (rows, classes)
    options: dict[str, Any]  # keyword arguments for _core.cross_entropy
    reduction: str
    batch_shape: Tuple[int, ...]  # input_shape without the class axis
    axis: int
    caller_input: np.ndarray  # the caller's array (for out=input)
    caller_target: np.ndarray

    @property
    def dtype(self) -> np.dtype:
        """The compute dtype (float32 for half-precision input): that of per-row losses."""
        return compute_dtype(self.input.dtype)

    @property
    def input_dtype(self) -> np.dtype:
        return self.caller_input.dtype

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return self.caller_input.shape

    @property
    def weight(self) -> Optional[np.ndarray]:
        weight: Optional[np.ndarray] = self.options["weight"]
        return weight

    @property
    def class_axis_last(self) -> bool:
        return self.axis == len(self.input_shape) - 1


def prepare(
    input: Any,
    target: Any,
    *,
    axis: int,
    weight: Any,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    from_logits: bool,
    epsilon: float,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    where: Any = None,
) -> Call:
    """Check every argument and convert the arrays for the core (see the module docstring)."""
    x: np.ndarray = input if isinstance(input, np.ndarray) else np.asarray(input)
    if not ((x.dtype.kind == "f" and x.dtype.itemsize in (2, 4, 8)) or is_half(x.dtype)):
        raise TypeError(
            f"input must be a float16, bfloat16, float32 or float64 array, got dtype {x.dtype}; "
            "convert it first, e.g. with x.astype(np.float32)"
        )
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension (the class axis), got a 0-d array")
    axis = normalize_axis_index(_int64(axis, "axis"), x.ndim)
    classes = x.shape[axis]
    if classes == 0:
        raise ValueError(f"input has no classes: axis {axis} of shape {x.shape} is empty")
    batch_shape = x.shape[:axis] + x.shape[axis + 1 :]
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"from_logits must be True or False, got {from_logits!r}")

    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    probability_targets = t.shape == x.shape
    storage = x.dtype.newbyteorder("=")  # byte-swapped (big-endian) input is converted once
    if is_half(storage) and (not from_logits or (probability_targets and t.dtype != storage)):
        storage = _FLOAT32  # computed from a float32 copy (see the module docstring)
    rows_view = as_rows(x, axis, storage)
    dtype = compute_dtype(storage)

    ignore_index = _int64(ignore_index, "ignore_index")
    if probability_targets:
        if t.dtype.kind not in "biuf" and not is_half(t.dtype):
            raise TypeError(f"probability targets must be real numbers, got dtype {t.dtype}")
        if ignore_index != DEFAULT_IGNORE_INDEX:
            raise ValueError("ignore_index is only supported for class-index targets, not probability targets")
        target_rows = as_rows(t, axis, storage)
    elif t.shape == batch_shape:
        target_rows = _labels(t)
    else:
        raise ValueError(
            f"target has shape {t.shape}; expected class indices of shape {batch_shape} "
            f"(input's shape without axis {axis}) or probabilities of the input's shape {x.shape}"
        )

    w = class_weights(weight, classes, dtype)

    check_reduction(reduction)
    label_smoothing, z_loss, cap = logit_options(label_smoothing, z_loss, softcap)
    epsilon = _real(epsilon, "epsilon")
    if not 0.0 <= epsilon < 0.5:
        raise ValueError(f"epsilon must be in [0, 0.5), got {epsilon}")
    if not from_logits and (z_loss != 0.0 or cap != 0.0):
        raise ValueError("z_loss and softcap apply to logits: they need from_logits=True")

    options = dict(
        row_mask=None if where is None else _row_mask(where, batch_shape),
        weight=w,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
        from_logits=bool(from_logits),
        epsilon=epsilon,
        z_loss=z_loss,
        softcap=cap,
    )
    return Call(
        input=rows_view,
        target=target_rows,
        options=options,
        reduction=reduction,
        batch_shape=batch_shape,
        axis=axis,
        caller_input=x,
        caller_target=t,
    )


def logit_options(label_smoothing: Any, z_loss: Any, softcap: Any) -> Tuple[float, float, float]:
    """``label_smoothing`` in [0, 1], ``z_loss`` finite and >= 0, ``softcap`` finite and > 0 or None (0.0 in
    the result): as floats, else ValueError (TypeError for what is not a real number)."""
    smoothing = _real(label_smoothing, "label_smoothing")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {smoothing}")
    z = _real(z_loss, "z_loss")
    if not 0.0 <= z < math.inf:
        raise ValueError(f"z_loss must be finite and >= 0, got {z}")
    cap = 0.0 if softcap is None else _real(softcap, "softcap")
    if softcap is not None and not 0.0 < cap < math.inf:
        raise ValueError(f"softcap must be finite and > 0 (or None), got {softcap}")
    return smoothing, z, cap


def class_weights(weight: Any, classes: int, dtype: np.dtype) -> Optional[np.ndarray]:
    """``weight`` (one real number per class, or None) as a C-contiguous array of ``dtype``; the core
    checks that they are finite."""
    if weight is None:
        return None
    w = weight if isinstance(weight, np.ndarray) else np.asarray(weight)
    if w.dtype.kind not in "biuf" and not is_half(w.dtype):
        raise TypeError(f"weight must be real numbers, got dtype {w.dtype}")
    if w.shape != (classes,):
        raise ValueError(f"weight must have shape ({classes},), one entry per class, got {w.shape}")
    return np.require(w, dtype=dtype, requirements=["C", "A"])


def as_rows(a: np.ndarray, axis: int = -1, dtype: Optional[np.dtype] = None) -> np.ndarray:
    """``a`` as C-contiguous, aligned (rows, classes) of ``dtype`` (default: its own), the classes
    along ``axis`` and the rows the other axes in C order: a view when it already is one, else one copy.
    "A": a misaligned buffer (e.g. a view at an odd byte offset) is copied, never read unaligned."""
    classes = a.shape[axis] if a.ndim else 1
    if a.ndim and axis % a.ndim != a.ndim - 1:
        a = np.moveaxis(a, axis, -1)
    rows = math.prod(a.shape[:-1]) if a.ndim else 1
    return np.require(a, dtype=dtype, requirements=["C", "A"]).reshape(rows, classes)


def _row_mask(where: Any, batch_shape: Tuple[int, ...]) -> np.ndarray:
    """``where`` as one bool per row, flattened as the rows are: a boolean array that broadcasts to the
    per-row loss shape (a view when it already has that shape and is C-contiguous)."""
    m = where if isinstance(where, np.ndarray) else np.asarray(where)
    if m.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array (True: the row counts), got dtype {m.dtype}")
    try:
        m = np.broadcast_to(m, batch_shape)
    except ValueError:
        raise ValueError(
            f"where of shape {m.shape} does not broadcast to the per-row loss shape {batch_shape} "
            "(the input's shape without the class axis)"
        ) from None
    return np.require(m, requirements=["C", "A"]).reshape(-1)


def _labels(t: np.ndarray) -> np.ndarray:
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"class-index targets must be integers, got dtype {t.dtype}; "
            "probability targets must have the input's shape"
        )
    # Any byte order: a uint64 above int64's range would wrap (2**64 - 100 to ignore_index -100).
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and t.size and int(t.max()) > _INT64_MAX:
        raise IndexError(f"target holds {int(t.max())}, out of range for any class index")
    return np.require(t, dtype=np.int64, requirements=["C", "A"]).reshape(-1)


def _int64(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got the bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{name} must fit in 64 bits, got {value}")
    return int(value)


def _real(value: Any, name: str) -> float:
    """A real option value as a float; strings and other non-numbers are a TypeError, not parsed."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def grad_output_rows(call: Call, grad_output: Any) -> tuple[float, Optional[np.ndarray]]:
    """The upstream gradient as the core takes it: a scalar, or one value per row (reduction none)."""
    if np.ndim(grad_output) == 0:
        return _real(grad_output, "grad_output"), None
    if call.reduction != "none":
        raise ValueError(
            f"grad_output must be a scalar for reduction {call.reduction!r}, got shape {np.shape(grad_output)}"
        )
    try:
        rows = np.broadcast_to(np.asarray(grad_output, dtype=call.dtype), call.batch_shape)
    except ValueError:
        raise ValueError(
            f"grad_output of shape {np.shape(grad_output)} does not broadcast to the per-row loss shape "
            f"{call.batch_shape}"
        ) from None
    return 1.0, np.require(rows, requirements=["C", "A"]).reshape(-1)


def check_out(
    out: Any,
    shape: Tuple[int, ...],
    dtype: np.dtype,
    *,
    arguments: Tuple[Tuple[str, Optional[np.ndarray]], ...] = (),
    in_place_of: Optional[np.ndarray] = None,
) -> np.ndarray:
    """``out`` as every function of xentcpp takes it: a writeable C-contiguous numpy.ndarray of ``shape``
    and ``dtype`` (TypeError for another type or dtype, ValueError for the rest) that overlaps none of
    the named ``arguments``; ``in_place_of``, if given, may be ``out`` itself (an in-place result)
    but no other part of it."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype}, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    for name, other in arguments:
        if other is not None and np.may_share_memory(out, other):
            raise ValueError(f"out overlaps {name}; only out=input may share memory with an argument")
    if in_place_of is not None:
        x = in_place_of
        same = out is x or (out.__array_interface__["data"][0] == x.__array_interface__["data"][0]
                            and out.strides == x.strides)
        if not same and np.may_share_memory(out, x):
            raise ValueError("out overlaps part of the input; pass out=input for an in-place result")
    return out


def check_gradient_out(call: Call, out: Any) -> np.ndarray:
    """``out`` for the gradient of ``call``: the input's shape and dtype, the input itself allowed."""
    arguments = (("target", call.caller_target), ("weight", call.weight), ("where", call.options["row_mask"]))
    return check_out(out, call.input_shape, call.input_dtype, arguments=arguments, in_place_of=call.caller_input)


_ROW_IN_MESSAGE = re.compile(r"\b(target|partials)\[(\d+)\]")
_E = TypeVar("_E", bound=Exception)


def locate_label_error(err: _E, batch_shape: Tuple[int, ...], offset: Sequence[int] = ()) -> _E:
    """The core names the flat row of a bad label (``target[i]``) or record (``partials[i]``); name its index
    in the caller's array instead: unravelled in ``batch_shape``, plus ``offset`` (where a block of rows
    starts in a larger array, one entry per dimension)."""
    message = str(err)
    match = _ROW_IN_MESSAGE.search(message)
    if match and (len(batch_shape) != 1 or any(offset)):
        where = np.unravel_index(int(match.group(2)), batch_shape)
        index = ", ".join(str(int(i) + (int(offset[k]) if offset else 0)) for k, i in enumerate(where))
        message = message.replace(match.group(0), f"{match.group(1)}[{index}]" if batch_shape else match.group(1))
    return type(err)(message)


def float_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a float32 or float64 array: those pass through; half precision becomes float32 and
    other real numbers float64 (one conversion); anything else is a TypeError."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind == "f":  # byte-swapped or misaligned: converted once (the kernels read native, aligned)
        a = np.require(a, dtype=a.dtype.newbyteorder("="), requirements=["A"])
    if a.dtype in (np.float32, np.float64):
        return a
    if is_half(a.dtype):
        return a.astype(np.float32)
    if a.dtype.kind in "biuf":
        return a.astype(np.float64)
    raise TypeError(f"{name} must be an array of real numbers, got dtype {a.dtype}")


def check_reduction(reduction: Any) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of 'none', 'sum', 'mean', got {reduction!r}")
    return reduction


def axis_index(axis: Any, ndim: int) -> int:
    """``axis`` as an index in ``[0, ndim)`` (NumPy's AxisError, a ValueError, when out of range)."""
    return int(normalize_axis_index(operator.index(axis), ndim))


def axis_tuple(axis: Any, ndim: int) -> Tuple[int, ...]:
    """``axis`` (an int, a tuple of ints, or None for every axis) as sorted indices in ``[0, ndim)``.

    Out of range: NumPy's AxisError (a ValueError); repeated: ValueError; not integers: TypeError."""
    if type(axis) is int:  # the common call, quickly
        return (int(normalize_axis_index(axis, ndim)),)
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    indices = [int(normalize_axis_index(_int64(a, "axis"), ndim)) for a in axes]
    if len(set(indices)) != len(indices):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(indices))
