"""The report as Markdown (header, timing table with targets, notes, memory table) and as JSON.

The timing table has one block of rows per case: forward, fused, fused out=. Per row: the bytes in the
bound, the bound, xentcpp's median, time / bound with its performance target and a met mark, % of bus, the
peers' medians and xentcpp's speed-up over each, with the speed-up target where one applies. A target
in parentheses (on fused) is the fused roofline target, which is judged on fused out= (see roofline).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from . import THREADS
from .anomalies import anomalies
from .cases import OP_LABELS, OPS, PEER_OPS, PEERS
from .records import CaseResult, Entry, Report
from .roofline import MET, Outcome, all_outcomes, bytes_moved, evaluate, judged_on, shown_targets

MiB = 2**20

__all__ = ["fmt_bytes", "fmt_time", "markdown", "to_json"]


def fmt_time(seconds: float | None) -> str:
    """``1.23 s``, ``45.6 ms``, ``7.89 µs``; ``n/a`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def fmt_bytes(nbytes: float) -> str:
    """``263 MB``, ``2.69 kB``, ``120 B`` (decimal units, as the bandwidths in GB/s)."""
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} B"


def cell(entry: Entry | None) -> str:
    """The table cell of an entry: its median, or why there is none."""
    if entry is None:
        return "—"
    if entry.status == "ok":
        return fmt_time(entry.median_s)
    return {"n/a": "n/a", "skipped": "skip", "error": "err"}[entry.status]


def speedup_cell(item: CaseResult, peer: str, op: str) -> str:
    """``7.21×``, with the target and its mark when one applies: ``7.21× (≥ 6× ✓)``."""
    if op not in PEER_OPS:
        return "—"
    outcomes = evaluate(item, op, peer)
    value = item.speedup(peer, op)
    text = f"{value:.2f}×" if value is not None else "n/a"
    return text + "".join(f" ({o.target.text} {MET[o.met]})" for o in outcomes)


def case_rows(item: CaseResult) -> list[str]:
    """Markdown rows of one case: forward, fused, fused out= (against the fused bound and target), fused
    with the cache off."""
    rows = []
    for op in OPS:
        ratio, bound = item.ratio(op), item.bound[op]
        target_op = shown_targets(op)
        outcomes = [Outcome(o.target, ratio) for o in evaluate(item, target_op, "bound")] if target_op else []
        targets = " ".join(o.target.text for o in outcomes)
        marks = " ".join(MET[o.met] for o in outcomes)
        if target_op and op != judged_on(target_op, "bound") and outcomes:  # judged on fused out=; shown for comparison
            targets, marks = f"({targets})", f"({marks})"
        mine = item.entries["xentcpp"].get(op)
        peers = [item.entries[p].get(op) if op in PEER_OPS else None for p in PEERS]
        rate = item.bandwidth["read" if op == "forward" else "copy"]
        cells = [item.case.label if op == "forward" else "", OP_LABELS[op], fmt_bytes(bytes_moved(item.case, op)),
                 f"{rate / 1e9:.1f}", fmt_time(bound), cell(mine), f"{ratio:.3g}" if ratio else "n/a", targets, marks,
                 f"{100 / ratio:.0f}%" if ratio else "n/a", *(cell(p) for p in peers),
                 *(speedup_cell(item, p, op) for p in PEERS)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def results_table(report: Report) -> list[str]:
    """The timing table, one block of rows per case."""
    header = ["shape", "op", "bytes in bound", "bus (GB/s)", "roofline", "xentcpp", "time / roofline", "target", "met?",
              "% of bus", *PEERS, *(f"vs {p}" for p in PEERS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for item in report.cases:
        lines += case_rows(item)
    return lines


def labels_note(report: Report) -> str:
    """The bytes of the int64 labels of each case, which every op reads but no bound counts."""
    parts = []
    for item in report.cases:
        share = 100 * item.case.bytes_labels / item.case.bytes_logits
        parts.append(f"{item.case.label} {fmt_bytes(item.case.bytes_labels)} "
                     f"({f'{share:.2g}%' if share >= 0.01 else '< 0.01%'} of the logits)")
    return "Labels (int64, N·8 bytes; read by every op, not counted in the bounds): " + "; ".join(parts) + "."


def targets_lines(report: Report) -> list[str]:
    """Every performance target whose shape this run measured, with its value and mark."""
    outcomes = all_outcomes(report.cases)
    met = sum(o.met is True for o in outcomes)
    unknown = sum(o.met is None for o in outcomes)
    lines = [f"Performance targets on this run's shapes: {met} of {len(outcomes)} met"
             + (f", {unknown} without a time" if unknown else "")
             + " (time / roofline at most, speed-up at least; NumPy's ≥ 10× is read as applying to the four "
             "shapes of ≥ 64 MB of logits; the full run's shapes carry all the targets):", ""]
    for o in outcomes:
        t = o.target
        what = "time / roofline" if t.against == "bound" else f"vs {t.against}"
        lines.append(f"- {MET[o.met]} {t.case.label} {t.op}: {what} {o.value_text} (target {t.text})")
    return lines


def memory_lines(report: Report) -> list[str]:
    """The memory table in MiB."""
    case = report.settings.memory_case
    grad_mib = case.bytes_logits / MiB
    lines = [(f"Extra peak memory of one call on {case.label} logits ({grad_mib:.1f} MiB; "
             f"the gradient is the same size), fresh process per row:"), "",
             "| implementation | op | extra peak (MiB) | / gradient size | method |", "|---|---|---|---|---|"]
    for key, value in report.memory.items():
        impl, op = key.split("/")
        if "error" in value:
            lines.append(f"| {impl} | {OP_LABELS[op]} | {value['error']} | | |")
            continue
        extra = value["extra_bytes"] / MiB
        cells = [impl, OP_LABELS[op], f"{extra:.1f}", f"{extra / grad_mib:.2f}", value["method"]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def bandwidth_line(report: Report) -> str:
    """How the bus was measured, and the range of its medians over the cases."""
    bw, s = report.bandwidth, report.settings
    parts = [f"{name} {bw['min'][name] / 1e9:.1f}–{bw['max'][name] / 1e9:.1f} GB/s" for name in ("read", "copy")]
    return (f"- bus: xentcpp's probes (C++, {THREADS} threads, no arithmetic: read = OR of every byte, copy = "
            f"streaming stores) over {s.bandwidth_bytes / 2**20:g} MiB pre-faulted arrays, sampled in every case's "
            "rounds beside the implementations; each case's bound uses the probes' medians in its own rounds (column "
            "'bus'). Over the cases: " + ", ".join(parts) + "; copy counted STREAM-style, bytes read + written")


def header_lines(report: Report) -> list[str]:
    """Date, machine, versions, load, bandwidths, model and command."""
    meta, s = report.meta, report.settings
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return [
        "# xentcpp benchmarks", "",
        f"- date: {meta['date']}",
        (f"- machine: {meta['cpu']}, {meta['cpus']} logical CPUs ({meta['cpus_used']} used), "
         f"{meta['memory_gib']:.1f} GiB RAM, {meta['platform']}"),
        f"- versions: {versions}, SIMD target {meta['simd_target']}, Python {meta['python']}",
        (f"- threads: {THREADS} everywhere (OMP_NUM_THREADS, torch.set_num_threads, JAX on the CPU); "
         "NumPy's ufuncs use one"),
        (f"- load average (1 min) before / after (after includes this run): {meta['load_before']:.2f} / "
         f"{meta['load_after']:.2f}"),
        bandwidth_line(report),
        ("- roofline (as the targets define it): forward = N·C·itemsize / read (the logits only); fused = "
         "2·N·C·itemsize / copy, the time of a copy of the logits into a pre-faulted buffer; 'fused out=' has "
         "the fused bound. time / roofline = xentcpp's median / bound (target: at most); % of bus = bound / time"),
        (f"- timing: median of {s.rounds} interleaved rounds (order rotated), each sample ≥ "
         f"{s.min_sample_s * 1e3:g} ms (many calls for small shapes; times are per call); "
         "'fused' returns a new gradient (from the second call on, in the buffer the previous call's gradient "
         "left, which xentcpp keeps for reuse), 'fused, cache off' the same with that cache off (a fresh "
         "allocation and its page faults every call, as the peers' gradients), 'fused out=' writes into a "
         "pre-faulted buffer; 'vs X' = X's time / xentcpp's time (target: at least); ✓ met, ✗ not met, ? no "
         "time; the fused roofline target is judged on 'fused out=' (the bound is a copy into a pre-faulted "
         "buffer) and shown in parentheses on 'fused'"),
        (f"- peak RSS of the timing process: {meta['peak_rss_gib']:.2f} GiB; "
         f"wall time {meta['wall_s']:.0f} s"),
        f"- command: `{meta['command']}`", "",
    ]


def markdown(report: Report) -> str:
    """The whole report as Markdown."""
    notes = anomalies(report) or ["none"]
    lines = header_lines(report) + results_table(report) + ["", labels_note(report), ""]
    lines += targets_lines(report) + [""] + memory_lines(report)
    lines += ["", "Anomalies:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON data (raw samples and medians in seconds, bandwidths in bytes/s)."""
    return {
        "meta": report.meta,
        "settings": dataclasses.asdict(report.settings),
        "bandwidth_bytes_per_s": report.bandwidth,
        "roofline_model": {"forward": "N*C*itemsize / read", "fused": "2*N*C*itemsize / copy",
                           "fused_out": "2*N*C*itemsize / copy", "fused_cold": "2*N*C*itemsize / copy",
                           "copy": "STREAM-style: (bytes read + bytes written) / time"},
        "cases": [{
            "label": item.case.label, "rows": item.case.rows, "classes": item.case.classes,
            "dtype": item.case.dtype, "bytes_logits": item.case.bytes_logits,
            "bytes_labels": item.case.bytes_labels, "bus_bytes_per_s": item.bandwidth,
            "bus_samples_s": {name: entry.samples_s for name, entry in item.bus.items()}, "roofline_s": item.bound,
            "results": {impl: {op: vars(entry) for op, entry in ops.items()}
                        for impl, ops in item.entries.items()},
        } for item in report.cases],
        "targets": [{"case": o.target.case.label, "op": o.target.op, "against": o.target.against,
                     "limit": o.target.limit, "value": o.value, "met": o.met}
                    for o in all_outcomes(report.cases)],
        "memory": report.memory,
        "anomalies": anomalies(report),
    }
