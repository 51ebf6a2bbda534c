"""The records a run produces: one :class:`Entry` per (implementation, operation) and case, one
:class:`CaseResult` per case, and the :class:`Report` of the whole run that the writers read.

They hold numbers only (seconds, bytes per second, bytes); the formatting is in :mod:`xentbench.report`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .cases import Case, Settings

__all__ = ["CaseResult", "Entry", "Report", "speedup"]


@dataclasses.dataclass
class Entry:
    """The outcome of one (implementation, operation) on one case."""

    status: str  # "ok", "n/a", "skipped", "error"
    median_s: float | None = None
    samples_s: list[float] = dataclasses.field(default_factory=list)
    number: int = 0
    note: str = ""
    errors: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class CaseResult:
    """Every entry of one case (``entries[impl][op]``), the bus probes' entries (``bus[name]``), the
    bandwidths they give (bytes/s) and the roofline bound per op, in seconds."""

    case: Case
    entries: dict[str, dict[str, Entry]]
    bus: dict[str, Entry] = dataclasses.field(default_factory=dict)
    bandwidth: dict[str, float] = dataclasses.field(default_factory=dict)
    bound: dict[str, float] = dataclasses.field(default_factory=dict)

    def ratio(self, op: str) -> float | None:
        """xentcpp time / bound of ``op``, or None when xentcpp has no time."""
        entry = self.entries["xentcpp"].get(op)
        if entry is None or entry.median_s is None or op not in self.bound:
            return None
        return entry.median_s / self.bound[op]

    def speedup(self, peer: str, op: str) -> float | None:
        """``peer`` time / xentcpp time of ``op``, or None when either is missing."""
        return speedup(self.entries.get(peer, {}).get(op), self.entries["xentcpp"].get(op))


@dataclasses.dataclass
class Report:
    """Everything one run measured; ``bandwidth`` is the output of ``summarize_bandwidth``."""

    meta: dict[str, Any]
    settings: Settings
    cases: list[CaseResult]
    memory: dict[str, dict[str, Any]]
    bandwidth: dict[str, Any]


def speedup(peer: Entry | None, mine: Entry | None) -> float | None:
    """``peer_time / xentcpp_time``, or None when either is missing."""
    if peer is None or mine is None or peer.median_s is None or mine.median_s is None:
        return None
    return peer.median_s / mine.median_s
