"""`darwin-dra bench placement`: the planner with each partitioner against the naive and
random baselines, on generated models of 1 M neurons and more, 4 nodes x 4 Darwin3 chips on
2 fabrics; every row planned in the same run."""

from __future__ import annotations

import time
from collections.abc import Sequence

from darwin_dra.hardware.model import ChipEntry, Inventory, NodeEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.planner import baselines, partitioners
from darwin_dra.planner.bins import bins_of, groups_of
from darwin_dra.planner.generate import GENERATORS
from darwin_dra.planner.graph import ModelGraph
from darwin_dra.planner.place import CapacityError, Plan, place
from darwin_dra.planner.report import Row, failed, row
from darwin_dra.planner.topology import Topology
from darwin_dra.planner.topology_file import topology_from_inventory

BENCH_MODELS = ("conv-unet", "cortical-sheet", "conv-snn")


def bench_topology(nodes: int = 4, chips: int = 4, fabrics: int = 2) -> Topology:
    """``nodes`` nodes of ``chips`` idle Darwin3 chips; nodes share fabrics in equal runs."""
    per = max(1, nodes // fabrics)
    inv = Inventory(
        tuple(
            NodeEntry(
                f"node-{n}",
                tuple(
                    ChipEntry("darwin3", f"D3-{n}{c:02d}", f"fabric-{n // per}")
                    for c in range(chips)
                ),
            )
            for n in range(nodes)
        ),
        source=f"{nodes} nodes x {chips} darwin3 chips on {fabrics} fabrics",
    )
    return topology_from_inventory(inv, load_profiles())


def run_model(
    graph: ModelGraph, topo: Topology, methods: Sequence[str], seed: int = 1
) -> tuple[list[Row], dict[str, Plan]]:
    groups, bins = groups_of(graph), bins_of(topo)
    rows: list[Row] = []
    plans: dict[str, Plan] = {}
    for method in methods:
        try:
            if method == "naive":
                plan = baselines.naive(graph, topo)
            elif method == "random":
                plan = baselines.random_placement(graph, topo, seed)
            elif not partitioners.available(method):
                rows.append(failed(graph.name, method, "not installed"))
                continue
            else:
                plan = place(graph, topo, method, seed=seed)
        except CapacityError as exc:
            rows.append(failed(graph.name, method, str(exc)))
            continue
        plans[method] = plan
        rows.append(row(graph.name, plan, groups, bins))
    return rows, plans


def generate(name: str) -> tuple[ModelGraph, float]:
    t0 = time.perf_counter()
    graph = GENERATORS[name]()
    return graph, time.perf_counter() - t0
