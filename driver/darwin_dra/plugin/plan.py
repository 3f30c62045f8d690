"""What a claim gets on this node, decided without side effects (pure).

From the claim's allocation (results of driver darwin.snn.io in this node's pool) to partition
intents for the engine, then from the engine's answer to CDI devices and ``status.devices``
entries. Every problem is a ClaimError whose message tells the user what to change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from darwin_dra import DRIVER_NAME
from darwin_dra.engine import PartitionConfig as EnginePartitionConfig
from darwin_dra.engine import Routing
from darwin_dra.engine import keps as kepsdef
from darwin_dra.kubetypes import Obj
from darwin_dra.plugin import cdi, placement, routeplan
from darwin_dra.plugin.config import (
    ConfigError,
    PartitionConfig,
    entries_from_allocation,
    merge_for_requests,
)
from darwin_dra.plugin.records import ClaimPlan, DeviceIntent, Prepared
from darwin_dra.quantity import parse_quantity
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.partitions import ALL_KINDS, CAPACITY, partitions, router_chip

READY = "Ready"


class ClaimError(ValueError):
    """This claim cannot be prepared here; the message is what the user sees."""


# ---- devices ----


class Published(NamedTuple):
    """What a device name means on this node."""

    chip: int
    domains: tuple[int, ...]  # a capacity device's: all the chip's (the plugin picks some)
    shared: bool
    capacity: bool = False  # the capacity layout's device: domains granted by number


def device_domains(chips: Mapping[int, ChipView]) -> dict[str, Published]:
    """Every device name this node can publish (any layout) -> what it means, the same table
    the slice builder publishes from, so a name can never mean two different core sets."""
    out: dict[str, Published] = {}
    for chip in chips.values():
        for part in partitions(chip, ALL_KINDS):
            out[part.name] = Published(chip.chip, part.domains, part.shared, part.kind == CAPACITY)
    return out


def _exclusive_keps(chip: ChipView, domains: Sequence[int]) -> int:
    by_index = {d.index: d.cores for d in chip.domains}
    cores = sum(by_index[d] for d in domains)
    return kepsdef.share(chip.keps, cores, chip.n_cores)


def _object(value: Any, where: str) -> Obj:
    """A mapping field of the claim (missing or null: empty). The API server's schema makes
    these objects, but the plugin also reads claims from its checkpoint and from tests: a wrong
    shape is a ClaimError naming the field, never an AttributeError deep inside."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ClaimError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _item(value: Any, where: str) -> Obj:
    """An entry of a list of objects: null is as wrong as any other non-object."""
    if not isinstance(value, dict):
        raise ClaimError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ClaimError(f"{where} must be a list, got {type(value).__name__}")
    return value


def _allocation(claim: Obj, where: str) -> Obj:
    allocation = _object(claim.get("status"), f"{where}: status").get("allocation")
    if not isinstance(allocation, dict):
        raise ClaimError(
            f"{where} is not allocated: the scheduler has not placed it yet, or it was "
            "deallocated; the kubelet should not prepare it now"
        )
    return allocation


def plan_claim(
    claim: Obj,
    uid: str,
    node: str,
    chips: Mapping[int, ChipView],
    table: Mapping[str, Published] | None = None,
) -> ClaimPlan:
    """The partition intents of one claim on this node (pool = node name)."""
    meta = _object(claim.get("metadata"), "ResourceClaim metadata")
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    where = f"ResourceClaim {namespace}/{name}"
    if meta.get("uid") != uid:
        raise ClaimError(
            f"{where} has UID {meta.get('uid')!r} but the kubelet asked for {uid!r}: the claim "
            "was deleted and recreated; the kubelet will retry with the new one"
        )
    if not cdi.DEVICE_RE.match(uid):  # checked before anything is made in the claim's name
        raise ClaimError(
            f"{where}: UID {uid!r} cannot name the claim's CDI spec and spike socket directories"
        )
    allocation = _allocation(claim, where)
    at_devices = f"{where}: status.allocation.devices"
    devices = _object(allocation.get("devices"), at_devices)
    every = _list(devices.get("results"), f"{at_devices}.results")
    results = [
        _item(r, f"{at_devices}.results[{i}]")
        for i, r in enumerate(every)
        if not isinstance(r, dict) or (r.get("driver") == DRIVER_NAME and r.get("pool") == node)
    ]
    # A chip's router holds no partition: its routes are the claim's (the annotation), and
    # its binding conditions are reported from the prepare (earlybind.py).
    results = [r for r in results if router_chip(str(r.get("device", ""))) is None]
    config_items = [
        _item(item, f"{at_devices}.config[{i}]")
        for i, item in enumerate(_list(devices.get("config"), f"{at_devices}.config"))
    ]
    table = table if table is not None else device_domains(chips)
    try:
        configs = merge_for_requests(
            entries_from_allocation(config_items),
            [str(r.get("request", "")) for r in results],
        )
    except ConfigError as exc:
        raise ClaimError(f"{where}: invalid {DRIVER_NAME} config at {exc}") from None
    seen: set[tuple[str, str | None]] = set()
    intents: list[DeviceIntent] = []
    for i, result in enumerate(results):
        request, device = str(result.get("request", "")), str(result.get("device", ""))
        share_id = result.get("shareID")
        at = f"{where}: status.allocation.devices.results[{i}] ({request} -> {device})"
        if share_id is not None and not (isinstance(share_id, str) and share_id):
            raise ClaimError(f"{at}: shareID must be a non-empty string, got {share_id!r}")
        if result.get("adminAccess"):
            raise ClaimError(
                f"{at}: adminAccess is not supported by {DRIVER_NAME}; request the device "
                "without adminAccess"
            )
        if device not in table:
            raise ClaimError(
                f"{at}: node {node} publishes no device {device!r}; its slices may have changed "
                "since allocation: delete the claim so the scheduler allocates it again"
            )
        if (device, share_id) in seen:
            raise ClaimError(f"{at}: device {device} is allocated twice to this claim")
        seen.add((device, share_id))
        chip_id, domains, shared, by_number = table[device]
        chip = chips[chip_id]
        config = configs[request]
        if config.learning and not chip.on_chip_learning:
            raise ClaimError(
                f"{at}: config asks for learning but chip model {chip.model} has no on-chip "
                "learning; set learning: false or select a model with onChipLearning"
            )
        if by_number:
            intents.append(_capacity_intent(result, at, request, device, chip_id, config))
            continue
        keps = _granted_keps(result, at) if shared else _exclusive_keps(chip, domains)
        # Neurons and synapses absent: 0, not limited.
        neurons = _granted(result, "neurons", at) or 0
        synapses = _granted(result, "synapses", at) or 0
        intents.append(
            DeviceIntent(
                request,
                device,
                chip_id,
                domains,
                shared,
                keps,
                share_id,
                config,
                neurons if shared else 0,
                synapses if shared else 0,
            )
        )
    try:
        routes = routeplan.claim_routes(meta, where)
        routeplan.check_routes(routes, intents, where)
    except routeplan.RouteError as exc:
        raise ClaimError(str(exc)) from None
    return ClaimPlan(uid, namespace, name, node, tuple(intents), routes)


def _capacity_intent(
    result: Obj, at: str, request: str, device: str, chip: int, config: PartitionConfig
) -> DeviceIntent:
    """A capacity device's grant: a number of domains (picked at prepare time, under the node
    lock: placement.py) and a KEPS budget the engine enforces."""
    count = _granted(result, "domains", at)
    if count is None:
        raise ClaimError(
            f"{at}: a capacity device needs consumedCapacity.domains in the allocation; is the "
            "DRAConsumableCapacity feature enabled on the scheduler?"
        )
    return DeviceIntent(
        request,
        device,
        chip,
        (),
        False,
        _granted_keps(result, at),
        result.get("shareID"),
        config,
        wanted_domains=count,
    )


def _granted_keps(result: Obj, at: str) -> int:
    # Rounded up: a share is never given less throughput than it was allocated.
    keps = _granted(result, "keps", at, math.ceil)
    if keps is None:
        raise ClaimError(
            f"{at}: a shared or capacity device needs consumedCapacity.keps in the "
            "allocation; is the "
            "DRAConsumableCapacity feature enabled on the scheduler?"
        )
    return keps


def engine_config(intent: DeviceIntent) -> EnginePartitionConfig:
    """What the engine enforces for a device: its PartitionConfig and a share's grants."""
    return EnginePartitionConfig(
        timestep_us=intent.config.timestep_us or 0,
        routing=Routing.from_mode(intent.config.routing_mode),
        max_neurons=intent.neurons,
        max_synapses=intent.synapses,
    )


def _granted(
    result: Obj, name: str, at: str, rounding: Callable[[Any], int] = math.floor
) -> int | None:
    """A share's grant of ``name`` from consumedCapacity, rounded; None when absent."""
    raw = _object(result.get("consumedCapacity"), f"{at}: consumedCapacity").get(name)
    if raw is None:
        return None
    try:
        value = rounding(parse_quantity(raw))
    except ValueError as exc:
        raise ClaimError(f"{at}: consumedCapacity.{name}: {exc}") from None
    if value <= 0:
        raise ClaimError(f"{at}: consumedCapacity.{name} must be positive, got {raw}")
    return value


# ---- results: CDI and status ----


def spike_endpoint(claim_uid: str, intent: DeviceIntent) -> str:
    name = cdi.cdi_device_name(claim_uid, intent.request, intent.device)
    return f"unix://{cdi.CONTAINER_ROOT}/{name}/{cdi.SPIKE_SOCKET}"


def status_entries(
    plan: ClaimPlan, prepared: Sequence[Prepared], chips: Mapping[int, ChipView], now: str
) -> list[Obj]:
    """``status.devices`` entries for this claim's devices on this node."""
    out: list[Obj] = []
    chip_of = {p.intent.request: p.intent.chip for p in prepared}
    for p in prepared:
        intent = p.intent
        chip = chips[intent.chip]
        entry: Obj = {
            "driver": DRIVER_NAME,
            "pool": plan.pool,
            "device": intent.device,
            "conditions": [
                {
                    "type": READY,
                    "status": "True",
                    "reason": "PartitionPrepared",
                    "message": (
                        f"engine partition {p.partition_id}: {len(p.cores)} cores on chip "
                        f"{chip.chip} ({chip.serial})"
                    ),
                    "lastTransitionTime": now,
                }
            ],
            "data": {
                "cores": len(p.cores),
                "coreList": cdi.compact_ranges(p.cores),
                "chip": chip.chip,
                "serial": chip.serial,
                "partition": p.partition_id,
                "measuredKeps": intent.keps,
                "kepsSource": "granted"
                if intent.shared
                else ("measured" if chip.keps_measured else "nominal"),
                "spikeEndpoint": spike_endpoint(plan.uid, intent),
                "config": intent.config.to_dict(),
            },
        }
        if intent.wanted_domains:  # a capacity grant: the domains the plugin picked
            grid = (chip.domains_x, chip.domains_y)
            entry["data"]["domains"] = list(intent.domains)
            entry["data"]["placement"] = (
                "block" if placement.connected(grid, intent.domains) else "scattered"
            )
        routes, programmed = routeplan.status_routes(plan.uid, plan.routes, p, chip_of)
        if programmed is not None:
            entry["conditions"].append({**programmed, "lastTransitionTime": now})
            entry["data"]["routes"] = routes
        if intent.share_id is not None:
            entry["shareID"] = intent.share_id
        out.append(entry)
    return out


def with_status(claim: Obj, pool: str, entries: Sequence[Obj]) -> Obj | None:
    """The claim with our entries for ``pool`` replaced by ``entries`` (others untouched);
    None when nothing would change apart from condition timestamps."""

    def ours(e: Obj) -> bool:
        return bool(e.get("driver") == DRIVER_NAME and e.get("pool") == pool)

    status = dict(claim.get("status") or {})
    current = [e for e in status.get("devices") or [] if ours(e)]
    if _without_times(current) == _without_times(entries):
        return None
    others = [e for e in status.get("devices") or [] if not ours(e)]
    status["devices"] = others + list(entries)
    return {**claim, "status": status}


def _without_times(entries: Sequence[Obj]) -> list[Obj]:
    out = []
    for e in entries:
        conds = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in e.get("conditions") or []
        ]
        out.append({**e, "conditions": conds})
    return sorted(out, key=lambda e: (e.get("device", ""), e.get("shareID") or ""))
