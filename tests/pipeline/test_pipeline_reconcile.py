"""One reconcile pass, pass after pass, as the cluster answers: claims and the sink's pod
first, the pods upstream once their downstream has an IP, a restart of the run when a stage
fails, the claims of failed hardware dropped, and the status that shows it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import objects, splitpod
from darwin_dra.pipeline.cluster import cluster_view
from darwin_dra.pipeline.placement import place, placement_from_json, placement_json
from darwin_dra.pipeline.reconcile import Decision, Observed, decide
from darwin_dra.pipeline.spec import parse_spec
from darwin_dra.pipeline.status import Outcome, pipeline_status

from tests.pipeline.pipelines import (
    allocation,
    chain,
    inventory,
    nodes,
    pipeline_obj,
    result,
    slices,
)

SETTINGS = objects.StageSettings(image="darwin-dra.local/darwin-dra:test", pull_policy="Never")
HINTS = [
    {"stage": "input", "nodeSelector": {"edge": "yes"}},
    {"stage": "s0", "nodeSelector": {"edge": "yes"}},
    {"stage": "s2", "nodeSelector": {"edge": "no"}},
]
NOW = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def _setup() -> tuple[Obj, Any, Any, Any]:
    inv = inventory(2, 2)
    view = cluster_view(slices(inv), nodes=nodes(inv))
    plan = chain(200_000_000, 200_000_000, 100_000_000, spikes=(500.0, 20.0), io=True)
    obj = pipeline_obj(hints=HINTS)
    spec = parse_spec(obj)
    placement = place(
        plan,
        view,
        spec.target_rate,
        {"input": {"edge": "yes"}, "s0": {"edge": "yes"}, "s2": {"edge": "no"}},
    )
    return obj, spec, plan, placement


def _run(pod: Obj, ip: str, node: str) -> Obj:
    out = copy.deepcopy(pod)
    out["status"] = {"phase": "Running", "podIP": ip}
    out["spec"]["nodeName"] = node
    return out


def _created(d: Decision, kind: str) -> list[Obj]:
    return [a.body for a in d.actions if a.verb == "create" and a.kind == kind and a.body]


def test_first_pass_writes_the_claims_and_only_the_last_stage() -> None:
    obj, spec, plan, placement = _setup()
    d = decide(obj, spec, plan, placement, Observed(), SETTINGS)
    claims = _created(d, "ResourceClaim")
    assert [c["metadata"]["name"] for c in claims] == ["digits-g0", "digits-g1"]
    g0 = claims[0]["spec"]["devices"]
    assert [r["name"] for r in g0["requests"]] == ["s0", "s1"]
    assert g0["constraints"] == [{"requests": ["s0", "s1"], "matchAttribute": "darwin.snn.io/chip"}]
    req = g0["requests"][0]["exactly"]
    assert req["deviceClassName"] == "darwin-shared.snn.io"
    assert req["capacity"]["requests"]["keps"] == "200000000"
    assert req["selectors"] == [
        {"cel": {"expression": 'device.attributes["darwin.snn.io"].fabric == "wafer-0"'}}
    ]
    assert "constraints" not in claims[1]["spec"]["devices"]  # one stage: nothing to match
    for c in claims:
        [ref] = c["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("SpikingPipeline", "uid-1", True)
    [pod] = _created(d, "Pod")
    # The sink first: the output stage, on no chip, beside the stage that feeds it.
    assert pod["metadata"]["name"] == "digits-output"
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "node-1"}
    assert "resourceClaims" not in pod["spec"]
    [c] = pod["spec"]["containers"]
    assert "resources" not in c
    assert "--downstream" not in c["command"]
    assert "--input" not in c["command"]  # only the input stage reads the input
    assert (d.phase, d.reason) == ("Pending", "StagesStarting")


def _converge(obj: Obj, spec: Any, plan: Any, placement: Any) -> tuple[list[Obj], list[Obj]]:
    """Passes until nothing more is created, every pod running on its planned node."""
    claims: list[Obj] = []
    pods: list[Obj] = []
    for i in range(8):
        d = decide(obj, spec, plan, placement, Observed(claims, pods), SETTINGS)
        claims += _created(d, "ResourceClaim")
        new = _created(d, "Pod")
        if not new and not _created(d, "ResourceClaim"):
            return claims, pods
        for p in new:
            stage = p["metadata"]["labels"][objects.STAGE_LABEL]
            pods.append(_run(p, f"10.0.{i}.{len(pods) + 1}", placement.node_of(stage)))
    raise AssertionError("did not converge")


def test_upstream_pods_follow_with_their_downstream_ip_then_running() -> None:
    obj, spec, plan, placement = _setup()
    claims, pods = _converge(obj, spec, plan, placement)
    by = {p["metadata"]["name"]: p for p in pods}
    assert list(by) == [
        "digits-output",
        "digits-s2",
        "digits-s1",
        "digits-s0",
        "digits-input",
    ]
    s2 = by["digits-s2"]["spec"]
    assert s2["nodeSelector"] == {"edge": "no"}
    assert s2["resourceClaims"] == [{"name": "snn", "resourceClaimName": "digits-g1"}]
    assert s2["containers"][0]["resources"]["claims"] == [{"name": "snn", "request": "s2"}]
    cmd1 = by["digits-s1"]["spec"]["containers"][0]["command"]
    ip2 = by["digits-s2"]["status"]["podIP"]
    assert cmd1[cmd1.index("--downstream") + 1] == f"s2=tcp://{ip2}:7700"
    cmd0 = by["digits-input"]["spec"]["containers"][0]["command"]
    assert by["digits-input"]["spec"]["nodeSelector"] == {"edge": "yes"}
    assert "--listen" not in cmd0  # the input stage has no upstream
    assert cmd0[cmd0.index("--input") : cmd0.index("--input") + 6] == [
        "--input",
        "poisson",
        "--input-rate-hz",
        "200",
        "--input-seed",
        "3",
    ]
    d = decide(obj, spec, plan, placement, Observed(claims, pods), SETTINGS)
    assert d.actions == []
    assert (d.phase, d.reason) == ("Running", "StagesRunning")


def test_a_failed_stage_restarts_the_run() -> None:
    obj, spec, plan, placement = _setup()
    claims, pods = _converge(obj, spec, plan, placement)
    pods[1]["status"]["phase"] = "Failed"
    d = decide(obj, spec, plan, placement, Observed(claims, pods), SETTINGS)
    assert sorted(a.name for a in d.actions) == [
        "digits-input",
        "digits-output",
        "digits-s0",
        "digits-s1",
        "digits-s2",
    ]
    assert all(a.verb == "delete" and a.kind == "Pod" for a in d.actions)
    assert (d.phase, d.reason) == ("Restarting", "StageLost")
    assert not d.needs_new_placement


def test_a_downstream_pod_replaced_under_a_running_stage_restarts_the_run() -> None:
    obj, spec, plan, placement = _setup()
    claims, pods = _converge(obj, spec, plan, placement)
    pods[1]["status"]["podIP"] = "10.9.9.9"  # s2 came back elsewhere
    d = decide(obj, spec, plan, placement, Observed(claims, pods), SETTINGS)
    assert d.reason == "StageLost"
    assert "stage s2 went away under stage s1" in d.message


def test_a_tainted_device_drops_its_claim_and_asks_for_a_new_placement() -> None:
    obj, spec, plan, placement = _setup()
    claims, pods = _converge(obj, spec, plan, placement)
    claims[1]["status"] = allocation(result("s2", "node-1", "chip-0-shared-0"))
    failed = frozenset({("node-1", "chip-0-shared-0")})
    d = decide(obj, spec, plan, placement, Observed(claims, pods, failed), SETTINGS)
    assert d.needs_new_placement
    assert d.failed_devices == ["node-1/chip-0-shared-0"]
    assert ("delete", "ResourceClaim", "digits-g1") in [(a.verb, a.kind, a.name) for a in d.actions]
    assert len([a for a in d.actions if a.kind == "Pod"]) == 5


def test_a_new_spec_replaces_the_pods() -> None:
    obj, spec, plan, placement = _setup()
    claims, pods = _converge(obj, spec, plan, placement)
    faster = copy.deepcopy(obj)
    faster["spec"]["window"] = 20
    from darwin_dra.pipeline.spec import parse_spec as parse

    d = decide(faster, parse(faster), plan, placement, Observed(claims, pods), SETTINGS)
    assert d.reason == "StageLost"
    assert "runs an old spec or placement" in d.message


def test_a_finished_run_is_completed_and_left_alone() -> None:
    obj = pipeline_obj(steps=100, hints=HINTS)
    _, _, plan, placement = _setup()
    spec = parse_spec(obj)
    claims, pods = _converge(obj, spec, plan, placement)
    for p in pods:
        p["status"]["phase"] = "Succeeded"
    d = decide(obj, spec, plan, placement, Observed(claims, pods), SETTINGS)
    assert (d.actions, d.phase) == ([], "Completed")


def test_status_shows_the_placement_the_scheduler_made_and_the_traffic() -> None:
    obj, spec, plan, placement = _setup()
    claims, pods = _converge(obj, spec, plan, placement)
    claims[0]["status"] = {
        **allocation(
            result("s0", "node-0", "chip-1-shared-0", shareID="a"),
            result("s1", "node-0", "chip-1-shared-1", shareID="b"),
        ),
        "devices": [
            {
                "driver": "darwin.snn.io",
                "pool": "node-0",
                "device": "chip-1-shared-0",
                "shareID": "b",
                "data": {"partition": 8},
            },
            {
                "driver": "darwin.snn.io",
                "pool": "node-0",
                "device": "chip-1-shared-0",
                "shareID": "a",
                "data": {"partition": 7},
            },
        ],
    }
    status = pipeline_status(
        obj,
        Outcome("Running", "StagesRunning", "all 3 stages run"),
        NOW,
        plan,
        placement,
        claims,
        pods,
    )
    assert status["stagesReady"] == "5/5"
    assert status["nodes"] == 2
    assert status["placement"][0] == {
        "stage": "input",
        "pod": "digits-input",
        "phase": "Running",
        "node": "node-0",
    }
    first = status["placement"][1]
    assert (first["node"], first["chip"], first["device"], first["partition"]) == (
        "node-0",
        1,
        "chip-1-shared-0",
        "7",
    )
    assert status["traffic"]["crossNodeSpikesPerSecond"] == 20_000
    # The input's and the output's spikes leave the chips too (10 a step each, at 1000/s).
    assert status["traffic"]["crossChipSpikesPerSecond"] == 40_000
    assert [e["link"] for e in status["edges"]] == ["network", "chip", "network", "network"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "StagesRunning")
    json.dumps(status)  # plain JSON all the way down


def test_degraded_stays_until_the_pipeline_runs_again() -> None:
    obj = pipeline_obj()
    failed = pipeline_status(obj, Outcome("Restarting", "ChipFailed", "node-1/chip-0 failed"), NOW)
    obj["status"] = failed
    starting = pipeline_status(obj, Outcome("Pending", "StagesStarting", "1 of 3"), NOW)
    degraded = next(c for c in starting["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ChipFailed")
    obj["status"] = starting
    running = pipeline_status(obj, Outcome("Running", "StagesRunning", "all 3"), NOW)
    by = {c["type"]: c for c in running["conditions"]}
    assert (by["Degraded"]["status"], by["Ready"]["status"]) == ("False", "True")
    assert by["Progressing"]["status"] == "False"


def test_the_stored_placement_reads_back_equal() -> None:
    _, _, _, placement = _setup()
    again = placement_from_json(placement_json(placement))
    assert again == placement
    assert again.hosts["input"].node == "node-0"


def test_a_model_on_a_volume_is_split_by_a_pod_and_mounted_read_only_by_the_stages() -> None:
    _, _, plan, placement = _setup()
    obj = pipeline_obj(
        model={"volume": {"claimName": "models", "path": "/big/brain.nir"}}, hints=HINTS
    )
    spec = parse_spec(obj)
    split = splitpod.split_pod_body(obj, spec, SETTINGS, "h1")
    [c] = split["spec"]["containers"]
    assert c["command"] == [
        "darwin-dra",
        "split",
        "--model",
        "/var/run/darwin-pipeline/model/big/brain.nir",
        "--stages",
        "3",
        "--route-maps",  # the edges' neuron maps too: the controller cannot read the model
        "--input-rate-hz",
        "200",
    ]
    assert split["spec"]["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "models",
        "readOnly": True,
    }
    assert split["metadata"]["labels"][objects.ROLE_LABEL] == "split"
    # stageLayers: the split pod makes the user's split (darwin-dra split --layers)
    by_layers = pipeline_obj(
        model={"volume": {"claimName": "models", "path": "/big/brain.nir"}},
        stages="auto",
        stageLayers=[["edge"], ["server", "readout"]],
    )
    [lc] = splitpod.split_pod_body(by_layers, parse_spec(by_layers), SETTINGS, "h2")["spec"][
        "containers"
    ]
    cmd = lc["command"]
    assert cmd[cmd.index("--stages") + 1] == "2"
    assert cmd[cmd.index("--layers") + 1] == "edge;server,readout"
    d = decide(obj, spec, plan, placement, Observed(), SETTINGS)
    [pod] = _created(d, "Pod")
    cmd = pod["spec"]["containers"][0]["command"]
    assert cmd[cmd.index("--model") + 1] == "/var/run/darwin-pipeline/model/big/brain.nir"
    model = next(v for v in pod["spec"]["volumes"] if v["name"] == "model")
    assert model["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}


def test_samples_go_to_every_stage_and_the_file_to_the_input_stage() -> None:
    _, _, plan, placement = _setup()
    cm = {"configMap": {"name": "digits", "key": "samples.npy"}, "samples": "16+16,reset"}
    obj = pipeline_obj(hints=HINTS, input={"source": "file", "file": cm})
    _, pods = _converge(obj, parse_spec(obj), plan, placement)
    assert len(pods) == len(plan.stages)
    for pod in pods:
        cmd = pod["spec"]["containers"][0]["command"]
        assert cmd[cmd.index("--samples") + 1] == "16+16,reset"
        reads = "--input" in cmd
        assert reads == pod["metadata"]["name"].endswith("-input")


@pytest.mark.parametrize("source", ["poisson", "file"])
def test_an_input_drawn_in_place_has_no_pod_and_its_reader_draws_it(source: str) -> None:
    inv = inventory(2, 2)
    view = cluster_view(slices(inv), nodes=nodes(inv))
    full = chain(200_000_000, 200_000_000, 100_000_000, spikes=(500.0, 20.0), io=True)
    plan = full.drawn_in_place()
    assert [s.name for s in plan.stages] == ["s0", "s1", "s2", "output"]
    assert plan.input_readers == {"s0"}
    assert not plan.upstream("s0")
    hints = [h for h in HINTS if h["stage"] != "input"]
    cm = {"configMap": {"name": "digits", "key": "spikes.npz"}}
    inp: dict[str, Any] = {"source": source, "inPlace": True}
    inp.update({"file": cm} if source == "file" else {"poisson": {"rateHz": 200, "seed": 3}})
    obj = pipeline_obj(hints=hints, input=inp)
    spec = parse_spec(obj)
    assert spec.input.in_place
    placement = place(plan, view, spec.target_rate, spec.hint_map())
    assert "input" not in placement.hosts
    _, pods = _converge(obj, spec, plan, placement)
    by = {p["metadata"]["labels"][objects.STAGE_LABEL]: p for p in pods}
    assert sorted(by) == ["output", "s0", "s1", "s2"]
    for stage, pod in by.items():
        cmd = pod["spec"]["containers"][0]["command"]
        mounts = {m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        if stage == "s0":  # draws the input, paces the run, listens for nobody
            assert "--listen" not in cmd
            assert cmd[cmd.index("--rate") + 1] == str(spec.target_rate)
            if source == "poisson":
                assert cmd[cmd.index("--input") + 1 :][:5] == [
                    "poisson", "--input-rate-hz", "200", "--input-seed", "3"
                ]  # fmt: skip
            else:
                assert cmd[cmd.index("--input") + 1] == f"file:{objects.MOUNT}/input/input"
                assert "input" in mounts
        else:
            assert "--input" not in cmd
            assert "--rate" not in cmd
            assert "input" not in mounts
