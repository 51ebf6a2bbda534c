"""``python -m xentcpp info [--json]``: what this build of xentcpp is and runs on."""

from __future__ import annotations

import argparse
import json

from ._config import show_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m xentcpp", description="xentcpp's command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions, compiler, SIMD targets, OpenMP runtime and threads")
    info.add_argument("--json", action="store_true", help="print the information as JSON")
    args = parser.parse_args(argv)
    if args.command == "info":
        if args.json:
            print(json.dumps(show_config("dicts"), indent=2))
        else:
            show_config()


if __name__ == "__main__":
    main()
