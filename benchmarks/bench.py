"""Entry point of the xentcpp benchmarks: options, one run, and the outputs (Markdown, JSON, PNG).

Run from the repository root::

    python benchmarks/bench.py                 # full run (minutes on 2 cores, ~5 GiB peak)
    python benchmarks/bench.py --quick         # smoke test for CI (< 1 min)
    python benchmarks/bench.py --out DIR       # where results.md, results.json, bench.png go

The method (threads, timing, bandwidth, roofline, targets, memory) is described in the docstring of the
``xentbench`` package next to this file; each of its modules does one part.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the xentbench package next to this file

import argparse
import json
import shlex
from collections.abc import Sequence

import xentbench  # importing it (or any of its modules) sets the thread counts before NumPy loads
from xentbench.cases import FULL, QUICK
from xentbench.machine import pin_cpus
from xentbench.report import markdown, to_json
from xentbench.suite import run

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(xentbench.__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes and few rounds (CI smoke test)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="output directory (default: benchmarks/results)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmarks and writes results.md, results.json and bench.png into ``--out``."""
    pin_cpus(xentbench.THREADS)
    args = parse_args(argv)
    report = run(QUICK if args.quick else FULL, shlex.join(["python", *sys.argv]))
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    print("\n" + text)
    (args.out / "results.md").write_text(text, encoding="utf-8")
    (args.out / "results.json").write_text(json.dumps(to_json(report), indent=1), encoding="utf-8")
    written = [args.out / "results.md", args.out / "results.json"]
    try:
        from xentbench.plot import plot

        plot(report, args.out / "bench.png")
        written.append(args.out / "bench.png")
    except ImportError as err:  # matplotlib is optional: the tables are the results
        print(f"no plot: {err}")
    print("wrote " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
