"""The buffer xentcpp keeps for reuse: results of 4 MiB or more (gradients, softmax outputs, per-element
losses) get a buffer of their own that, when the array dies, is kept for the next result of the same
size instead of going back to the operating system.

Why: a new large array costs the operating system's zeroing of every page on first touch, which takes
as long as the fused kernel that fills it (5 ms for the 131 MB gradient of 32 768 x 1 000 on the
benchmark machine). A training loop asks for a gradient of the same size every step and drops the
previous one, so from the second step on it gets warm memory.

At most one buffer is kept idle, and none larger than the limit (1 GiB unless set): a result of another
size frees it first. :func:`empty_cache` frees it now; ``set_cache_limit(0)`` turns the cache off.
"""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["empty_cache", "set_cache_limit"]


def empty_cache() -> int:
    """Frees the idle buffer xentcpp keeps for reuse, if there is one.

    Returns
    -------
    int
        The number of bytes freed (0 when nothing was kept).

    Examples
    --------
    >>> import numpy as np, xentcpp as xc
    >>> g = xc.cross_entropy_grad(np.zeros((2048, 1024), np.float32), np.zeros(2048, np.int64))
    >>> del g  # its 8 MiB buffer is kept for the next result of that size
    >>> xc.empty_cache()
    8388608
    >>> xc.empty_cache()
    0
    """
    return int(_core.empty_cache())


def set_cache_limit(nbytes: int) -> int:
    """Sets the size of the largest buffer kept for reuse; 0 keeps none.

    Parameters
    ----------
    nbytes : int
        The limit in bytes, at least 0. An idle buffer larger than it is freed now.

    Returns
    -------
    int
        The previous limit, so that it can be restored.

    Raises
    ------
    TypeError
        ``nbytes`` is not an integer.
    ValueError
        ``nbytes`` is negative.

    Examples
    --------
    >>> import xentcpp as xc
    >>> previous = xc.set_cache_limit(0)  # keep no buffer from now on
    >>> xc.set_cache_limit(previous)  # and back
    0
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)):
        raise TypeError(f"the cache limit must be an int number of bytes, got {type(nbytes).__name__}")
    if nbytes < 0:
        raise ValueError(f"the cache limit must be at least 0 bytes, got {nbytes}")
    return int(_core.set_cache_limit(min(int(nbytes), 2**63 - 1)))
