"""Timing of zero-argument calls: back-to-back samples, calibration, and round-robin sampling.

A sample is ``number`` back-to-back calls with the garbage collector off (as :mod:`timeit` does), and
gives seconds per call. :func:`calibrate` warms a call up and picks ``number`` so that a sample lasts at
least a given time; :func:`sample_round_robin` then samples every call once per round, rotating the
order each round, so slow drifts of the machine touch every implementation alike.
"""

from __future__ import annotations

import gc
import math
import time
from typing import Any, Callable

MAX_NUMBER = 1_000_000

__all__ = ["MAX_NUMBER", "calibrate", "sample_round_robin", "time_calls"]


def time_calls(call: Callable[[], Any], number: int) -> float:
    """Seconds per call of ``number`` back-to-back calls, with the garbage collector off (as timeit)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            call()
        return (time.perf_counter() - start) / number
    finally:
        if enabled:
            gc.enable()


def calibrate(call: Callable[[], Any], min_sample_s: float) -> tuple[Any, int, float]:
    """Warms ``call`` up and picks how many calls make one sample of at least ``min_sample_s``.

    Returns
    -------
    result : object
        What the first call returned (compared with xentcpp's).
    number : int
        Calls per sample.
    per_call : float
        Seconds per call in the last calibration sample.
    """
    result = call()
    number, per_call = 1, time_calls(call, 1)
    while per_call * number < min_sample_s and number < MAX_NUMBER:
        number = min(MAX_NUMBER, max(2 * number, math.ceil(1.2 * min_sample_s / max(per_call, 1e-9))))
        per_call = time_calls(call, number)
    return result, number, per_call


def sample_round_robin(calls: dict[str, Callable[[], Any]], numbers: dict[str, int],
                       rounds: int) -> dict[str, list[float]]:
    """Samples every call once per round, rotating the order each round; returns seconds per call."""
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds if names else 0):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(time_calls(calls[name], numbers[name]))
    return samples
