"""logsumexp with scale factors (SciPy's ``b=``): ``log|sum(b * exp(a))|`` and the sum's sign, in float64.

The steps, per reduced slice:

1. Entries with ``b == 0`` are left out (as ``a = -inf``): they add nothing, even where ``a`` is
   infinite or NaN.
2. ``m = max(a)`` over the rest; ``B = sum(b)`` over the entries equal to ``m``; ``s = sum(b *
   exp(a - m))`` over the others (each term below ``|b|``: no overflow).
3. ``log|sum| = m + log|B| + log1p(s / B)`` (``log|1 + r|`` as ``log1p(-r - 2)`` for ``r < -1``,
   exact by Sterbenz's lemma): a sum dominated by its largest term keeps its relative precision, as
   in SciPy; the sign is ``sign(B) * sign(1 + s / B)``. When the maxima cancel (``B == 0``),
   ``log|s| + m``.
4. Slices with no finite maximum (every entry ``-inf`` or left out, a ``+inf``, a NaN), or whose
   result is NaN or ``+inf`` (an infinite or NaN ``b``), take the plain ``log|sum(b * exp(a))|`` of
   step 1's entries, which IEEE arithmetic gets right there: ``-inf`` for an empty sum, ``+inf``
   with the sign of its ``b``, NaN for ``inf - inf`` or a NaN. SciPy does the same, but over every
   entry, so a ``b == 0`` there multiplies an infinite or NaN ``a`` into NaN.

Note: float64 throughout, whatever the input's precision. For float32 input it costs one float64
copy, which the steps' temporaries need anyway, and keeps the sum's relative error near 1e-16 where
float32 arithmetic (SciPy's on float32 input) loses ``|sum| / sum|terms|`` of its 7 digits.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ._validation import axis_tuple, compute_dtype, float_array, is_half

__all__ = ["scaled_logsumexp"]


def _scale_factors(a: np.ndarray, b: Any) -> Tuple[np.ndarray, np.ndarray, np.dtype]:
    """``a`` and ``b`` in float64, broadcast together, and the result's dtype (NumPy's promotion)."""
    factors = b if isinstance(b, np.ndarray) else np.asarray(b)
    if not (factors.dtype.kind in "biuf" or is_half(factors.dtype)):
        raise TypeError(f"b must be an array of real numbers, got dtype {factors.dtype}")
    dtype = np.result_type(a.dtype, compute_dtype(factors.dtype))
    try:
        shape = np.broadcast_shapes(a.shape, factors.shape)
    except ValueError:
        raise ValueError(f"b of shape {factors.shape} does not broadcast against x of shape {a.shape}") from None
    a64 = np.broadcast_to(a.astype(np.float64, copy=False), shape)
    b64 = np.broadcast_to(float_array(factors, "b").astype(np.float64, copy=False), shape)
    return a64, b64, dtype


def scaled_logsumexp(x: np.ndarray, b: Any, axis: Any, keepdims: bool) -> Tuple[np.ndarray, np.ndarray]:
    """``(log|sum(b * exp(x))|, sign of the sum)`` over ``axis`` (int, tuple or None), as arrays of
    the result's dtype; ``x`` is float32 or float64."""
    a64, b64, dtype = _scale_factors(x, b)
    zero_dimensional = a64.ndim == 0
    if zero_dimensional:  # one entry: axis -1, 0, (0,), () or None
        a64, b64 = a64.reshape(1), b64.reshape(1)
    axes = axis_tuple(axis, a64.ndim)
    reduced = tuple(1 if i in axes else n for i, n in enumerate(a64.shape))
    if a64.size == 0:  # an empty sum: log 0 = -inf, sign 0
        value, sign = np.full(reduced, -np.inf), np.zeros(reduced)
    else:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value, sign = _reduce(a64, b64, axes)
    if zero_dimensional:
        value, sign = value.reshape(()), sign.reshape(())
    elif not keepdims:
        value, sign = np.squeeze(value, axes), np.squeeze(sign, axes)
    return value.astype(dtype, copy=False), sign.astype(dtype, copy=False)


def _reduce(a: np.ndarray, b: np.ndarray, axes: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray]:
    """Steps 1-4 of the module docstring, keeping the reduced axes (length 1)."""
    terms = np.where(b != 0, a, -np.inf)  # step 1; a new array, worked on in place from here
    top = np.max(terms, axis=axes, keepdims=True)  # NaN propagates
    at_top = terms == top
    top_scale = np.sum(b, axis=axes, keepdims=True, where=at_top)
    np.subtract(terms, top, out=terms)
    np.exp(terms, out=terms)
    np.multiply(terms, b, out=terms)
    np.copyto(terms, 0.0, where=at_top)  # after the product: an infinite b at the maximum is in top_scale
    rest = np.sum(terms, axis=axes, keepdims=True)

    ratio = rest / top_scale
    value = np.log1p(np.where(ratio < -1.0, -ratio - 2.0, ratio)) + np.log(np.abs(top_scale)) + top
    sign = np.sign(ratio + 1.0) * np.sign(top_scale)
    cancelled = top_scale == 0.0
    value = np.where(cancelled, np.log(np.abs(rest)) + top, value)
    sign = np.where(cancelled, np.sign(rest), sign)
    unusual = ~np.isfinite(top) | np.isnan(value) | (value == np.inf)  # -inf is an exactly zero sum
    if unusual.any():
        plain = np.sum(b * np.exp(np.where(b != 0, a, -np.inf)), axis=axes, keepdims=True)
        value = np.where(unusual, np.log(np.abs(plain)), value)
        sign = np.where(unusual, np.sign(plain), sign)
    return value, sign
