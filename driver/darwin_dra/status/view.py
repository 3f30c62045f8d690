"""What `darwin-dra status` shows (and the demo prints): the per-chip table of a live cluster's
slices and claims, as a rich renderable."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from darwin_dra import kubeapi
from darwin_dra.status.usage import KINDS, NodeUsage, human, node_usage


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
        ("shares/grants", "right"),
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
            if c.layout == "capacity":  # domains counted, no quads or halves published
                parts = [f"{parts[0]} (capacity)", "-", "-"]
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
