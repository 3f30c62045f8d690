"""The chart installed for real: `helm install` from deploy/helm on the real nodes, the plugin
DaemonSet and the controller Deployment running as pods from the locally built image, with the
kubelet's directories as hostPaths; a workload pod gets its partition through them; a rolling
update of the DaemonSet (maxSurge 1) while claims are prepared loses no NodePrepareResources."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chart_release
import pytest
from chart_release import CHART, SPIKE_GROUP, Release
from darwin_dra.cluster import launcher
from k8s_helpers import Kube, wait_for
from kubernetes import client

pytestmark = pytest.mark.integration

PROBE = (
    "env | grep ^DARWIN_ | sort; s=${DARWIN_SPIKE_ENDPOINT#unix://}; "
    'if [ -S "$s" ]; then echo spike-socket=present; else echo spike-socket=missing; fi'
)

# Run in the driver's image by a non-root workload: connect to the partition's spike socket.
CONNECT = (
    "import os, socket; s = socket.socket(socket.AF_UNIX); "
    "path = os.environ['DARWIN_SPIKE_ENDPOINT'].removeprefix('unix://')\n"
    "try:\n    s.connect(path); print('spike-socket=connected', os.getuid(), os.getgroups())\n"
    "except PermissionError as e:\n    print('spike-socket=refused', os.getuid(), e)"
)


@pytest.fixture(scope="module")
def release(
    real_cluster: launcher.LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    yield from chart_release.install(real_cluster, tmp_path_factory)


def _pods(kube: Kube, namespace: str, component: str) -> list[client.V1Pod]:
    selector = f"app.kubernetes.io/component={component}"
    return list(kube.core.list_namespaced_pod(namespace, label_selector=selector).items)


def _workload(name: str, image: str, template: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", PROBE],
                    "resources": {"claims": [{"name": "snn"}]},
                }
            ],
            "resourceClaims": [{"name": "snn", "resourceClaimTemplateName": template}],
        },
    }


def _template(kube: Kube, namespace: str, name: str, device_class: str) -> None:
    request = {"name": "snn", "exactly": {"deviceClassName": device_class}}
    kube.create_ns(
        namespace,
        "resourceclaimtemplates",
        {
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": name},
            "spec": {"spec": {"devices": {"requests": [request]}}},
        },
    )


def _phase(kube: Kube, namespace: str, pod: str) -> str:
    obj = kube.pod(namespace, pod) or {}
    return str(obj.get("status", {}).get("phase", ""))


def _failed_prepares(kube: Kube, namespace: str) -> list[str]:
    events = kube.core.list_namespaced_event(namespace).items
    return [
        f"{e.involved_object.name}: {e.reason}: {e.message}"
        for e in events
        if e.reason in ("FailedPrepareDynamicResources", "FailedUnprepareDynamicResources")
    ]


def test_the_chart_runs_the_driver_as_pods_and_a_workload_gets_its_partition(
    release: Release, real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    state = real_cluster.state
    assert state is not None
    kube = real_kube
    plugins = _pods(kube, release.namespace, "kubelet-plugin")
    assert sorted(p.spec.node_name for p in plugins) == [n.name for n in state.nodes]
    assert all(p.status.phase == "Running" for p in plugins)
    [controller] = _pods(kube, release.namespace, "controller")
    assert controller.status.phase == "Running"
    wait_for(
        "slices of both nodes",
        lambda: (
            {
                s["spec"].get("nodeName")
                for s in kube.custom.list_cluster_custom_object(
                    "resource.k8s.io", "v1", "resourceslices"
                )["items"]
            }
            >= {n.name for n in state.nodes}
        ),
        timeout=60,
    )

    def classes() -> bool:
        names = kube.custom.list_cluster_custom_object("resource.k8s.io", "v1", "deviceclasses")
        return "darwin-domain.snn.io" in {c["metadata"]["name"] for c in names["items"]}

    wait_for("the controller's DeviceClasses", classes)
    _template(kube, real_namespace, "domain", "darwin-domain.snn.io")
    kube.core.create_namespaced_pod(
        real_namespace, _workload("app", state.images["busybox"], "domain")
    )
    done = ("Succeeded", "Failed")
    wait_for("the workload done", lambda: _phase(kube, real_namespace, "app") in done, timeout=90)
    logs = kube.core.read_namespaced_pod_log("app", real_namespace)
    assert _phase(kube, real_namespace, "app") == "Succeeded", logs
    assert "DARWIN_SPIKE_ENDPOINT=unix:///var/run/darwin/partitions/" in logs
    assert "spike-socket=present" in logs
    assert _failed_prepares(kube, real_namespace) == []


def _driver_processes() -> dict[str, list[int]]:
    """The host pids of the chart's containers, by subcommand (the image's entry point)."""
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[1] == b"/opt/darwin-dra/bin/darwin-dra":
            found.setdefault(argv[2].decode(), []).append(int(entry.name))
    return found


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _root_read_only(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return "ro" in fields[5].split(",")
    return False


def test_the_driver_runs_with_least_privilege_and_a_non_root_workload_needs_the_group(
    release: Release, real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    """Seen from the host, as the kernel runs them: every container of the chart has a
    read-only root, no capabilities and no way to gain privileges, and the controller is not
    root. A workload running as uid 1000 reaches its partition's spike socket only as a member
    of the chart's spike socket group."""
    state = real_cluster.state
    assert state is not None
    procs = wait_for(
        "the chart's processes",
        lambda: (
            (p := _driver_processes()).keys() >= {"controller", "chip-host", "kubelet-plugin"} and p
        ),
    )
    for command, pids in procs.items():
        for pid in pids:
            status = _status(pid)
            assert status["CapEff"] == "0000000000000000", (command, status["CapEff"])
            assert status["NoNewPrivs"] == "1", command
            assert _root_read_only(pid), f"{command}'s root file system is writable"
            uid = status["Uid"].split()[0]
            assert uid == ("65532" if command == "controller" else "0"), (command, uid)
        if command == "chip-host":
            assert all(str(SPIKE_GROUP) in _status(p)["Groups"].split() for p in pids)

    image = release.image
    _template(real_kube, real_namespace, "domain-nr", "darwin-domain.snn.io")
    for name, groups in (("member", [SPIKE_GROUP]), ("stranger", [])):
        pod = _workload(name, image, "domain-nr")
        pod["spec"]["securityContext"] = {
            "runAsUser": 1000, "runAsGroup": 1000, "supplementalGroups": groups
        }  # fmt: skip
        pod["spec"]["containers"][0]["command"] = ["python3", "-c", CONNECT]
        real_kube.core.create_namespaced_pod(real_namespace, pod)
    done = ("Succeeded", "Failed")
    for name in ("member", "stranger"):
        wait_for(f"{name} done", lambda n=name: _phase(real_kube, real_namespace, n) in done, 120)
    member = real_kube.core.read_namespaced_pod_log("member", real_namespace)
    stranger = real_kube.core.read_namespaced_pod_log("stranger", real_namespace)
    assert "spike-socket=connected 1000" in member, member
    assert "spike-socket=refused 1000" in stranger, stranger
    assert "Permission denied" in stranger


def test_a_rolling_update_of_the_plugin_under_load_fails_no_prepare(
    release: Release, real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    state = real_cluster.state
    assert state is not None
    kube, ns = real_kube, real_namespace
    _template(kube, ns, "shared", "darwin-shared.snn.io")
    image = state.images["busybox"]
    old = {p.metadata.uid for p in _pods(kube, release.namespace, "kubelet-plugin")}

    started = time.monotonic()
    rel = release
    rel.helm("upgrade", rel.name, str(CHART), "-f", str(rel.values), "--set", "logLevel=DEBUG")
    created: list[str] = []
    rolled_at: float | None = None
    while time.monotonic() - started < 240:
        name = f"w{len(created)}"
        kube.core.create_namespaced_pod(ns, _workload(name, image, "shared"))
        created.append(name)
        time.sleep(1.0)
        pods = _pods(kube, release.namespace, "kubelet-plugin")
        uids = {p.metadata.uid for p in pods}
        ready = all(
            p.status.phase == "Running" and p.metadata.deletion_timestamp is None for p in pods
        )
        if rolled_at is None and not (uids & old) and len(pods) == len(state.nodes) and ready:
            rolled_at = time.monotonic() - started
        if rolled_at is not None and len(created) >= 10:
            break
    assert rolled_at is not None, "the DaemonSet did not finish rolling in 240s"

    def all_done() -> bool:
        return all(_phase(kube, ns, n) in ("Succeeded", "Failed") for n in created)

    wait_for("every workload done", all_done, timeout=180)
    phases = {n: _phase(kube, ns, n) for n in created}
    failed = _failed_prepares(kube, ns)
    print(f"\nrolling update: DaemonSet rolled in {rolled_at:.1f}s; {len(created)} workloads "
          f"created during and after it, {sum(p == 'Succeeded' for p in phases.values())} "
          f"succeeded; failed NodePrepareResources: {len(failed)}")  # fmt: skip
    assert failed == []
    assert set(phases.values()) == {"Succeeded"}, phases
