"""Information measures of distributions: entropy and Kullback-Leibler divergence, in nats or any base."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._validation import as_rows, axis_index, float_array

__all__ = ["entropy", "kl_div"]


def _measure(p: np.ndarray, q: Optional[np.ndarray], axis: int, base: Optional[float], keepdims: bool) -> Any:
    if p.ndim == 0:
        raise ValueError("p must have at least one dimension (the axis of the distribution)")
    axis = axis_index(axis, p.ndim)
    if base is not None and not (float(base) > 0.0 and float(base) != 1.0 and math.isfinite(float(base))):
        raise ValueError(f"base must be a positive number other than 1, got {base}")
    batch = p.shape[:axis] + p.shape[axis + 1 :]
    out = np.zeros(batch, p.dtype)
    if out.size and p.shape[axis]:
        _core.information(as_rows(p, axis), None if q is None else as_rows(q, axis), out=out.reshape(-1))
    if base is not None:
        out /= np.log(float(base))
    if keepdims:
        return np.expand_dims(out, axis)
    return out[()] if out.ndim == 0 else out


def entropy(p: ArrayLike, axis: int = -1, *, base: Optional[float] = None, keepdims: bool = False) -> Any:
    """Shannon entropy ``H(p) = -sum(p * log(p))`` along ``axis``, with ``0 * log(0) = 0``.

    ``p`` is used as given (not renormalised); on a normalised ``p`` this is
    ``scipy.stats.entropy(p, axis=axis)``. Unlike SciPy, whose default is ``axis=0``, the default is the
    last axis (the class axis, as in the rest of xentcpp).

    Parameters
    ----------
    p : array_like
        Probabilities (float32 or float64; other real dtypes are converted).
{axis_and_base}

    Returns
    -------
    float or ndarray
        One entropy per distribution, of ``p``'s shape without ``axis`` (with it, of length 1, for
        ``keepdims``).

    Examples
    --------
    >>> import xentcpp as xc
    >>> float(xc.entropy([0.5, 0.5], base=2))
    1.0
    """
    return _measure(float_array(p, "p"), None, axis, base, keepdims)


def kl_div(p: ArrayLike, q: ArrayLike, axis: int = -1, *, base: Optional[float] = None,
           keepdims: bool = False) -> Any:
    """Kullback-Leibler divergence ``KL(p || q) = sum(p * log(p / q))`` along ``axis``.

    Terms with ``p = 0`` are 0; a term with ``q = 0 < p`` makes the divergence ``+inf``. Inputs are
    used as given; on normalised inputs this is ``scipy.stats.entropy(p, q, axis=axis)`` (whose default
    axis is 0; here it is the last). The identity
    ``H(p, q) = H(p) + KL(p || q)`` links it to :func:`cross_entropy` with probability targets
    (``cross_entropy(q, p, from_logits=False, reduction="none")``). Note that PyTorch's ``kl_div`` takes
    log-probabilities as its first argument and the target second; this one takes two distributions.

    Parameters
    ----------
    p, q : array_like
        Distributions of the same shape (after broadcasting), float32 or float64.
{axis_and_base}

    Returns
    -------
    float or ndarray
        One divergence per distribution pair, shaped as in :func:`entropy`.

    Examples
    --------
    >>> import xentcpp as xc
    >>> round(float(xc.kl_div([0.5, 0.5], [0.25, 0.75])), 6)
    0.143841
    """
    pa, qa = float_array(p, "p"), float_array(q, "q")
    dtype = np.result_type(pa.dtype, qa.dtype)
    try:
        pa, qa = np.broadcast_arrays(pa.astype(dtype, copy=False), qa.astype(dtype, copy=False))
    except ValueError:
        raise ValueError(f"p and q must have the same shape, got {np.shape(p)} and {np.shape(q)}") from None
    return _measure(pa, qa, axis, base, keepdims)


_AXIS_AND_BASE = """\
    axis : int, default -1
        The axis of each distribution.
    base : float, optional
        The logarithm's base: None for nats, 2 for bits.
    keepdims : bool, default False
        Keep ``axis`` with length 1, so the result broadcasts against the input (always an array)."""
for _function in (entropy, kl_div):
    _function.__doc__ = (_function.__doc__ or "").replace("{axis_and_base}", _AXIS_AND_BASE)
