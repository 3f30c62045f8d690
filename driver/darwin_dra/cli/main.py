"""Entry point of the `darwin-dra` command: each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from darwin_dra import __version__

# Subcommand modules; each exposes register(subparsers) and sets `func` on its parser.
SUBCOMMANDS = (
    "darwin_dra.cli.inventory",
    "darwin_dra.cli.bench",
    "darwin_dra.cli.cluster",
    "darwin_dra.cli.kubelet_plugin",
    "darwin_dra.cli.chip_host",
    "darwin_dra.cli.controller",
    "darwin_dra.cli.fault",
    "darwin_dra.cli.bench_plugin",
    "darwin_dra.cli.bench_run",
    "darwin_dra.cli.bench_pod",
    "darwin_dra.cli.bench_pipeline",
    "darwin_dra.cli.fleet",
    "darwin_dra.cli.status",
    "darwin_dra.cli.demo",
    "darwin_dra.cli.stage",
    "darwin_dra.cli.plan",
    "darwin_dra.cli.run",
    "darwin_dra.cli.model",
    "darwin_dra.cli.split_learn",
    "darwin_dra.cli.split",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darwin-dra",
        description="Kubernetes DRA driver for Darwin-class neuromorphic chips.",
    )
    parser.add_argument("--version", action="version", version=f"darwin-dra {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
