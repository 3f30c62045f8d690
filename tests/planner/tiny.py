"""Small chips and clusters for planner tests: a 4x4 mesh of 2x2 domains (15 cores)."""

from __future__ import annotations

from dataclasses import replace

from darwin_dra.hardware.model import ChipEntry, ChipProfile, Inventory, NodeEntry
from darwin_dra.planner.topology import Topology
from darwin_dra.planner.topology_file import topology_from_inventory


def tiny_profile(
    base: ChipProfile, synapses: int = 15_000, neurons_per_core: int = 64
) -> ChipProfile:
    return replace(
        base,
        model="tiny",
        mesh_w=4,
        mesh_h=4,
        domain_w=2,
        domain_h=2,
        controller_x=0,
        controller_y=0,
        neurons_per_core=neurons_per_core,
        synapses_per_chip=synapses,
    )


def tiny_topology(
    base: ChipProfile, nodes: int = 2, chips: int = 2, synapses: int = 15_000
) -> Topology:
    profile = tiny_profile(base, synapses)
    inv = Inventory(
        tuple(
            NodeEntry(
                f"n{n}",
                tuple(ChipEntry("tiny", f"S{n}-{c}", f"f{n // 2}") for c in range(chips)),
            )
            for n in range(nodes)
        )
    )
    return topology_from_inventory(inv, {"tiny": profile})
