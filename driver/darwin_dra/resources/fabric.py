"""Cluster-level ResourceSlices for the address-event fabrics between chips (pure).

A fabric (a board or a wafer) can be served by several nodes; its spike bandwidth belongs to
no single node, so the controller publishes it: one pool per fabric, one slice whose
``nodeSelector`` names the nodes attached to it, and one device ``fabric-<id>`` that many
claims share (``allowMultipleAllocations``) through a consumable ``keps`` capacity. The
scheduler refuses the claim that would oversubscribe it.

The device carries no binding conditions: nothing is set up for a bandwidth grant before a pod
binds (the routes a pod waits for are on the chips' routers: resources/slices.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.hardware.model import Inventory
from darwin_dra.resources import API_VERSION, MANAGED_BY, OWNER_LABEL

FABRIC_LABEL = "darwin.snn.io/fabric"
HOSTNAME_LABEL = "kubernetes.io/hostname"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class FabricError(ValueError):
    pass


@dataclass(frozen=True)
class FabricSettings:
    """Fabric bandwidth, in thousands of inter-chip events per second.

    Not a chip figure, so not in the chip profile: how much of a board's AER fabric the
    operator lets workloads claim is a site decision (a Helm value).
    """

    keps: int = 1_000_000
    keps_for: Mapping[str, int] = field(default_factory=dict)  # per fabric id overrides
    keps_min: int = 10
    keps_step: int = 10


@dataclass(frozen=True)
class Fabric:
    id: str
    nodes: tuple[str, ...]
    chips: int


def fabrics(inventory: Inventory) -> list[Fabric]:
    """The fabrics of an inventory with the nodes attached to each, sorted by id."""
    nodes: dict[str, set[str]] = {}
    chips: dict[str, int] = {}
    for node in inventory.nodes:
        for chip in node.chips:
            nodes.setdefault(chip.fabric, set()).add(node.name)
            chips[chip.fabric] = chips.get(chip.fabric, 0) + 1
    return [Fabric(f, tuple(sorted(nodes[f])), chips[f]) for f in sorted(nodes)]


def device_name(fabric_id: str) -> str:
    name = f"fabric-{fabric_id}"
    if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
        raise FabricError(f"fabric id {fabric_id!r}: fabric-<id> must be a DNS label")
    return name


def slice_name(fabric_id: str) -> str:
    return f"darwin-{device_name(fabric_id)}"


def _q(value: int) -> str:
    return str(value)


def fabric_slice(fabric: Fabric, settings: FabricSettings, generation: int = 1) -> dict[str, Any]:
    keps = settings.keps_for.get(fabric.id, settings.keps)
    if keps < settings.keps_min:
        raise FabricError(f"fabric {fabric.id}: {keps} keps is below the minimum request")
    name = device_name(fabric.id)
    device: dict[str, Any] = {
        "name": name,
        "attributes": {
            "partition": {"string": "fabric"},
            "fabric": {"string": fabric.id},
            "chips": {"int": fabric.chips},
            "nodes": {"int": len(fabric.nodes)},
        },
        "capacity": {
            "keps": {
                "value": _q(keps),
                "requestPolicy": {
                    "default": _q(settings.keps_min),
                    "validRange": {"min": _q(settings.keps_min), "step": _q(settings.keps_step)},
                },
            }
        },
        "allowMultipleAllocations": True,
    }
    # The API server allows one term, and matchFields on metadata.name with a single value
    # only; the kubelet's hostname label is the standard way to name several nodes.
    selector = {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": HOSTNAME_LABEL, "operator": "In", "values": list(fabric.nodes)}
                ]
            }
        ]
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceSlice",
        "metadata": {
            "name": slice_name(fabric.id),
            "labels": {OWNER_LABEL: MANAGED_BY, FABRIC_LABEL: fabric.id},
        },
        "spec": {
            "driver": DRIVER_NAME,
            "pool": {"name": name, "generation": generation, "resourceSliceCount": 1},
            "nodeSelector": selector,
            "devices": [device],
        },
    }


def fabric_slices(inventory: Inventory, settings: FabricSettings) -> list[dict[str, Any]]:
    """One slice per fabric, sorted by name; generation 1 (reconcile bumps it on change)."""
    unknown = set(settings.keps_for) - {f.id for f in fabrics(inventory)}
    if unknown:
        raise FabricError(f"bandwidth given for unknown fabrics: {', '.join(sorted(unknown))}")
    return [fabric_slice(f, settings) for f in fabrics(inventory)]
