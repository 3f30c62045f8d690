"""A SpikingPipeline the way a user runs one, on real nodes: the chart installed (its CRD and
the controller that reconciles pipelines), the model put in a ConfigMap and the example
applied with kubectl. The controller splits the NIR model into 3 engine stages over 2 nodes of
2 chips each; the real scheduler allocates the claims with their constraints; the stage pods
run the split model end to end (its output equals the unsplit model's, spike for spike);
`kubectl get spikingpipelines` shows it; deleting the pipeline leaves nothing behind."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from darwin_dra.cluster import launcher
from k8s_helpers import Kube, wait_for
from kubernetes.client.exceptions import ApiException
from test_chart_real import Release, _bridge_address, _forget_driver, _inventory

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "darwin-dra"
EXAMPLE = ROOT / "deploy" / "examples" / "spikingpipeline.yaml"
MODEL = ROOT / "tests" / "data" / "digits_snntorch.nir"
GROUP, VERSION, PLURAL = "darwin.snn.io", "v1alpha1", "spikingpipelines"
LABEL = "darwin.snn.io/pipeline"


@pytest.fixture(scope="module")
def release(
    real_cluster: launcher.LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    state = real_cluster.state
    assert state is not None
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "darwin_dra.cli.main",
            "cluster",
            "image",
            "--dir",
            str(real_cluster.dir),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    repository, tag = lines[-3].split()[0].rsplit(":", 1)
    values = tmp_path_factory.mktemp("pipeline-chart") / "values.yaml"
    values.write_text(
        json.dumps(
            {
                "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
                "apiServer": {
                    "host": _bridge_address(state),
                    "port": str(state.ports["kube-apiserver"]),
                },
                "inventory": _inventory([n.name for n in state.nodes]),
                "controller": {"replicas": 1, "pipelines": True},
            }
        )
    )
    rel = Release("darwin", "darwin-dra", real_cluster.kubeconfig, values)
    rel.helm(
        "install",
        rel.name,
        str(CHART),
        "--create-namespace",
        "-f",
        str(values),
        "--wait",
        "--timeout",
        "5m",
    )
    try:
        yield rel
    finally:
        rel.helm("uninstall", rel.name, "--wait", "--timeout", "2m")
        _forget_driver(real_cluster)


def _kubectl(cluster: launcher.LocalCluster, *args: str, stdin: str | None = None) -> str:
    built = cluster.bin.path("kubectl")
    path = str(built) if built.exists() else shutil.which("kubectl")
    assert path, "no kubectl: neither built with the cluster nor on PATH"
    out = subprocess.run(
        [path, f"--kubeconfig={cluster.kubeconfig}", *args],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout


def _pipeline(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    return obj


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == kind), {})


def _owned(kube: Kube, ns: str, name: str) -> dict[str, list[str]]:
    sel = f"{LABEL}={name}"
    claims = kube.custom.list_namespaced_custom_object(
        "resource.k8s.io", "v1", ns, "resourceclaims", label_selector=sel
    )["items"]
    return {
        "pods": [
            p.metadata.name for p in kube.core.list_namespaced_pod(ns, label_selector=sel).items
        ],
        "claims": [c["metadata"]["name"] for c in claims],
        "configmaps": [
            c.metadata.name
            for c in kube.core.list_namespaced_config_map(ns, label_selector=sel).items
        ],
        "secrets": [
            s.metadata.name for s in kube.core.list_namespaced_secret(ns, label_selector=sel).items
        ],
    }


def test_the_crd_refuses_a_bad_pipeline_with_the_reason(
    release: Release, real_kube: Kube, real_namespace: str
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SpikingPipeline",
        "metadata": {"name": "bad"},
        "spec": {
            "model": {
                "configMap": {"name": "m", "key": "k"},
                "volume": {"claimName": "c", "path": "/m.nir"},
            },
            "input": {"source": "file"},
            "stages": "lots",
            "targetRate": 100,
        },
    }
    with pytest.raises(ApiException) as err:
        real_kube.custom.create_namespaced_custom_object(
            GROUP, VERSION, real_namespace, PLURAL, body
        )
    text = str(err.value.body)
    assert err.value.status == 422
    assert "give exactly one of model.configMap and model.volume" in text
    assert "input.source file needs input.file" in text
    assert "stages is a number from 1 to 64, or auto" in text


def _unsplit_digest(obj: dict[str, Any]) -> str:
    from darwin_dra.models.nirfile import load_model
    from darwin_dra.models.run import run_model
    from darwin_dra.pipeline.inputs import InputSpec, input_spikes
    from darwin_dra.pipeline.outputs import of_result, output_digest

    spec = obj["spec"]
    model = load_model(MODEL)
    steps = int(spec["steps"])
    poisson = spec["input"]["poisson"]
    source = InputSpec("poisson", rate_hz=float(poisson["rateHz"]), seed=int(poisson["seed"]))
    return output_digest(of_result(run_model(model, steps, *input_spikes(source, model, steps))))


def _stage_finished(kube: Kube, ns: str, pod: str) -> dict[str, Any]:
    logs = kube.core.read_namespaced_pod_log(pod, ns)
    for line in logs.splitlines():
        if '"stage finished"' in line:
            out: dict[str, Any] = json.loads(line[line.index("{") :])
            return out
    raise AssertionError(f"{pod} logged no 'stage finished' line:\n{logs[-3000:]}")


def test_a_pipeline_is_split_placed_run_and_removed(
    release: Release, real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    state = real_cluster.state
    assert state is not None
    kube, ns = real_kube, real_namespace
    edge, core = (n.name for n in state.nodes[:2])
    # What the example's header tells a user to do.
    _kubectl(real_cluster, "label", "node", edge, "darwin.snn.io/edge=true", "--overwrite")
    _kubectl(real_cluster, "label", "node", core, "darwin.snn.io/zone=core", "--overwrite")
    _kubectl(
        real_cluster,
        "-n",
        ns,
        "create",
        "configmap",
        "digits-model",
        f"--from-file=digits.nir={MODEL}",
    )
    started = time.monotonic()
    _kubectl(real_cluster, "-n", ns, "apply", "-f", str(EXAMPLE))

    def running() -> dict[str, Any] | None:
        obj = _pipeline(kube, ns, "digits")
        ready = _condition(obj, "Ready")
        if ready.get("reason") in ("InvalidSpec", "ModelUnusable", "Unschedulable"):
            raise AssertionError(f"pipeline refused: {ready}")
        done = ready.get("reason") == "Completed"
        return obj if ready.get("status") == "True" or done else None

    obj = wait_for("the pipeline Ready", running, timeout=300, every=1.0)
    ready_s = time.monotonic() - started
    status = obj["status"]
    table = _kubectl(real_cluster, "-n", ns, "get", "spikingpipelines", "-o", "wide")
    print(f"\nReady after {ready_s:.1f}s\n{table}{json.dumps(status['placement'], indent=1)}")
    header = table.splitlines()[0]
    for column in ("READY", "STAGES", "NODES", "CROSS-NODE SPIKES/S", "AGE"):
        assert column in header
    assert status["nodes"] == 2
    place = {p["stage"]: p for p in status["placement"]}
    assert [place[s]["node"] for s in ("input", "s0", "s2")] == [edge, edge, core]
    # The claims the real scheduler allocated: s1 and s2 share one claim, constrained to one
    # chip (they exchange the heaviest edge the hints allow), on shared half chips.
    claims = {
        c["metadata"]["name"]: c
        for c in kube.custom.list_namespaced_custom_object(
            "resource.k8s.io", "v1", ns, "resourceclaims", label_selector=f"{LABEL}=digits"
        )["items"]
    }
    by_request = {}
    for c in claims.values():
        for r in c["status"]["allocation"]["devices"]["results"]:
            by_request[r["request"]] = r
    chip = {
        s: re.match(r"chip-(\d+)-", by_request[s]["device"]).group(1) for s in ("s0", "s1", "s2")
    }  # type: ignore[union-attr]
    assert by_request["s1"]["pool"] == by_request["s2"]["pool"] == core
    assert chip["s1"] == chip["s2"]
    assert by_request["s0"]["pool"] == edge
    assert all("-shared-" in by_request[s]["device"] for s in ("s0", "s1", "s2"))
    assert {place[s].get("partition") for s in ("s0", "s1", "s2")} != {None}

    # Spikes end to end: the run finishes and the output stage's spikes are the unsplit model's.
    def completed() -> dict[str, Any] | None:
        o = _pipeline(kube, ns, "digits")
        return o if _condition(o, "Ready").get("reason") == "Completed" else None

    wait_for("the run completed", completed, timeout=600, every=2.0)
    out = _stage_finished(kube, ns, "digits-output")
    assert out["output_spikes"] > 0
    assert out["output_digest"] == _unsplit_digest(obj)
    print(
        f"run of {obj['spec']['steps']} steps: {out['output_spikes']} output spikes, "
        f"digest {out['output_digest']} = unsplit; {time.monotonic() - started:.1f}s in all"
    )

    # Deleting the pipeline removes everything it owns (the garbage collector).
    _kubectl(real_cluster, "-n", ns, "delete", "spikingpipeline", "digits", "--wait=true")
    empty = {"pods": [], "claims": [], "configmaps": [], "secrets": []}
    wait_for("nothing left", lambda: _owned(kube, ns, "digits") == empty, timeout=120, every=1.0)
