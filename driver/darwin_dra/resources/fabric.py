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
from darwin_dra.hardware.model import ChipProfile, Inventory
from darwin_dra.resources import API_VERSION, MANAGED_BY, OWNER_LABEL

FABRIC_LABEL = "darwin.snn.io/fabric"
HOSTNAME_LABEL = "kubernetes.io/hostname"
# The fabric device's KEPS request step and minimum (also what a pipeline's placement rounds to).
FABRIC_KEPS_STEP = 10
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class FabricError(ValueError):
    pass


@dataclass(frozen=True)
class FabricSettings:
    """Fabric bandwidth, in thousands of inter-chip events per second.

    By default a chip figure: one direction of the fabric's slowest chip-to-chip link, the
    profiles' ``fabricEventsPerSecond``, the same figure the engine holds each link's spikes
    to per step (docs/engine.md, "Chips on one fabric"), so the scheduler never grants more
    than a link carries. ``keps`` (a Helm value) or ``keps_for`` set less (or more) where
    the operator decides so.
    """

    keps: int | None = None  # None: the fabric's link, from its chips' profiles
    keps_for: Mapping[str, int] = field(default_factory=dict)  # per fabric id overrides
    keps_min: int = FABRIC_KEPS_STEP
    keps_step: int = FABRIC_KEPS_STEP


@dataclass(frozen=True)
class Fabric:
    id: str
    nodes: tuple[str, ...]
    chips: int
    link_keps: int = 0  # one direction of its slowest link (fabricEventsPerSecond / 1000)


def fabrics(
    inventory: Inventory, profiles: Mapping[str, ChipProfile] | None = None
) -> list[Fabric]:
    """The fabrics of an inventory with the nodes attached to each, sorted by id; with the
    chips' ``profiles``, each fabric's link bandwidth."""
    nodes: dict[str, set[str]] = {}
    chips: dict[str, int] = {}
    link: dict[str, int] = {}
    for node in inventory.nodes:
        for chip in node.chips:
            nodes.setdefault(chip.fabric, set()).add(node.name)
            chips[chip.fabric] = chips.get(chip.fabric, 0) + 1
            if profiles is not None:
                keps = int(profiles[chip.model].fabric_events_per_s // 1000)
                link[chip.fabric] = min(link.get(chip.fabric, keps), keps)
    return [Fabric(f, tuple(sorted(nodes[f])), chips[f], link.get(f, 0)) for f in sorted(nodes)]


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
    name = device_name(fabric.id)
    keps = settings.keps_for.get(fabric.id, settings.keps)
    if keps is None:
        keps = fabric.link_keps
        if not keps:
            raise FabricError(
                f"fabric {fabric.id}: no bandwidth: neither set (fabricKeps) nor known from "
                "its chips' profiles (fabricEventsPerSecond)"
            )
    if keps < settings.keps_min:
        raise FabricError(f"fabric {fabric.id}: {keps} keps is below the minimum request")
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


def fabric_slices(
    inventory: Inventory,
    settings: FabricSettings,
    profiles: Mapping[str, ChipProfile] | None = None,
) -> list[dict[str, Any]]:
    """One slice per fabric, sorted by name; generation 1 (reconcile bumps it on change)."""
    found = fabrics(inventory, profiles)
    unknown = set(settings.keps_for) - {f.id for f in found}
    if unknown:
        raise FabricError(f"bandwidth given for unknown fabrics: {', '.join(sorted(unknown))}")
    return [fabric_slice(f, settings) for f in found]
