"""The demo's scenarios. Each creates real workloads (the driver's image running
`darwin-dra run` on the partition its claim got), then prints what was asked, what the scheduler
gave and why, and the workload's log line that proves its network ran."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.cluster import realnode
from darwin_dra.demo import explain, manifests
from darwin_dra.demo.bringup import Running
from darwin_dra.demo.record import Event, Record, Scenario
from darwin_dra.demo.story import Story, wait_for
from darwin_dra.demo.tools import Kubectl
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.runtime.stage import save_stage

NS = manifests.NAMESPACE
RUNNING_TIMEOUT_S = 180  # a loaded 2-core machine, and the kubelet's back-off after a failure
FAST_MEPS = 100_000  # the CEL threshold of the MEPS scenario (as darwin-fast.snn.io's)
SHARES_PER_DEVICE = 2
ATTR = f'device.attributes["{DRIVER_NAME}"]'


@dataclass
class Context:
    story: Story
    running: Running
    profiles: Mapping[str, ChipProfile]
    record: Record = field(default_factory=Record)

    @property
    def kubectl(self) -> Kubectl:
        return self.running.kubectl

    @property
    def image(self) -> str:
        return self.running.image

    def known(self) -> dict[tuple[str, str], explain.Device]:
        return explain.devices(self.kubectl.items("resourceslices"))

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        args = ["pods", "-n", NS] + (["-l", selector] if selector else [])
        return self.kubectl.items(*args)

    def pod(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.pods() if p["metadata"]["name"] == name), None)

    def claims(self) -> list[dict[str, Any]]:
        return self.kubectl.items("resourceclaims", "-n", NS)

    def wait_running(self, name: str) -> dict[str, Any]:
        def running() -> dict[str, Any] | None:
            pod = self.pod(name)
            if pod and (pod.get("status") or {}).get("phase") == "Running":
                return pod
            return None

        return wait_for(f"pod {name} Running", running, RUNNING_TIMEOUT_S)

    def run_line(self, pod: str, timeout: float = 180, every: float = 1.0) -> str:
        """The first `darwin-dra run` report in the pod's log."""

        def line() -> str | None:
            text = self.kubectl.logs(pod, NS)
            return next((s for s in text.splitlines() if s.startswith("run: ")), None)

        return wait_for(f"the network's report in the log of {pod}", line, timeout, every)

    def place(self, scenario: str, pod: dict[str, Any]) -> list[explain.Placement]:
        claim = explain.claim_of(pod, self.claims())
        if claim is None:
            return []
        got = explain.placements(
            scenario, pod["metadata"]["name"], claim, self.known(), self.profiles
        )
        self.record.placements.extend(got)
        return got

    def show(self, sc: Scenario) -> None:
        self.story.note("asked", sc.asked)
        self.story.note("given", sc.given)
        self.story.note("why", sc.why)
        if sc.waits:
            self.story.note("waits", sc.waits)
        for line in sc.logs:
            self.story.note("log", line)


def setup_namespace(ctx: Context) -> None:
    """The demo's namespace and the ConfigMap holding the workloads' network file."""
    kubectl = ctx.kubectl
    kubectl.run("create", "namespace", NS)
    wait_for(
        "the default service account", lambda: "default" in kubectl.run("get", "sa", "-n", NS), 60
    )
    path = ctx.running.logs.parent / manifests.NETWORK_KEY
    save_stage(path, manifests.network())
    kubectl.apply([manifests.networks_configmap(path.read_bytes())], NS)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


# ---- the scenarios ------------------------------------------------------------------------


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
                f"{_count(len(got), 'device')} of that class (status.extendedResourceClaimStatus)",
            )
        sc.why = "; ".join(why) or "any matching device would do"
        sc.logs = [ctx.run_line(name)]
        ctx.story.say(f"  [bold]{name}[/]")
        ctx.show(sc)
        out.append(sc)
    return out


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
        f"{_count(len(shared), 'such device')} of {capacity:,} KEPS each; scaled up one replica "
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
            what = f"the plugin taints {_count(len(mine), 'device')} of chip {chip}: "
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


PIPELINE = "digits"
PIPELINE_MODEL = manifests.REPO / "tests" / "data" / "digits_snntorch.nir"
PIPELINE_STEPS = 2000


def _pipeline(ctx: Context) -> dict[str, Any]:
    got: dict[str, Any] = ctx.kubectl.get("spikingpipeline", PIPELINE, "-n", NS)
    return got


def _ready(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conds if c.get("type") == "Ready"), {})


def spiking_pipeline(ctx: Context) -> list[Scenario]:
    """A NIR model (the digits classifier trained in snnTorch) as a SpikingPipeline of three
    engine stages, its input pinned to one node and its readout to another: the controller
    splits it, claims the partitions, runs one pod per stage with mutual TLS between them, and
    the status says where each stage runs and how many spikes cross chips and nodes."""
    sc = Scenario("pipeline", "A SpikingPipeline: a NIR model split over two nodes")
    edge, core = ctx.running.nodes[:2]
    sc.asked = (
        f"SpikingPipeline {PIPELINE}: {PIPELINE_MODEL.name} (a digits classifier exported from "
        f"snnTorch) in 3 stages, Poisson input for {PIPELINE_STEPS} steps; the input and the "
        f"first stage on {edge} (where the raw data stays), the last stage on {core}"
    )
    ctx.story.note("asked", sc.asked)
    ctx.kubectl.run(
        "create", "configmap", "digits-model", "-n", NS, f"--from-file=digits.nir={PIPELINE_MODEL}"
    )
    host = "kubernetes.io/hostname"
    body = {
        "apiVersion": "darwin.snn.io/v1alpha1",
        "kind": "SpikingPipeline",
        "metadata": {"name": PIPELINE},
        "spec": {
            "model": {"configMap": {"name": "digits-model", "key": "digits.nir"}},
            "input": {"source": "poisson", "poisson": {"rateHz": 200, "seed": 1}},
            "stages": 3,
            "targetRate": 500,
            "steps": PIPELINE_STEPS,
            "window": 10,
            "hints": [
                {"stage": "input", "nodeSelector": {host: edge}},
                {"stage": "s0", "nodeSelector": {host: edge}},
                {"stage": "s2", "nodeSelector": {host: core}},
            ],
        },
    }
    ctx.kubectl.apply([body], NS)

    def placed() -> dict[str, Any] | None:
        obj = _pipeline(ctx)
        reason = _ready(obj).get("reason")
        if reason in ("InvalidSpec", "ModelUnusable", "Unschedulable"):
            raise RuntimeError(f"the pipeline was refused: {_ready(obj).get('message')}")
        status = obj.get("status") or {}
        total = len(status.get("placement") or [])
        return obj if total and status.get("stagesReady") == f"{total}/{total}" else None

    obj = wait_for("every stage of the pipeline running", placed, RUNNING_TIMEOUT_S, 2.0)
    status = obj["status"]
    where, drawn = [], set()
    for e in status["placement"]:
        on = e.get("node", "?")
        if "device" in e:
            on += f" {e['device']}"
            pod = ctx.pod(e["pod"])
            if pod is not None and e.get("claim") not in drawn:  # a claim holds a group
                drawn.add(e.get("claim"))
                ctx.place(sc.key, pod)
        where.append(f"{e['stage']} on {on}")
    sc.given = "; ".join(where)
    ctx.story.note("given", sc.given)

    def finished() -> dict[str, Any] | None:
        obj = _pipeline(ctx)
        return obj if _ready(obj).get("reason") == "Completed" else None

    done = wait_for("the pipeline's run completed", finished, RUNNING_TIMEOUT_S * 2, 2.0)
    traffic = (done.get("status") or {}).get("traffic") or {}
    out = next(
        (
            line[line.index("{") :]
            for line in ctx.kubectl.logs(f"{PIPELINE}-output", NS).splitlines()
            if '"stage finished"' in line
        ),
        "",
    )
    sc.why = (
        "the controller split the model along its layers where the fewest spikes cross, wrote "
        "one ResourceClaim per group of stages that share a chip (KEPS, neurons and synapses "
        "as capacity requests, matchAttribute on the chip), and honoured the node hints; "
        f"spikes across nodes {traffic.get('crossNodeSpikesPerSecond', 0):,}/s, across chips "
        f"{traffic.get('crossChipSpikesPerSecond', 0):,}/s ({traffic.get('source', 'planned')}), "
        f"dropped {traffic.get('droppedSpikes', 0)}"
    )
    sc.logs = [f"output stage: {out}"] if out else []
    ctx.story.note("why", sc.why)
    for line in sc.logs:
        ctx.story.note("log", line)
    return [sc]


# The scenarios in order: (key, title, runner). Each runner prints its own story and returns
# what it saw.
Runner = Callable[[Context], list[Scenario]]
SCENARIOS: tuple[tuple[str, str, Runner], ...] = (
    ("examples", "Every example of deploy/examples, as real pods", examples),
    ("shared", "A KEPS-shared service, scaled until the next replica waits", shared_service),
    ("meps", "A CEL selection on MEPS picks the stronger chip", meps_selection),
    ("pipeline", "A SpikingPipeline: a NIR model split over two nodes", spiking_pipeline),
    ("fault", "A chip fails: taint, eviction, the workload placed again", chip_failure),
)


def run_all(ctx: Context, only: set[str] | None = None) -> None:
    for key, title, runner in SCENARIOS:
        if only and key not in only:
            continue
        ctx.story.chapter(title)
        started = time.monotonic()
        ctx.record.scenarios.extend(runner(ctx))
        ctx.story.say(f"  [dim]({time.monotonic() - started:.1f} s)[/]")
