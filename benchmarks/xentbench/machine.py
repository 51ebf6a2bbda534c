"""The machine a run is on: CPU model, CPU counts, RAM, platform; and pinning to ``THREADS`` CPUs.

JAX sizes its CPU thread pool from the CPUs the process may run on, and the probes' threads should
not spread over more cores than the libraries use: :func:`pin_cpus` restricts the process, and every
thread it has, to the first ``count`` CPUs it may use.
"""

from __future__ import annotations

import os
import platform
from typing import Any

__all__ = ["machine", "pin_cpus", "proc_field"]


def proc_field(path: str, name: str) -> str | None:
    """The value of the first ``name: value`` line of a /proc file, or None."""
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """CPU model, CPU counts, RAM and platform of this machine."""
    cpu = proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    memory = int((proc_field("/proc/meminfo", "MemTotal") or "0 kB").split()[0]) / 2**20
    used = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cpus": os.cpu_count() or 1, "cpus_used": used, "memory_gib": memory,
            "platform": platform.platform(), "python": platform.python_version()}


def pin_cpus(count: int) -> None:
    """Restricts every thread of this process (and those it starts) to ``count`` CPUs if it may use more.

    Parameters
    ----------
    count : int
        The number of CPUs to keep (the first ones the process may use).
    """
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) <= count:
        return
    cpus = sorted(os.sched_getaffinity(0))[:count]
    tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
    for task in tasks:
        os.sched_setaffinity(int(task), cpus)
