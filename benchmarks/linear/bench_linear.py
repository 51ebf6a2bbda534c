"""Linear cross-entropy (a language model's output layer and loss): time and peak memory of the loss and
both gradients, xentcpp against PyTorch and against the GEMM floor.

Run from the repository root (about 10 minutes on 2 cores)::

    python benchmarks/linear/bench_linear.py                     # both shapes, every case, medians of 3
    python benchmarks/linear/bench_linear.py --quick             # small shapes, a smoke run (< 1 min)
    python benchmarks/linear/bench_linear.py --shapes 4096x1024x32000 --cases xentcpp,gemm_numpy

Shapes are ``NxHxV`` (tokens, hidden features, vocabulary), float32. Cases, each run in its own fresh
process (2 threads for every library, set before it is imported):

* ``torch_naive``: ``F.linear`` + ``F.cross_entropy``, ``loss.backward()`` (autograd; the logits exist);
* ``torch_chunked``: PyTorch's ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``;
* ``gemm_torch``, ``gemm_numpy``: the three GEMMs alone (``L = h @ w.T``, ``L @ w``, ``L.T @ h``), the
  compute floor, in PyTorch's and in NumPy's BLAS;
* ``numpy_chunks``: what a user can write today: NumPy matmul per chunk of 64 MiB of logits, xentcpp's
  fused kernel in place on it, ``d_weight += G.T @ h`` (a ``V x H`` temporary per chunk);
* ``xentcpp``: ``xentcpp.linear_cross_entropy_value_and_grad`` (default chunk: 64 MiB);
* ``xentcpp_256``: the same with 256-row chunks (more memory, larger GEMMs).

Each process makes the inputs, runs one warm-up call, resets its peak RSS (``/proc/self/clear_refs``),
then times ``--reps`` calls, each one's results dropped before the next (xentcpp's buffer kept for
reuse emptied too, so that every call allocates its results as the peers' calls do). Reported: the median time, the
time over the faster of the two GEMM floors of that shape, and the peak RSS growth over the timed
calls (``VmHWM`` minus the RSS before them): what the call needs beyond its inputs, its results included.
Nothing is asserted; results go to ``--out`` (results.json, results.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the xentbench package (thread settings)

import argparse
import gc
import json
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

import xentbench  # sets every library's thread count before NumPy is imported
from xentbench.machine import pin_cpus
from xentbench.memory import reset_peak_rss, rss_bytes

__all__ = ["main"]

CASES = ("torch_naive", "torch_chunked", "gemm_torch", "gemm_numpy", "numpy_chunks", "xentcpp", "xentcpp_256")
FULL_SHAPES = ("4096x1024x32000", "1024x1024x128256")
QUICK_SHAPES = ("512x128x4000", "256x128x16000")
WORKSPACE = 64 << 20
MIB = float(1 << 20)


def parse_shape(text: str) -> tuple[int, int, int]:
    n, h, v = (int(part) for part in text.lower().split("x"))
    return n, h, v


def make_inputs(n: int, h: int, v: int) -> tuple[Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((n, h), dtype=np.float32)
    weight = rng.standard_normal((v, h), dtype=np.float32) * np.float32(1.0 / np.sqrt(h))
    labels = rng.integers(0, v, n)
    return hidden, weight, labels


def make_case(case: str, hidden: Any, weight: Any, labels: Any) -> Callable[[], Any]:
    """A function computing the loss and the gradients with respect to ``hidden`` and ``weight``; it
    returns them so that they stay alive until the call is measured."""
    import numpy as np

    import xentcpp as xc

    if case.startswith("torch") or case == "gemm_torch":
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(xentbench.THREADS)
        h_t, w_t, y_t = torch.from_numpy(hidden), torch.from_numpy(weight), torch.from_numpy(labels)
        if case == "gemm_torch":
            def gemm_torch() -> Any:
                logits = h_t @ w_t.T
                return logits @ w_t, logits.T @ h_t
            return gemm_torch

        def torch_call() -> Any:
            x = h_t.clone().requires_grad_()
            w = w_t.clone().requires_grad_()
            if case == "torch_naive":
                loss = F.cross_entropy(F.linear(x, w), y_t)
            else:
                loss = F.linear_cross_entropy(x, w, y_t, options=torch.nn.LinearCrossEntropyOptions())
            loss.backward()
            return loss.item(), x.grad, w.grad
        return torch_call

    if case == "gemm_numpy":
        def gemm_numpy() -> Any:
            logits = hidden @ weight.T
            return logits @ weight, logits.T @ hidden
        return gemm_numpy

    n, v = hidden.shape[0], weight.shape[0]
    if case == "numpy_chunks":
        chunk = max(1, WORKSPACE // (4 * v))

        def numpy_chunks() -> Any:
            d_hidden = np.empty_like(hidden)
            d_weight = np.zeros_like(weight)
            total = 0.0
            for r in range(0, n, chunk):
                logits = hidden[r:r + chunk] @ weight.T
                loss, g = xc.cross_entropy_value_and_grad(logits, labels[r:r + chunk], reduction="sum", out=logits)
                total += loss
                d_hidden[r:r + chunk] = g @ weight
                d_weight += g.T @ hidden[r:r + chunk]
            d_hidden /= n
            d_weight /= n
            return total / n, d_hidden, d_weight
        return numpy_chunks

    chunk_size = 256 if case == "xentcpp_256" else None
    xc.set_num_threads(xentbench.THREADS)
    return lambda: xc.linear_cross_entropy_value_and_grad(hidden, weight, labels, chunk_size=chunk_size)


def child(case: str, shape: str, reps: int) -> dict[str, Any]:
    """Runs one case in this (fresh) process: see the module docstring."""
    pin_cpus(xentbench.THREADS)
    n, h, v = parse_shape(shape)
    hidden, weight, labels = make_inputs(n, h, v)
    call = make_case(case, hidden, weight, labels)

    def settle() -> None:
        """After a call's results are dropped: collected, and xentcpp's buffer kept for reuse freed, so
        that every call allocates its results as the peers' calls do."""
        gc.collect()
        if case.startswith("xentcpp"):
            import xentcpp

            xentcpp.empty_cache()

    call()  # warm-up: threads started, libraries loaded; the result is dropped at once
    settle()
    reset = reset_peak_rss()
    before = rss_bytes("VmRSS")
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
        del result
        settle()
    peak = rss_bytes("VmHWM") if reset else None
    growth = None if peak is None or before is None else (peak - before) / MIB
    return {"case": case, "shape": shape, "times": times, "median": statistics.median(times),
            "peak_growth_mib": growth}


def run_case(case: str, shape: str, reps: int) -> dict[str, Any]:
    """``child`` in a fresh interpreter; its one line of JSON."""
    command = [sys.executable, __file__, "--child", case, shape, "--reps", str(reps)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"case": case, "shape": shape, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def gradient_mib(shape: str) -> float:
    n, h, v = parse_shape(shape)
    return 4 * (n * h + v * h) / MIB


def markdown(results: list[dict[str, Any]], shapes: Sequence[str]) -> str:
    """One row per case: median time, time over the faster GEMM floor, peak RSS growth, per shape."""
    by = {(r["case"], r["shape"]): r for r in results}
    floors = {}
    for shape in shapes:
        medians = [by[c, shape]["median"] for c in ("gemm_torch", "gemm_numpy") if "median" in by.get((c, shape), {})]
        floors[shape] = min(medians) if medians else None
    lines = ["| case | " + " | ".join(shapes) + " |", "|---|" + "---|" * len(shapes)]
    for case in CASES:
        cells = []
        for shape in shapes:
            r = by.get((case, shape))
            if r is None:
                cells.append("")
            elif "error" in r:
                cells.append("error: " + " ".join(r["error"]))
            else:
                cell = f"{r['median']:.2f} s"
                if floors[shape]:
                    cell += f" ({r['median'] / floors[shape]:.2f}x floor)"
                if r["peak_growth_mib"] is not None:
                    cell += f", {r['peak_growth_mib']:.0f} MiB"
                cells.append(cell)
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Gradients alone (d_input + d_weight): " +
                 ", ".join(f"{s}: {gradient_mib(s):.0f} MiB" for s in shapes) + ".")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("CASE", "SHAPE"), help=argparse.SUPPRESS)
    parser.add_argument("--shapes", default=None, help="comma-separated NxHxV (default: the issue's two)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    parser.add_argument("--reps", type=int, default=3, help="timed calls per case (default 3)")
    parser.add_argument("--quick", action="store_true", help="small shapes, one timed call: a smoke run")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.reps)))
        return
    shapes = args.shapes.split(",") if args.shapes else list(QUICK_SHAPES if args.quick else FULL_SHAPES)
    reps = 1 if args.quick else args.reps
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    results = []
    for shape in shapes:
        for case in cases:
            r = run_case(case, shape, reps)
            results.append(r)
            print(json.dumps(r), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.json", "w") as f:
        json.dump({"machine": platform.platform(), "threads": xentbench.THREADS, "results": results}, f, indent=1)
    table = markdown(results, shapes)
    (args.out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
