"""Deterministic logits and labels for the Dask benchmark, made chunk by chunk at about the speed of a copy,
the same in the Dask graph (this module is sent to the workers) and in the plain loop.

Element ``(i, c)`` of the logits is ``table[(i * STEP + c) % PERIOD]``, a fixed table of normal numbers
(times 3, as trained logits spread): a function of the position alone, so any chunk of any chunking
holds the same values, and a chunk is one strided copy of a window of the table (extended past PERIOD so
that no window wraps), whatever the whole array's size (a 200 000 x 32 000 float32 array, 25.6 GB, never
exists at once).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["chunk", "head", "hidden", "hidden_chunk", "labels", "labels_chunk", "logits_chunk"]

PERIOD = 1 << 23  # 32 MiB of float32
EXTRA = 1 << 22  # the table runs on this far past PERIOD: a chunk's window may span up to this many entries
STEP = 1013  # a row's shift along the table: rows differ, windows overlap (the table stays in cache)


@functools.lru_cache(maxsize=1)
def table() -> np.ndarray:
    """The table, made once per process."""
    values = np.random.default_rng(20261123).standard_normal(PERIOD, dtype=np.float32) * np.float32(3)
    return np.concatenate([values, values[:EXTRA]])


def chunk(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """The logits of rows [r0, r1) and classes [c0, c1): a new C-contiguous float32 array."""
    rows, width = r1 - r0, c1 - c0
    span = (rows - 1) * STEP + width
    if span > EXTRA:
        raise ValueError(f"a chunk of {rows} x {width} spans {span} table entries, more than {EXTRA}: use fewer rows")
    t = table()
    offset = (r0 * STEP + c0) % PERIOD
    return np.array(as_strided(t[offset:], shape=(rows, width), strides=(STEP * t.itemsize, t.itemsize)))


def labels(r0: int, r1: int, classes: int) -> np.ndarray:
    """The class indices of rows [r0, r1)."""
    return (np.arange(r0, r1, dtype=np.int64) * 7919 + 13) % classes


def logits_chunk(block_info: Any = None) -> np.ndarray:
    """``chunk`` at the position Dask asks for (a map_blocks function without inputs)."""
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    return chunk(r0, r1, c0, c1)


def labels_chunk(classes: int, block_info: Any = None) -> np.ndarray:
    (r0, r1), = block_info[None]["array-location"]
    return labels(r0, r1, classes)


def hidden(r0: int, r1: int, features: int) -> np.ndarray:
    """Hidden states of rows [r0, r1) for a linear layer (``features`` of them, standard deviation 1): the
    same strided copy, scaled."""
    return chunk(r0, r1, 0, features) * np.float32(1 / 3)


def hidden_chunk(features: int, block_info: Any = None) -> np.ndarray:
    (r0, r1), _ = block_info[None]["array-location"]
    return hidden(r0, r1, features)


def head(classes: int, features: int) -> np.ndarray:
    """A linear layer's weight ``(classes, features)`` whose logits spread as ``chunk``'s (standard deviation 3)."""
    w = np.random.default_rng(7).standard_normal((classes, features), dtype=np.float32)
    return w * np.float32(3 / np.sqrt(features))
