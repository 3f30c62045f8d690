"""`darwin-dra status [--watch]`: per node and chip, partitions free and taken, KEPS used and
free, health and taints, from the live cluster's slices and claims (any kubeconfig)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from darwin_dra import kubeapi
from darwin_dra.cli.flags import env_option
from darwin_dra.status.view import render, snapshot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="per node and chip: partitions, KEPS, health, taints")
    env_option(p, "--kubeconfig", "KUBECONFIG", "kubeconfig of the cluster", type=Path,
               default=str(Path.home() / ".kube" / "config"))  # fmt: skip
    p.add_argument("--node", action="append", help="only these nodes (repeatable)")
    p.add_argument("--watch", action="store_true", help="refresh until interrupted")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    p.add_argument("--width", type=int, default=0, help="table width (default: the terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(width=args.width or None)
    try:
        kube = kubeapi.connect_fleet(args.kubeconfig)
    except kubeapi.ConfigError as exc:
        print(f"darwin-dra status: {exc}", file=sys.stderr)
        return 2
    try:
        if not args.watch:
            console.print(render(snapshot(kube, args.node)))
            return 0
        with Live(render(snapshot(kube, args.node)), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(args.interval)
                live.update(render(snapshot(kube, args.node)), refresh=True)
    except kubeapi.KubeApiError as exc:
        print(f"darwin-dra status: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        kube.close()
