"""Per node and per chip: partitions free and taken, KEPS used and free, health and taints.

Pure: computed from the cluster's ResourceSlices, ResourceClaims and Nodes as plain dicts.
With the capacity layout (one device a chip) the domains are counted instead: taken is what
the grants consumed, free what remains of the usable domains the device publishes, and the
grants are shown where shares are. A partition is taken when a claim's allocation names it;
it is free when no allocated device consumes any of its domain counters (overlapping
partitions share them, so a quad inside an allocated half is neither). A shared device
consumes its half's counters once, on its first allocation, so while it holds shares the
exclusive partitions of that half are not free.
KEPS used counts exclusive partitions at their router share and shares at what they consumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.kubetypes import ReadOnlyObj as Obj
from darwin_dra.resources.partitions import TAINT_KEY

KINDS = ("domain", "quad", "half", "chip")


@dataclass
class ChipUsage:
    node: str
    chip: int
    model: str = "?"
    fabric: str = "?"
    free: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    taken: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    shares: int = 0  # shares on the shared devices; grants on a capacity device
    layout: str = "partitions"  # "capacity": one device a chip, counted in domains
    keps_total: int = 0
    keps_used: int = 0
    unhealthy: dict[str, int] = field(default_factory=dict)  # taint value -> devices

    @property
    def keps_free(self) -> int:
        return max(self.keps_total - self.keps_used, 0)

    @property
    def health(self) -> str:
        if not self.unhealthy:
            return "healthy"
        return ", ".join(f"{n} {v}" for v, n in sorted(self.unhealthy.items()))


@dataclass
class NodeUsage:
    name: str
    ready: str = "unknown"
    taints: list[str] = field(default_factory=list)
    chips: list[ChipUsage] = field(default_factory=list)


def _attr(device: Obj, name: str) -> Any:
    value = (device.get("attributes") or {}).get(name) or {}
    for kind in ("string", "int", "bool", "version"):
        if kind in value:
            return value[kind]
    return None


def _qty(value: Any) -> int:
    text = str(value.get("value", value) if isinstance(value, Mapping) else value)
    mult = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
    if text and text[-1] in mult:
        return int(float(text[:-1]) * mult[text[-1]])
    return int(float(text)) if text else 0


def _allocations(claims: Iterable[Obj]) -> dict[tuple[str, str], list[Obj]]:
    out: dict[tuple[str, str], list[Obj]] = {}
    for claim in claims:
        alloc = ((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}
        for r in alloc.get("results") or []:
            if r.get("driver") == DRIVER_NAME:
                out.setdefault((str(r["pool"]), str(r["device"])), []).append(r)
    return out


def _domain_counters(device: Obj) -> set[tuple[str, str]]:
    return {
        (c["counterSet"], name)
        for c in device.get("consumesCounters") or []
        for name in c.get("counters") or {}
        if name.startswith("d")
    }


def _keps_counter(device: Obj) -> int:
    return sum(
        _qty((c.get("counters") or {}).get("keps", {"value": "0"}))
        for c in device.get("consumesCounters") or []
    )


def _capacity_usage(u: ChipUsage, device: Obj, results: Sequence[Obj]) -> None:
    """The capacity layout's one device a chip: its grants, the domains they consumed of the
    usable ones it publishes, and their KEPS budgets (quads and halves do not exist)."""
    cap = device.get("capacity") or {}
    consumed = [r.get("consumedCapacity") or {} for r in results]
    u.layout = "capacity"
    u.shares += len(results)
    u.total["domain"] = _qty(cap.get("domains", "0"))
    u.taken["domain"] = sum(_qty(c.get("domains", "0")) for c in consumed)
    u.free["domain"] = max(u.total["domain"] - u.taken["domain"], 0)
    u.total["chip"] = 1
    u.free["chip"] = int(not results)
    u.keps_total = _qty(cap.get("keps", "0"))
    u.keps_used = sum(_qty(c.get("keps", "0")) for c in consumed)


def chip_usage(slices: Sequence[Obj], claims: Iterable[Obj]) -> dict[str, list[ChipUsage]]:
    """Node name -> its chips' usage, from the driver's node-local slices."""
    allocated = _allocations(claims)
    devices: dict[str, list[Obj]] = {}
    for s in slices:
        spec = s.get("spec") or {}
        if spec.get("driver") != DRIVER_NAME or not spec.get("nodeName"):
            continue
        pool = str((spec.get("pool") or {}).get("name") or spec["nodeName"])
        devices.setdefault(pool, []).extend(spec.get("devices") or [])
    out: dict[str, list[ChipUsage]] = {}
    for pool, devs in sorted(devices.items()):
        taken_counters: set[tuple[str, str]] = set()
        for d in devs:
            if (pool, d["name"]) in allocated:
                taken_counters |= _domain_counters(d)
        chips: dict[int, ChipUsage] = {}
        for d in devs:
            chip_id = _attr(d, "chip")
            if not isinstance(chip_id, int):
                continue
            u = chips.setdefault(chip_id, ChipUsage(pool, chip_id))
            u.model = str(_attr(d, "model") or u.model)
            u.fabric = str(_attr(d, "fabric") or u.fabric)
            kind = str(_attr(d, "partition") or "chip")  # plain slices: one device a chip
            if kind == "router":  # a chip's router holds no cores: not a partition to count
                continue
            results = allocated.get((pool, d["name"]), [])
            for taint in d.get("taints") or []:
                if taint.get("key") == TAINT_KEY:
                    value = str(taint.get("value") or "unhealthy")
                    u.unhealthy[value] = u.unhealthy.get(value, 0) + 1
            if kind == "capacity":
                _capacity_usage(u, d, results)
                continue
            if kind == "shared":
                u.shares += len(results)
                u.keps_used += sum(
                    _qty((r.get("consumedCapacity") or {}).get("keps", "0")) for r in results
                )
                continue
            if kind not in KINDS:
                continue
            u.total[kind] += 1
            if kind == "chip":
                cap = (d.get("capacity") or {}).get("keps")
                u.keps_total = max(u.keps_total, _qty(cap) if cap else _keps_counter(d))
            if results:
                u.taken[kind] += 1
                u.keps_used += _keps_counter(d)
            elif not _domain_counters(d) & taken_counters:
                u.free[kind] += 1
        out[pool] = [chips[c] for c in sorted(chips)]
    return out


def node_usage(
    nodes: Sequence[Obj], slices: Sequence[Obj], claims: Sequence[Obj]
) -> list[NodeUsage]:
    """Every node with Darwin chips (and every node of the cluster, chips or not)."""
    chips = chip_usage(slices, claims)
    out: dict[str, NodeUsage] = {}
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name"))
        conds = {
            c.get("type"): c.get("status")
            for c in (node.get("status") or {}).get("conditions") or []
        }
        taints = [
            f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
            for t in (node.get("spec") or {}).get("taints") or []
        ]
        out[name] = NodeUsage(name, str(conds.get("Ready", "unknown")), taints)
    for pool, usage in chips.items():
        out.setdefault(pool, NodeUsage(pool, "no Node object")).chips = usage
    return [out[n] for n in sorted(out)]


def human(n: int) -> str:
    """Thousands of events/s, shortened: 1.00 G, 27.8 M, 250 k."""
    for div, unit in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return str(n)
