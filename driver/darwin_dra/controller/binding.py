"""Binding conditions (KEP-5007): devices that need slow setup before a pod may bind.

Which devices: the fabric devices (resources/fabric.py publishes them with ``bindingConditions``
[RoutesProgrammed] and ``bindingFailureConditions`` [RoutesFailed]). A claim using fabric
bandwidth needs cross-chip routes programmed between its chips before the pod starts, and
that takes time the kubelet's 45-second prepare call should not spend. Node partitions need
no such step: their setup is local and the plugin does it in NodePrepareResources.

The scheduler allocates, then waits in PreBind until every binding condition of the allocated
devices is True in ``status.devices``, or one failure condition is True (then it gives the
allocation up and the pod is scheduled again). This module decides what is pending and what
to write; the worker in app.py runs the (simulated) setup and writes it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from darwin_dra import DRIVER_NAME
from darwin_dra.kubetime import seconds_time
from darwin_dra.kubetypes import Obj
from darwin_dra.resources.fabric import ROUTES_FAILED, ROUTES_READY

# Set on a claim (or in a claim template's metadata) to make route setup fail with this text.
FAIL_ANNOTATION = "darwin.snn.io/fail-route-setup"
MAX_MESSAGE = 32768 // 4  # far below metav1.Condition's 32 KiB message limit


@dataclass(frozen=True)
class DeviceRef:
    request: str
    pool: str
    device: str
    share_id: str | None
    conditions: tuple[str, ...]
    failure_conditions: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return (DRIVER_NAME, self.pool, self.device, self.share_id)


def _results(claim: Obj) -> list[Obj]:
    alloc = (claim.get("status") or {}).get("allocation") or {}
    results: list[Obj] = (alloc.get("devices") or {}).get("results") or []
    return results


def _status_key(entry: Obj) -> tuple[str, str, str, str | None]:
    return (
        entry.get("driver", ""),
        entry.get("pool", ""),
        entry.get("device", ""),
        entry.get("shareID") or None,
    )


def _device_status(claim: Obj, ref: DeviceRef) -> Obj | None:
    for entry in (claim.get("status") or {}).get("devices") or []:
        if _status_key(entry) == ref.key:
            return dict(entry)
    return None


def _true(entry: Obj | None, types: Sequence[str]) -> bool:
    conds = (entry or {}).get("conditions") or []
    return any(c.get("type") in types and c.get("status") == "True" for c in conds)


def pending(claim: Obj) -> list[DeviceRef]:
    """This driver's allocated devices that carry binding conditions and have neither all
    conditions met nor a failure reported yet."""
    out = []
    for r in _results(claim):
        conds = tuple(r.get("bindingConditions") or ())
        if r.get("driver") != DRIVER_NAME or not conds:
            continue
        ref = DeviceRef(
            request=str(r.get("request", "")),
            pool=str(r.get("pool", "")),
            device=str(r.get("device", "")),
            share_id=r.get("shareID") or None,
            conditions=conds,
            failure_conditions=tuple(r.get("bindingFailureConditions") or ()),
        )
        entry = _device_status(claim, ref)
        done = all(_true(entry, [c]) for c in conds)
        if not done and not _true(entry, ref.failure_conditions):
            out.append(ref)
    return out


def routes(claim: Obj, ref: DeviceRef) -> list[str]:
    """The claim's other devices of this driver that the fabric connects, ``pool/device``: the
    endpoints whose routes get programmed. The fabric id is the pool name minus ``fabric-``."""
    return sorted(
        f"{r.get('pool')}/{r.get('device')}"
        for r in _results(claim)
        if r.get("driver") == DRIVER_NAME
        and (r.get("pool"), r.get("device")) != (ref.pool, ref.device)
    )


def injected_failure(claim: Obj) -> str | None:
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(FAIL_ANNOTATION)
    return None if value is None else (str(value) or "failure injected")


def _condition(kind: str, ok: bool, reason: str, message: str, now: datetime, gen: int) -> Obj:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "lastTransitionTime": seconds_time(now),  # metav1.Time: seconds
        "observedGeneration": gen,
    }


def with_setup_result(
    claim: Obj, ref: DeviceRef, error: str | None, endpoints: Sequence[str], now: datetime
) -> Obj | None:
    """The claim with this device's status set: ready, or failed with ``error``.

    None when the claim no longer holds that allocation (freed or reallocated meanwhile) or the
    result is already there, so a late worker never writes over a newer state.
    """
    if ref not in pending(claim):
        return None
    out = copy.deepcopy(claim)
    gen = int(out.get("metadata", {}).get("generation") or 0)
    ok = error is None
    if ok:
        conds = [
            _condition(
                c,
                True,
                "RoutesProgrammed",
                f"{len(endpoints)} cross-chip routes programmed",
                now,
                gen,
            )
            for c in ref.conditions
        ]
        conds += [
            _condition(c, False, "RoutesProgrammed", "", now, gen) for c in ref.failure_conditions
        ]
    else:
        message = f"programming routes on {ref.pool} failed: {error}"
        conds = [
            _condition(c, False, "RouteSetupFailed", message, now, gen) for c in ref.conditions
        ]
        conds += [
            _condition(c, True, "RouteSetupFailed", message, now, gen)
            for c in ref.failure_conditions
        ]
    entry: Obj = {
        "driver": DRIVER_NAME,
        "pool": ref.pool,
        "device": ref.device,
        "conditions": conds,
    }
    if ref.share_id:
        entry["shareID"] = ref.share_id
    if ok:
        entry["data"] = {"fabric": ref.pool.removeprefix("fabric-"), "routes": list(endpoints)}
    status = out.setdefault("status", {})
    others = [e for e in status.get("devices") or [] if _status_key(e) != ref.key]
    status["devices"] = [*others, entry]
    return out


__all__ = [
    "FAIL_ANNOTATION",
    "ROUTES_FAILED",
    "ROUTES_READY",
    "DeviceRef",
    "injected_failure",
    "pending",
    "routes",
    "with_setup_result",
]
