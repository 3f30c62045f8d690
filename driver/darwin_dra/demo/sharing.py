"""The KEPS-shared service filled until a replica waits, and the CEL selection on MEPS that
picks the stronger chip."""

from __future__ import annotations

from typing import Any

from darwin_dra.demo import explain, manifests
from darwin_dra.demo.context import ATTR, NS, RUNNING_TIMEOUT_S, Context, count
from darwin_dra.demo.record import Scenario
from darwin_dra.demo.story import wait_for

FAST_MEPS = 100_000  # the CEL threshold of the MEPS scenario (as darwin-fast.snn.io's)
SHARES_PER_DEVICE = 2


def shared_service(ctx: Context) -> list[Scenario]:
    sc = Scenario("shared", "A KEPS-shared service, scaled until the next replica waits")
    model = "darwin3-fastroute"
    shared = [
        d
        for d in ctx.known().values()
        if d.attr("partition") == "shared" and d.attr("model") == model
    ]
    if not shared:
        raise RuntimeError(f"no shared device of a {model} chip is published")
    capacity = min(explain.keps(d.capacity["keps"]) for d in shared)
    keps = manifests.share_keps(capacity, SHARES_PER_DEVICE)
    template = manifests.claim_template(
        "inference-share",
        [
            manifests.request(
                "share", "darwin-shared.snn.io", cel=f'{ATTR}.model == "{model}"', keps=keps
            )
        ],
    )
    service = "inference"
    sc.asked = (
        f"Deployment {service}: each replica a share of {keps:,} KEPS ({keps / 1e6:,.0f} G "
        f"events/s) of a darwin-shared.snn.io device on the {model} chip (CEL on model); "
        f"{count(len(shared), 'such device')} of {capacity:,} KEPS each; scaled up one replica "
        "at a time"
    )
    ctx.story.note("asked", sc.asked)
    ctx.kubectl.apply(
        [template, manifests.deployment(service, ctx.image, "inference-share", "share", 0)], NS
    )
    placed: dict[str, list[explain.Placement]] = {}
    for replicas in range(1, SHARES_PER_DEVICE * len(shared) + 2):
        ctx.kubectl.run("scale", "-n", NS, f"deployment/{service}", f"--replicas={replicas}")

        def settled(replicas: int = replicas) -> tuple[list[dict[str, Any]], str] | None:
            pods = [
                p
                for p in ctx.pods(f"{manifests.DEMO_LABEL}={service}")
                if not p["metadata"].get("deletionTimestamp")
            ]
            if len(pods) < replicas:
                return None
            waiting = [explain.pending_reason(p) for p in pods]
            running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
            if any(waiting):
                return pods, next(w for w in waiting if w)
            return (pods, "") if len(running) == replicas else None

        pods, reason = wait_for(
            f"{replicas} replicas of {service} placed or waiting", settled, RUNNING_TIMEOUT_S
        )
        for pod in pods:
            pname = pod["metadata"]["name"]
            if pname in placed or explain.pending_reason(pod):
                continue
            got = ctx.place(sc.key, pod)
            placed[pname] = got
            where = ", ".join(f"{p.node}/{p.device} ({explain.keps(p.keps):,} KEPS)" for p in got)
            ctx.story.note(f"#{replicas}", f"{pname} on {where}")
        if reason:
            sc.waits = f"replica #{replicas} stays Pending: {reason}"
            break
    running = len(placed)
    sc.given = f"{running} replicas placed; {'the next one waits' if sc.waits else 'none waits'}"
    used = {p.device for got in placed.values() for p in got}
    blocked = []
    for dev in shared:
        if dev.name not in used:
            held = explain.overlapping(dev, ctx.record.placements, ctx.profiles)
            names = ", ".join(sorted({p.workload for p in held})) or "nothing we placed"
            blocked.append(f"{dev.name} stays unused: its half's cores are held by {names}")
    sc.why = (
        f"a shared device of {capacity:,} KEPS holds {SHARES_PER_DEVICE} shares of {keps:,} "
        f"and not {SHARES_PER_DEVICE + 1}; a shared device takes its half's cores on first use, "
        "so a partition held in that half rules it out"
        + "".join(f"; {b}" for b in blocked)
        + f": {running} replicas fit"
    )
    if not placed:
        raise RuntimeError(f"no replica of {service} could be placed: {sc.waits}")
    first = next(iter(placed))
    sc.logs = [f"{first}: {ctx.run_line(first)}"]
    ctx.story.note("given", sc.given)
    ctx.story.note("why", sc.why)
    ctx.story.note("waits", sc.waits)
    for line in sc.logs:
        ctx.story.note("log", line)
    ctx.kubectl.run("scale", "-n", NS, f"deployment/{service}", "--replicas=0")
    wait_for(
        f"{service} scaled to 0", lambda: not ctx.pods(f"{manifests.DEMO_LABEL}={service}"), 120
    )
    ctx.story.note("then", f"{service} scaled to 0: its shares are given back")
    return [sc]


def meps_selection(ctx: Context) -> list[Scenario]:
    sc = Scenario("meps", "A CEL selection on MEPS picks the stronger chip")
    cel = f'{ATTR}.partition == "domain" && {ATTR}.maxMeps >= {FAST_MEPS}'
    template = manifests.claim_template(
        "fast-domain", [manifests.request("domain", "darwin.snn.io", cel=cel)]
    )
    name = "fast-domain"
    ctx.kubectl.apply([template, manifests.claim_pod(name, ctx.image, "fast-domain", "domain")], NS)
    sc.asked = f"pod {name}: one device of class darwin.snn.io with CEL `{cel}`"
    pod = ctx.wait_running(name)
    got = ctx.place(sc.key, pod)
    sc.given = explain.describe(got)
    meps = explain.meps_by_model(ctx.known(), "domain")
    passing = sorted(m for m, v in meps.items() if v >= FAST_MEPS)
    sc.why = (
        "a domain's maxMeps is its share of the chip's router: "
        + ", ".join(f"{m} {v:,}" for m, v in sorted(meps.items()))
        + f"; only {', '.join(passing) or 'no model'} passes >= {FAST_MEPS:,}"
    )
    sc.logs = [ctx.run_line(name)]
    ctx.show(sc)
    return [sc]
