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
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from chart_release import Release, _bridge_address, _forget_driver, _inventory
from darwin_dra.cluster import launcher, realnode
from host_plugin import run_fault
from k8s_helpers import Kube, wait_for
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "darwin-dra"
EXAMPLE = ROOT / "deploy" / "examples" / "spikingpipeline.yaml"
MODEL = ROOT / "tests" / "data" / "digits_snntorch.nir"
GROUP, VERSION, PLURAL = "darwin.snn.io", "v1alpha1", "spikingpipelines"
LABEL = "darwin.snn.io/pipeline"
ROUTES = "darwin.snn.io/routes"


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


def _refusal(kube: Kube, ns: str, spec: dict[str, Any]) -> str:
    """The API server's 422 message for a SpikingPipeline of ``spec``."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SpikingPipeline"}
    body |= {"metadata": {"name": "bad"}, "spec": spec}
    with pytest.raises(ApiException) as err:
        kube.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
    assert err.value.status == 422
    return str(err.value.body)


def test_the_crd_refuses_a_bad_pipeline_with_the_reason(
    release: Release, real_kube: Kube, real_namespace: str
) -> None:
    both = {"configMap": {"name": "m", "key": "k"}, "volume": {"claimName": "c", "path": "/m"}}
    spec = {"model": both, "input": {"source": "file"}, "stages": "lots", "targetRate": 100}
    text = _refusal(real_kube, real_namespace, spec)
    assert "give exactly one of model.configMap and model.volume" in text
    assert "input.source file needs input.file" in text
    assert "stages is a number from 1 to 64, or auto" in text
    # an input drawn in place: not from a socket, and with no input stage to pin
    spec = {
        "model": {"configMap": {"name": "m", "key": "k"}},
        "input": {"source": "socket", "inPlace": True},
        "targetRate": 100,
        "hints": [{"stage": "input", "nodeSelector": {"edge": "true"}}],
    }
    text = _refusal(real_kube, real_namespace, spec)
    assert "input.inPlace is for a poisson or file input, not a socket" in text
    assert "input.inPlace leaves no input stage to pin" in text


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


def _claim_objects(kube: Kube, ns: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.custom.list_namespaced_custom_object(
        "resource.k8s.io", "v1", ns, "resourceclaims", label_selector=f"{LABEL}={name}"
    )["items"]
    return items


def _claims(kube: Kube, ns: str, name: str) -> dict[str, dict[str, Any]]:
    """request -> allocation result of the pipeline's allocated claims."""
    out = {}
    for c in _claim_objects(kube, ns, name):
        for r in (
            ((c.get("status") or {}).get("allocation") or {}).get("devices", {}).get("results", [])
        ):
            out[r["request"]] = r
    return out


def _chip(result: dict[str, Any]) -> int:
    m = re.match(r"chip-(\d+)-", result["device"])
    assert m, result
    return int(m.group(1))


def _node_devices(kube: Kube, node: str) -> list[dict[str, Any]]:
    """The devices of ``node``'s pool, newest generation (what the plugin publishes now)."""
    items = [
        s
        for s in kube.custom.list_cluster_custom_object("resource.k8s.io", "v1", "resourceslices")[
            "items"
        ]
        if s["spec"]["driver"] == "darwin.snn.io" and s["spec"].get("nodeName") == node
    ]
    newest = max((int(s["spec"]["pool"]["generation"]) for s in items), default=0)
    return [
        d
        for s in items
        if int(s["spec"]["pool"]["generation"]) == newest
        for d in s["spec"].get("devices") or []
    ]


def _tainted_chips(kube: Kube, node: str) -> set[int]:
    return {
        d["attributes"]["chip"]["int"]
        for d in _node_devices(kube, node)
        if d.get("taints") and "chip" in d.get("attributes", {})
    }


def _fabric_device(kube: Kube, node: str) -> dict[str, Any] | None:
    """The attributes and keps of the fabric device of ``node``'s wafer (its own, here)."""
    for s in kube.custom.list_cluster_custom_object("resource.k8s.io", "v1", "resourceslices")[
        "items"
    ]:
        terms = (s["spec"].get("nodeSelector") or {}).get("nodeSelectorTerms") or []
        values = [v for t in terms for e in t.get("matchExpressions", []) for v in e["values"]]
        if s["spec"]["driver"] == "darwin.snn.io" and values == [node]:
            [d] = s["spec"]["devices"]
            out = {k: next(iter(v.values())) for k, v in d["attributes"].items()}
            return {**out, "keps": d["capacity"]["keps"]["value"]}
    return None


def _start(cluster: launcher.LocalCluster, ns: str, manifest: str) -> tuple[str, str]:
    """What the example's header tells a user to do; the edge and the core node."""
    state = cluster.state
    assert state is not None
    edge, core = (n.name for n in state.nodes[:2])
    _kubectl(cluster, "label", "node", edge, "darwin.snn.io/edge=true", "--overwrite")
    _kubectl(cluster, "label", "node", core, "darwin.snn.io/zone=core", "--overwrite")
    _kubectl(
        cluster, "-n", ns, "create", "configmap", "digits-model", f"--from-file=digits.nir={MODEL}"
    )
    _kubectl(cluster, "-n", ns, "apply", "-f", "-", stdin=manifest)
    return edge, core


# A stranger in the cluster: TLS to a stage's spike port with no client certificate (and no
# check of the server's, as an attacker would not bother). It prints what it got.
STRANGER = """
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"DSPK" + bytes(60))
            got = tls.recv(64)
            print("stranger-result=" + ("answered" if got else "closed"))
except (ssl.SSLError, OSError) as exc:
    print("stranger-result=refused", type(exc).__name__, exc)
"""


def _stranger_at(kube: Kube, ns: str, image: str, stage_pod: str) -> str:
    """Runs STRANGER in a pod of the driver's image against ``stage_pod``'s spike port;
    returns its output line."""
    pod = kube.pod(ns, stage_pod)
    assert pod is not None
    ip = pod["status"]["podIP"]
    [port] = [
        p["containerPort"]
        for c in pod["spec"]["containers"]
        for p in c.get("ports", [])
        if p.get("name") == "spikes"
    ]
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stranger"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "stranger",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", STRANGER, ip, str(port)],
                }
            ],
        },
    }
    kube.core.create_namespaced_pod(ns, body)

    def done() -> str | None:
        p = kube.pod(ns, "stranger")
        if p is None or p["status"].get("phase") not in ("Succeeded", "Failed"):
            return None
        return str(kube.core.read_namespaced_pod_log("stranger", ns) or "")

    return wait_for("the stranger's attempt", done, timeout=180, every=1.0)


def _all_running(kube: Kube, ns: str, name: str) -> Any:
    def check() -> dict[str, Any] | None:
        obj = _pipeline(kube, ns, name)
        ready = _condition(obj, "Ready")
        if ready.get("reason") in ("InvalidSpec", "ModelUnusable", "Unschedulable"):
            raise AssertionError(f"pipeline refused: {ready}")
        st = obj.get("status") or {}
        return obj if st.get("stagesReady") == "5/5" and st.get("observedGeneration") else None

    return check


def test_a_pipeline_is_split_placed_replaced_off_a_failed_chip_and_removed(
    release: Release, real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    kube, ns = real_kube, real_namespace
    # The example, running until deleted.
    manifest = EXAMPLE.read_text().replace("  steps: 5000\n", "")
    started = time.monotonic()
    edge, core = _start(real_cluster, ns, manifest)
    obj = wait_for("every stage running", _all_running(kube, ns, "digits"), timeout=300, every=1.0)
    print(f"\nall 5 stage pods running after {time.monotonic() - started:.1f}s")
    table = _kubectl(real_cluster, "-n", ns, "get", "spikingpipelines", "-o", "wide")
    print(table + json.dumps(obj["status"]["placement"], indent=1))
    header = table.splitlines()[0]
    for column in ("READY", "STAGES", "NODES", "CROSS-NODE SPIKES/S", "AGE"):
        assert column in header
    status = obj["status"]
    assert status["nodes"] == 2
    place = {p["stage"]: p for p in status["placement"]}
    assert [place[s]["node"] for s in ("input", "s0", "s1", "s2", "output")] == [
        edge,
        edge,
        core,
        core,
        core,
    ]
    # The real scheduler's allocation: s1 and s2 share a claim constrained to one chip (the
    # heaviest edge the hints allow), each on its own share (its own partition) of a shared
    # half chip; s0 on the edge node.
    alloc = _claims(kube, ns, "digits")
    assert alloc["s1"]["pool"] == alloc["s2"]["pool"] == core
    assert _chip(alloc["s1"]) == _chip(alloc["s2"])
    assert alloc["s0"]["pool"] == edge
    assert all("-shared-" in alloc[s]["device"] for s in ("s0", "s1", "s2"))
    assert place["s1"]["partition"] != place["s2"]["partition"]
    edges = {(e["from"], e["to"]): e["link"] for e in status["edges"]}
    assert edges[("s1", "s2")] == "chip"
    assert edges[("s0", "s2")] == "network"

    # A stranger connecting to a stage's spike port is refused, and the stage says so. (Once
    # the stage listens: a pod runs some seconds before its stage has loaded and bound.)
    def s2_log() -> str:
        return str(kube.core.read_namespaced_pod_log("digits-s2", ns) or "")

    wait_for("digits-s2 serving its upstreams", lambda: "upstream connected" in s2_log(), 180)
    said = _stranger_at(kube, ns, release.image, "digits-s2")
    print(f"stranger at digits-s2: {said.strip()}")
    # TLS refuses it: an alert, a reset or a close; never an answer, nor a port that is shut
    assert "stranger-result=" in said, said
    for never in ("answered", "ConnectionRefusedError", "TimeoutError"):
        assert never not in said, said
    wait_for("the stage's log of the refusal", lambda: "refused a peer" in s2_log(), 60)
    assert _all_running(kube, ns, "digits")() is not None  # the stages run on, untouched

    # The chip under s1 and s2 fails: Degraded, placed again on the core node's healthy chip.
    failed = _chip(alloc["s1"])
    state_dir = realnode.NodeLayout(real_cluster.dir / "nodes" / core).bound("/var/lib/darwin-dra")
    run_fault(state_dir, "inject", "--chip", str(failed), "--whole-chip")
    try:
        failed_at = time.monotonic()

        def degraded() -> dict[str, Any] | None:
            d = _condition(_pipeline(kube, ns, "digits"), "Degraded")
            return d if d.get("status") == "True" else None

        # Which the controller sees first is a race: the taint the plugin publishes on its
        # next health poll (ChipFailed, naming the devices), or the stage whose partition
        # failed its step exiting (StageLost). Either way the run restarts off the chip.
        cond = wait_for("Degraded", degraded, timeout=120, every=0.5)
        assert cond["reason"] in ("ChipFailed", "StageLost"), cond
        if cond["reason"] == "ChipFailed":
            assert f"{core}/chip-{failed}-shared-" in cond["message"]

        def moved() -> dict[str, Any] | None:
            o = _all_running(kube, ns, "digits")()
            a = _claims(kube, ns, "digits")
            ok = o and {"s1", "s2"} <= set(a) and _chip(a["s1"]) != failed
            return o if ok else None

        again = wait_for("stages placed again", moved, timeout=300, every=1.0)
        print(
            f"chip {core}/{failed} failed: placed again, all stages running after "
            f"{time.monotonic() - failed_at:.1f}s"
        )
        alloc = _claims(kube, ns, "digits")
        assert _chip(alloc["s1"]) == _chip(alloc["s2"]) != failed
        assert alloc["s1"]["pool"] == core
        assert {p["stage"]: p for p in again["status"]["placement"]}["s1"]["chip"] != failed
    finally:
        run_fault(state_dir, "clear", "--chip", str(failed), "--all")

    # A fabric link of the chip now under s1 and s2 fails (to the node's other chip, the one
    # just repaired): no taint, the chip runs on, but the pipeline leaves it for the other.
    wait_for(
        f"chip {failed}'s devices without taints again",
        lambda: failed not in _tainted_chips(kube, core),
        timeout=60,
        every=0.5,
    )
    cut = _chip(alloc["s1"])
    run_fault(state_dir, "inject", "--chip", str(cut), "--fabric-to", str(failed))
    try:
        cut_at = time.monotonic()

        def link_degraded() -> dict[str, Any] | None:
            d = _condition(_pipeline(kube, ns, "digits"), "Degraded")
            return d if d.get("status") == "True" and d["reason"] != "ChipFailed" else None

        cond = wait_for("Degraded by the fabric link", link_degraded, timeout=60, every=0.5)
        print(f"fabric link {core}/{cut}->{failed} failed: Degraded after "
              f"{time.monotonic() - cut_at:.1f}s: {cond['reason']}: {cond['message']}")  # fmt: skip
        assert cond["reason"] == "FabricLinkFailed", cond
        assert f"{core}/chip-{cut}-shared-" in cond["message"]
        assert cut not in _tainted_chips(kube, core)  # the chip itself carries no taint

        def moved_off_the_link() -> dict[str, Any] | None:
            o = _all_running(kube, ns, "digits")()
            a = _claims(kube, ns, "digits")
            ok = o and {"s1", "s2"} <= set(a) and _chip(a["s1"]) != cut
            return o if ok else None

        wait_for("stages placed off the link", moved_off_the_link, timeout=300, every=1.0)
        print(f"placed again, all stages running after {time.monotonic() - cut_at:.1f}s")
        alloc = _claims(kube, ns, "digits")
        assert _chip(alloc["s1"]) == _chip(alloc["s2"]) == failed
        assert alloc["s1"]["pool"] == core
        # The fabric device the controller publishes follows the fault too (its resync).
        wafer = wait_for(
            "the fabric device with the failed link",
            lambda: (d := _fabric_device(kube, core)) and d["failedFabricLinks"] == 1 and d,
            timeout=60,
            every=1.0,
        )
        print(f"fabric device: {wafer} after {time.monotonic() - cut_at:.1f}s")
    finally:
        run_fault(state_dir, "clear", "--chip", str(cut), "--all")
    ready = _condition(_pipeline(kube, ns, "digits"), "Ready")
    assert ready.get("status") == "True", ready

    # An asynchronous domain under s0 fails (the first domain of its shared half, on the edge
    # node): the devices over it tainted NoExecute, Degraded, s0 placed again on healthy
    # hardware of the edge node (its hint), Ready again; the fault cleared, no taint left.
    def _not_degraded() -> bool:
        return _condition(_pipeline(kube, ns, "digits"), "Degraded").get("status") != "True"

    wait_for("Degraded cleared after the fabric link", _not_degraded, timeout=120, every=0.5)
    s0_device, s0_chip = alloc["s0"]["device"], _chip(alloc["s0"])
    half = re.fullmatch(r"chip-\d+-shared-(\d)", s0_device)
    assert half, s0_device
    span = next(d for d in _node_devices(kube, edge) if d["name"] == s0_device)
    domain = int(half.group(1)) * int(span["attributes"]["domains"]["int"])
    edge_dir = realnode.NodeLayout(real_cluster.dir / "nodes" / edge).bound("/var/lib/darwin-dra")
    run_fault(edge_dir, "inject", "--chip", str(s0_chip), "--domain", str(domain))
    try:
        hit_at = time.monotonic()

        def domain_degraded() -> dict[str, Any] | None:
            d = _condition(_pipeline(kube, ns, "digits"), "Degraded")
            return d if d.get("status") == "True" else None

        cond = wait_for("Degraded by the domain", domain_degraded, timeout=120, every=0.5)
        assert cond["reason"] in ("ChipFailed", "StageLost"), cond  # the same race as above
        if cond["reason"] == "ChipFailed":
            assert f"{edge}/{s0_device}" in cond["message"], cond

        def s0_moved() -> dict[str, Any] | None:
            o = _all_running(kube, ns, "digits")()
            a = _claims(kube, ns, "digits")
            return o if o and "s0" in a and a["s0"]["device"] != s0_device else None

        wait_for("s0 placed off the failed domain", s0_moved, timeout=300, every=1.0)
        alloc = _claims(kube, ns, "digits")
        print(f"domain {edge}/chip-{s0_chip}/{domain} failed under s0 ({s0_device}): Degraded "
              f"({cond['reason']}), s0 now on {alloc['s0']['device']}, all stages running "
              f"after {time.monotonic() - hit_at:.1f}s")  # fmt: skip
        assert alloc["s0"]["pool"] == edge
        tainted = {d["name"] for d in _node_devices(kube, edge) if d.get("taints")}
        assert s0_device in tainted
        assert alloc["s0"]["device"] not in tainted
    finally:
        run_fault(edge_dir, "clear", "--chip", str(s0_chip), "--all")
    wait_for(
        "the edge node's devices without taints again",
        lambda: not _tainted_chips(kube, edge),
        timeout=60,
        every=0.5,
    )
    wait_for("Ready after the domain", lambda: _not_degraded() or None, timeout=120, every=0.5)
    ready = _condition(_pipeline(kube, ns, "digits"), "Ready")
    assert ready.get("status") == "True", ready

    # Deleting the pipeline removes everything it owns (the garbage collector).
    _kubectl(real_cluster, "-n", ns, "delete", "spikingpipeline", "digits", "--wait=true")
    empty = {"pods": [], "claims": [], "configmaps": [], "secrets": []}
    wait_for("nothing left", lambda: _owned(kube, ns, "digits") == empty, timeout=120, every=1.0)


def test_spikes_flow_end_to_end_and_equal_the_unsplit_model(
    release: Release, real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    kube, ns = real_kube, real_namespace
    started = time.monotonic()
    _start(real_cluster, ns, EXAMPLE.read_text())
    stalled_since: list[float] = []
    programmed: list[dict[str, Any]] = []  # (while it runs: a finished claim is deallocated)

    def finished() -> dict[str, Any] | None:
        o = _pipeline(kube, ns, "digits")
        for c in _claim_objects(kube, ns, "digits") if not programmed else []:
            programmed.extend(
                {**cond, "device": e["device"]}
                for e in (c.get("status") or {}).get("devices") or []
                for cond in e.get("conditions") or []
                if cond["type"] == "RoutesProgrammed" and cond["status"] == "True"
            )
        for pod in kube.core.list_namespaced_pod(ns, label_selector=f"{LABEL}=digits").items:
            if pod.status.phase == "Failed":  # the run would restart: say why, now
                logs = kube.core.read_namespaced_pod_log(pod.metadata.name, ns)
                raise AssertionError(f"{pod.metadata.name} failed:\n{logs[-4000:]}")
        reason = _condition(o, "Ready").get("reason")
        if reason == "Stalled":
            stalled_since.append(time.monotonic())
            if stalled_since[-1] - stalled_since[0] > 90:
                raise AssertionError("the stages run but no timestep advanced for 90 s")
        else:
            stalled_since.clear()
        return o if reason == "Completed" else None

    obj = wait_for("the run completed", finished, timeout=600, every=2.0)
    reports = {
        st: _stage_finished(kube, ns, f"digits-{st}")
        for st in ("input", "s0", "s1", "s2", "output")
    }
    out = reports["output"]
    text = json.dumps(reports, indent=1)
    assert out["output_spikes"] > 0, text
    assert out["output_digest"] == _unsplit_digest(obj), text
    assert all(r["dropped"] == 0 for r in reports.values()), text
    # s1 and s2 share a chip: their edge went on the chip host's router, programmed by the
    # plugin from the claim's routes when it prepared the claim, and no socket carried it.
    routed = reports["s1"]["routed"].get("s2", 0)
    assert routed > 0, text
    assert reports["s2"]["routed"].get("s1") == routed, text
    assert reports["s2"]["received"]["s1"]["bytes"] == 0, text
    assert reports["s2"]["received"]["s0"]["bytes"] > 0, text  # the other chip: the network
    [group] = [
        c
        for c in _claim_objects(kube, ns, "digits")
        if ROUTES in c["metadata"].get("annotations", {})
    ]
    assert [
        r["source"] + "->" + r["destination"]
        for r in json.loads(group["metadata"]["annotations"][ROUTES])["routes"]
    ] == ["s1->s2"]
    # s1's device, s2's and their chip's router, whose binding conditions held both pods in
    # the scheduler's PreBind until the plugin had programmed the route.
    assert len(programmed) == 3, programmed
    [router] = [c for c in programmed if "-router-" in c["device"]]
    assert router["message"] == f"on chip {router['device'].split('-')[1]}'s router: s1->s2"
    for pod in ("digits-s1", "digits-s2"):
        events = kube.core.list_namespaced_event(ns, field_selector=f"involvedObject.name={pod}")
        assert any(e.reason == "BindingConditionsPending" for e in events.items), pod
        scheduled = kube.scheduled_condition(ns, pod) or {}
        assert scheduled.get("status") == "True", (pod, scheduled)
        bound_at, ready_at = (
            datetime.fromisoformat(str(t).replace("Z", "+00:00"))
            for t in (scheduled["lastTransitionTime"], router["lastTransitionTime"])
        )
        assert bound_at >= ready_at, (pod, scheduled, router)
    print(
        f"\nrun of {obj['spec']['steps']} steps: {out['output_spikes']} output spikes, "
        f"digest {out['output_digest']} = unsplit; {routed} spikes s1->s2 on the route "
        f"({router['message']}, programmed {router['lastTransitionTime']}); "
        f"{time.monotonic() - started:.1f}s in all"
    )
    _kubectl(real_cluster, "-n", ns, "delete", "spikingpipeline", "digits", "--wait=true")
