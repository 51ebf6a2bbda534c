"""The memory bus, measured beside the kernels: xentcpp's own read and copy probes, sampled in the same
rounds as the implementations of each case.

The probes (``xentcpp._core.read_probe`` and ``copy_probe``, C++) pass over a pre-faulted array with the
kernels' threads and no arithmetic: the read ORs every byte, the copy streams its stores (as the
kernels' large gradients do; ``memcpy`` copied 40 % slower here); each thread takes one contiguous part.
The array is several times the last-level cache, so they measure the bus, not a cache. Rates are bytes
per second; a copy is counted as STREAM counts it, (bytes read + bytes written) / time, so copying B
bytes moves 2B.

Note: on a shared machine the bus drifts by tens of percent within minutes (39-75 GB/s read, seen
here on one day), so a bound from a separate measurement, or the best of many, says little about the
rounds a kernel was timed in: each case's bound comes from the probes' medians in its own rounds.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

# Bytes each probe moves, in units of the array size: a copy reads the source and writes the destination.
MOVED = {"read": 1, "copy": 2}

__all__ = ["MOVED", "BusProbe", "summarize_bandwidth"]


class BusProbe:
    """Two pre-faulted float32 arrays and the calls that read one and copy it into the other.

    Parameters
    ----------
    nbytes : int
        Size of each array.
    """

    def __init__(self, nbytes: int) -> None:
        from xentcpp import _core

        n = nbytes // 4
        self.nbytes = 4 * n
        src, dst = np.empty(n, np.float32), np.empty(n, np.float32)
        src.fill(1.0)  # faults every page in
        dst.fill(0.0)
        self.calls: dict[str, Callable[[], Any]] = {
            "read": lambda: _core.read_probe(src),
            "copy": lambda: _core.copy_probe(dst, src),
        }

    def rates(self, seconds: dict[str, float]) -> dict[str, float]:
        """Bytes per second of each probe, from its seconds per call."""
        return {name: MOVED[name] * self.nbytes / seconds[name] for name in self.calls}


def summarize_bandwidth(per_case: list[dict[str, float]]) -> dict[str, Any]:
    """The rates of every case, and per probe their minimum and maximum over the run."""
    names = per_case[0].keys() if per_case else ()
    return {"per_case": per_case,
            "min": {name: min(r[name] for r in per_case) for name in names},
            "max": {name: max(r[name] for r in per_case) for name in names}}
