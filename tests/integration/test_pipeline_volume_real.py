"""A SpikingPipeline whose model is a file on a volume, the way a large model is deployed: the
NIR file on a PersistentVolume (a hostPath, pre-bound to its claim: the local cluster has no
provisioner), the pipeline naming the claim and the path. The controller splits it in a pod that
mounts the claim read-only (`<name>-split`), every stage pod mounts it too, and the run's
output equals the unsplit model's, spike for spike. Its Poisson input is drawn in place
(`input.inPlace`): no input stage runs, the stage that reads the input draws it itself."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from darwin_dra.cluster import launcher
from k8s_helpers import Kube, wait_for
from test_pipeline_real import (  # the chart with the pipeline controller: release
    EXAMPLE,
    MODEL,
    _condition,
    _kubectl,
    _pipeline,
    _stage_finished,
    _unsplit_digest,
    release,  # noqa: F401
)

pytestmark = pytest.mark.integration

CLAIM = "models"
PATH = "/snn/digits.nir"


@pytest.fixture
def model_volume(
    real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> Iterator[str]:
    """A directory with the model, as a PersistentVolume bound to the claim `models`."""
    # Not under pytest's 0700 temporary directories: the stage pods do not run as root.
    root = Path(tempfile.mkdtemp(prefix="dra-volume-"))
    (root / "snn").mkdir()
    shutil.copy(MODEL, root / PATH.lstrip("/"))
    for d in (root, root / "snn"):
        d.chmod(0o755)
    (root / PATH.lstrip("/")).chmod(0o644)
    pv = f"{real_namespace}-models"
    objects = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Mi"},
                "accessModes": ["ReadOnlyMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(root), "type": "Directory"},
                "claimRef": {"namespace": real_namespace, "name": CLAIM},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM, "namespace": real_namespace},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": pv,
                "resources": {"requests": {"storage": "1Mi"}},
            },
        },
    ]
    _kubectl(
        real_cluster,
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )
    try:

        def bound() -> str | None:
            c = real_kube.core.read_namespaced_persistent_volume_claim(CLAIM, real_namespace)
            return str(c.status.phase) if c.status.phase == "Bound" else None

        wait_for("the model's claim bound to its volume", bound, timeout=60)
        yield pv
    finally:
        # The claim is protected while a pod mounts it: the pipeline (and its pods) go first.
        ns = real_namespace
        _kubectl(real_cluster, "-n", ns, "delete", "spikingpipeline", "--all", "--wait=true")
        _kubectl(real_cluster, "-n", ns, "delete", "pvc", CLAIM, "--wait=false")

        def claim_gone() -> bool | None:
            names = [
                c.metadata.name
                for c in real_kube.core.list_namespaced_persistent_volume_claim(ns).items
            ]
            return True if CLAIM not in names else None

        wait_for("the model's claim deleted", claim_gone, timeout=180, every=1.0)
        _kubectl(real_cluster, "delete", "pv", pv, "--wait=true")
        shutil.rmtree(root)


@pytest.mark.usefixtures("release")
def test_a_model_on_a_volume_is_split_in_its_pod_and_runs_as_the_unsplit_model(
    real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str, model_volume: str
) -> None:
    kube, ns = real_kube, real_namespace
    state = real_cluster.state
    assert state is not None
    edge, core = (n.name for n in state.nodes[:2])
    _kubectl(real_cluster, "label", "node", edge, "darwin.snn.io/edge=true", "--overwrite")
    _kubectl(real_cluster, "label", "node", core, "darwin.snn.io/zone=core", "--overwrite")
    manifest: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    manifest["spec"]["model"] = {"volume": {"claimName": CLAIM, "path": PATH}}
    manifest["spec"]["input"]["inPlace"] = True  # so no input stage: its hint goes
    manifest["spec"]["hints"] = [h for h in manifest["spec"]["hints"] if h["stage"] != "input"]
    started = time.monotonic()
    _kubectl(real_cluster, "-n", ns, "apply", "-f", "-", stdin=json.dumps(manifest))

    def completed() -> dict[str, Any] | None:
        o = _pipeline(kube, ns, "digits")
        return o if _condition(o, "Ready").get("reason") == "Completed" else None

    obj = wait_for("the run from the volume's model completed", completed, 600, every=2.0)
    # The plan came from the split pod, which read the model through the claim, ran, and was
    # removed once the controller had read the plan from its log: its events remain.
    events = kube.core.list_namespaced_event(ns, field_selector="involvedObject.name=digits-split")
    reasons = {e.reason for e in events.items}
    assert {"Scheduled", "Started"} <= reasons, reasons
    reports = {st: _stage_finished(kube, ns, f"digits-{st}") for st in ("s0", "s1", "s2", "output")}
    text = json.dumps(reports, indent=1)
    out = reports["output"]
    assert out["output_spikes"] > 0, text
    assert out["output_digest"] == _unsplit_digest(obj), text
    assert all(r["dropped"] == 0 for r in reports.values()), text
    # The input was drawn where it is read: s0 drew it, no socket carried it, no pod sent it.
    assert reports["s0"]["drawn"] > 0, text
    assert reports["s0"]["received"]["input"] == {"spikes": reports["s0"]["drawn"], "bytes": 0}
    assert sorted(p["stage"] for p in obj["status"]["placement"]) == ["output", "s0", "s1", "s2"]
    never = kube.core.list_namespaced_event(ns, field_selector="involvedObject.name=digits-input")
    assert not never.items, [e.reason for e in never.items]
    stage = kube.core.read_namespaced_pod("digits-s1", ns)
    mounted = [v for v in stage.spec.volumes if v.persistent_volume_claim]
    assert [
        (v.persistent_volume_claim.claim_name, v.persistent_volume_claim.read_only) for v in mounted
    ] == [(CLAIM, True)]
    print(
        f"\nmodel on volume {model_volume}: {out['output_spikes']} output spikes, digest "
        f"{out['output_digest']} = unsplit; {time.monotonic() - started:.1f}s"
    )
    _kubectl(real_cluster, "-n", ns, "delete", "spikingpipeline", "digits", "--wait=true")
