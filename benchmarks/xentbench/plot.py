"""The figure of a run: xentcpp's time / roofline per case and op, then its speed-up over each peer,
forward and fused; xentcpp's performance targets are black ticks on the bars they apply to. Log scales; the title
gives the version, SIMD target, machine, threads, bandwidths and date. Needs matplotlib (optional).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import THREADS
from .cases import OP_LABELS, OPS, PEER_OPS, PEERS
from .records import CaseResult, Report
from .roofline import MET, Target, judged_on, shown_targets, targets_for

__all__ = ["plot"]


def plot(report: Report, path: Path) -> None:
    """Three panels: xentcpp time / roofline, then speed-up vs each peer, forward and fused."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = report.cases
    pos = np.arange(len(items))
    fig, axes = plt.subplots(3, 1, figsize=(13, 14), constrained_layout=True)
    _bars(axes[0], pos, {OP_LABELS[op]: [_bound_point(item, op) for item in items] for op in OPS}, "{:.2f}")
    axes[0].set_ylabel("xentcpp time / roofline\n(1 = at the memory bound)")
    axes[0].set_title("xentcpp vs the bandwidth roofline (lower is better)\nthe fused target is judged on "
                      "fused out=, whose pre-faulted output matches the bound's copy")
    for ax, op in zip(axes[1:], PEER_OPS):
        series = {f"vs {p}": [(item.speedup(p, op), targets_for(item.case, op, p)) for item in items]
                  for p in PEERS}
        _bars(ax, pos, series, "{:.2g}")
        ax.set_ylabel("peer time / xentcpp time\n(above 1: xentcpp faster)")
        ax.set_title(f"Speed-up of xentcpp, {OP_LABELS[op]} (higher is better)")
    for ax in axes:
        ax.axhline(1.0, color="black", lw=1, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(pos, [item.case.short for item in items], fontsize=11)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=10)
    meta, low, high = report.meta, report.bandwidth["min"], report.bandwidth["max"]
    fig.suptitle(f"xentcpp {meta['versions']['xentcpp']} ({meta['simd_target']}) vs NumPy, PyTorch, JAX — "
                 f"{meta['date']}\n{meta['cpu']}, {THREADS} threads; bus measured beside each case: read "
                 f"{low['read'] / 1e9:.0f}–{high['read'] / 1e9:.0f} GB/s, copy {low['copy'] / 1e9:.0f}–"
                 f"{high['copy'] / 1e9:.0f} GB/s (read + written)\nbounds: forward N·C·itemsize / read, "
                 "fused 2·N·C·itemsize / copy", fontsize=12)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bound_point(item: CaseResult, op: str) -> tuple[float | None, list[Target]]:
    """xentcpp time / roofline of one case and op, and the targets judged on it (fused out= has fused's)."""
    target_op = shown_targets(op)
    if target_op is None:
        return item.ratio(op), []
    judged = judged_on(target_op, "bound") == op
    return item.ratio(op), targets_for(item.case, target_op, "bound") if judged else []


def _bars(ax: Any, pos: np.ndarray, series: dict[str, list[tuple[float | None, list[Target]]]],
          fmt: str) -> None:
    """Grouped bars, one group per case, labelled with their values; a target is a black tick on its bar,
    and the label then ends in ✓ (green) or ✗ (red)."""
    width = 0.8 / len(series)
    ticked = False
    for k, (name, points) in enumerate(series.items()):
        xs = pos - 0.4 + width * (k + 0.5)
        ax.bar(xs, [v if v else np.nan for v, _ in points], width, label=name)
        for x_, (v, targets) in zip(xs, points):
            met = [t.met(v) for t in targets]
            color = "black" if not met or None in met else ("darkgreen" if all(met) else "firebrick")
            ax.annotate((fmt.format(v) if v else "n/a") + "".join(" " + MET[m] for m in met),
                        (x_, v if v else 1.0), ha="center", va="bottom", fontsize=8, color=color,
                        xytext=(0, 2), textcoords="offset points", rotation=90, zorder=4,
                        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.3})
            for t in targets:
                ax.hlines(t.limit, x_ - width / 2, x_ + width / 2, colors="black", lw=2, zorder=3,
                          label=None if ticked else "performance target")
                ticked = True
    known = [v for points in series.values() for v, _ in points if v] + [1.0]
    known += [t.limit for points in series.values() for _, targets in points for t in targets]
    ax.set_ylim(min(known) / 1.5, max(known) * 5)  # room for the labels above the bars
