"""`darwin-dra demo`: the driver end to end on a real local control plane."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the driver end to end on a local cluster: publish, schedule, prepare, fault",
    )
    p.add_argument("--dir", type=Path, help="working directory (default: a new temporary one)")
    p.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from darwin_dra import demo

    return demo.run(args.dir, args.keep)
