"""`darwin-dra demo`: the driver's whole job on a local cluster with real nodes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="the driver end to end on a local cluster with real nodes: the Helm chart, "
        "scenarios with real workloads, a chip failure, a report",
    )
    p.add_argument("--dir", type=Path, help="working directory (default: a new temporary one)")
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave everything running at the end (stop it with `darwin-dra cluster down`)",
    )
    p.add_argument(
        "--image",
        type=Path,
        help="the driver's image as an OCI tar (default: build it, cached by content)",
    )
    p.add_argument(
        "--scenario",
        action="append",
        dest="scenarios",
        metavar="NAME",
        help="run only these scenarios (repeatable): examples, shared, meps, pipeline, fault",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from darwin_dra import demo
    from darwin_dra.demo.scenarios import SCENARIOS

    known = {key for key, _, _ in SCENARIOS}
    unknown = set(args.scenarios or ()) - known
    if unknown:
        print(f"darwin-dra demo: unknown --scenario {', '.join(sorted(unknown))} "
              f"(known: {', '.join(sorted(known))})", file=sys.stderr)  # fmt: skip
        return 2
    if args.image is not None and not args.image.is_file():
        print(f"darwin-dra demo: --image {args.image}: no such file", file=sys.stderr)
        return 2
    return demo.run(args.dir, args.keep, args.image, set(args.scenarios or ()) or None)
