"""The split-learning model deployed the way a user deploys it, on real nodes: trained small with
`darwin-dra split-learn --export`, the NIR file and the held-out digits (rate-coded, one file
of samples) put in ConfigMaps, and a SpikingPipeline applied with kubectl whose cut is the
training cut (``stageLayers: [[edge], [server, readout]]``: s0 on the edge node, s1 on the
core node), each digit from rest (``samples: 16+16,reset``). The controller sizes each stage's
KEPS from the file's busiest step; the engine must drop nothing, and the classes s1 reports
must give the training code's accuracy within 1 point and be the unsplit engine's."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from darwin_dra.cluster import launcher
from k8s_helpers import Kube, wait_for
from test_pipeline_real import (  # the chart with the pipeline controller: release
    _condition,
    _kubectl,
    _pipeline,
    _stage_finished,
    release,  # noqa: F401
)

pytestmark = pytest.mark.integration

GAP = 16  # silent steps between digits (period 32: two 16-step windows)
EDGE = {"darwin.snn.io/edge": "true"}  # where the data is: the input and the edge's layer
CORE = {"darwin.snn.io/zone": "core"}  # the server's layer and the readout


def _train(work: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", "split-learn", "--limit", "300",
           "--epochs", "8", "--ann-epochs", "10", "--work", str(work), "--json",
           "--export", str(work / "split.nir")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def _manifest(steps: int, samples: int) -> str:
    return json.dumps(
        {
            "apiVersion": "darwin.snn.io/v1alpha1",
            "kind": "SpikingPipeline",
            "metadata": {"name": "split-digits"},
            "spec": {
                "model": {"configMap": {"name": "split-model", "key": "split.nir"}},
                "input": {
                    "source": "file",
                    "file": {
                        "configMap": {"name": "split-digits", "key": "samples.npy"},
                        "samples": f"{steps}+{GAP},reset",
                    },
                },
                "stageLayers": [["edge"], ["server", "readout"]],
                "targetRate": 1000,
                "steps": samples * (steps + GAP),
                "window": 16,
                "hints": [
                    {"stage": "input", "nodeSelector": EDGE},
                    {"stage": "s0", "nodeSelector": EDGE},
                    {"stage": "s1", "nodeSelector": CORE},
                ],
            },
        }
    )


@pytest.mark.usefixtures("release")
def test_the_split_model_as_a_pipeline_cut_at_the_training_cut(
    real_cluster: launcher.LocalCluster,
    real_kube: Kube,
    real_namespace: str,
    tmp_path: Path,
) -> None:
    from darwin_dra.models.digits import rate_code
    from darwin_dra.models.nirfile import load_model
    from darwin_dra.splitlearn.data import load
    from darwin_dra.splitlearn.nirexport import engine_accuracy

    kube, ns = real_kube, real_namespace
    started = time.monotonic()
    report = _train(tmp_path)
    nir = report["nir"]
    steps = int(report["config"]["steps"])
    data = load(limit=300)  # the CLI's held-out digits (the same seeded split)
    assert len(data.test_y) == nir["samples"] == 150
    samples = rate_code(data.test_x, steps).astype(np.uint8)
    samples_file = tmp_path / "samples.npy"
    np.save(samples_file, samples)
    assert samples_file.stat().st_size < 1 << 20  # a ConfigMap holds at most 1 MiB
    one_piece = engine_accuracy(load_model(tmp_path / "split.nir"), data.test_x, data.test_y, steps)
    assert float(np.mean(one_piece == data.test_y)) == nir["engine_accuracy"]

    state = real_cluster.state
    assert state is not None
    edge, core = (n.name for n in state.nodes[:2])
    _kubectl(real_cluster, "label", "node", edge, "darwin.snn.io/edge=true", "--overwrite")
    _kubectl(real_cluster, "label", "node", core, "darwin.snn.io/zone=core", "--overwrite")
    for name, key, path in (
        ("split-model", "split.nir", tmp_path / "split.nir"),
        ("split-digits", "samples.npy", samples_file),
    ):
        _kubectl(real_cluster, "-n", ns, "create", "configmap", name, f"--from-file={key}={path}")
    _kubectl(real_cluster, "-n", ns, "apply", "-f", "-", stdin=_manifest(steps, len(samples)))
    deployed = time.monotonic()

    def finished() -> dict[str, Any] | None:
        o = _pipeline(kube, ns, "split-digits")
        ready = _condition(o, "Ready")
        if ready.get("reason") in ("InvalidSpec", "ModelUnusable", "Unschedulable", "Failed"):
            raise AssertionError(f"pipeline refused: {ready}")
        return o if ready.get("reason") == "Completed" else None

    obj = wait_for("the run completed", finished, timeout=600, every=2.0)
    place = {p["stage"]: p for p in obj["status"]["placement"]}
    assert sorted(place) == ["input", "s0", "s1"]
    assert (place["s0"]["node"], place["s1"]["node"]) == (edge, core)
    reports = {st: _stage_finished(kube, ns, f"split-digits-{st}") for st in place}
    text = json.dumps(reports, indent=1)[:6000]
    assert all(r["dropped"] == 0 for r in reports.values()), text
    readout = reports["s1"]["readout"]
    assert readout["samples"] == len(samples), text
    classes = np.asarray(readout["classes"], np.int64)
    accuracy = float(np.mean(classes == data.test_y))
    agreement = float(np.mean(classes == one_piece))
    cut = reports["s0"]["bytes_out"]  # s0 sends to s1 only: the cut's bytes (its log's)
    print(
        f"\n{len(samples)} held-out digits: training code {nir['training_accuracy']:.2%}, "
        f"unsplit engine {nir['engine_accuracy']:.2%}, SpikingPipeline input -> s0 ({edge}) "
        f"-> s1 ({core}) {accuracy:.2%}; same class as the unsplit engine for "
        f"{agreement:.1%}; cut {cut / len(samples):.1f} bytes per digit; "
        f"deployed to Completed in {time.monotonic() - deployed:.1f}s, "
        f"{time.monotonic() - started:.1f}s in all"
    )
    assert abs(accuracy - nir["training_accuracy"]) <= 0.01, text
    assert agreement == 1.0, text
    _kubectl(real_cluster, "-n", ns, "delete", "spikingpipeline", "split-digits", "--wait=true")
