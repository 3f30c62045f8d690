"""A SpikingPipeline's status (pure): where each stage runs, what it moves, and the Ready,
Progressing and Degraded conditions with their reasons.

Placement comes from the claims' allocations (node pool, device, chip) and the devices' status
entries the plugin writes (the engine partition). Traffic is the plan's at the target rate
(``source: planned``) until every sending stage's counters have been read twice
(``measured``, rates.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from darwin_dra.kubetime import seconds_time
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import objects
from darwin_dra.pipeline.placement import Placement
from darwin_dra.pipeline.plan import PlanView

_CHIP = re.compile(r"^chip-(\d+)-")
MAX_MESSAGE = 4096


@dataclass(frozen=True)
class Outcome:
    """What the pass found: ``phase`` Pending | Running | Completed | Restarting | Error."""

    phase: str
    reason: str
    message: str


@dataclass(frozen=True)
class StageRates:
    """Measured over the last scrape interval (rates.py)."""

    timesteps_per_s: float
    spikes_out_per_s: float
    dropped: int = 0
    spikes_to: Mapping[str, float] = field(default_factory=dict)  # per downstream stage
    # of those, the peers the chip host's route carries them to (runtime/routes.py)
    routed_to: Mapping[str, float] = field(default_factory=dict)


def _stamp(now: datetime) -> str:
    return seconds_time(now)


def _condition(
    kind: str, ok: bool, reason: str, message: str, previous: Sequence[Obj], gen: int, now: datetime
) -> Obj:
    status = "True" if ok else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    since = (
        before["lastTransitionTime"]
        if before and before.get("status") == status and before.get("lastTransitionTime")
        else _stamp(now)
    )
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "lastTransitionTime": since,
        "observedGeneration": gen,
    }


def conditions(outcome: Outcome, previous: Sequence[Obj], gen: int, now: datetime) -> list[Obj]:
    """Degraded stays True from a failure until the pipeline runs again."""
    ready = outcome.phase == "Running"
    progressing = outcome.phase in ("Pending", "Restarting")
    was = next((c for c in previous if c.get("type") == "Degraded"), None)
    still = bool(was and was.get("status") == "True" and outcome.phase in ("Pending",))
    degraded = outcome.phase in ("Restarting", "Error") or still
    if outcome.phase in ("Restarting", "Error"):
        d_reason, d_message = outcome.reason, outcome.message
    elif still and was is not None:
        d_reason = str(was.get("reason", "Recovering"))
        d_message = f"recovering: {outcome.message}"
    else:
        d_reason, d_message = "AsExpected", ""
    return [
        _condition("Ready", ready, outcome.reason, outcome.message, previous, gen, now),
        _condition("Progressing", progressing, outcome.reason, outcome.message, previous, gen, now),
        _condition("Degraded", degraded, d_reason, d_message, previous, gen, now),
    ]


def _status_entry(
    claim: Mapping[str, Any], pool: str, device: str, share: str | None
) -> Mapping[str, Any]:
    """The device's status entry; a shared device has one per share (its own partition)."""
    for e in (claim.get("status") or {}).get("devices") or []:
        if (e.get("pool"), e.get("device"), e.get("shareID") or None) == (pool, device, share):
            data: Mapping[str, Any] = e.get("data") or {}
            return data
    return {}


def placement_entries(
    pipeline: str, plan: PlanView, placement: Placement, claims: Sequence[Obj], pods: Sequence[Obj]
) -> list[Obj]:
    by_claim = {c["metadata"]["name"]: c for c in claims}
    by_pod = {p["metadata"]["name"]: p for p in pods}
    out = []
    for s in plan.stages:
        group = placement.group_of(s.name)
        pname = objects.pod_name(pipeline, s.name)
        entry: Obj = {"stage": s.name, "pod": pname}
        claim = None
        if group is not None:
            cname = objects.claim_name(pipeline, group)
            entry.update({"claim": cname, "request": s.name, "fabric": group.fabric})
            claim = by_claim.get(cname)
        if claim is not None:
            alloc = (claim.get("status") or {}).get("allocation") or {}
            for r in (alloc.get("devices") or {}).get("results") or []:
                if r.get("request") != s.name:
                    continue
                pool, device = str(r.get("pool")), str(r.get("device"))
                entry["node"], entry["device"] = pool, device
                m = _CHIP.match(device)
                if m:
                    entry["chip"] = int(m.group(1))
                data = _status_entry(claim, pool, device, r.get("shareID") or None)
                if "partition" in data:
                    entry["partition"] = str(data["partition"])
        pod = by_pod.get(pname)
        if pod is not None:
            entry["phase"] = str((pod.get("status") or {}).get("phase") or "Pending")
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                entry["node"] = str(node)
        out.append(entry)
    return out


def pipeline_status(
    pipeline: Mapping[str, Any],
    outcome: Outcome,
    now: datetime,
    plan: PlanView | None = None,
    placement: Placement | None = None,
    claims: Sequence[Obj] = (),
    pods: Sequence[Obj] = (),
    rates: Mapping[str, StageRates] | None = None,
) -> Obj:
    meta = pipeline["metadata"]
    gen = int(meta.get("generation") or 0)
    previous = (pipeline.get("status") or {}).get("conditions") or []
    status: Obj = {
        "observedGeneration": gen,
        "conditions": conditions(outcome, previous, gen, now),
    }
    if plan is None or placement is None:
        status["stagesReady"] = "0/0"
        status["nodes"] = 0
        return status
    entries = placement_entries(meta["name"], plan, placement, claims, pods)
    running = sum(e.get("phase") == "Running" for e in entries)
    status["stagesReady"] = f"{running}/{len(entries)}"
    node_of = {e["stage"]: e.get("node") or placement.node_of(e["stage"]) for e in entries}
    chip_of: dict[str, tuple[str, int | None]] = {}
    for e in entries:
        group = placement.group_of(e["stage"])
        planned = group.chip if group is not None else None
        chip_of[e["stage"]] = (node_of[e["stage"]], e.get("chip", planned))
    status["nodes"] = len(set(node_of.values()))
    status["placement"] = entries
    rates = rates or {}
    stages = []
    for s in plan.stages:
        item: Obj = {"name": s.name, "neurons": s.neurons, "synapses": s.synapses, "keps": s.keps}
        if s.name in rates:
            item["timestepsPerSecond"] = round(rates[s.name].timesteps_per_s, 3)
            item["spikesPerSecond"] = round(rates[s.name].spikes_out_per_s, 3)
        stages.append(item)
    status["stages"] = stages
    edges = []
    cross_chip, cross_node, routed = 0.0, 0.0, 0.0
    # Measured where the sending stage reports its spikes per peer, else planned.
    measured = bool(rates) and all(a in rates for a, _ in placement.links)
    for (a, b), link in sorted(placement.links.items()):
        rate = rates[a].spikes_to.get(b, 0.0) if measured else placement.spikes_per_s[(a, b)]
        edge: Obj = {"from": a, "to": b, "spikesPerSecond": round(rate, 3), "link": link}
        if measured and b in rates[a].routed_to:
            edge["routedOnChip"] = True
            routed += rates[a].routed_to[b]
        edges.append(edge)
        # Spikes to or from a stage on no chip leave the chips; between engine stages, they
        # cross when the chips differ.
        if chip_of[a] != chip_of[b] or None in (chip_of[a][1], chip_of[b][1]):
            cross_chip += rate
        if node_of[a] != node_of[b]:
            cross_node += rate
    status["edges"] = edges
    status["traffic"] = {
        "crossChipSpikesPerSecond": int(cross_chip),
        "crossNodeSpikesPerSecond": int(cross_node),
        "onChipRoutedSpikesPerSecond": int(routed),
        "droppedSpikes": sum(r.dropped for r in rates.values()),
        "source": "measured" if measured else "planned",
    }
    return status
