"""The softmax family along any axis: logsumexp, softmax, log_softmax (no copy for C-contiguous input)."""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._validation import axis_index, float_array

__all__ = ["log_softmax", "logsumexp", "softmax"]

_LOGSUMEXP, _SOFTMAX, _LOG_SOFTMAX = 0, 1, 2


def _layout(x: np.ndarray, axis: Optional[int]) -> Tuple[np.ndarray, int, int, int, Optional[int]]:
    """``x`` C-contiguous, and (outer, classes, inner) around the normalised axis (None: all of x)."""
    x = np.ascontiguousarray(x)
    if axis is None or x.ndim == 0:
        return x, 1, x.size, 1, None
    axis = axis_index(axis, x.ndim)
    return x, math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1 :]), axis


def _check_out(out: Any, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype or out.shape != shape:
        raise ValueError(f"out must have dtype {dtype} and shape {shape}, got {out.dtype} and {out.shape}")
    if not out.flags.writeable or not out.flags.c_contiguous:
        raise ValueError("out must be writeable and C-contiguous")
    return out


def _apply(op: int, x: ArrayLike, axis: Optional[int], out: Optional[np.ndarray], keepdims: bool = False) -> Any:
    given = x if isinstance(x, np.ndarray) else np.asarray(x)  # the caller's memory, if any
    a, outer, classes, inner, axis = _layout(float_array(given, "input"), axis)
    if op == _LOGSUMEXP:
        if axis is None:
            shape: Tuple[int, ...] = (1,) * a.ndim if keepdims else ()
        else:
            shape = a.shape[:axis] + ((1,) if keepdims else ()) + a.shape[axis + 1 :]
    else:
        shape = a.shape
    if out is not None:
        result = _check_out(out, shape, a.dtype)
    elif op != _LOGSUMEXP and a is not given and not np.may_share_memory(a, given):
        result = a  # a converted copy (half precision, another layout) is ours: overwrite it, not a second buffer
    else:
        result = _core.empty(a.dtype, shape)
    if classes == 0:  # an empty axis: logsumexp is -inf (an empty sum), softmax is empty
        result.fill(-np.inf)
    elif result.size:
        _core.softmax_family(a, outer, classes, inner, op, result)
    return result[()] if result.ndim == 0 and out is None else result


def logsumexp(x: ArrayLike, axis: Optional[int] = -1, *, keepdims: bool = False,
              out: Optional[np.ndarray] = None) -> Any:
    """``log(sum(exp(x)))`` along ``axis``, with the maximum subtracted first (no overflow).

    ``lse = m + log(sum(exp(x - m)))``, ``m = max(x)``, summed in the input's precision per SIMD lane
    and in float64 across blocks.

    Parameters
    ----------
    x : array_like
        float32 or float64 (other real dtypes are converted: half precision to float32, integers to float64).
    axis : int or None, default -1
        The axis to reduce; None reduces all of ``x``. Any axis is read in place (no copy).
    keepdims : bool, default False
        Keep the reduced axis with length 1.
    out : ndarray, optional
        A writeable C-contiguous array of the result's shape and dtype.

    Returns
    -------
    ndarray or scalar
        The log-sum-exp; ``-inf`` where every entry is ``-inf`` (or the axis is empty), ``+inf``
        where one is ``+inf`` (as in SciPy and PyTorch), NaN where one is NaN.

    Examples
    --------
    >>> import xentcpp as xc
    >>> float(xc.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    """
    return _apply(_LOGSUMEXP, x, axis, out, keepdims)


def softmax(x: ArrayLike, axis: int = -1, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``exp(x - lse)`` along ``axis``: the normalised exponentials, stable for any magnitude.

    Parameters
    ----------
{parameters}

    Returns
    -------
    ndarray
        Each slice along ``axis`` sums to 1; a slice of all ``-inf`` is NaN (no distribution).

    Examples
    --------
    >>> import xentcpp as xc
    >>> xc.softmax([0.0, 0.0, 0.0, 0.0])
    array([0.25, 0.25, 0.25, 0.25])
    """
    result: np.ndarray = _apply(_SOFTMAX, x, axis, out)
    return result


def log_softmax(x: ArrayLike, axis: int = -1, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``(x - m) - log(sum(exp(x - m)))`` along ``axis``: log-probabilities with no ``log(softmax)``.

    Parameters
    ----------
{parameters}

    Returns
    -------
    ndarray
        Log-probabilities; ``-inf`` for masked (``-inf``) entries, exact far below the float range of
        ``softmax`` (``log_softmax([0, -1000])[1] == -1000``).

    Examples
    --------
    >>> import xentcpp as xc
    >>> xc.log_softmax([0.0, -1000.0])
    array([    0., -1000.])
    """
    result: np.ndarray = _apply(_LOG_SOFTMAX, x, axis, out)
    return result


_NORMALISE_PARAMETERS = """\
    x : array_like
        As in :func:`logsumexp`.
    axis : int, default -1
        The axis to normalise; any axis is read in place.
    out : ndarray, optional
        A writeable C-contiguous array of ``x``'s shape and dtype; ``out=x`` works in place."""
for _function in (softmax, log_softmax):
    _function.__doc__ = (_function.__doc__ or "").replace("{parameters}", _NORMALISE_PARAMETERS)
