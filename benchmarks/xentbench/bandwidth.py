"""Memory bandwidth of this machine, measured with ``THREADS`` Python threads on pre-faulted arrays.

Each thread works on one contiguous slice; NumPy releases the GIL inside reductions and copies of
numeric arrays, so the threads run together. Rates are bytes per second, best of several repeats as
STREAM reports: read (the faster of two reductions), write (a scalar fill) and copy, counted as STREAM
counts it, (bytes read + bytes written) / time, so copying B bytes moves 2B.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

import numpy as np

# Bytes each kernel moves, in units of the array size: a copy reads the source and writes the destination.
MOVED = {"read_sum": 1, "read_or": 1, "write": 1, "copy": 2}

__all__ = ["MOVED", "BandwidthMeter", "run_threads", "summarize_bandwidth"]


def run_threads(work: Callable[[int], Any], threads: int) -> float:
    """Runs ``work(i)`` for ``i < threads`` on as many threads, started together; returns wall seconds."""
    barrier = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        barrier.wait()
        work(i)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start


class BandwidthMeter:
    """Times reading, writing and copying two pre-faulted float32 arrays with several Python threads.

    Parameters
    ----------
    nbytes : int
        Size of each array (the source, and the destination).
    threads : int
        Number of threads.
    """

    def __init__(self, nbytes: int, threads: int) -> None:
        n = nbytes // 4
        self.nbytes, self.threads = 4 * n, threads
        src, dst = np.empty(n, np.float32), np.empty(n, np.float32)
        src.fill(1.0)  # faults every page in
        dst.fill(0.0)
        cuts = np.linspace(0, n, threads + 1).astype(int)
        srcs = [src[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
        dsts = [dst[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
        self.kernels: dict[str, Callable[[int], Any]] = {
            "read_sum": lambda i: np.add.reduce(srcs[i]),
            "read_or": lambda i: np.bitwise_or.reduce(srcs[i].view(np.uint64)),
            "write": lambda i: np.copyto(dsts[i], np.float32(2.0)),
            "copy": lambda i: np.copyto(dsts[i], srcs[i]),
        }

    def measure(self, repeats: int) -> dict[str, float]:
        """Best bandwidths (bytes/s) over ``repeats`` interleaved repeats.

        Returns
        -------
        dict
            ``read``: the faster of ``read_sum`` (``np.add.reduce`` of float32, whose pairwise sum can be
            compute bound on one core) and ``read_or`` (``np.bitwise_or.reduce`` of a uint64 view);
            ``write`` (``np.copyto`` of a scalar); ``copy`` (``np.copyto`` of the array: bytes read plus
            bytes written per second, twice the destination's bytes per second).
        """
        best = dict.fromkeys(self.kernels, math.inf)
        for _ in range(repeats):
            for name, kernel in self.kernels.items():
                best[name] = min(best[name], run_threads(kernel, self.threads))
        rates = {name: MOVED[name] * self.nbytes / seconds for name, seconds in best.items()}
        rates["read"] = max(rates["read_sum"], rates["read_or"])
        return rates


def summarize_bandwidth(measurements: list[dict[str, float]]) -> dict[str, Any]:
    """The measurements, and per kernel their minimum and maximum; the maximum is used (noise only slows)."""
    names = measurements[0].keys()
    return {"measurements": measurements,
            "min": {name: min(m[name] for m in measurements) for name in names},
            "used": {name: max(m[name] for m in measurements) for name in names}}
