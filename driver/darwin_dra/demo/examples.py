"""Every example of deploy/examples as written, its pods running the network on what their
claims got."""

from __future__ import annotations

from typing import Any

from darwin_dra.demo import explain, manifests
from darwin_dra.demo.context import NS, Context, count
from darwin_dra.demo.record import Scenario


def _header(file: str) -> str:
    """The first sentence of an example file's opening comment: what its author asked for."""
    lines = []
    for line in (manifests.EXAMPLES / file).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines)
    return text.split(". ")[0].rstrip(".")


def examples(ctx: Context) -> list[Scenario]:
    """Every example of deploy/examples as written (claim templates, claims, limits), its pods
    running the network on what they got."""
    docs: list[dict[str, Any]] = []
    pods: list[tuple[str, str]] = []
    for file in manifests.EXAMPLE_FILES:
        for doc in manifests.example_docs(file):
            if doc["kind"] == "Pod":
                # The fastroute node's chip is for the shared-service and MEPS scenarios.
                docs.append(manifests.as_workload(doc, ctx.image, ctx.running.nodes[2:]))
                pods.append((file, doc["metadata"]["name"]))
            else:
                docs.append(doc)
    ctx.kubectl.apply(docs, NS)
    ctx.story.say(
        f"  kubectl apply: {len(manifests.EXAMPLE_FILES)} files of deploy/examples, their pods "
        "running `darwin-dra run` on what their claims got"
    )
    classes = {c["metadata"]["name"]: c for c in ctx.kubectl.items("deviceclasses")}
    out = []
    for file, name in pods:
        sc = Scenario("examples", f"deploy/examples/{file}")
        sc.asked = f"{_header(file)} (pod {name}, deploy/examples/{file})"
        pod = ctx.wait_running(name)
        got = ctx.place(sc.key, pod)
        claim = explain.claim_of(pod, ctx.claims()) or {}
        known = ctx.known()
        links = [g for g in explain.allocation(claim) if g.pool.startswith("fabric-")]
        sc.given = explain.describe(got) + "".join(
            f"; {g.device} ({explain.keps(g.consumed.get('keps', '0')):,} KEPS of the fabric)"
            for g in links
        )
        why = explain.reasons(claim, known)
        limits = ((pod["spec"]["containers"][0].get("resources") or {}).get("limits")) or {}
        owner = [
            n
            for n, c in classes.items()
            if (c.get("spec") or {}).get("extendedResourceName") in limits
        ]
        if owner:
            why.insert(
                0,
                f"DeviceClass {', '.join(owner)} declares extendedResourceName "
                f"{', '.join(limits)}: the scheduler wrote claim {claim['metadata']['name']} for "
                f"{count(len(got), 'device')} of that class (status.extendedResourceClaimStatus)",
            )
        sc.why = "; ".join(why) or "any matching device would do"
        sc.logs = [ctx.run_line(name)]
        ctx.story.say(f"  [bold]{name}[/]")
        ctx.show(sc)
        out.append(sc)
    return out
