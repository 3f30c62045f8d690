"""Which partitions of a chip are published as devices, and how healthy each is (pure).

A chip's devices are its single domains, its 2 x 2 quads, its halves, the whole chip and one
shared device per half; their names (``chip-c-quad-q`` ...) are what a claim's allocation
names, so the plugin maps a device back to its domains with the same table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from darwin_dra.resources.chips import ChipView, Health
from darwin_dra.resources.meshlinks import link_free, links_crossed

TAINT_KEY = "darwin.snn.io/unhealthy"


def partition_health(chip: ChipView, domains: Sequence[int]) -> Health:
    """The worst of the chip's own state and that of the domains the partition spans; failed
    when its spikes may cross a failed link (the engine drops them there)."""
    by_index = {d.index: d for d in chip.domains}
    links = Health.FAILED if links_crossed(chip, domains, chip.failed_links) else Health.OK
    return max([chip.health, links, *(by_index[i].health for i in domains)])


def device_taints(chip: ChipView, domains: Sequence[int]) -> list[dict[str, str]]:
    """Taints of a partition: NoSchedule when degraded, NoExecute when failed (pure)."""
    return health_taints(partition_health(chip, domains))


def health_taints(health: Health) -> list[dict[str, str]]:
    if health is Health.OK:
        return []
    effect = "NoExecute" if health is Health.FAILED else "NoSchedule"
    return [{"key": TAINT_KEY, "value": health.name.lower(), "effect": effect}]


RESET_TAINT = {"key": TAINT_KEY, "value": "reset", "effect": "NoExecute"}


def with_reset_taints(
    slices: Sequence[dict[str, Any]], lost: frozenset[str]
) -> list[dict[str, Any]]:
    """The slices with a NoExecute ``reset`` taint on every device in ``lost`` (pure): their
    claims' partitions died in a chip reset, so the pods using them must leave."""
    if not lost:
        return list(slices)
    out = []
    for sl in slices:
        devices = sl["spec"].get("devices")
        if devices is None or not any(d["name"] in lost for d in devices):
            out.append(sl)
            continue
        marked = [
            {**d, "taints": [*d.get("taints", []), dict(RESET_TAINT)]} if d["name"] in lost else d
            for d in devices
        ]
        out.append({**sl, "spec": {**sl["spec"], "devices": marked}})
    return out


@dataclass(frozen=True)
class Partition:
    name: str
    kind: str  # chip | half | quad | domain | shared
    domains: tuple[int, ...]
    origin: tuple[int, int]  # domain grid coordinates of the top-left domain
    size: tuple[int, int]  # in domains
    shared: bool = False


PARTITION_KINDS = ("domain", "quad", "half", "chip", "shared")
# A lighter layout for large clusters: no single domains, so a chip publishes 14 devices
# instead of 50, 18 instead of 54 with its routers (the scheduler checks every device of every
# node it filters; see docs/fleet.md).
LIGHT_PARTITIONS = ("quad", "half", "chip", "shared")
# The capacity layout: one device a chip, allocated many times; each allocation consumes a
# number of domains and a KEPS budget (consumable capacity), and the plugin picks which
# domains at prepare time (plugin/placement.py). No counters: the scheduler counts domains
# by capacity only, so it must never be published beside the counted partitions.
CAPACITY = "capacity"
CAPACITY_PARTITIONS = (CAPACITY,)
# Every kind a device name can have: what the plugin resolves an allocation's device with.
ALL_KINDS = (*PARTITION_KINDS, CAPACITY)

# A chip's routers, ``chip-c-router-r``: published beside the shared devices (a pipeline's
# group asks for one with its stages when they exchange spikes on the chip), holding no cores.
# They carry binding conditions: the plugin programs the claim's routes before the pod binds
# and reports RoutesProgrammed or RoutesFailed on the router (plugin/earlybind.py). Several
# devices, each allocated once, not one allocated many times: while one allocation of an
# allowMultipleAllocations device waits in PreBind, the scheduler refuses further claims of
# that device (docs/resource-model.md), which would hold a second pipeline's group on the chip
# back until the first had bound. So at most this many routed claims share a chip.
ROUTER = "router"
ROUTERS_PER_CHIP = 4
ROUTES_PROGRAMMED = "RoutesProgrammed"
ROUTES_FAILED = "RoutesFailed"
_ROUTER_NAME = re.compile(r"chip-(\d+)-router-\d+")


def router_name(chip: int, index: int) -> str:
    return f"chip-{chip}-{ROUTER}-{index}"


_CHIP_DEVICE = re.compile(r"chip-(\d+)-.+")


def device_chip(device: str) -> int | None:
    """The chip of any chip device's name (a partition, a share, a router); None for others
    (a fabric's bandwidth device)."""
    m = _CHIP_DEVICE.fullmatch(device)
    return int(m.group(1)) if m else None


def router_chip(device: str) -> int | None:
    """The chip of a router device's name; None for any other device."""
    m = _ROUTER_NAME.fullmatch(device)
    return int(m.group(1)) if m else None


def parse_partitions(text: str) -> tuple[str, ...]:
    """A comma-separated list of partition kinds, checked (ValueError names the bad kind)."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if text.strip() == "light":
        return LIGHT_PARTITIONS
    if text.strip() in ("all", "full"):
        return PARTITION_KINDS
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad or not kinds:
        raise ValueError(
            f"partitions: unknown kind(s) {bad or [text]}; use a list of "
            f"{', '.join(PARTITION_KINDS)}, or 'full', 'light' or 'capacity'"
        )
    if CAPACITY in kinds and len(set(kinds)) > 1:
        raise ValueError(
            "partitions: 'capacity' cannot be combined with other kinds: its domains are "
            "counted by consumable capacity, the others' by counters, so together the "
            "scheduler could hand out one domain twice"
        )
    if CAPACITY in kinds:
        return CAPACITY_PARTITIONS
    return tuple(k for k in PARTITION_KINDS if k in kinds)


def partitions(chip: ChipView, kinds: Sequence[str] = PARTITION_KINDS) -> list[Partition]:
    """The chip's partitions of ``kinds`` in publishing order: the shared devices, then the
    exclusive partitions smallest first, then the capacity device."""
    return [p for p in _all_partitions(chip) if p.kind in kinds]


def usable_domains(chip: ChipView) -> tuple[int, ...]:
    """The domains a capacity allocation may be placed on: healthy ones of a chip that is
    not failed (a degraded domain takes no new work, as its partitions' NoSchedule says),
    that no failed link touches and whose host route crosses none (meshlinks.link_free)."""
    if chip.health is Health.FAILED:
        return ()
    return tuple(
        d.index for d in chip.domains if d.health is Health.OK and link_free(chip, d.index)
    )


def grant_health(chip: ChipView) -> Health:
    """FAILED when a prepared capacity grant (``chip.grants``) holds a failed domain or its
    spikes may cross a failed link: its pod must leave. A grant on a degraded domain keeps
    running (only new work is kept off, by the shrunk capacity)."""
    by_index = {d.index: d for d in chip.domains}
    for grant in chip.grants:
        if any(by_index[i].health is Health.FAILED for i in grant if i in by_index):
            return Health.FAILED
        if links_crossed(chip, grant, chip.failed_links):
            return Health.FAILED
    return Health.OK


def health_of(chip: ChipView, part: Partition) -> Health:
    """A device's health. The capacity device spans the chip but is placed on its usable
    domains only, so hurt domains shrink its capacity instead; it is degraded when the chip
    is, or when no domain is left to place anything on, and failed when a fault hit a domain
    or link under a prepared grant (device taints are a device's, so every claim on the
    chip's device is evicted with it: the price of one device a chip)."""
    if part.kind != CAPACITY:
        return partition_health(chip, part.domains)
    if chip.health is Health.OK and not usable_domains(chip):
        return max(Health.DEGRADED, grant_health(chip))
    return max(chip.health, grant_health(chip))


def taints_of(chip: ChipView, part: Partition) -> list[dict[str, str]]:
    """Taints of a device: NoSchedule when degraded, NoExecute when failed (pure)."""
    return health_taints(health_of(chip, part))


def _all_partitions(chip: ChipView) -> list[Partition]:
    dx, dy = chip.domains_x, chip.domains_y
    c = chip.chip
    half_rows = dy // 2
    # The shared devices lead: no class but the shared one selects them, so their place
    # changes no allocation, while a share request no longer walks (and CEL-checks) all the
    # chip's exclusive partitions first on every node the scheduler filters (docs/fleet.md).
    halves = [tuple(range(h * half_rows * dx, (h + 1) * half_rows * dx)) for h in (0, 1)]
    out = [
        Partition(f"chip-{c}-shared-{h}", "shared", m, (0, h * half_rows), (dx, half_rows), True)
        for h, m in enumerate(halves)
    ]
    for d in range(dx * dy):
        out.append(Partition(f"chip-{c}-domain-{d}", "domain", (d,), (d % dx, d // dx), (1, 1)))
    qx = dx // 2
    for q in range(qx * (dy // 2)):
        x0, y0 = (q % qx) * 2, (q // qx) * 2
        members = tuple(y * dx + x for y in (y0, y0 + 1) for x in (x0, x0 + 1))
        out.append(Partition(f"chip-{c}-quad-{q}", "quad", members, (x0, y0), (2, 2)))
    for h, members in enumerate(halves):
        out.append(
            Partition(f"chip-{c}-half-{h}", "half", members, (0, h * half_rows), (dx, half_rows))
        )
    out.append(Partition(f"chip-{c}", "chip", tuple(range(dx * dy)), (0, 0), (dx, dy)))
    out.append(Partition(f"chip-{c}-capacity", CAPACITY, tuple(range(dx * dy)), (0, 0), (dx, dy)))
    return out
