"""Real nodes: a real kubelet and containerd per node. The production `darwin-dra kubelet-plugin`
publishes node 0's slices, the real scheduler allocates from them by CEL, the real kubelet
prepares the claim through the plugin, containerd injects the plugin's CDI edits into a
container that runs (asserted from inside it, through its logs as the API server fetches them
from the kubelet), deleting the pod unprepares, and a chip failure makes the real
kube-controller-manager evict the running pod."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from darwin_dra import DRIVER_NAME
from darwin_dra.cluster.launcher import LocalCluster
from darwin_dra.engine import Direction
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.partitions import partitions
from host_plugin import Plugin, running_plugin
from k8s_helpers import (
    Kube,
    allocated_devices,
    claim_template,
    device_class,
    device_taints,
    wait_for,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration

# What the container prints: the variables CDI set, then whether the partition's spike socket
# is there, mounted from the plugin's directory. It then waits to be stopped.
PROBE = (
    "env | grep ^DARWIN_ | sort; s=${DARWIN_SPIKE_ENDPOINT#unix://}; "
    'if [ -S "$s" ]; then echo spike-socket=present; else echo spike-socket=missing; fi; '
    "echo ready; trap 'exit 0' TERM; sleep 3600 & wait"
)


@pytest.fixture(scope="module")
def plugin(
    real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plugin]:
    """The production plugin for real node 0, on the host, in the kubelet's own directories."""
    assert real_cluster.state is not None
    node = real_cluster.state.nodes[0]
    assert node.kind == "real"
    work = tmp_path_factory.mktemp("real-plugin")
    with running_plugin(
        real_cluster, node, work, cdi_dir=Path(node.cdi_dir), registered=True, ready_timeout_s=60
    ) as started:
        yield started


def _pod(
    name: str,
    image: str,
    script: str,
    *,
    node: str | None = None,
    claim: str | None = None,
    restart: str = "Always",
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-c", script],
    }
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 5,
        "restartPolicy": restart,
        "containers": [container],
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    if claim:
        container["resources"] = {"claims": [{"name": "snn"}]}
        spec["resourceClaims"] = [{"name": "snn", "resourceClaimTemplateName": claim}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _start_claim_pod(
    kube: Kube, namespace: str, image: str, test_id: str, partition: str, template: str, pod: str
) -> None:
    """A DeviceClass of one partition kind, a claim template of one request of it, and a pod
    running PROBE with the claim."""
    cls = f"darwin-{partition}-{test_id}"
    kube.create(
        "deviceclasses",
        device_class(
            cls, DRIVER_NAME, f'device.attributes["{DRIVER_NAME}"].partition == "{partition}"'
        ),
    )
    request = {"name": "snn", "exactly": {"deviceClassName": cls}}
    kube.create_ns(namespace, "resourceclaimtemplates", claim_template(template, [request]))
    kube.core.create_namespaced_pod(namespace, _pod(pod, image, PROBE, claim=template))


def _logs(kube: Kube, namespace: str, pod: str) -> str:
    try:
        text: str | None = kube.core.read_namespaced_pod_log(pod, namespace)
    except ApiException:
        return ""
    return text or ""  # the client gives None for an empty log


def _phase(kube: Kube, namespace: str, pod: str) -> str | None:
    obj = kube.pod(namespace, pod)
    return obj["status"].get("phase") if obj else None


def test_real_kubelets_register_their_nodes_with_the_labels_of_today(
    real_cluster: LocalCluster, real_kube: Kube
) -> None:
    assert real_cluster.state is not None
    for record in real_cluster.state.nodes:
        node = real_kube.core.read_node(record.name)
        info = node.status.node_info
        assert info.kubelet_version == "v1.37.2"
        assert info.container_runtime_version.startswith("containerd://")
        addresses = {a.type: a.address for a in node.status.addresses}
        assert addresses["InternalIP"] == record.node_ip
        assert record.labels.items() <= node.metadata.labels.items()
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True"


def test_a_claim_is_prepared_by_the_real_kubelet_and_cdi_reaches_the_container(
    plugin: Plugin, real_cluster: LocalCluster, real_kube: Kube, real_namespace: str, test_id: str
) -> None:
    assert real_cluster.state is not None
    kube, namespace = real_kube, real_namespace
    image = real_cluster.state.images["busybox"]
    _start_claim_pod(kube, namespace, image, test_id, "domain", "snn", "app")

    logs = wait_for(
        "the container's own report", lambda: "ready" in (t := _logs(kube, namespace, "app")) and t
    )
    assert _phase(kube, namespace, "app") == "Running"
    claim_name = kube.pod_claim_name(namespace, "app", "snn")
    assert claim_name is not None
    claim = kube.get_ns(namespace, "resourceclaims", claim_name)
    [alloc] = allocated_devices(claim)
    assert alloc["pool"] == plugin.node  # the only node with this driver's devices
    assert alloc["device"].startswith("chip-0-domain-")
    env = dict(line.split("=", 1) for line in logs.splitlines() if line.startswith("DARWIN_"))
    assert set(env) >= {"DARWIN_CORES", "DARWIN_KEPS", "DARWIN_PARTITION", "DARWIN_SPIKE_ENDPOINT"}
    assert env["DARWIN_SPIKE_ENDPOINT"].startswith("unix:///var/run/darwin/partitions/")
    assert env["DARWIN_SPIKE_ENDPOINT"].endswith("/spike.sock")
    assert "spike-socket=present" in logs  # the partition directory is bind-mounted by CDI
    # The env is exactly what the plugin's CDI spec for this claim says.
    assert claim is not None
    spec_file = plugin.cdi_dir / f"darwin.snn.io-{claim['metadata']['uid']}.json"
    [dev] = json.loads(spec_file.read_text())["devices"]
    assert sorted(f"{k}={v}" for k, v in env.items()) == sorted(dev["containerEdits"]["env"])

    kube.core.delete_namespaced_pod("app", namespace)
    wait_for("the pod gone", lambda: kube.pod(namespace, "app") is None, timeout=60)
    wait_for("the CDI spec removed by unprepare", lambda: not spec_file.exists(), timeout=30)


def _ready(kube: Kube, node: str) -> bool:
    conditions = kube.core.read_node(node).status.conditions or []
    return {c.type: c.status for c in conditions}.get("Ready") == "True"


def _registrations(plugin: Plugin) -> int:
    log = plugin.state_dir.parent / "plugin.log"
    return log.read_text(errors="replace").count("registered with the kubelet")


def _container(kube: Kube, namespace: str, pod: str) -> tuple[str, int, str]:
    """(container id, restart count, phase) of the pod's one container."""
    obj = kube.pod(namespace, pod) or {}
    status = obj.get("status", {})
    [c] = status.get("containerStatuses") or [{}]
    return str(c.get("containerID", "")), int(c.get("restartCount", -1)), status.get("phase", "")


def test_kubelet_and_containerd_restarts_keep_the_prepared_claim_and_the_running_pod(
    plugin: Plugin, real_cluster: LocalCluster, real_kube: Kube, real_namespace: str, test_id: str
) -> None:
    assert real_cluster.state is not None
    kube, namespace, node = real_kube, real_namespace, plugin.node
    image = real_cluster.state.images["busybox"]
    _start_claim_pod(kube, namespace, image, test_id, "domain", "snn", "app")
    wait_for("the container's report", lambda: "ready" in _logs(kube, namespace, "app"), 120)
    claim_name = kube.pod_claim_name(namespace, "app", "snn")
    claim = kube.get_ns(namespace, "resourceclaims", claim_name or "")
    assert claim is not None
    spec_file = plugin.cdi_dir / f"darwin.snn.io-{claim['metadata']['uid']}.json"
    assert spec_file.exists()
    before = _container(kube, namespace, "app")
    registered = _registrations(plugin)

    # The kubelet restarts: it registers the plugin again and keeps the claim prepared; the
    # container it started is not restarted.
    real_cluster.restart(f"kubelet[{node}]")
    wait_for("the plugin registered again", lambda: _registrations(plugin) > registered, 120)
    wait_for("the node Ready again", lambda: _ready(kube, node), 120)
    assert spec_file.exists()
    assert _container(kube, namespace, "app") == before

    # containerd restarts: the container lives on in its shim, and the kubelet finds it again.
    real_cluster.restart(f"containerd[{node}]")
    wait_for(
        "the pod seen running after containerd's restart",
        lambda: (
            _container(kube, namespace, "app") == before
            and "ready" in _logs(kube, namespace, "app")
        ),
        120,
    )
    assert spec_file.exists()
    assert "spike-socket=present" in _logs(kube, namespace, "app")

    kube.core.delete_namespaced_pod("app", namespace)
    wait_for("the pod gone", lambda: kube.pod(namespace, "app") is None, timeout=90)
    wait_for("the CDI spec removed by unprepare", lambda: not spec_file.exists(), timeout=60)


def _answers(fn: Callable[[], object]) -> bool:
    """Whether an API call succeeds now (the server may be answering 5xx while etcd is away)."""
    try:
        fn()
    except (ApiException, urllib3.exceptions.HTTPError):
        return False
    return True


def test_an_etcd_restart_keeps_claims_slices_and_the_running_pod_and_prepare_goes_on(
    plugin: Plugin, real_cluster: LocalCluster, real_kube: Kube, real_namespace: str, test_id: str
) -> None:
    """etcd stopped (SIGTERM) and started again on the same data: the API server rides it out,
    the plugin's watches and the controllers reconnect, nothing is lost or prepared twice, and
    the next claim is prepared as usual."""
    assert real_cluster.state is not None
    kube, namespace = real_kube, real_namespace
    image = real_cluster.state.images["busybox"]
    _start_claim_pod(kube, namespace, image, test_id, "domain", "snn", "app")
    wait_for("the container's report", lambda: "ready" in _logs(kube, namespace, "app"), 120)
    claim_name = kube.pod_claim_name(namespace, "app", "snn") or ""
    claim = kube.get_ns(namespace, "resourceclaims", claim_name)
    assert claim is not None
    uid = claim["metadata"]["uid"]
    spec_file = plugin.cdi_dir / f"darwin.snn.io-{uid}.json"
    container = _container(kube, namespace, "app")
    slices = sorted(s["metadata"]["name"] for s in plugin.slices())

    real_cluster.restart("etcd")
    wait_for("the API server answering again", lambda: _answers(plugin.slices), 120)

    # Every control-plane process and the plugin lived through it.
    assert [p.name for p in real_cluster.processes if not p.alive()] == []
    assert plugin.proc.poll() is None
    # What was stored is still there: the claim, its allocation and reservation, the slices.
    after = kube.get_ns(namespace, "resourceclaims", claim_name)
    assert after is not None
    assert after["metadata"]["uid"] == uid
    assert allocated_devices(after) == allocated_devices(claim)
    assert [r["name"] for r in after["status"]["reservedFor"]] == ["app"]
    assert sorted(s["metadata"]["name"] for s in plugin.slices()) == slices
    # The workload did not notice, and its partition is still prepared.
    assert _container(kube, namespace, "app") == container
    assert spec_file.exists()

    # The next claim goes through the reconnected scheduler, kubelet and plugin, onto another
    # partition than the first (none granted twice).
    kube.core.create_namespaced_pod(namespace, _pod("next", image, PROBE, claim="snn"))
    wait_for("the next pod's report", lambda: "ready" in _logs(kube, namespace, "next"), 120)
    next_claim = kube.get_ns(
        namespace, "resourceclaims", kube.pod_claim_name(namespace, "next", "snn") or ""
    )
    [first], [second] = allocated_devices(after), allocated_devices(next_claim)
    assert first["device"] != second["device"]

    for pod in ("app", "next"):
        kube.core.delete_namespaced_pod(pod, namespace)
    wait_for(
        "the pods gone",
        lambda: not kube.pod(namespace, "app") and not kube.pod(namespace, "next"),
        90,
    )
    wait_for("the CDI spec removed by unprepare", lambda: not spec_file.exists(), timeout=60)


def test_a_failed_chip_gets_its_running_pod_evicted_by_the_controller_manager(
    plugin: Plugin, real_cluster: LocalCluster, real_kube: Kube, real_namespace: str, test_id: str
) -> None:
    assert real_cluster.state is not None
    kube, namespace = real_kube, real_namespace
    image = real_cluster.state.images["busybox"]
    _start_claim_pod(kube, namespace, image, test_id, "chip", "chip", "victim")
    wait_for("the pod running", lambda: "ready" in _logs(kube, namespace, "victim"))
    claim_name = kube.pod_claim_name(namespace, "victim", "snn")
    assert claim_name is not None
    [alloc] = allocated_devices(kube.get_ns(namespace, "resourceclaims", claim_name))
    chip = alloc["device"].removeprefix("chip-")
    try:
        plugin.fault("inject", "--whole-chip", "--chip", chip)

        def evicted() -> bool:
            pod = kube.pod(namespace, "victim")
            if pod is None:
                return True
            conditions = {c["type"]: c for c in pod["status"].get("conditions") or []}
            return "DisruptionTarget" in conditions or pod["metadata"].get("deletionTimestamp")

        wait_for("the pod evicted", evicted, timeout=90)
        wait_for("the pod gone", lambda: kube.pod(namespace, "victim") is None, timeout=60)
    finally:
        plugin.fault("clear", "--all", "--chip", chip)


def test_pods_on_different_nodes_reach_each_other(
    real_cluster: LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    assert real_cluster.state is not None
    kube, namespace = real_kube, real_namespace
    image = real_cluster.state.images["busybox"]
    first, second = (n.name for n in real_cluster.state.nodes[:2])
    serve = "mkdir /w && echo pong-$(hostname) > /w/index.html && exec httpd -f -p 8080 -h /w"
    kube.core.create_namespaced_pod(namespace, _pod("server", image, serve, node=first))

    def server_ip() -> str | None:
        pod = kube.pod(namespace, "server") or {}
        status = pod.get("status", {})
        return status.get("podIP") if status.get("phase") == "Running" else None

    ip = wait_for("the server pod's IP", server_ip)
    # nc, not wget: busybox's static wget crashes without the NSS files an image lacks.
    get = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 8080"
    fetch = f'for i in $(seq 30); do r=$({get}) && [ -n "$r" ] && break; sleep 1; done'
    fetch += '; echo "$r" | tail -n 1; [ -n "$r" ]'
    client = _pod("client", image, fetch, node=second, restart="Never")
    kube.core.create_namespaced_pod(namespace, client)
    phase = wait_for(
        "the client done",
        lambda: (p := _phase(kube, namespace, "client")) in ("Succeeded", "Failed") and p,
    )
    assert phase == "Succeeded", _logs(kube, namespace, "client")
    assert _logs(kube, namespace, "client").strip() == "pong-server"


def _node_uid(kube: Kube, node: str) -> str | None:
    try:
        return str(kube.core.read_node(node).metadata.uid)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _owners(plugin: Plugin) -> set[str]:
    """The node uids the plugin's slices are owned by."""
    refs = [r for s in plugin.slices() for r in s["metadata"].get("ownerReferences") or []]
    return {r["uid"] for r in refs if r["kind"] == "Node" and r["name"] == plugin.node}


def test_a_removed_node_takes_its_slices_and_its_pods_claims_are_released(
    plugin: Plugin, real_cluster: LocalCluster, real_kube: Kube, real_namespace: str, test_id: str
) -> None:
    """The Node object deleted under a running claim pod: the garbage collector deletes the
    slices it owns and the plugin withdraws them, the pod garbage collector deletes the pod,
    the claim controller deletes its claim, and the node's kubelet unprepares it. The kubelet
    restarted registers the node again, and its slices come back owned by the new Node."""
    assert real_cluster.state is not None
    kube, namespace, node = real_kube, real_namespace, plugin.node
    image = real_cluster.state.images["busybox"]
    uid = _node_uid(kube, node)
    wait_for("the slices owned by the node", lambda: _owners(plugin) == {uid}, 60)
    _start_claim_pod(kube, namespace, image, test_id, "domain", "snn", "app")
    wait_for("the container's report", lambda: "ready" in _logs(kube, namespace, "app"), 120)
    claim_name = kube.pod_claim_name(namespace, "app", "snn") or ""
    claim = kube.get_ns(namespace, "resourceclaims", claim_name)
    assert claim is not None
    spec_file = plugin.cdi_dir / f"darwin.snn.io-{claim['metadata']['uid']}.json"
    assert spec_file.exists()

    kube.core.delete_node(node)
    try:
        wait_for("the node's slices gone", lambda: plugin.slices() == [], 120)
        wait_for("the pod collected", lambda: kube.pod(namespace, "app") is None, 240)
        wait_for(
            "the claim released and deleted",
            lambda: kube.get_ns(namespace, "resourceclaims", claim_name) is None,
            120,
        )
        wait_for("the claim unprepared on the node", lambda: not spec_file.exists(), 120)
        assert plugin.proc.poll() is None
    finally:
        # The kubelet registers its node again when it starts.
        real_cluster.restart(f"kubelet[{node}]")
        wait_for("the node registered again", lambda: _node_uid(kube, node), 120)
        wait_for("the node Ready again", lambda: _ready(kube, node), 180)
    new_uid = _node_uid(kube, node)
    assert new_uid != uid

    # The plugin writes its slices again one by one: the first owned by the new Node is not
    # yet all of them (a CI run read 1 of 3 just after the owners matched).
    def all_back() -> bool:
        return _owners(plugin) == {new_uid} and len(plugin.slices()) == 3

    wait_for("the 3 slices back, owned by the new Node", all_back, 120)


def test_a_crashed_cluster_leaves_nothing_after_the_next_clean_up(
    real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every process of a one-node cluster killed with SIGKILL while a pod runs (shims and
    containers stay behind, with the bridge, the cgroups, the node directories); what the next
    `cluster up` runs first removes all of it, and leaves the running session cluster alone."""
    from darwin_dra.cluster import build, launcher, nodehost, realnode
    from kubernetes import client, config

    directory = Path(tempfile.mkdtemp(prefix="dra-crash-"))
    crashed = launcher.LocalCluster(
        launcher.ClusterConfig(directory, nodes=1), build.ensure_binaries()
    )
    state = crashed.up()
    try:
        api = config.new_client_from_config(config_file=str(crashed.kubeconfig))
        try:
            core = client.CoreV1Api(api)
            sleeper = _pod("sleeper", state.images["busybox"], PROBE)
            core.create_namespaced_pod("default", sleeper)

            def running() -> bool:
                pod = core.read_namespaced_pod("sleeper", "default")
                return pod.status.phase == "Running"

            wait_for("the pod running", running, timeout=60)
        finally:
            api.close()
        for proc in crashed.processes:
            os.kill(proc.pid, signal.SIGKILL)
        for proc in crashed.processes:
            assert proc.popen is not None
            proc.popen.wait(timeout=10)  # what init does for the children of a crashed `up`
        tag = state.tag
        cgroups = Path("/sys/fs/cgroup/memory") / realnode.cgroup_root(tag, 0).lstrip("/")
        assert cgroups.exists()
        assert (directory / "nodes").exists()

        cleaned = nodehost.clean_stale(launcher.running_directories())

        assert str(directory) in cleaned
        assert real_cluster.state is not None
        assert real_cluster.dir.as_posix() not in cleaned
        assert not cgroups.exists()
        assert not (directory / "nodes").exists()
        links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        assert realnode.bridge_name(tag) not in links
        assert realnode.bridge_name(real_cluster.state.tag) in links
        mine = [
            p for p in Path("/proc").iterdir()
            if p.name.isdigit() and str(directory).encode() in _cmdline(p)
        ]  # fmt: skip
        assert mine == []
    finally:
        crashed.down()  # a no-op once the clean-up above worked; else it stops the rest
    shutil.rmtree(directory, ignore_errors=True)


def _cmdline(proc: Path) -> bytes:
    try:
        return proc.joinpath("cmdline").read_bytes()
    except OSError:
        return b""


def _device_taints(plugin: Plugin) -> dict[str, list[dict[str, Any]]]:
    return device_taints(plugin.slices())


def _link_inside(chip: int, domain: int) -> list[str]:
    """`darwin-dra fault` arguments of a link between two tiles of the domain, on a row no
    route from the controller takes: a fault of that link fails the domain's partitions only."""
    profile = load_profiles()["darwin3"]
    x0 = (domain % profile.domains_x) * profile.domain_w
    y0 = (domain // profile.domains_x) * profile.domain_h
    x, y = x0 + 1, y0 + 1
    assert y != profile.controller_y
    link = (y * profile.mesh_w + x) * 4 + int(Direction.EAST)
    return ["--chip", str(chip), "--link", str(link)]


def _partitions_over(chip: int, domain: int) -> set[str]:
    profile = load_profiles()["darwin3"]
    entry = ChipEntry(model="darwin3", serial="x", fabric="f")
    view = ChipView.nominal(chip, entry, profile)
    return {p.name for p in partitions(view) if domain in p.domains}


@pytest.mark.parametrize("fault", ["domain", "link", "reset"])
def test_a_failed_domain_or_link_moves_a_deployments_pod_to_healthy_hardware_until_cleared(
    plugin: Plugin,
    real_cluster: LocalCluster,
    real_kube: Kube,
    real_namespace: str,
    test_id: str,
    fault: str,
) -> None:
    """A domain, or a link inside it, fails under a Deployment's running pod: every partition
    over it (the domain, its quad, half, shared half and the chip) and no other is tainted
    NoExecute, the real kube-controller-manager evicts the pod, the Deployment's next pod gets
    a new claim that the real scheduler allocates on a healthy domain (never one that is
    tainted), it runs; clearing the fault takes the taints away. ``reset``: the chip host
    (the device process) is killed and started again, a chip reset: the partition under the
    pod is tainted `reset` NoExecute, the pod evicted, the Deployment's next pod placed and
    running; the taint goes once the kubelet has unprepared the lost claim."""
    assert real_cluster.state is not None
    kube, namespace = real_kube, real_namespace
    image = real_cluster.state.images["busybox"]
    cls = f"darwin-domain-{test_id}"
    kube.create(
        "deviceclasses",
        device_class(cls, DRIVER_NAME, f'device.attributes["{DRIVER_NAME}"].partition == "domain"'),
    )
    template = {"name": "snn", "exactly": {"deviceClassName": cls}}
    kube.create_ns(namespace, "resourceclaimtemplates", claim_template("domain", [template]))
    pod = _pod("worker", image, PROBE, node=plugin.node, claim="domain")
    labels = {"app": f"worker-{test_id}"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "worker"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod["spec"]},
        },
    }
    apps = client.AppsV1Api(kube.api)
    apps.create_namespaced_deployment(namespace, deployment)
    selector = f"app={labels['app']}"

    def running_pod() -> tuple[str, str] | None:
        """(pod, device) of the Deployment's one pod that has printed `ready`, if any."""
        for p in kube.core.list_namespaced_pod(namespace, label_selector=selector).items:
            name = p.metadata.name
            if p.metadata.deletion_timestamp is None and "ready" in _logs(kube, namespace, name):
                claim_name = kube.pod_claim_name(namespace, name, "snn")
                if claim_name is not None:
                    obj = kube.get_ns(namespace, "resourceclaims", claim_name)
                    [alloc] = allocated_devices(obj)
                    return name, str(alloc["device"])
        return None

    first, device = wait_for("the Deployment's pod running", running_pod, timeout=180)
    # chip-<c>-domain-<d>
    _, chip, _, domain = device.split("-")
    args = ["--chip", chip, "--domain", domain]
    if fault == "link":
        args = _link_inside(int(chip), int(domain))
    try:
        if fault == "reset":
            plugin.chips.kill()
            plugin.chips.wait(timeout=10)
            plugin.start_chips()
            # the taint lives until the kubelet unprepares the evicted pod's claim: poll fast
            taints = wait_for(
                "the reset taint on the pod's partition",
                lambda: (t := _device_taints(plugin)).get(device) and t,
                timeout=60,
                every=0.02,
            )
            assert [(x["key"], x["value"], x["effect"]) for x in taints[device]] == [
                ("darwin.snn.io/unhealthy", "reset", "NoExecute")
            ], taints
        else:
            plugin.fault("inject", *args)
            taints = wait_for(
                f"NoExecute on the partitions over the failed {fault}",
                lambda: (t := _device_taints(plugin)).get(device) and t,
                timeout=60,
            )
            assert set(taints) == _partitions_over(int(chip), int(domain)), sorted(taints)
            assert all(t[0]["effect"] == "NoExecute" for t in taints.values()), taints

        def replaced() -> tuple[str, str] | None:
            now = running_pod()
            return now if now is not None and now[0] != first else None

        _, new_device = wait_for("a new pod running elsewhere", replaced, timeout=240)
        if fault != "reset":  # after a reset the same partition is healthy again once free
            assert new_device != device
        assert new_device not in _device_taints(plugin), (new_device, _device_taints(plugin))
        assert kube.pod(namespace, first) is None or kube.pod(namespace, first)["metadata"].get(
            "deletionTimestamp"
        )
    finally:
        if fault != "reset":
            plugin.fault("clear", "--all", "--chip", chip)
    wait_for("the taints cleared", lambda: _device_taints(plugin) == {}, timeout=60)
    apps.delete_namespaced_deployment("worker", namespace)
