"""Cluster-level ResourceSlices for the address-event fabrics between chips (pure).

A fabric (a board or a wafer) can be served by several nodes; its spike bandwidth belongs to
no single node, so the controller publishes it: one pool per fabric, one slice whose
``nodeSelector`` names the nodes attached to it, and one device ``fabric-<id>`` that many
claims share (``allowMultipleAllocations``) through a consumable ``keps`` capacity. The
scheduler refuses the claim that would oversubscribe it.

The device carries no binding conditions: nothing is set up for a bandwidth grant before a pod
binds (the routes a pod waits for are on the chips' routers: resources/slices.py).

The device follows fabric link faults. The chips' devices are the one source of truth: each
publishes its chip's working fabric links (``fabricLinks``, resources/slices.py); the
controller reads them from the node slices (``published_links``) and compares them with the
links the inventory's grid gives each chip (``nominal_links``). The fabric device then shows
``fabricLinks`` (working, all its chips) and ``failedFabricLinks``, and its ``keps`` shrinks
by the worst-hit chip's share of working links: the full figure (one link) is a grant every
pair of chips can be given only while every chip still reaches every other, which a chip
with failed links may no longer do, and a chip with none left does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.hardware.model import ChipProfile, Inventory
from darwin_dra.resources import API_VERSION, MANAGED_BY, OWNER_LABEL
from darwin_dra.resources.chips import nominal_views

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


ChipKey = tuple[str, int]  # (node, chip id as the node's engine numbers it)


@dataclass(frozen=True)
class Fabric:
    id: str
    nodes: tuple[str, ...]
    chips: int
    link_keps: int = 0  # one direction of its slowest link (fabricEventsPerSecond / 1000)
    links: int = 0  # working directed links between its chips (known with profiles)
    failed_links: int = 0
    share: Fraction = Fraction(1)  # the worst-hit chip's working share of its links


def nominal_links(inventory: Inventory, profiles: Mapping[str, ChipProfile]) -> dict[ChipKey, int]:
    """The fabric links out of each chip on a fabric, as the engine's grid gives them (the
    chip devices' ``fabricLinks`` with nothing failed)."""
    return {
        (node.name, view.chip): view.fabric_links
        for node in inventory.nodes
        for view in nominal_views(node.chips, profiles)
        if view.fabric
    }


def _int_attr(dev: Mapping[str, Any], name: str) -> int | None:
    raw = (dev.get("attributes") or {}).get(name)
    value = raw.get("int") if isinstance(raw, Mapping) else None
    return value if isinstance(value, int) else None


def published_links(slices: Iterable[Mapping[str, Any]]) -> dict[ChipKey, int]:
    """Each chip's working fabric links as its devices publish them (``fabricLinks``), from
    the newest generation of each node's pool of this driver. A chip whose devices disagree
    (two slices of one pool written apart) counts the fewest."""
    node_slices = [
        s
        for s in slices
        if (s.get("spec") or {}).get("driver") == DRIVER_NAME and s["spec"].get("nodeName")
    ]
    newest: dict[str, int] = {}
    for s in node_slices:
        pool = s["spec"].get("pool") or {}
        name = str(pool.get("name", ""))
        newest[name] = max(newest.get(name, 0), int(pool.get("generation", 0)))
    out: dict[ChipKey, int] = {}
    for s in node_slices:
        pool = s["spec"].get("pool") or {}
        if int(pool.get("generation", 0)) != newest[str(pool.get("name", ""))]:
            continue
        node = str(s["spec"]["nodeName"])
        for dev in s["spec"].get("devices") or []:
            chip, links = _int_attr(dev, "chip"), _int_attr(dev, "fabricLinks")
            if chip is not None and links is not None:
                key = (node, chip)
                out[key] = min(out.get(key, links), links)
    return out


def fabrics(
    inventory: Inventory,
    profiles: Mapping[str, ChipProfile] | None = None,
    published: Mapping[ChipKey, int] | None = None,
) -> list[Fabric]:
    """The fabrics of an inventory with the nodes attached to each, sorted by id; with the
    chips' ``profiles``, each fabric's link bandwidth and links, those the chips have
    ``published`` (``published_links``) counting as working (a chip not published yet: all
    of its links)."""
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
    working: dict[str, int] = {}
    failed: dict[str, int] = {}
    share: dict[str, Fraction] = {}
    if profiles is not None:
        for node in inventory.nodes:
            for view in nominal_views(node.chips, profiles):
                if not view.fabric:
                    continue
                f, nominal = view.fabric, view.fabric_links
                up = min(nominal, (published or {}).get((node.name, view.chip), nominal))
                working[f] = working.get(f, 0) + up
                failed[f] = failed.get(f, 0) + nominal - up
                if nominal:
                    share[f] = min(share.get(f, Fraction(1)), Fraction(max(up, 0), nominal))
    return [
        Fabric(
            f,
            tuple(sorted(nodes[f])),
            chips[f],
            link.get(f, 0),
            working.get(f, 0),
            failed.get(f, 0),
            share.get(f, Fraction(1)),
        )
        for f in sorted(nodes)
    ]


def fabric_keps(fabric: Fabric, settings: FabricSettings) -> int:
    """The bandwidth the fabric device offers: the set or the link figure, scaled down to its
    worst-hit chip's share of working links (to the request step; 0 when that leaves less
    than the API server takes with a request policy: the smallest request and one step more).
    Raises when the figure itself is unknown or too small."""
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
    if fabric.share >= 1:
        return keps
    scaled = int(keps * fabric.share) // settings.keps_step * settings.keps_step
    return scaled if scaled >= settings.keps_min + settings.keps_step else 0


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
    keps = fabric_keps(fabric, settings)
    device: dict[str, Any] = {
        "name": name,
        "attributes": {
            "partition": {"string": "fabric"},
            "fabric": {"string": fabric.id},
            "chips": {"int": fabric.chips},
            "nodes": {"int": len(fabric.nodes)},
            "fabricLinks": {"int": fabric.links},
            "failedFabricLinks": {"int": fabric.failed_links},
        },
        # No bandwidth left (a chip cut off): no request policy, which the API server refuses
        # above the capacity ("min is larger than capacity value"); every request is refused.
        "capacity": {
            "keps": {
                "value": _q(keps),
                "requestPolicy": {
                    "default": _q(settings.keps_min),
                    "validRange": {"min": _q(settings.keps_min), "step": _q(settings.keps_step)},
                },
            }
            if keps
            else {"value": "0"}
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
    published: Mapping[ChipKey, int] | None = None,
) -> list[dict[str, Any]]:
    """One slice per fabric, sorted by name; generation 1 (reconcile bumps it on change).
    ``published``: the chips' working fabric links (``published_links`` of the node slices)."""
    found = fabrics(inventory, profiles, published)
    unknown = set(settings.keps_for) - {f.id for f in found}
    if unknown:
        raise FabricError(f"bandwidth given for unknown fabrics: {', '.join(sorted(unknown))}")
    return [fabric_slice(f, settings) for f in found]


@dataclass(frozen=True)
class FabricsOf:
    """The fabric slices as a pure function of the node slices observed: what the controller
    publishes on every pass (``__call__``), the chips' fabric faults included."""

    inventory: Inventory
    settings: FabricSettings
    profiles: Mapping[str, ChipProfile] | None = None

    def __post_init__(self) -> None:
        self(())  # a bad inventory or setting is refused before anything is written

    def __call__(self, observed: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        published = published_links(observed) if self.profiles is not None else None
        return fabric_slices(self.inventory, self.settings, self.profiles, published)
