"""Extra peak memory of one call, each (implementation, operation) in a fresh interpreter.

The parent runs ``python -m xentbench.peak_rss SPEC`` per row and reads one JSON line back. The child
makes the inputs, warms the call up (then frees the buffer xentcpp keeps for reuse, so that the
measured call allocates), resets the peak RSS (``/proc/self/clear_refs``), makes one call and keeps
its result alive, and reports ``VmHWM`` minus the RSS before the call. Without ``clear_refs`` it makes
no warm-up and reports the growth of ``ru_maxrss`` over the call.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import THREADS
from .cases import IMPLS, PEER_OPS, Case, Settings, make_inputs
from .machine import pin_cpus
from .peers import FACTORIES

__all__ = ["measure_peak_rss", "peak_rss_child", "peak_rss_table"]


def rss_bytes(field_name: str) -> int | None:
    """``VmRSS`` or ``VmHWM`` of this process from ``/proc/self/status``, in bytes (None without /proc)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Resets this process's peak RSS to its current RSS (Linux ``clear_refs``); False when impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return rss_bytes("VmHWM") is not None
    except OSError:
        return False


def peak_rss_child(impl: str, op: str, case: Case) -> dict[str, Any]:
    """Extra peak memory of one call, measured in this (fresh) process; see the module docstring."""
    x, y = make_inputs(case)
    if reset_peak_rss():
        FACTORIES[impl](x, y)[op]()  # warm-up (JAX compiles); its state, e.g. torch's x.grad, is dropped
        gc.collect()
        if impl == "xentcpp":  # the warm-up's gradient would be reused: measure a call that allocates
            import xentcpp

            xentcpp.empty_cache()
        call = FACTORIES[impl](x, y)[op]
        reset_peak_rss()
        method, before = "VmHWM after clear_refs", rss_bytes("VmHWM") or 0
        result = call()
        peak = rss_bytes("VmHWM") or 0
    else:
        call = FACTORIES[impl](x, y)[op]
        method = "ru_maxrss, first call (no warm-up)"
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result = call()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    del result
    return {"extra_bytes": peak - before, "baseline_bytes": before, "method": method}


def measure_peak_rss(impl: str, op: str, case: Case, timeout_s: float = 600.0) -> dict[str, Any]:
    """Runs :func:`peak_rss_child` in a fresh interpreter; returns its result or an ``error``."""
    spec = json.dumps({"impl": impl, "op": op, "rows": case.rows, "classes": case.classes,
                       "dtype": case.dtype})
    package_parent = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "xentbench.peak_rss", spec]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False,
                              env={**os.environ, "PYTHONPATH": path})
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def peak_rss_table(settings: Settings, versions: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Extra peak memory of every (implementation, op) of ``settings.memory_impls`` that can be imported."""
    results: dict[str, dict[str, Any]] = {}
    for impl in IMPLS:
        ops = PEER_OPS + ("fused_out",) if impl == "xentcpp" else PEER_OPS  # fused_cold: as fused, measured cold
        for op in ops:
            key = f"{impl}/{op}"
            if impl not in settings.memory_impls:
                results[key] = {"error": "not measured in --quick"}
            elif versions[impl].startswith("n/a"):
                results[key] = {"error": "n/a"}
            else:
                results[key] = measure_peak_rss(impl, op, settings.memory_case)
    return results


if __name__ == "__main__":
    pin_cpus(THREADS)
    request = json.loads(sys.argv[1])
    print(json.dumps(peak_rss_child(request["impl"], request["op"],
                                  Case(request["rows"], request["classes"], request["dtype"]))))
