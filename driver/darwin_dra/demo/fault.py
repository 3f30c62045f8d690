"""A chip fails: the fault injected on the node, then the taint, the eviction, the new pod
placed and running, each at the time the demo saw it."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from darwin_dra.cluster import realnode
from darwin_dra.demo import explain, manifests
from darwin_dra.demo.context import ATTR, NS, RUNNING_TIMEOUT_S, Context, count
from darwin_dra.demo.record import Event, Scenario
from darwin_dra.demo.story import wait_for


def chip_failure(ctx: Context) -> list[Scenario]:
    sc = Scenario("fault", "A chip fails: taint, eviction, the workload placed again")
    service = "resilient"
    cel = f'{ATTR}.partition == "half" && {ATTR}.model == "darwin3"'
    template = manifests.claim_template(
        "half-chip", [manifests.request("half", "darwin.snn.io", cel=cel)]
    )
    ctx.kubectl.apply(
        [template, manifests.deployment(service, ctx.image, "half-chip", "half", 1)], NS
    )
    selector = f"{manifests.DEMO_LABEL}={service}"
    [first] = wait_for(f"a pod of {service}", lambda: ctx.pods(selector) or None, 60)
    old = first["metadata"]["name"]
    pod = ctx.wait_running(old)
    got = ctx.place(sc.key, pod)
    ctx.run_line(old)
    node, chip = got[0].node, got[0].chip
    # Everything on that chip goes with it: the demo's other pods there are evicted too.
    on_chip = [p for p in ctx.record.placements if (p.node, p.chip) == (node, chip)]
    live = {p["metadata"]["name"] for p in ctx.pods()}
    victims = sorted({p.workload for p in on_chip if p.workload in live})
    ctx.record.evicted = [p for p in on_chip if p.workload in live]
    ctx.record.failed_chip = (node, chip)
    sc.asked = (
        f"Deployment {service} (1 replica, a darwin3 half chip: CEL `{cel}`) runs on "
        f"{explain.describe(got)}; then chip {chip} of {node} fails"
    )
    ctx.story.note("asked", sc.asked)
    state_dir = realnode.NodeLayout(ctx.running.cluster.dir / "nodes" / node).bound(
        "/var/lib/darwin-dra"
    )
    cmd = ["fault", "inject", "--state-dir", str(state_dir), "--chip", str(chip), "--whole-chip"]
    ctx.story.note("fault", f"darwin-dra {' '.join(cmd)}")
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", *cmd], check=True, capture_output=True
    )
    events = ctx.record.timeline
    events.append(Event(0.0, f"chip {chip} of {node} fails (fault file)"))

    def mark(what: str, at: float) -> None:
        """An event at `at` (when the query that saw it was sent)."""
        events.append(Event(at - t0, what))
        ctx.story.note(f"+{events[-1].seconds:.1f}s", what)

    def taint_check(at: float) -> bool:
        slices = ctx.kubectl.items("resourceslices", f"--field-selector=spec.nodeName={node}")
        taints = explain.tainted(explain.devices(slices), node)
        mine = {
            d: t for d, t in taints.items() if d.startswith(f"chip-{chip}-") or d == f"chip-{chip}"
        }
        if mine:
            kinds = sorted({t for ts in mine.values() for t in ts})
            what = f"the plugin taints {count(len(mine), 'device')} of chip {chip}: "
            mark(what + ", ".join(kinds), at)
        return bool(mine)

    seen: set[str] = set()
    new: dict[str, Any] | None = None
    deadline = t0 + RUNNING_TIMEOUT_S
    while time.monotonic() < deadline:
        if "taint" not in seen and taint_check(time.monotonic()):
            seen.add("taint")
        at = time.monotonic()
        pods = ctx.pods()
        names = {p["metadata"]["name"]: p for p in pods}
        gone = [
            v for v in victims if v not in names or names[v]["metadata"].get("deletionTimestamp")
        ]
        if "evicted" not in seen and old in gone:
            # the taint came first: published between the last taint query and this one
            if "taint" not in seen and taint_check(at):
                seen.add("taint")
            seen.add("evicted")
            mark(f"kube-controller-manager evicts {', '.join(gone)} (DeviceTaintEviction)", at)
        mine_now = [
            p
            for p in pods
            if p["metadata"].get("labels", {}).get(manifests.DEMO_LABEL) == service
            and p["metadata"]["name"] != old
        ]
        if mine_now and "created" not in seen:
            seen.add("created")
            new = mine_now[0]
            mark(f"the Deployment's ReplicaSet creates {new['metadata']['name']}", at)
        if new is not None:
            current = names.get(new["metadata"]["name"], new)
            spec_node = (current.get("spec") or {}).get("nodeName")
            if spec_node and "scheduled" not in seen:
                seen.add("scheduled")
                mark(f"the scheduler places it on {spec_node}", at)
            if (current.get("status") or {}).get("phase") == "Running" and "running" not in seen:
                seen.add("running")
                mark("its container runs", at)
                new = current
                break
        time.sleep(0.5)
    if new is None or "running" not in seen:
        raise TimeoutError(
            f"the replacement of {old} was not Running {RUNNING_TIMEOUT_S} s after the fault"
        )
    line = ctx.run_line(new["metadata"]["name"], every=0.5)
    mark("its network runs (first `darwin-dra run` report)", time.monotonic())
    again = ctx.place(sc.key, new)
    sc.given = f"{new['metadata']['name']} on {explain.describe(again)}"
    also = [v for v in victims if v != old]
    sc.why = (
        f"the chip host reports chip {chip} failed; the plugin publishes the "
        "darwin.snn.io/unhealthy NoExecute taint on its devices; kube-controller-manager "
        "evicts the pods whose claims hold them; the new pod's claim may not take a tainted "
        "device, so the scheduler gives it a healthy chip"
        + (
            f"; also evicted: {', '.join(also)} (bare pods: nothing places them again)"
            if also
            else ""
        )
    )
    sc.logs = [line]
    ctx.story.note("given", sc.given)
    ctx.story.note("why", sc.why)
    ctx.story.note("log", line)
    return [sc]
