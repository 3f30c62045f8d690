"""`darwin-dra status [--watch]`: per node and chip, partitions free and taken, KEPS used and
free, health and taints, from the live cluster's slices and claims (any kubeconfig)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from darwin_dra import kubeapi
from darwin_dra.cli.flags import env_option
from darwin_dra.status.usage import KINDS, NodeUsage, human, node_usage


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="per node and chip: partitions, KEPS, health, taints")
    env_option(p, "--kubeconfig", "KUBECONFIG", "kubeconfig of the cluster", type=Path,
               default=str(Path.home() / ".kube" / "config"))  # fmt: skip
    p.add_argument("--node", action="append", help="only these nodes (repeatable)")
    p.add_argument("--watch", action="store_true", help="refresh until interrupted")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    p.add_argument("--width", type=int, default=0, help="table width (default: the terminal)")
    p.set_defaults(func=run)


def render(nodes: Sequence[NodeUsage]) -> Group:
    table = Table(title="Darwin DRA: chips by node", header_style="bold", expand=False)
    for col, justify in (
        ("node", "left"),
        ("ready", "left"),
        ("chip", "right"),
        ("model", "left"),
        ("fabric", "left"),
        *((f"{k}s free/taken/all", "right") for k in KINDS[:3]),
        ("chip free", "right"),
        ("shares", "right"),
        ("KEPS used", "right"),
        ("KEPS free", "right"),
        ("health", "left"),
        ("node taints", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    chips = 0
    for node in nodes:
        taints = ", ".join(node.taints) or "-"
        ready = Text(node.ready, style="green" if node.ready == "True" else "red")
        if not node.chips:
            table.add_row(node.name, ready, "-", *["-"] * 10, taints)
            continue
        for i, c in enumerate(node.chips):
            chips += 1
            parts = [f"{c.free[k]}/{c.taken[k]}/{c.total[k]}" for k in KINDS[:3]]
            whole = "yes" if c.free["chip"] else ("taken" if c.taken["chip"] else "no")
            health = Text(c.health, style="green" if c.health == "healthy" else "yellow")
            table.add_row(
                node.name if i == 0 else "",
                ready if i == 0 else "",
                str(c.chip),
                c.model,
                c.fabric,
                *parts,
                whole,
                str(c.shares),
                human(c.keps_used),
                human(c.keps_free),
                health,
                taints if i == 0 else "",
            )
    footer = Text(f"{len(nodes)} nodes, {chips} chips; KEPS in thousands of events/s")
    return Group(table, footer)


def snapshot(kube: kubeapi.FleetKube, only: Sequence[str] | None) -> list[NodeUsage]:
    claims, _ = kube.list_claims()
    nodes = node_usage(kube.list_nodes(), kube.list_all_slices(), claims)
    return [n for n in nodes if not only or n.name in only]


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
