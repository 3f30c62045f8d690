"""Preparing a claim before its pod binds, for the chip routers' binding conditions (pure).

A group of a pipeline whose stages exchange spikes on their chip asks for the chip's router
device (``chip-c-router-r``, resources/slices.py), which carries ``bindingConditions``
[RoutesProgrammed] and ``bindingFailureConditions`` [RoutesFailed]. The scheduler allocates
the claim, then waits in PreBind (KEP-5007; it polls the claim every 5 s, up to its
``bindingTimeout``, 10 minutes by default) until every binding condition of the allocated
devices is True in ``status.devices``, or gives the allocation up when a failure condition is
True (the pod goes back to the queue, and the next attempt deallocates the claim first).

The kubelet prepares a claim only once its pod is bound, too late for that wait. So the
plugin watches the claims allocated in its own pool, prepares such a claim as soon as it sees
the allocation (its partitions, then its routes in the chip host), and reports the result on
the router device; the kubelet's NodePrepareResources later finds the claim prepared in the
checkpoint. A claim prepared early whose allocation goes away before the kubelet asked for it
(deallocated after a failed or timed-out binding, deleted, or allocated elsewhere) is
unprepared by the plugin, since the kubelet never will.

This module decides; plugin/earlyprep.py watches, prepares and writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.chiproutes import RouteEntry
from darwin_dra.resources.partitions import (
    ROUTES_FAILED,
    ROUTES_PROGRAMMED,
    device_chip,
    router_chip,
)

MAX_MESSAGE = 8192  # far below metav1.Condition's 32 KiB message limit


def _results(claim: Obj) -> list[Obj]:
    alloc = (claim.get("status") or {}).get("allocation") or {}
    devices = alloc.get("devices") or {}
    results = devices.get("results") if isinstance(devices, dict) else None
    return [r for r in results or [] if isinstance(r, dict)]


def allocated_here(claim: Obj, pool: str) -> bool:
    """True when the claim is allocated and some device of it is in this node's pool."""
    return any(r.get("driver") == DRIVER_NAME and r.get("pool") == pool for r in _results(claim))


def router_results(claim: Obj, pool: str) -> list[Obj]:
    """The allocation's router devices in this node's pool that carry binding conditions."""
    return [
        r
        for r in _results(claim)
        if r.get("driver") == DRIVER_NAME
        and r.get("pool") == pool
        and router_chip(str(r.get("device", ""))) is not None
        and r.get("bindingConditions")
    ]


def _entry_of(claim: Obj, result: Obj) -> Obj | None:
    for e in (claim.get("status") or {}).get("devices") or []:
        if (e.get("driver"), e.get("pool"), e.get("device")) == (
            result.get("driver"),
            result.get("pool"),
            result.get("device"),
        ):
            return dict(e)
    return None


def _is_true(entry: Obj | None, kinds: Iterable[Any]) -> bool:
    wanted = set(kinds)
    return any(
        c.get("type") in wanted and c.get("status") == "True"
        for c in (entry or {}).get("conditions") or []
    )


def awaiting_routes(claim: Obj, pool: str) -> bool:
    """The claim holds a router of this node whose binding is undecided: neither all its
    binding conditions nor one of its failure conditions True. What the plugin prepares
    early."""
    for r in router_results(claim, pool):
        entry = _entry_of(claim, r)
        done = all(_is_true(entry, [c]) for c in r.get("bindingConditions") or [])
        if not done and not _is_true(entry, r.get("bindingFailureConditions") or []):
            return True
    return False


def _condition(kind: str, ok: bool, reason: str, message: str, now: str) -> Obj:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "lastTransitionTime": now,
    }


def _router_entry(result: Obj, conditions: list[Obj], data: Obj | None) -> Obj:
    entry: Obj = {
        "driver": DRIVER_NAME,
        "pool": result.get("pool"),
        "device": result.get("device"),
        "conditions": conditions,
    }
    if result.get("shareID"):
        entry["shareID"] = result["shareID"]
    if data is not None:
        entry["data"] = data
    return entry


def _routes_message(
    claim: Obj, pool: str, routes: Sequence[RouteEntry], chip: int | None
) -> tuple[str, list[str]]:
    """What a router's RoutesProgrammed says: the routes between partitions of its chip, and
    those of a claim joined over a fabric (pipeline/fabricjoin.py) that the chip host carries
    over the fabric link between two chips; the edges of the latter."""
    chip_of = {
        str(r.get("request")): device_chip(str(r.get("device", "")))
        for r in _results(claim)
        if r.get("driver") == DRIVER_NAME and r.get("pool") == pool
    }
    on_chip: list[str] = []
    across: list[str] = []
    ends: list[str] = []
    for route in routes:
        a = chip_of.get(route.source, chip)
        b = chip_of.get(route.destination, chip)
        if a == b == chip:
            on_chip.append(route.edge)
        else:
            across.append(route.edge)
            ends.append(f"{route.edge} (chip {a} to chip {b})")
    parts = [f"on chip {chip}'s router: {', '.join(on_chip)}"] if on_chip else []
    if ends:
        parts.append(f"over the fabric link: {', '.join(ends)}")
    return "; ".join(parts) or f"on chip {chip}'s router: no routes", across


def router_entries(
    claim: Obj, pool: str, routes: Sequence[RouteEntry], now: str, error: str | None = None
) -> list[Obj]:
    """``status.devices`` entries for the claim's routers in this pool: programmed (the
    claim's routes on that chip are in the chip host), or failed with ``error``."""
    out = []
    for r in router_results(claim, pool):
        chip = router_chip(str(r.get("device")))
        if error is None:
            message, across = _routes_message(claim, pool, routes, chip)
            conditions = [
                _condition(ROUTES_PROGRAMMED, True, ROUTES_PROGRAMMED, message, now),
                _condition(ROUTES_FAILED, False, ROUTES_PROGRAMMED, "", now),
            ]
            programmed: Obj = {"chip": chip, "routes": [route.edge for route in routes]}
            if across:
                programmed["fabricRoutes"] = across
            data: Obj | None = programmed
        else:
            message = f"programming the routes on chip {chip} failed: {error}"
            conditions = [
                _condition(ROUTES_PROGRAMMED, False, "RouteProgrammingFailed", message, now),
                _condition(ROUTES_FAILED, True, "RouteProgrammingFailed", message, now),
            ]
            data = None
        out.append(_router_entry(r, conditions, data))
    return out


def with_router_failure(claim: Obj, uid: str, pool: str, error: str, now: str) -> Obj | None:
    """The claim with its undecided routers failed with ``error``; None when it is another
    claim now (recreated under the name) or no router waits any more (a late write must
    never overwrite a newer allocation's result)."""
    if (claim.get("metadata") or {}).get("uid") != uid or not awaiting_routes(claim, pool):
        return None
    entries = router_entries(claim, pool, (), now, error)
    keys = {(e["pool"], e["device"]) for e in entries}
    status = dict(claim.get("status") or {})
    others = [
        e
        for e in status.get("devices") or []
        if e.get("driver") != DRIVER_NAME or (e.get("pool"), e.get("device")) not in keys
    ]
    status["devices"] = others + entries
    return {**claim, "status": status}


def to_undo(early: Iterable[str], claims: Mapping[str, Obj], pool: str) -> list[str]:
    """The claims prepared early (and not asked for by the kubelet since) whose allocation on
    this node is gone: deleted, deallocated or allocated elsewhere. ``claims``: uid -> claim,
    every claim the API server lists now."""
    return sorted(
        uid for uid in early if uid not in claims or not allocated_here(claims[uid], pool)
    )
