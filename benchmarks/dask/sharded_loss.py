"""The mean cross-entropy of logits larger than memory, on a Dask LocalCluster, against a plain loop.

The logits (by default 200 000 x 32 000 float32: 25.6 GB) are made chunk by chunk inside the graph
(logits_source.py: a strided copy of a fixed table, sent to the workers with ``Client.upload_file``) and
reduced to their mean loss by ``xentcpp.dask.cross_entropy`` on a LocalCluster of single-threaded worker
processes, each with a memory limit. The plain loop makes the same row chunks (all classes) one after
the other in this process and adds their ``xentcpp.cross_entropy(..., reduction="sum")``.

Reported: the time of each, interleaved round by round (medians), the throughput (logits' GB/s) and its
ratio to the plain loop's; each worker's peak resident memory (VmHWM, reset before each run) above its
idle size, in chunks; bytes spilled to disk (Dask's own counters); the load average around the run.

    python benchmarks/dask/sharded_loss.py                         # the full size (minutes)
    python benchmarks/dask/sharded_loss.py --rows 20000            # 2.56 GB
    python benchmarks/dask/sharded_loss.py --class-chunk 8000      # the vocabulary split in 4 too
    python benchmarks/dask/sharded_loss.py --hidden 512 --rows 20000   # an output layer over hidden states

With ``--hidden H`` the graph holds hidden states ``(rows, H)`` instead of logits, reduced through a linear
layer of ``classes x H`` by ``xentcpp.dask.linear_cross_entropy``, and the plain loop calls
``xentcpp.linear_cross_entropy`` on the same row chunks: no logits exist, in either. Throughput is then
counted in the logits' bytes that were never made.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # xentbench, for the machine's description

import dask.array as da  # noqa: E402
import logits_source  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from xentbench.machine import machine  # noqa: E402

import xentcpp as xc  # noqa: E402
import xentcpp.dask as xd  # noqa: E402

__all__ = ["main"]


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--classes", type=int, default=32_000)
    parser.add_argument("--row-chunk", type=int, default=1000, help="rows per chunk (default 1000: 128 MB)")
    parser.add_argument("--class-chunk", type=int, default=None, help="classes per chunk (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default=None,
                        help="per worker (default: 12 chunks, so that 4 chunks stay below Dask's 60%% spill target)")
    parser.add_argument("--hidden", type=int, default=0,
                        help="features of hidden states reduced through a linear layer (default 0: logits)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here too")
    return parser.parse_args(argv)


def plain_loop(rows: int, classes: int, row_chunk: int, head: np.ndarray | None = None) -> float:
    """The mean loss from the same row chunks, made and reduced one after the other in this process (through
    the linear layer ``head`` when given)."""
    total = 0.0
    for r0 in range(0, rows, row_chunk):
        r1 = min(rows, r0 + row_chunk)
        labels = logits_source.labels(r0, r1, classes)
        if head is None:
            total += xc.cross_entropy(logits_source.chunk(r0, r1, 0, classes), labels, reduction="sum")
        else:
            total += xc.linear_cross_entropy(logits_source.hidden(r0, r1, head.shape[1]), head, labels,
                                             reduction="sum")
    return total / rows


def loss_graph(rows: int, classes: int, row_chunk: int, class_chunk: int, head: np.ndarray | None = None) -> Any:
    """The lazy mean loss: of logits chunked (row_chunk, class_chunk), or of hidden states through ``head``."""
    row_chunks = da.core.normalize_chunks((row_chunk,), (rows,))
    y = da.map_blocks(logits_source.labels_chunk, classes, chunks=row_chunks, dtype=np.int64,
                      meta=np.empty((0,), np.int64))
    if head is not None:
        h = da.map_blocks(logits_source.hidden_chunk, head.shape[1], chunks=row_chunks + ((head.shape[1],),),
                          dtype=np.float32, meta=np.empty((0, 0), np.float32))
        return xd.linear_cross_entropy(h, head, y)
    chunks = da.core.normalize_chunks((row_chunk, class_chunk), (rows, classes))
    x = da.map_blocks(logits_source.logits_chunk, chunks=chunks, dtype=np.float32, meta=np.empty((0, 0), np.float32))
    return xd.cross_entropy(x, y)


def _reset_peak() -> int:
    """Resets this process's peak resident size (Linux: clear_refs 5) and returns its resident size."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak() -> int:
    return _status_kib("VmHWM")


def _spilled(dask_worker: Any) -> Dict[str, float]:
    return {"/".join(k): v for k, v in dask_worker.data.cumulative_metrics.items() if k[0].startswith("disk")}


def main(argv: List[str] | None = None) -> Dict[str, Any]:
    args = parse_args(argv)
    class_chunk = args.class_chunk or args.classes
    chunk_bytes = args.row_chunk * class_chunk * 4
    logits_bytes = args.rows * args.classes * 4
    head = logits_source.head(args.classes, args.hidden) if args.hidden else None
    # With a linear layer, a worker holds the layer and linear_cross_entropy's 64 MiB workspace.
    memory_limit = args.memory_limit or (12 * chunk_bytes if head is None else 4 * head.nbytes + (1 << 30))
    what = (f"logits {args.rows} x {args.classes} float32 = {logits_bytes / 1e9:.2f} GB in chunks of "
            f"{args.row_chunk} x {class_chunk} ({chunk_bytes / 1e6:.0f} MB)")
    if head is not None:
        what = (f"hidden states {args.rows} x {args.hidden} float32 in chunks of {args.row_chunk} rows, through a "
                f"{args.classes} x {args.hidden} layer ({head.nbytes / 1e6:.0f} MB): the logits would be "
                f"{logits_bytes / 1e9:.2f} GB")
    limit = memory_limit if isinstance(memory_limit, str) else f"{memory_limit / 2**30:.2f} GiB"
    print(f"{what}; {args.workers} workers of 1 thread, memory limit {limit} each")
    load_before = os.getloadavg()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=memory_limit) as cluster, Client(cluster) as client:
        client.upload_file(str(HERE / "logits_source.py"))
        loss = loss_graph(args.rows, args.classes, args.row_chunk, class_chunk, head)
        plain_times: List[float] = []
        dask_times: List[float] = []
        peaks: List[Dict[str, int]] = []
        results = {}
        for round_ in range(args.rounds):
            start = time.perf_counter()
            results["plain"] = plain_loop(args.rows, args.classes, args.row_chunk, head)
            plain_times.append(time.perf_counter() - start)
            idle = client.run(_reset_peak)
            start = time.perf_counter()
            results["dask"] = float(client.compute(loss, sync=True))
            dask_times.append(time.perf_counter() - start)
            peak = client.run(_peak)
            peaks.append({w: peak[w] - idle[w] for w in peak})
            print(f"round {round_ + 1}: plain loop {plain_times[-1]:.2f} s, dask {dask_times[-1]:.2f} s; per worker, "
                  f"idle {[round(v * 1024 / 1e6) for v in idle.values()]} MB, peak "
                  f"{[round(v * 1024 / 1e6) for v in peak.values()]} MB")
        spilled = client.run(_spilled)
        worst_peak_kib = max(max(p.values()) for p in peaks)
        idle_mb = {w: v * 1024 / 1e6 for w, v in idle.items()}
    load_after = os.getloadavg()
    plain, dask_time = statistics.median(plain_times), statistics.median(dask_times)
    report = {
        "machine": machine(),
        "xentcpp": xc.__version__,
        "simd": xc.simd_target(),
        "shape": [args.rows, args.classes],
        "hidden": args.hidden,
        "chunk": [args.row_chunk, class_chunk],
        "chunk_mb": chunk_bytes / 1e6,
        "workers": args.workers,
        "memory_limit_bytes": memory_limit,
        "plain_loop_s": plain,
        "dask_s": dask_time,
        "plain_loop_gb_per_s": logits_bytes / plain / 1e9,
        "dask_gb_per_s": logits_bytes / dask_time / 1e9,
        "throughput_ratio": plain / dask_time,
        "idle_mb": idle_mb,
        "worst_peak_above_idle_mb": worst_peak_kib * 1024 / 1e6,
        "worst_peak_above_idle_chunks": worst_peak_kib * 1024 / chunk_bytes,
        "spilled": spilled,
        "loss": results,
        "relative_difference": abs(results["dask"] - results["plain"]) / abs(results["plain"]),
        "rounds": {"plain_loop_s": plain_times, "dask_s": dask_times},
        "load_average": {"before": load_before, "after": load_after},
    }
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
