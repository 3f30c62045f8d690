"""The live cluster as the pipeline placement sees it (pure): the shared half-chip devices a
stage can be granted KEPS on, with what is free of each, and the fabrics between chips.

Read from ResourceSlices (the newest generation of each pool), the allocations of
ResourceClaims and the nodes' labels. What is not free: a half whose shared device carries a
taint (a failed or degraded chip), a half on a chip that lost a fabric link (``avoid``:
``fabric_faulted``), a half that an exclusive partition of some claim overlaps (they consume
the same counters), and the capacity other claims consumed of a shared device.
The pipeline's own claims are left out (``ignore_claims``): a placement made again must see
the hardware its old claims hold as free.

A chip's routers (``chip-c-router-r``, resources/routers.py) are counted the same way: the ones
its slice publishes, less the tainted ones and those other claims hold. A group whose stages
exchange spikes on the chip takes one (pipeline/placement.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.quantity import quantity_or_none as quantity
from darwin_dra.resources.fabric import ChipKey, published_links
from darwin_dra.resources.partitions import ROUTER, ROUTERS_PER_CHIP


@dataclass(frozen=True)
class Half:
    """A chip's shared device (``chip-c-shared-h``) and what is free of it."""

    pool: str
    device: str
    keps: int
    neurons: int
    synapses: int


@dataclass(frozen=True)
class ChipSlot:
    node: str
    chip: int
    fabric: str
    halves: tuple[Half, ...]
    # Free routers: one a group whose stages exchange spikes on the chip takes. A view read
    # from slices counts the published ones (cluster_view); a hand-made one has them all.
    routers: int = ROUTERS_PER_CHIP

    @property
    def name(self) -> str:
        return f"{self.node}/chip-{self.chip}"


@dataclass(frozen=True)
class FabricLink:
    id: str
    pool: str
    device: str
    nodes: tuple[str, ...]
    keps: int  # free inter-chip bandwidth, thousands of events/s


@dataclass(frozen=True)
class ClusterView:
    chips: tuple[ChipSlot, ...]
    fabrics: tuple[FabricLink, ...] = ()
    node_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # serials of the chips left out (``avoid``): the claims keep off them, as the scheduler
    # keeps off a tainted device by itself
    avoid_serials: tuple[str, ...] = ()

    def fabric(self, fabric_id: str) -> FabricLink | None:
        return next((f for f in self.fabrics if f.id == fabric_id), None)


def _q(value: Any) -> int:
    if isinstance(value, Mapping):
        value = value.get("value")
    q = quantity(str(value)) if value is not None else None
    return int(q) if q is not None else 0


def _attr(dev: Mapping[str, Any], name: str) -> Any:
    raw = (dev.get("attributes") or {}).get(name)
    return next(iter(raw.values())) if isinstance(raw, Mapping) and raw else None


def _newest(slices: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    ours = [s for s in slices if (s.get("spec") or {}).get("driver") == DRIVER_NAME]
    newest: dict[str, int] = {}
    for s in ours:
        pool = s["spec"].get("pool") or {}
        name = str(pool.get("name", ""))
        newest[name] = max(newest.get(name, 0), int(pool.get("generation", 0)))
    return [
        s
        for s in ours
        if int((s["spec"].get("pool") or {}).get("generation", 0))
        == newest[str((s["spec"].get("pool") or {}).get("name", ""))]
    ]


def _results(claim: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    alloc = (claim.get("status") or {}).get("allocation") or {}
    out: list[Mapping[str, Any]] = (alloc.get("devices") or {}).get("results") or []
    return [r for r in out if r.get("driver") == DRIVER_NAME]


def fabric_faulted(
    slices: Iterable[Mapping[str, Any]], nominal: Mapping[ChipKey, int]
) -> frozenset[tuple[str, str]]:
    """(pool, device) of every device of a chip whose published working fabric links
    (``fabricLinks``) are fewer than the ``nominal`` ones its fabric's grid gives it
    (resources/fabric.py ``nominal_links``): a chip a fabric fault cut off, in part or whole.
    The chip runs on, untainted (docs/operations.md); a pipeline leaves it."""
    newest = _newest(slices)
    short = {key for key, links in published_links(newest).items() if links < nominal.get(key, 0)}
    return frozenset(
        (str(s["spec"]["pool"]["name"]), str(dev.get("name")))
        for s in newest
        if s["spec"].get("nodeName")
        for dev in s["spec"].get("devices") or []
        if isinstance(_attr(dev, "chip"), int)
        and (str(s["spec"]["nodeName"]), int(_attr(dev, "chip"))) in short
    )


def cluster_view(
    slices: Iterable[Mapping[str, Any]],
    claims: Iterable[Mapping[str, Any]] = (),
    nodes: Iterable[Mapping[str, Any]] = (),
    ignore_claims: frozenset[str] = frozenset(),
    avoid: frozenset[tuple[str, str]] = frozenset(),
) -> ClusterView:
    """``ignore_claims``: uids of claims whose allocations count as free; ``avoid``: (pool,
    device) of devices left out as if tainted (``fabric_faulted``)."""
    shared: dict[tuple[str, str], tuple[str, int, str, set[str], dict[str, int]]] = {}
    exclusive_sets: dict[tuple[str, str], set[str]] = {}  # (pool, device) -> counter sets
    tainted: set[tuple[str, str]] = set()
    fabrics: dict[str, FabricLink] = {}
    avoided: set[str] = set()
    routers: dict[tuple[str, str], tuple[str, int]] = {}  # (pool, device) -> (node, chip)
    for s in _newest(slices):
        spec = s["spec"]
        pool = str(spec["pool"]["name"])
        node = spec.get("nodeName")
        for dev in spec.get("devices") or []:
            key = (pool, str(dev.get("name")))
            kind = _attr(dev, "partition")
            if kind == "fabric":
                terms = (spec.get("nodeSelector") or {}).get("nodeSelectorTerms") or []
                names = sorted(
                    str(v)
                    for t in terms
                    for e in t.get("matchExpressions") or []
                    for v in e.get("values") or []
                )
                fid = str(_attr(dev, "fabric"))
                keps = _q((dev.get("capacity") or {}).get("keps"))
                fabrics[fid] = FabricLink(fid, pool, key[1], tuple(names), keps)
                continue
            if not node:
                continue
            if dev.get("taints") or key in avoid:
                tainted.add(key)
            if key in avoid and _attr(dev, "serial"):
                avoided.add(str(_attr(dev, "serial")))
            sets = {str(c.get("counterSet")) for c in dev.get("consumesCounters") or []}
            if kind == ROUTER:
                if not dev.get("taints"):
                    routers[key] = (str(node), int(_attr(dev, "chip")))
                continue
            if kind == "shared":
                cap = dev.get("capacity") or {}
                free = {k: _q(cap.get(k)) for k in ("keps", "neurons", "synapses")}
                shared[key] = (
                    str(node),
                    int(_attr(dev, "chip")),
                    str(_attr(dev, "fabric")),
                    sets,
                    free,
                )
            else:
                exclusive_sets[key] = sets
    blocked: set[tuple[str, str]] = set()  # (pool, counter set) an exclusive allocation holds
    for claim in claims:
        if (claim.get("metadata") or {}).get("uid") in ignore_claims:
            continue
        for r in _results(claim):
            key = (str(r.get("pool")), str(r.get("device")))
            used = r.get("consumedCapacity") or {}
            if key in routers:
                del routers[key]
            elif key in shared:
                for k in ("keps", "neurons", "synapses"):
                    shared[key][4][k] -= _q(used.get(k, 0))
            elif key in exclusive_sets:
                blocked.update((key[0], cs) for cs in exclusive_sets[key])
            elif key[1].startswith("fabric-"):
                for fid, f in fabrics.items():
                    if (f.pool, f.device) == key:
                        fabrics[fid] = FabricLink(
                            f.id, f.pool, f.device, f.nodes, f.keps - _q(used.get("keps", 0))
                        )
    chips: dict[tuple[str, int], tuple[str, list[Half]]] = {}
    for key, (node, chip, fabric, sets, free) in sorted(shared.items()):
        entry = chips.setdefault((node, chip), (fabric, []))
        if key in tainted or any((key[0], cs) in blocked for cs in sets):
            continue
        entry[1].append(
            Half(
                key[0],
                key[1],
                max(0, free["keps"]),
                max(0, free["neurons"]),
                max(0, free["synapses"]),
            )
        )
    free_routers: dict[tuple[str, int], int] = {}
    for at in routers.values():
        free_routers[at] = free_routers.get(at, 0) + 1
    labels = {
        str((n.get("metadata") or {}).get("name")): dict(
            (n.get("metadata") or {}).get("labels") or {}
        )
        for n in nodes
    }
    return ClusterView(
        tuple(
            ChipSlot(node, chip, fab, tuple(h), free_routers.get((node, chip), 0))
            for (node, chip), (fab, h) in sorted(chips.items())
        ),
        tuple(fabrics[f] for f in sorted(fabrics)),
        labels,
        tuple(sorted(avoided)),
    )
