"""The roofline bounds and xentcpp's performance targets, and how a run measures up to them.

Bounds, as xentcpp's performance targets define them: forward reads the logits once, ``N*C*itemsize / read``
(the int64 labels are not counted); fused reads the logits and writes the gradient, no faster than a
copy of the logits, ``2*N*C*itemsize / copy`` with ``copy`` counted STREAM-style (read + written bytes).
``fused out=`` and ``fused, cache off`` have the fused bound, and the fused op's bound targets are judged
on ``fused out=``: the bound is a copy into a pre-faulted buffer, which ``fused out=`` matches. ``fused``
returns a new gradient whose buffer, from the second call on, is the one the previous call's gradient
left (xentcpp keeps it for reuse); ``fused, cache off`` pays the page faults of a fresh allocation every
call (the OS zeroing every page), as the peers do, which no bandwidth bound counts. The peer targets
are judged on ``fused``. Targets are of two kinds: ``time / bound`` at most a limit, and the
speed-up over a peer (``peer time / xentcpp time``) at least a limit. Nothing is asserted: a target is
marked met, not met, or unknown (no time).
"""

from __future__ import annotations

import dataclasses

from .cases import Case
from .records import CaseResult

MET = {True: "✓", False: "✗", None: "?"}

__all__ = ["MET", "TARGETS", "Outcome", "Target", "all_outcomes", "bounds", "bytes_moved", "evaluate",
           "judged_on", "shown_targets", "targets_for"]


def bounds(case: Case, bandwidth: dict[str, float]) -> dict[str, float]:
    """Roofline seconds of each op: ``N*C*itemsize / read`` for forward, ``2*N*C*itemsize / copy`` fused."""
    forward = case.bytes_logits / bandwidth["read"]
    fused = 2 * case.bytes_logits / bandwidth["copy"]
    return {"forward": forward, "fused": fused, "fused_out": fused, "fused_cold": fused}


def bytes_moved(case: Case, op: str) -> int:
    """Bytes in the bound of ``op``: the logits for forward, the logits and the gradient for fused."""
    return case.bytes_logits * (1 if op == "forward" else 2)


@dataclasses.dataclass(frozen=True)
class Target:
    """One performance target on one case and op (``forward`` or ``fused``).

    ``against == "bound"``: xentcpp time / bound must be at most ``limit``; otherwise ``against`` is a
    peer, and its time / xentcpp time must be at least ``limit``.
    """

    case: Case
    op: str
    against: str
    limit: float

    @property
    def text(self) -> str:
        """``≤ 1.18`` for a bound target, ``≥ 6×`` for a speed-up."""
        return f"≤ {self.limit:g}" if self.against == "bound" else f"≥ {self.limit:g}×"

    def met(self, value: float | None) -> bool | None:
        """Whether ``value`` (a time / bound, or a speed-up) meets the target; None without a value."""
        if value is None:
            return None
        return value <= self.limit if self.against == "bound" else value >= self.limit


def _performance_targets() -> tuple[Target, ...]:
    """xentcpp's performance targets, one :class:`Target` per (case, op, bound or peer)."""
    three_large = (Case(2_048, 32_000), Case(512, 128_256), Case(32_768, 1_000))
    tall = Case(2_000_000, 10)
    targets = []
    for case in three_large:
        targets += [Target(case, "forward", "bound", 1.18), Target(case, "fused", "bound", 1.25),
                    Target(case, "forward", "torch", 6), Target(case, "forward", "jax", 2),
                    Target(case, "fused", "torch", 8), Target(case, "fused", "jax", 3)]
    for op in ("forward", "fused"):
        targets += [Target(tall, op, "bound", 2.0), Target(tall, op, "torch", 5), Target(tall, op, "jax", 3)]
    targets += [Target(Case(1, 4_000_000), "fused", "bound", 1.43),
                Target(Case(4_096, 1_000, "float64"), "fused", "bound", 1.25),
                Target(Case(32, 10), "fused", "torch", 6), Target(Case(32, 10), "fused", "jax", 2.5)]
    # "Every large shape >= 10x NumPy": read here as the shapes of >= 64 MB of logits, forward and fused.
    targets += [Target(case, op, "numpy", 10) for case in (tall, *three_large) for op in ("forward", "fused")]
    return tuple(targets)


TARGETS = _performance_targets()


def targets_for(case: Case, op: str, against: str | None = None) -> list[Target]:
    """The targets of ``case`` and ``op`` (``fused_out`` and ``fused_cold`` have none), all or only those
    ``against``."""
    return [t for t in TARGETS if t.case == case and t.op == op and against in (None, t.against)]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A target and the value measured for it (None when there is no time)."""

    target: Target
    value: float | None

    @property
    def met(self) -> bool | None:
        """Whether the target is met; None when unknown."""
        return self.target.met(self.value)

    @property
    def value_text(self) -> str:
        """The value as the table shows it: ``1.07`` or ``7.21×``; ``n/a`` when missing."""
        if self.value is None:
            return "n/a"
        return f"{self.value:.3g}" if self.target.against == "bound" else f"{self.value:.2f}×"


def shown_targets(op: str) -> str | None:
    """The op whose bound targets the row of ``op`` shows: ``fused out=`` shows the fused op's (it is
    judged on them), ``fused, cache off`` none."""
    return {"forward": "forward", "fused": "fused", "fused_out": "fused"}.get(op)


def judged_on(op: str, against: str) -> str:
    """The op whose time a target of ``op`` is judged on: ``fused_out`` for the fused op's bound."""
    return "fused_out" if (op, against) == ("fused", "bound") else op


def evaluate(result: CaseResult, op: str, against: str) -> list[Outcome]:
    """The outcomes of the targets of one case, op and bound or peer (an empty list when none applies)."""
    value = result.ratio(judged_on(op, against)) if against == "bound" else result.speedup(against, op)
    return [Outcome(t, value) for t in targets_for(result.case, op, against)]


def all_outcomes(results: list[CaseResult]) -> list[Outcome]:
    """The outcome of every target whose case this run measured, in the order of the cases."""
    return [outcome for result in results for op in ("forward", "fused")
            for against in ("bound", "numpy", "torch", "jax") for outcome in evaluate(result, op, against)]
