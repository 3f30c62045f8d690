"""A heterogeneous fleet described as an inventory, and its chips as the slice builder sees
them: pure functions, no engine and no API.

The chips are simulated from their profiles' nominal figures (router throughput included:
no calibration, so nothing here depends on the host's CPU). ``chip_views`` gives what the
kubelet plugin would derive from the engine for a healthy chip; a unit test checks that the
two agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from darwin_dra import DRIVER_NAME
from darwin_dra.hardware.model import ChipEntry, ChipProfile, Inventory, NodeEntry
from darwin_dra.resources.chips import ChipView, nominal_views

FLEET_NODE_PREFIX = "fleet-node-"


@dataclass(frozen=True)
class FleetShape:
    """How a generated fleet looks: ``nodes`` nodes of ``chips_per_node`` chips.

    Every ``fast_every``-th node carries ``fast_chips`` chips of ``fast_model`` (its last ones);
    the others are all ``base_model``. The first ``wafer_chips`` chips of each pair of nodes
    sit on one wafer shared by the pair; the node's other chips on a board of their own.
    """

    nodes: int = 50
    chips_per_node: int = 4
    base_model: str = "darwin3"
    fast_model: str = "darwin3-fastroute"
    fast_every: int = 2
    fast_chips: int = 2
    wafer_chips: int = 2

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.chips_per_node < 1:
            raise ValueError("a fleet needs at least one node with one chip")
        if not 0 <= self.fast_chips <= self.chips_per_node:
            raise ValueError("fast_chips must be between 0 and chips_per_node")
        if not 0 <= self.wafer_chips <= self.chips_per_node:
            raise ValueError("wafer_chips must be between 0 and chips_per_node")
        if self.fast_every < 1:
            raise ValueError("fast_every must be at least 1")


def node_name(index: int) -> str:
    return f"{FLEET_NODE_PREFIX}{index}"


def fleet_inventory(shape: FleetShape) -> Inventory:
    """The inventory of a generated fleet (pure; same shape, same inventory)."""
    nodes = []
    for n in range(shape.nodes):
        fast = shape.fast_chips if n % shape.fast_every == 0 else 0
        chips = []
        for c in range(shape.chips_per_node):
            model = shape.fast_model if c >= shape.chips_per_node - fast else shape.base_model
            fabric = f"wafer-{n // 2}" if c < shape.wafer_chips else f"board-{n}"
            chips.append(
                ChipEntry(model=model, serial=f"F{n:04d}-{c}", fabric=fabric, numa_node=c // 2)
            )
        nodes.append(NodeEntry(name=node_name(n), chips=tuple(chips)))
    return Inventory(nodes=tuple(nodes), source=f"generated fleet {shape}")


def inventory_document(inventory: Inventory) -> dict[str, Any]:
    """The inventory as the YAML document `load_inventory` reads back."""
    nodes = []
    for node in inventory.nodes:
        fabrics: dict[str, list[dict[str, Any]]] = {}
        for chip in node.chips:
            entry: dict[str, Any] = {
                "model": chip.model,
                "serial": chip.serial,
                "numaNode": chip.numa_node,
            }
            if chip.pcie_root:
                entry["pcieRoot"] = chip.pcie_root
            if chip.firmware:
                entry["firmware"] = chip.firmware
            fabrics.setdefault(chip.fabric, []).append(entry)
        nodes.append(
            {"name": node.name, "fabrics": [{"id": f, "chips": c} for f, c in fabrics.items()]}
        )
    return {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "Inventory", "nodes": nodes}


def inventory_yaml(inventory: Inventory) -> str:
    return yaml.safe_dump(inventory_document(inventory), sort_keys=False, width=120)


def chip_view(chip_id: int, entry: ChipEntry, profile: ChipProfile) -> ChipView:
    """A healthy simulated chip, with its profile's nominal router throughput."""
    return ChipView.nominal(chip_id, entry, profile)


def chip_views(
    inventory: Inventory, profiles: Mapping[str, ChipProfile], node: str
) -> list[ChipView]:
    """The node's chips in inventory order (chip ids 0.., as the engine numbers them)."""
    entries = inventory.node(node).chips
    missing = sorted({e.model for e in entries} - set(profiles))
    if missing:
        raise ValueError(f"node {node}: no chip profile for {', '.join(missing)}")
    return nominal_views(entries, profiles)


def plain_slices(node: str, chips: Sequence[ChipView]) -> list[dict[str, Any]]:
    """The black-box layout: one device per chip, no counters, no capacities.

    What a device plugin's ``darwin.snn.io/chip: 1`` amounts to in DRA terms: a chip is
    counted, never split. The attributes only name the chip (the black-box claims never
    select on them; the bench reads them back to know which chip a job got).
    """
    devices = [
        {
            "name": f"chip-{c.chip}",
            "attributes": {
                "model": {"string": c.model},
                "chip": {"int": c.chip},
                "fabric": {"string": c.fabric},
                "serial": {"string": c.serial},
            },
        }
        for c in chips
    ]
    return [
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceSlice",
            "metadata": {"name": f"{node}-darwin-plain", "labels": {"darwin.snn.io/node": node}},
            "spec": {
                "driver": DRIVER_NAME,
                "nodeName": node,
                "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                "devices": devices,
            },
        }
    ]
