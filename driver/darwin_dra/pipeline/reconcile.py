"""One reconcile pass of a SpikingPipeline (pure): from the spec, its split plan, the placement
and what the cluster holds, the writes to make and the status to show.

Lifecycle of the stage pods:
- Pods are made in reverse topological order: a stage's pod is made once every stage it sends
  to runs with a pod IP, which goes on its command line (no DNS, no kube-proxy needed; the
  upstream connects to the downstream).
- The recovery is a restart of the run, not a resume: a stage's state lives in its partition,
  a failed chip takes it along, and its neighbours' streams break with it. So when any stage
  pod fails, disappears under a running neighbour, or sits on a tainted device or on a chip
  that lost a fabric link, every stage pod goes; the claims on failed hardware go too, the
  placement is made again without that hardware (the caller does, ``needs_new_placement``),
  and the pods are made again.
- A run with ``spec.steps`` ends with every pod Succeeded; the pipeline is then Completed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from darwin_dra import DRIVER_NAME
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import objects
from darwin_dra.pipeline.chiproutes import (
    ROUTES_ANNOTATION,
    Edge,
    claim_routes,
    on_chip_edges,
    peers_on_chip,
)
from darwin_dra.pipeline.placement import Placement, placement_json
from darwin_dra.pipeline.plan import PlanView
from darwin_dra.pipeline.spec import PipelineSpec

Verb = Literal["create", "delete"]
Kind = Literal["ConfigMap", "Secret", "ResourceClaim", "Pod"]


@dataclass(frozen=True)
class Action:
    verb: Verb
    kind: Kind
    name: str
    body: Obj | None = None
    why: str = ""


@dataclass(frozen=True)
class Observed:
    """What the pipeline owns now (found by its label), the devices that carry taints and
    those on a chip with a failed fabric link (pipeline/cluster.py ``fabric_faulted``)."""

    claims: Sequence[Obj] = ()
    pods: Sequence[Obj] = ()
    tainted: frozenset[tuple[str, str]] = frozenset()  # (pool, device)
    fabric_faulted: frozenset[tuple[str, str]] = frozenset()  # (pool, device)


@dataclass(frozen=True)
class Decision:
    actions: list[Action]
    phase: str  # Pending | Running | Completed | Restarting
    reason: str
    message: str
    failed_devices: list[str] = field(default_factory=list)

    @property
    def needs_new_placement(self) -> bool:
        return bool(self.failed_devices)


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _hash(obj: Mapping[str, Any]) -> str:
    return str((obj["metadata"].get("labels") or {}).get(objects.HASH_LABEL, ""))


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _ip(pod: Mapping[str, Any]) -> str | None:
    ip = (pod.get("status") or {}).get("podIP")
    return str(ip) if ip and _phase(pod) == "Running" and not _deleting(pod) else None


def _routes(claim: Mapping[str, Any]) -> str:
    annotations = claim["metadata"].get("annotations") or {}
    return str(annotations.get(ROUTES_ANNOTATION, ""))


def allocated_devices(claim: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(request, pool, device) of this driver's allocated devices."""
    alloc = (claim.get("status") or {}).get("allocation") or {}
    return [
        (str(r.get("request")), str(r.get("pool")), str(r.get("device")))
        for r in (alloc.get("devices") or {}).get("results") or []
        if r.get("driver") == DRIVER_NAME
    ]


def _off_hardware(
    observed: Observed, pods: Mapping[str, Obj], bad: frozenset[tuple[str, str]]
) -> tuple[list[Action], list[str]] | None:
    """Every pod and the claims on ``bad`` devices deleted, and those devices; None when no
    claim holds one."""
    failed = sorted(
        {
            f"{pool}/{device}"
            for c in observed.claims
            for _, pool, device in allocated_devices(c)
            if (pool, device) in bad
        }
    )  # a shared device holding two stages' shares is named once
    if not failed:
        return None
    actions = [
        Action("delete", "Pod", name, why="hardware under the pipeline failed")
        for name, pod in sorted(pods.items())
        if not _deleting(pod)
    ]
    actions += [
        Action("delete", "ResourceClaim", _name(c), why="its device failed")
        for c in observed.claims
        if any((p, d) in bad for _, p, d in allocated_devices(c)) and not _deleting(c)
    ]
    return actions, failed


def decide(
    pipeline: Mapping[str, Any],
    spec: PipelineSpec,
    plan: PlanView,
    placement: Placement,
    observed: Observed,
    settings: objects.StageSettings,
    maps: Mapping[Edge, str] | None = None,
) -> Decision:
    """``maps``: the neuron map of each edge between engine stages, where known; the edges
    between stages of one group with a map go on their chip's router."""
    pname = pipeline["metadata"]["name"]
    placement_hash = objects.digest(placement_json(placement))
    claims = {_name(c): c for c in observed.claims}
    pods = {_name(p): p for p in observed.pods}
    actions: list[Action] = []

    # Hardware failed under a claim: every pod goes, the claim goes, a new placement follows.
    for bad, reason, what in (
        (observed.tainted, "ChipFailed", "devices failed under the pipeline"),
        (observed.fabric_faulted, "FabricLinkFailed", "fabric links failed under the pipeline"),
    ):
        off = _off_hardware(observed, pods, bad)
        if off is not None:
            actions, failed = off
            return Decision(actions, "Restarting", reason, f"{what}: {', '.join(failed)}", failed)

    # Claims: one per group (with its routes); a claim of another placement, another group
    # or other routes is replaced.
    routed = on_chip_edges(plan, placement, maps or {})
    lookahead = objects.LOOKAHEAD_WINDOWS * spec.window
    want_claims = {
        objects.claim_name(pname, gs[0]): objects.claim_body(
            pipeline,
            plan,
            gs,
            placement_hash,
            claim_routes(gs, routed, maps or {}, lookahead),
            placement.avoid,
        )
        for gs in placement.claims().values()
    }
    for name, claim in sorted(claims.items()):
        if _deleting(claim):
            continue
        if name not in want_claims or _hash(claim) != placement_hash:
            actions.append(Action("delete", "ResourceClaim", name, why="placement changed"))
        elif _routes(claim) != _routes(want_claims[name]):
            actions.append(Action("delete", "ResourceClaim", name, why="its routes changed"))
    stale_claims = {a.name for a in actions}

    # Pods: what each stage's pod would be given the pods running now.
    stage_pod = {s.name: objects.pod_name(pname, s.name) for s in plan.stages}
    known = set(stage_pod.values())
    restart: list[str] = []
    for name in sorted(pods):
        if name not in known:
            actions.append(Action("delete", "Pod", name, why="no such stage in the plan"))
    for s in plan.stages:
        current = pods.get(stage_pod[s.name])
        if current is None or _deleting(current):
            continue
        pod = current
        phase = _phase(pod)
        if phase == "Failed":
            restart.append(f"stage {s.name} failed")
        elif phase == "Succeeded" and spec.steps is None:
            restart.append(f"stage {s.name} stopped")
        recorded = json.loads(
            (pod["metadata"].get("annotations") or {}).get(objects.DOWNSTREAM_ANNOTATION, "{}")
        )
        peers = peers_on_chip(s.name, routed)
        for d in plan.downstream(s.name):
            dpod = pods.get(stage_pod[d])
            gone = dpod is None or (d not in peers and _ip(dpod) != recorded.get(d))
            if phase in ("Pending", "Running") and gone:
                restart.append(f"stage {d} went away under stage {s.name}")
        group = placement.group_of(s.name)
        wanted = objects.pod_body(
            pipeline, spec, plan, placement, s.name, recorded, settings, placement_hash, peers
        )
        stale = group is not None and objects.claim_name(pname, group) in stale_claims
        if stale or _hash(pod) != _hash(wanted):
            restart.append(f"stage {s.name} runs an old spec or placement")
    if restart:
        for name, pod in sorted(pods.items()):
            if not _deleting(pod) and name in known:
                actions.append(Action("delete", "Pod", name, why="; ".join(sorted(set(restart)))))
        return Decision(actions, "Restarting", "StageLost", "; ".join(sorted(set(restart))))

    if any(_deleting(p) for p in pods.values()) or any(_deleting(c) for c in claims.values()):
        return Decision(
            actions, "Pending", "Cleaning", "waiting for old stage pods and claims to go"
        )

    for name, body in sorted(want_claims.items()):
        if name not in claims and name not in stale_claims:
            actions.append(Action("create", "ResourceClaim", name, body, "missing"))

    # Reverse topological order: a pod once all its downstream stages run with an IP.
    for stage in reversed(plan.order()):
        name = stage_pod[stage]
        if name in pods:
            continue
        peers = peers_on_chip(stage, routed)
        ips = {
            d: _ip(pods[stage_pod[d]]) if stage_pod[d] in pods else None
            for d in plan.downstream(stage)
        }
        if any(ip is None for ip in ips.values()):
            continue  # (an on-chip downstream too: so one that goes away is noticed)
        ips = {d: ip for d, ip in ips.items() if d not in peers}  # on the router: no address
        body = objects.pod_body(
            pipeline,
            spec,
            plan,
            placement,
            stage,
            {d: str(ip) for d, ip in ips.items()},
            settings,
            placement_hash,
            peers,
        )
        actions.append(Action("create", "Pod", name, body, "missing"))

    phases = [
        _phase(pods[stage_pod[s.name]]) if stage_pod[s.name] in pods else "Absent"
        for s in plan.stages
    ]
    if all(p == "Succeeded" for p in phases):
        return Decision(actions, "Completed", "Completed", f"all {len(phases)} stages finished")
    running = sum(p == "Running" for p in phases)
    if running == len(phases):
        return Decision(actions, "Running", "StagesRunning", f"all {running} stages run")
    return Decision(actions, "Pending", "StagesStarting", f"{running} of {len(phases)} stages run")
