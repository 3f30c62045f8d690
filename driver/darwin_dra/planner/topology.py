"""Where a model can go: nodes, fabrics, chips and the free domains of each chip (pure).

The planner's finest partition is one asynchronous domain (the ``chip-c-domain-d`` device): its
free neurons, synapses and KEPS bound what groups it may hold, its tile origin on the chip's
mesh gives hop distances. A topology comes from ResourceSlices, the live cluster's
(``parse_slices``, fed by kubeapi) or ones built from a topology file by the same slice builders
the plugin and the controller use (topology_file.py), so the two paths read one format.

What is not free: a domain whose device carries a taint (degraded or failed), a domain that an
allocated exclusive device spans (a domain, quad, half or whole chip of some claim), and the
share of a shared device's capacity that claims consumed (taken evenly from its domains).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.quantity import parse_quantity

_DOMAIN_DEVICE = re.compile(r"^chip-(\d+)-domain-(\d+)$")


class TopologyError(ValueError):
    """A slice, claim or topology file that does not describe usable hardware."""


@dataclass(frozen=True)
class Domain:
    """One domain with what is free on it; ``x``, ``y`` its tile origin on the chip's mesh."""

    index: int
    x: int
    y: int
    cores: int
    neurons: int
    synapses: int
    keps: int


@dataclass(frozen=True)
class Chip:
    node: str
    chip: int
    fabric: str
    model: str
    domains: tuple[Domain, ...]  # the usable ones, by index
    unusable: int = 0  # domains tainted or allocated

    @property
    def name(self) -> str:
        return f"{self.node}/chip-{self.chip}"


@dataclass(frozen=True)
class Fabric:
    id: str
    nodes: tuple[str, ...]
    keps: int  # free inter-chip bandwidth, thousands of events/s


@dataclass(frozen=True)
class Topology:
    chips: tuple[Chip, ...]
    fabrics: tuple[Fabric, ...] = ()
    source: str = ""

    @property
    def nodes(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for c in self.chips:
            seen.setdefault(c.node, None)
        return tuple(seen)

    def free(self) -> tuple[int, int, int]:
        """Free (neurons, synapses, keps) over every usable domain."""
        doms = [d for c in self.chips for d in c.domains]
        return (
            sum(d.neurons for d in doms),
            sum(d.synapses for d in doms),
            sum(d.keps for d in doms),
        )


def _quantity(value: Any, where: str) -> int:
    """A canonical Kubernetes quantity as an integer ("1k", "2500000", "3M", "1Gi")."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or value is None:
        raise TopologyError(f"{where}: missing quantity")
    if isinstance(value, int):
        return value
    try:
        return int(parse_quantity(str(value)))
    except ValueError:
        raise TopologyError(f"{where}: {value!r} is not a Kubernetes quantity") from None


def _attr(device: Mapping[str, Any], name: str, where: str) -> Any:
    attrs = device.get("attributes", {})
    if name not in attrs or not isinstance(attrs[name], Mapping) or not attrs[name]:
        raise TopologyError(f"{where}: attribute {name!r} is missing")
    return next(iter(attrs[name].values()))


@dataclass
class _ChipBuild:
    node: str
    chip: int
    fabric: str
    model: str
    domains: dict[int, Domain] = field(default_factory=dict)
    tainted: set[int] = field(default_factory=set)


def parse_slices(
    slices: Iterable[Mapping[str, Any]],
    claims: Iterable[Mapping[str, Any]] = (),
    source: str = "cluster",
) -> Topology:
    """The topology that ResourceSlices (node pools and fabric pools) and the allocations of
    ResourceClaims describe (pure). Slices of other drivers are ignored."""
    chips: dict[tuple[str, int], _ChipBuild] = {}
    # (pool, device name) -> (node, chip, domains); (pool, counterSet, counter) -> domain
    spans: dict[tuple[str, str], tuple[str, int, list[int], bool]] = {}
    fabric_keps: dict[str, int] = {}
    fabric_nodes: dict[str, tuple[str, ...]] = {}
    node_devices: list[tuple[str, str, Mapping[str, Any]]] = []
    for s in slices:
        spec = s.get("spec", {})
        if spec.get("driver") != DRIVER_NAME:
            continue
        name = s.get("metadata", {}).get("name", "?")
        pool = spec.get("pool", {}).get("name", "")
        node = spec.get("nodeName")
        for dev in spec.get("devices", []):
            where = f"slice {name}, device {dev.get('name', '?')}"
            kind = _attr(dev, "partition", where)
            if kind == "fabric":
                fid = str(_attr(dev, "fabric", where))
                fabric_keps[fid] = _quantity(dev.get("capacity", {}).get("keps"), where)
                terms = spec.get("nodeSelector", {}).get("nodeSelectorTerms", [])
                values = [
                    v
                    for t in terms
                    for e in t.get("matchExpressions", [])
                    for v in e.get("values", [])
                ]
                fabric_nodes[fid] = tuple(sorted(values))
                continue
            if not node:
                raise TopologyError(f"{where}: a chip device in a slice without spec.nodeName")
            node_devices.append((str(node), pool, dev))
    # Domains first: they tell which counter of which set is which domain.
    counter_to_domain: dict[tuple[str, str, str], int] = {}
    for node, _pool, dev in node_devices:
        m = _DOMAIN_DEVICE.match(str(dev.get("name", "")))
        if not m:
            continue
        where = f"node {node}, device {dev['name']}"
        chip_id, index = int(m.group(1)), int(m.group(2))
        cap = dev.get("capacity", {})
        build = chips.setdefault(
            (node, chip_id),
            _ChipBuild(
                node,
                chip_id,
                str(_attr(dev, "fabric", where)),
                str(_attr(dev, "model", where)),
            ),
        )
        build.domains[index] = Domain(
            index=index,
            x=int(_attr(dev, "meshX", where)),
            y=int(_attr(dev, "meshY", where)),
            cores=_quantity(cap.get("cores"), f"{where} capacity cores"),
            neurons=_quantity(cap.get("neurons"), f"{where} capacity neurons"),
            synapses=_quantity(cap.get("synapses"), f"{where} capacity synapses"),
            keps=_quantity(cap.get("keps"), f"{where} capacity keps"),
        )
        if dev.get("taints"):
            build.tainted.add(index)
        for c in dev.get("consumesCounters", []):
            for counter in c.get("counters", {}):
                if re.fullmatch(r"d\d+", counter):
                    counter_to_domain[(node, c.get("counterSet", ""), counter)] = index
    for node, pool, dev in node_devices:
        where = f"node {node}, device {dev.get('name')}"
        chip_id = int(_attr(dev, "chip", where))
        members = sorted(
            {
                counter_to_domain[(node, c.get("counterSet", ""), k)]
                for c in dev.get("consumesCounters", [])
                for k in c.get("counters", {})
                if (node, c.get("counterSet", ""), k) in counter_to_domain
            }
        )
        shared = bool(dev.get("allowMultipleAllocations"))
        spans[(pool, str(dev.get("name")))] = (node, chip_id, members, shared)
    if not chips:
        raise TopologyError(f"{source}: no {DRIVER_NAME} domain devices in the ResourceSlices")
    taken: dict[tuple[str, int], set[int]] = {}
    consumed: dict[tuple[str, int], list[tuple[list[int], dict[str, int]]]] = {}
    for claim in claims:
        cname = claim.get("metadata", {}).get("name", "?")
        results = (
            (claim.get("status") or {}).get("allocation", {}).get("devices", {}).get("results", [])
        )
        for r in results:
            if r.get("driver") != DRIVER_NAME:
                continue
            key = (str(r.get("pool", "")), str(r.get("device", "")))
            if key[1].startswith("fabric-"):
                fid = key[1][len("fabric-") :]
                used = _quantity((r.get("consumedCapacity") or {}).get("keps", 0), f"claim {cname}")
                if fid in fabric_keps:
                    fabric_keps[fid] = max(0, fabric_keps[fid] - used)
                continue
            if key not in spans:
                continue  # a device no longer published: nothing of it is free anyway
            node, chip_id, members, shared = spans[key]
            if shared:
                cap = r.get("consumedCapacity") or {}
                amounts = {
                    k: _quantity(cap[k], f"claim {cname} consumedCapacity {k}")
                    for k in ("neurons", "synapses", "keps")
                    if k in cap
                }
                consumed.setdefault((node, chip_id), []).append((members, amounts))
            else:
                taken.setdefault((node, chip_id), set()).update(members)
    out = []
    for (node, chip_id), b in sorted(chips.items()):
        doms = dict(b.domains)
        for members, amounts in consumed.get((node, chip_id), []):
            live = [i for i in members if i in doms]
            for k, amount in amounts.items():
                total = sum(getattr(doms[i], k) for i in live) or 1
                for i in live:
                    d = doms[i]
                    cut = -(-amount * getattr(d, k) // total)
                    doms[i] = replace(d, **{k: max(0, getattr(d, k) - cut)})
        bad = b.tainted | taken.get((node, chip_id), set())
        usable = tuple(d for i, d in sorted(doms.items()) if i not in bad)
        out.append(Chip(node, chip_id, b.fabric, b.model, usable, unusable=len(doms) - len(usable)))
    fabrics = tuple(Fabric(f, fabric_nodes.get(f, ()), fabric_keps[f]) for f in sorted(fabric_keps))
    return Topology(tuple(out), fabrics, source)


def without_domains(topology: Topology, taken: Mapping[tuple[str, int], Sequence[int]]) -> Topology:
    """The topology with some domains of some chips marked used (a topology file's
    ``allocatedDomains``)."""
    chips = []
    for c in topology.chips:
        gone = set(taken.get((c.node, c.chip), ()))
        keep = tuple(d for d in c.domains if d.index not in gone)
        chips.append(replace(c, domains=keep, unusable=c.unusable + len(c.domains) - len(keep)))
    return replace(topology, chips=tuple(chips))
