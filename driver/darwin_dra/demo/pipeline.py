"""A SpikingPipeline: a NIR model split by the controller over two nodes, its stages' spikes
and the traffic between them read from the stages' own log lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from darwin_dra.demo import manifests
from darwin_dra.demo.context import NS, RUNNING_TIMEOUT_S, Context
from darwin_dra.demo.record import PipelineRun, Scenario, StageRun
from darwin_dra.demo.story import wait_for

PIPELINE = "digits"
PIPELINE_MODEL = manifests.REPO / "tests" / "data" / "digits_snntorch.nir"
PIPELINE_STEPS = 2000
WINDOW = 10  # steps per window: the stages synchronise, and count their spikes, per window


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
            "window": WINDOW,
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
    done_status = done.get("status") or {}
    traffic = done_status.get("traffic") or {}
    finish = {
        e["stage"]: finish_line(ctx.kubectl.logs(e["pod"], NS), e["pod"])
        for e in done_status.get("placement") or status["placement"]
    }
    nodes = {e["stage"]: str(e.get("node", "?")) for e in status["placement"]}
    run = pipeline_run(PIPELINE, WINDOW, finish, nodes, done_status)
    ctx.record.pipeline = run
    streams = run.streams()
    across = sum(st.per_second for st in streams if st.cross_node)
    sc.why = (
        "the controller split the model along its layers where the fewest spikes cross, wrote "
        "one ResourceClaim per group of stages that share a chip (KEPS, neurons and synapses "
        "as capacity requests, matchAttribute on the chip), and honoured the node hints; "
        f"planned at the target rate: spikes across nodes "
        f"{traffic.get('crossNodeSpikesPerSecond', 0):,}/s, across chips "
        f"{traffic.get('crossChipSpikesPerSecond', 0):,}/s; measured over the run (the stages' "
        f"own counts): across nodes {across:,.0f}/s, dropped {traffic.get('droppedSpikes', 0)}"
    )
    out = finish.get("output", {})
    shown = {k: out[k] for k in OUTPUT_FIELDS if k in out}
    sc.logs = [f"output stage: {json.dumps(shown)}"] if shown else []
    ctx.story.note("why", sc.why)
    for st in streams:
        route = (
            f"[bold red]across nodes[/] {st.source_node} -> {st.target_node}"
            if st.cross_node
            else f"within {st.target_node}"
        )
        ctx.story.note(
            "stream",
            f"{st.source} -> {st.target}: {st.spikes:,} spikes, {st.per_second:,.0f}/s ({route})",
        )
    for r in run.stages:
        ctx.story.note(
            "spikes",
            f"{r.stage} ({r.kind}, {r.node}): {sum(r.window_spikes):,} in "
            f"{len(r.window_spikes)} windows of {WINDOW} steps, busiest window "
            f"{max(r.window_spikes, default=0):,}",
        )
    for line in sc.logs:
        ctx.story.note("log", line)
    return [sc]


# What the console shows of the output stage's finish line (the report draws the rest).
OUTPUT_FIELDS = ("steps", "windows", "spikes_in", "dropped", "run_s", "output_spikes",
                 "output_digest")  # fmt: skip


def finish_line(text: str, pod: str) -> dict[str, Any]:
    """The `stage finished` JSON line of a stage pod's log; ValueError naming the pod."""
    for line in text.splitlines():
        if '"stage finished"' in line and "{" in line:
            try:
                got = json.loads(line[line.index("{") :])
            except json.JSONDecodeError as exc:
                what = f"pod {pod}: its 'stage finished' line is not JSON: {exc}"
                raise ValueError(what) from exc
            if isinstance(got, dict):
                return got
    raise ValueError(f"pod {pod} logged no 'stage finished' line")


def pipeline_run(
    name: str,
    window: int,
    finish: Mapping[str, Mapping[str, Any]],
    nodes: Mapping[str, str],
    status: Mapping[str, Any],
) -> PipelineRun:
    """The run as the stages counted it (their finish lines, in the plan's order), with the
    controller's planned rates when the status still shows the plan's."""
    run = PipelineRun(name, window)
    for stage, line in finish.items():
        try:
            run.stages.append(
                StageRun(
                    stage=stage,
                    kind=str(line["kind"]),
                    node=nodes.get(stage, "?"),
                    window_spikes=[int(n) for n in line["window_spikes"]],
                    received={p: int(c["spikes"]) for p, c in line["received"].items()},
                    run_s=float(line["run_s"]),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"stage {stage}: its finish line lacks {exc}") from exc
        raster = line.get("output_raster") or {}
        for k, (steps, ids) in raster.items():
            run.outputs[k] = [[int(t) for t in steps], [int(i) for i in ids]]
    if ((status.get("traffic") or {}).get("source")) == "planned":
        for e in status.get("edges") or []:
            run.planned[f"{e['from']}->{e['to']}"] = float(e["spikesPerSecond"])
    return run
