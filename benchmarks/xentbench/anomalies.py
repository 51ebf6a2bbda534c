"""What a reader of the report should not miss: missing peers, errors and skips, disagreements with
xentcpp, times under their bound, a ``fused out=`` slower than ``fused``, noisy samples, a busy machine
and bandwidths that drifted during the run. Each is one line of text; none stops the run.
"""

from __future__ import annotations

from .cases import OP_LABELS
from .records import Report

__all__ = ["anomalies"]


def anomalies(report: Report) -> list[str]:
    """Everything a reader should not miss, one line each."""
    notes = [f"{impl}: {version} (its columns say n/a)"
             for impl, version in report.meta["versions"].items() if version.startswith("n/a")]
    for item in report.cases:
        for impl, ops in item.entries.items():
            for op, entry in ops.items():
                where = f"{item.case.label} {impl} {OP_LABELS[op]}"
                if entry.status not in ("ok", "n/a"):
                    notes.append(f"{where}: {entry.status} ({entry.note})")
                tolerance = 1e-3 if item.case.dtype == "float32" else 1e-9
                bad = {k: v for k, v in entry.errors.items() if not v <= tolerance}
                if bad:
                    notes.append(f"{where}: disagrees with xentcpp: "
                                 + ", ".join(f"{k} {v:.2g}" for k, v in bad.items()))
        for op in item.bound:
            ratio = item.ratio(op)
            if ratio is not None and ratio < 1.0:
                notes.append(f"{item.case.label} xentcpp {OP_LABELS[op]}: {ratio:.3g} of its bound: it got "
                             "more bandwidth than the measurement")
        fused, fused_out = item.ratio("fused"), item.ratio("fused_out")
        if fused and fused_out and fused_out > 1.5 * fused:
            notes.append(f"{item.case.label} xentcpp fused out= is {fused_out / fused:.1f}× slower than fused "
                         "(which allocates its gradient)")
    noisy = [f"{item.case.short.replace(chr(10), ' ')} {impl} {OP_LABELS[op]} "
             f"{max(entry.samples_s) / min(entry.samples_s):.1f}×"
             for item in report.cases for impl, ops in item.entries.items() for op, entry in ops.items()
             if entry.samples_s and max(entry.samples_s) > 2 * min(entry.samples_s)]
    if noisy:
        notes.append("samples spread (slowest / fastest) over 2×: " + ", ".join(noisy))
    meta, bw = report.meta, report.bandwidth
    if meta["load_before"] > 0.5 * meta["cpus"]:
        notes.append(f"load average {meta['load_before']:.1f} on {meta['cpus']} CPUs before the run: other "
                     "processes were running, times are noisy")
    for name in ("read", "copy"):
        low, high = bw["min"].get(name), bw["max"].get(name)
        if low and high and low < 0.8 * high:
            notes.append(f"{name} bandwidth varied by more than 20% between the cases "
                         f"({low / 1e9:.1f}–{high / 1e9:.1f} GB/s; each case's bound uses its own rounds')")
    return notes
