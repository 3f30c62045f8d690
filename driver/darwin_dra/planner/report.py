"""Placements side by side: the table and JSON that `darwin-dra plan` and `bench placement`
print, and the stages a placement asks for (pure)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from darwin_dra.planner.bins import Bins, Groups
from darwin_dra.planner.cost import Traffic, traffic
from darwin_dra.planner.graph import ModelGraph
from darwin_dra.planner.place import Plan
from darwin_dra.planner.topology import Topology


@dataclass(frozen=True)
class Row:
    model: str
    method: str
    traffic: Traffic | None
    seconds: float
    cpu_seconds: float
    nodes: int
    chips: int
    error: str = ""


def row(model: str, plan: Plan, groups: Groups, bins: Bins) -> Row:
    return Row(
        model,
        plan.method,
        traffic(groups, bins, plan.assign),
        plan.seconds,
        plan.cpu_seconds,
        int(np.unique(bins.node[plan.assign]).size),
        int(np.unique(bins.chip[plan.assign]).size),
    )


def failed(model: str, method: str, error: str) -> Row:
    return Row(model, method, None, math.nan, math.nan, 0, 0, error)


HEADERS = (
    "model",
    "method",
    "across nodes/s",
    "across chips/s",
    "across domains/s",
    "mean hops",
    "plan s",
    "cpu s",
    "nodes",
    "chips",
    "naive/x node",
    "naive/x chip",
)


def _ratio(a: float, b: float) -> str:
    if b <= 0:
        return "inf" if a > 0 else "-"
    return f"{a / b:.1f}"


def render(rows: Sequence[Row]) -> str:
    """One line per (model, method); ratios divide the naive row of the same model."""
    naive = {r.model: r.traffic for r in rows if r.method == "naive" and r.traffic}
    body = []
    for r in rows:
        if r.traffic is None:
            body.append([r.model, r.method, f"failed: {r.error}"])
            continue
        t, ref = r.traffic, naive.get(r.model)
        body.append(
            [
                r.model,
                r.method,
                f"{t.cross_node:.3e}",
                f"{t.cross_chip:.3e}",
                f"{t.cross_domain:.3e}",
                f"{t.mean_hops:.2f}",
                f"{r.seconds:.2f}",
                f"{r.cpu_seconds:.2f}",
                str(r.nodes),
                str(r.chips),
                _ratio(ref.cross_node, t.cross_node) if ref else "-",
                _ratio(ref.cross_chip, t.cross_chip) if ref else "-",
            ]
        )
    widths = [
        max([len(h)] + [len(b[i]) for b in body if len(b) == len(HEADERS)])
        for i, h in enumerate(HEADERS)
    ]

    def line(cells: Sequence[str]) -> str:
        if len(cells) != len(HEADERS):
            return "  ".join([cells[0].ljust(widths[0]), cells[1].ljust(widths[1]), *cells[2:]])
        return "  ".join(
            [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
            + [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        ).rstrip()

    out = [line(HEADERS), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    return "\n".join(out)


def row_dict(r: Row) -> dict[str, Any]:
    d: dict[str, Any] = {"model": r.model, "method": r.method}
    if r.traffic is None:
        return d | {"error": r.error}
    t = r.traffic
    return d | {
        "spikes_per_s_across_nodes": t.cross_node,
        "spikes_per_s_across_chips": t.cross_chip,
        "spikes_per_s_across_domains": t.cross_domain,
        "mean_hops": t.mean_hops,
        "plan_seconds": r.seconds,
        "plan_cpu_seconds": r.cpu_seconds,
        "nodes": r.nodes,
        "chips": r.chips,
    }


@dataclass(frozen=True)
class Stage:
    """What one chip runs of the model: its groups on some of its domains (one partition,
    claimed as domain devices with matchAttribute chip)."""

    node: str
    chip: str
    domains: tuple[int, ...]
    groups: tuple[str, ...]
    neurons: int
    synapses: int
    keps: int


def stages(
    graph: ModelGraph, groups: Groups, bins: Bins, assign: np.ndarray[Any, Any]
) -> list[Stage]:
    out = []
    for c in np.unique(bins.chip[assign]):
        members = np.flatnonzero(bins.chip[assign] == c)
        doms = tuple(sorted({int(bins.domain[assign[i]]) for i in members}))
        total = groups.demand[members].sum(axis=0)
        out.append(
            Stage(
                node=bins.node_names[int(bins.node[assign[members[0]]])],
                chip=bins.chip_names[int(c)],
                domains=doms,
                groups=tuple(graph.groups[i].name for i in members),
                neurons=int(total[0]),
                synapses=int(total[1]),
                keps=int(total[2]),
            )
        )
    return out


def render_stages(stages_: Sequence[Stage]) -> str:
    lines = ["stage  chip                 domains  groups    neurons     synapses       keps"]
    for i, s in enumerate(stages_):
        lines.append(
            f"{i:>5}  {s.chip:<20} {len(s.domains):>7}  {len(s.groups):>6}  {s.neurons:>9}"
            f"  {s.synapses:>11}  {s.keps:>9}"
        )
    return "\n".join(lines)


def plan_json(
    graph: ModelGraph,
    groups: Groups,
    bins: Bins,
    plan: Plan,
    rows: Sequence[Row],
    topology: Topology | None = None,
) -> str:
    placement = [
        {
            "group": g.name,
            "node": bins.node_names[int(bins.node[b])],
            "chip": bins.chip_names[int(bins.chip[b])],
            "domain": int(bins.domain[b]),
        }
        for g, b in zip(graph.groups, plan.assign.tolist(), strict=True)
    ]
    doc: dict[str, Any] = {
        "model": graph.name,
        "partitioner": plan.method,
        "placement": placement,
        "stages": [s.__dict__ for s in stages(graph, groups, bins, plan.assign)],
        "comparison": [row_dict(r) for r in rows],
    }
    if topology is not None:
        doc["topology"] = {
            "source": topology.source,
            "chips": [
                {
                    "chip": c.name,
                    "fabric": c.fabric,
                    "free_domains": [d.index for d in c.domains],
                    "unusable_domains": c.unusable,
                }
                for c in topology.chips
            ],
            "fabrics": [
                {"id": f.id, "nodes": list(f.nodes), "keps": f.keps} for f in topology.fabrics
            ],
        }
    return json.dumps(doc, indent=2, default=list)
