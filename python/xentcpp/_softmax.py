"""The softmax family along any axis or tuple of axes: logsumexp (SciPy's ``b=`` and ``return_sign``
too), softmax, log_softmax; adjacent axes of C-contiguous input are read in place (no copy)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._logsumexp_scaled import scaled_logsumexp
from ._validation import axis_tuple, check_out, float_array

__all__ = ["log_softmax", "logsumexp", "softmax"]

_LOGSUMEXP, _SOFTMAX, _LOG_SOFTMAX = _core.SoftmaxOp.logsumexp, _core.SoftmaxOp.softmax, _core.SoftmaxOp.log_softmax
Axis = Union[int, Tuple[int, ...], None]


class _Block(NamedTuple):
    """An array arranged for the core: C-contiguous ``(outer, classes, inner)``, the reduced axes as
    the classes, with ``order`` the axis permutation it took (None: a reshape) and ``reduced`` the
    logsumexp result's shape."""

    data: np.ndarray
    outer: int
    classes: int
    inner: int
    order: Optional[Tuple[int, ...]]
    reduced: Tuple[int, ...]


def _block(a: np.ndarray, axes: Tuple[int, ...], keepdims: bool) -> _Block:
    """Adjacent axes of a C-contiguous array are a reshape (no copy); axes that are not adjacent are
    moved last by one transposed copy."""
    shape = a.shape
    if not axes or axes[-1] - axes[0] == len(axes) - 1:
        first, stop = (axes[0], axes[-1] + 1) if axes else (a.ndim, a.ndim)
        reduced = shape[:first] + (1,) * len(axes) * keepdims + shape[stop:]
        return _Block(np.ascontiguousarray(a), math.prod(shape[:first]), math.prod(shape[first:stop]),
                      math.prod(shape[stop:]), None, reduced)
    kept = tuple(i for i in range(a.ndim) if i not in axes)
    reduced = tuple(1 if i in axes else n for i, n in enumerate(shape)) if keepdims else tuple(shape[i] for i in kept)
    return _Block(np.ascontiguousarray(a.transpose(kept + axes)), math.prod(shape[i] for i in kept),
                  math.prod(shape[i] for i in axes), 1, kept + axes, reduced)


def _apply(op: _core.SoftmaxOp, x: ArrayLike, axis: Axis, out: Optional[np.ndarray], keepdims: bool = False) -> Any:
    given = x if isinstance(x, np.ndarray) else np.asarray(x)  # the caller's memory, if any
    a = float_array(given, "input")
    axes = axis_tuple(axis, a.ndim or 1)  # a 0-d input is one entry: axis -1, 0, (0,), () or None
    block = _block(a.reshape(1) if a.ndim == 0 else a, axes, keepdims)
    shape = (block.reduced if a.ndim else ()) if op == _LOGSUMEXP else a.shape
    if out is not None:
        check_out(out, shape, a.dtype)
    if out is not None and (op == _LOGSUMEXP or block.order is None):
        result = out
    elif op != _LOGSUMEXP and block.data is not given and not np.may_share_memory(block.data, given):
        result = block.data  # a converted or transposed copy is ours: overwrite it, not a second buffer
    else:
        result = _core.empty(a.dtype, shape if op == _LOGSUMEXP else block.data.shape)
    if block.classes == 0:  # an empty axis: logsumexp is -inf (an empty sum), softmax is empty
        result.fill(-np.inf)
    elif result.size:
        _core.softmax_family(block.data, block.outer, block.classes, block.inner, op, result)
    if op != _LOGSUMEXP and block.order is not None:  # back to the input's axis order: a view
        result = result.transpose(np.argsort(block.order))
        if out is not None:
            np.copyto(out, result)
            result = out
    if result.shape != shape:  # a 0-d input, computed as one entry
        result = result.reshape(shape)
    return result[()] if result.ndim == 0 and out is None else result


def logsumexp(x: ArrayLike, axis: Axis = -1, b: Optional[ArrayLike] = None, keepdims: bool = False,
              return_sign: bool = False, *, out: Optional[np.ndarray] = None) -> Any:
    """``log(sum(b * exp(x)))`` over ``axis``, with the maximum subtracted first (no overflow).

    ``lse = m + log(sum(exp(x - m)))``, ``m = max(x)``: without ``b``, computed by the C++ kernels in
    the input's precision per SIMD lane and in float64 across blocks. The arguments and their order
    are SciPy's (``scipy.special.logsumexp(a, axis, b, keepdims, return_sign)``), and so are the
    results, but unlike SciPy the default axis is the last one (``axis=-1``), not all of ``x``: pass
    ``axis=None`` for SciPy's default.

    Parameters
    ----------
    x : array_like
        float32 or float64 (other real dtypes are converted: half precision to float32, integers to float64).
    axis : int, tuple of ints or None, default -1
        The axes to reduce; None reduces all of ``x``, ``()`` none. One axis, or adjacent axes of a
        C-contiguous ``x``, are read in place (no copy); axes that are not adjacent cost one
        transposed copy of ``x``.
    b : array_like, optional
        Scale factors broadcast against ``x`` (the result has the broadcast shape): the sum is
        ``sum(b * exp(x))``. Entries with ``b == 0`` add nothing, even where ``x`` is infinite or
        NaN; negative entries subtract. Computed with NumPy in float64 (see Notes).
    keepdims : bool, default False
        Keep the reduced axes with length 1, so the result broadcasts against ``x``.
    return_sign : bool, default False
        Also return the sign of the sum (needed when ``b`` has negative entries).
    out : ndarray, optional
        A writeable C-contiguous array of the result's shape and dtype, which receives ``log|sum|``.

    Returns
    -------
    res : ndarray or scalar
        ``log(sum)``, or with ``return_sign`` ``log|sum|``. ``-inf`` for an empty or zero sum (every
        entry ``-inf``, an empty axis, ``b`` all zero); ``+inf`` where an entry is ``+inf`` (as in
        SciPy and PyTorch); NaN where one is NaN, and, without ``return_sign``, where the sum is
        negative. The dtype is that of ``x`` (float32 for half precision), promoted with ``b``'s by
        NumPy's rules as SciPy does (float32 ``x`` with float64 or int64 ``b`` gives float64).
    sgn : ndarray or scalar
        With ``return_sign`` only: the sign of the sum, ``+1``, ``-1``, ``0`` (a zero or empty sum),
        or NaN, in the result's dtype. SciPy gives ``-1`` for an empty sum (the sign of its ``-inf``);
        here it is 0, the sign of the sum itself.

    Raises
    ------
    TypeError
        ``x`` or ``b`` not real numbers; an axis that is not an integer.
    ValueError
        An axis out of range or repeated; ``b`` that does not broadcast against ``x``; a bad ``out``.

    Notes
    -----
    With ``b``, the sum is formed in float64 from the largest term (over the entries with
    ``b != 0``): ``m + log|B| + log1p(s / B)``, ``B`` the scale of the maximum, ``s`` the scaled
    sum of the other terms relative to it, as SciPy does. A sum dominated by one term keeps its
    relative precision, and float32 input gets a float64 sum (its relative error near 1e-16 rather
    than float32's 6e-8 when the terms nearly cancel). Where the maxima cancel exactly (``B == 0``),
    the rest is summed relative to the same maximum (SciPy sums ``b * exp(x)`` directly there, which
    overflows beyond ``x = 709``).

    Examples
    --------
    >>> import xentcpp as xc
    >>> float(xc.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    >>> value, sign = xc.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> round(float(value), 12), float(sign)  # log|e - e^2|, and the sum is negative
    (1.541324854613, -1.0)
    >>> round(float(xc.logsumexp([[0.0, 0.0], [1.0, 1.0]], axis=(0, 1))), 6)  # log(2 + 2e)
    2.006409
    """
    if b is None:
        value = _apply(_LOGSUMEXP, x, axis, out, keepdims)
        if not return_sign:
            return value
        with np.errstate(invalid="ignore"):
            sign = np.where(np.isnan(value), np.nan, np.where(value == -np.inf, 0.0, 1.0)).astype(value.dtype)
        return value, sign[()] if sign.ndim == 0 else sign
    value, sign = scaled_logsumexp(float_array(x, "input"), b, axis, keepdims)
    if not return_sign:
        value[sign < 0] = np.nan
    if out is not None:
        np.copyto(check_out(out, value.shape, value.dtype), value)
        value = out
    value = value[()] if value.ndim == 0 and out is None else value
    return (value, sign[()] if sign.ndim == 0 else sign) if return_sign else value


def softmax(x: ArrayLike, axis: Axis = -1, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``exp(x - lse)`` along ``axis``: the normalised exponentials, stable for any magnitude.

    Parameters
    ----------
{parameters}

    Returns
    -------
    ndarray
        ``x``'s shape (a 0-d ``x`` gives a 0-d result); each slice over ``axis`` sums to 1; a slice
        of all ``-inf`` is NaN (no distribution).

    Examples
    --------
    >>> import xentcpp as xc
    >>> xc.softmax([0.0, 0.0, 0.0, 0.0])
    array([0.25, 0.25, 0.25, 0.25])
    """
    result: np.ndarray = _apply(_SOFTMAX, x, axis, out)
    return result


def log_softmax(x: ArrayLike, axis: Axis = -1, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``(x - m) - log(sum(exp(x - m)))`` along ``axis``: log-probabilities with no ``log(softmax)``.

    Parameters
    ----------
{parameters}

    Returns
    -------
    ndarray
        Log-probabilities of ``x``'s shape; ``-inf`` for masked (``-inf``) entries, exact far below the float range of
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
    axis : int, tuple of ints or None, default -1
        The axes to normalise over (None: all of ``x``). Unlike SciPy, whose default is None, the
        default is the last axis. One axis, or adjacent axes of a C-contiguous ``x``, are read in
        place; axes that are not adjacent cost one transposed copy, which becomes the result (a view
        in ``x``'s axis order).
    out : ndarray, optional
        A writeable C-contiguous array of ``x``'s shape and dtype; ``out=x`` works in place."""
for _function in (softmax, log_softmax):
    _function.__doc__ = (_function.__doc__ or "").replace("{parameters}", _NORMALISE_PARAMETERS)
