"""`darwin-dra bench plugin`: its arguments; the benchmark is darwin_dra.bench.plugin."""

from __future__ import annotations

import argparse
from pathlib import Path

from darwin_dra.cli.bench import bench_subparsers


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    which = bench_subparsers(sub, "darwin_dra.cli.bench_plugin")
    p = which.add_parser("plugin", help="kubelet plugin: prepare latency, slice publishing")
    p.add_argument("--kubeconfig", type=Path, help="API server to use (default: claims in memory)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--claims", default="1,10,100", help="claims per NodePrepareResources call")
    p.add_argument("--chips", default="4,16,64", help="chips per node for slice publishing")
    p.add_argument("--repeat", type=int, default=10, help="calls per claim count")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from darwin_dra.bench import plugin

    counts = [int(x) for x in args.claims.split(",")]
    chips = [int(x) for x in args.chips.split(",")]
    return plugin.run(args.kubeconfig, args.namespace, counts, chips, args.repeat)
