"""One run: every case timed interleaved with the bus probes (with agreement checks), then memory.

:func:`run_case` builds the calls of every implementation on one case, warms and calibrates each (the
first result of a peer is compared with xentcpp's), skips a peer whose rounds would exceed the budget,
samples the rest round-robin together with the bus probes, and keeps the medians. :func:`run` computes
each case's bounds from the probes' medians in that case's rounds, and measures memory.
"""

from __future__ import annotations

import datetime
import gc
import math
import os
import resource
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .bandwidth import BusProbe, summarize_bandwidth
from .cases import IMPLS, PEER_OPS, Case, Settings, make_inputs
from .machine import machine
from .peak_rss import peak_rss_table
from .peers import FACTORIES, Call, free_peer_caches, library_versions, simd_target
from .records import CaseResult, Entry, Report
from .roofline import bounds
from .timing import calibrate, sample_round_robin

__all__ = ["disagreement", "run", "run_case"]


def as_loss_and_grad(result: Any) -> tuple[float, np.ndarray | None]:
    """A call's result as ``(float loss, NumPy gradient or None)``, whatever the library."""
    if isinstance(result, tuple):
        return float(result[0]), np.asarray(result[1])
    return float(result), None


def disagreement(result: Any, reference: Any) -> dict[str, float]:
    """Relative loss error and gradient error (max abs difference / max abs value) against ``reference``."""
    loss, grad = as_loss_and_grad(result)
    ref_loss, ref_grad = as_loss_and_grad(reference)
    errors = {"loss": abs(loss - ref_loss) / max(abs(ref_loss), 1e-30)}
    if grad is not None and ref_grad is not None:
        scale = max(float(np.max(np.abs(ref_grad))), 1e-30)
        errors["grad"] = float(np.max(np.abs(grad.astype(np.float64) - ref_grad))) / scale
    return errors


def check_against(references: dict[str, Any], impl: str, op: str, result: Any) -> dict[str, float]:
    """Keeps xentcpp's results as references; returns a peer's disagreement with the one of its op."""
    if impl == "xentcpp":
        references[op] = result
        return {}
    return disagreement(result, references[op]) if op in references else {}


def build_calls(x: np.ndarray, y: np.ndarray, impls: Sequence[str],
                entries: dict[str, dict[str, Entry]]) -> dict[str, Call]:
    """The calls of every importable implementation, keyed ``impl/op``; failures go into ``entries``."""
    calls: dict[str, Call] = {}
    for impl in impls:
        try:
            for op, call in FACTORIES[impl](x, y).items():
                calls[f"{impl}/{op}"] = call
        except ImportError as err:
            entries[impl] = {op: Entry("n/a", note=str(err)) for op in PEER_OPS}
        except Exception as err:  # noqa: BLE001 - a peer failing on this case must not stop the run
            entries[impl] = {op: Entry("error", note=f"{type(err).__name__}: {err}") for op in PEER_OPS}
    return calls


def run_case(case: Case, settings: Settings, impls: Sequence[str],
             probe: BusProbe) -> tuple[dict[str, dict[str, Entry]], dict[str, Entry]]:
    """Times every implementation's forward and fused call on ``case`` and the bus probes, interleaved;
    frees the inputs. Returns the entries per implementation and op, and the probes' entries."""
    x, y = make_inputs(case)
    entries: dict[str, dict[str, Entry]] = {impl: {} for impl in impls}
    entries["bus"] = {}
    calls = build_calls(x, y, impls, entries)
    calls.update({f"bus/{name}": call for name, call in probe.calls.items()})
    numbers: dict[str, int] = {}
    references: dict[str, Any] = {}
    for key in list(calls):
        impl, op = key.split("/")
        try:
            result, number, per_call = calibrate(calls[key], settings.min_sample_s)
        except Exception as err:  # noqa: BLE001 - reported as an anomaly, the others still run
            entries[impl][op] = Entry("error", note=f"{type(err).__name__}: {err}")
            del calls[key]
            continue
        errors = check_against(references, impl, op, result) if impl != "bus" else {}
        del result
        if impl not in ("xentcpp", "bus") and per_call * number * settings.rounds > settings.budget_s:
            note = f"{per_call:.3g} s per call: {settings.rounds} rounds exceed {settings.budget_s:g} s"
            entries[impl][op] = Entry("skipped", note=note, errors=errors)
            del calls[key]
            continue
        numbers[key] = number
        entries[impl][op] = Entry("ok", number=number, errors=errors)
    samples = sample_round_robin(calls, numbers, settings.rounds)
    for key, values in samples.items():
        impl, op = key.split("/")
        entries[impl][op].samples_s = values
        entries[impl][op].median_s = float(np.median(values))
    del calls, references, x, y
    gc.collect()
    return entries, entries.pop("bus")


def run(settings: Settings, command: str) -> Report:
    """Times every case beside the bus probes, computes each case's bounds, then measures memory."""
    start = time.perf_counter()
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), **machine(), "command": command,
            "load_before": os.getloadavg()[0], "versions": library_versions(), "simd_target": simd_target()}
    impls = [impl for impl in IMPLS if not meta["versions"][impl].startswith("n/a")]
    probe = BusProbe(settings.bandwidth_bytes)
    cases: list[CaseResult] = []
    for case in settings.cases:
        print(f"{case.label}...", flush=True)
        entries, bus = run_case(case, settings, impls, probe)
        for impl in IMPLS:
            if impl not in impls:
                entries[impl] = {op: Entry("n/a", note=meta["versions"][impl]) for op in PEER_OPS}
        item = CaseResult(case, entries, bus=bus)
        item.bandwidth = probe.rates({name: bus[name].median_s or math.nan for name in probe.calls})
        item.bound = bounds(case, item.bandwidth)
        cases.append(item)
        free_peer_caches()
    del probe
    bandwidth = summarize_bandwidth([item.bandwidth for item in cases])
    meta["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("memory (fresh processes)...", flush=True)
    memory = peak_rss_table(settings, meta["versions"])
    meta["load_after"] = os.getloadavg()[0]
    meta["wall_s"] = time.perf_counter() - start
    return Report(meta, settings, cases, memory, bandwidth)
