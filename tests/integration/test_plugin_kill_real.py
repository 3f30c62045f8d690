"""kill -9 of the kubelet plugin in its pod under the real kubelet, at every step of prepare and
of unprepare (plugin/crashpoints.py), on the chart's release.

For each step the test arms the plugin's crash points file through node 0's hostPath and sets
the kubelet to work: a new workload pod with a claim (a prepare step) or the deletion of a
running one (an unprepare step). The plugin stops at that step; the test kills its process with
SIGKILL from the host (`kill -9` of the container's init), the real kubelet restarts the
container, and the kubelet's retry reaches the new instance. Afterwards the pod runs
(or is gone and its claim released) and the node holds exactly what its checkpoint says: the
chip host's partitions are those of the checkpoint's prepared claims, none twice, the CDI specs
and spike socket directories those of the same claims, nothing started but not completed. A
neighbour pod with a claim of its own runs through all of it in the same container."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chart_release
import pytest
from chart_release import Release
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.cluster import launcher, realnode
from darwin_dra.demo import manifests
from darwin_dra.plugin import crashpoints
from darwin_dra.plugin.cdi import SPEC_PREFIX
from darwin_dra.plugin.checkpoint import CheckpointStore, Phase
from darwin_dra.runtime.stage import save_stage
from k8s_helpers import Kube, wait_for
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.integration

STATE_DIR = "/var/lib/darwin-dra"  # the chart's kubeletPlugin.stateDir (its default)
CRASH_FILE = f"{STATE_DIR}/crash-point"
WORKLOAD = "env | grep ^DARWIN_ | sort; exec sleep 3600"
# The kubelet restarts a crashed container within 5 s here (realnode.py), backs a pod off
# about 10 s after a failed prepare, and the machine is loaded: generous waits.
SETTLE_S = 240.0


@pytest.fixture(scope="module")
def release(
    real_cluster: launcher.LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    extra = {"kubeletPlugin": {"crashPointsFile": CRASH_FILE}}
    yield from chart_release.install(real_cluster, tmp_path_factory, extra)


@dataclass
class NodeView:
    """Node 0 as the plugin leaves it on the host: state directory, CDI directory, chip host."""

    name: str
    state: Path
    cdi: Path

    def recorded(self) -> set[str]:
        """The claims in the plugin's checkpoint (read as the plugin reads it)."""
        return set(CheckpointStore(self.state / "checkpoint.json").load().claims)

    def held(self) -> dict[str, list[int]]:
        """Claim UID -> its partitions, after checking the node holds nothing else."""
        cp = CheckpointStore(self.state / "checkpoint.json").load()
        started = [u for u, r in cp.claims.items() if r.phase is not Phase.PREPARE_COMPLETED]
        assert started == [], f"claims started but not completed: {started}"
        claims = {u: [d.partition_id for d in r.devices] for u, r in cp.claims.items()}
        listed = [p for parts in claims.values() for p in parts]
        assert len(listed) == len(set(listed)), f"a partition granted twice: {claims}"
        with ChipHostClient(self.state / "chip-host.sock") as chip:
            on_chips = sorted(p.id for p in chip.partitions())
        assert on_chips == sorted(listed), f"chip host {on_chips}, checkpoint {claims}"
        specs = sorted(p.name for p in self.cdi.glob(f"{SPEC_PREFIX}*.json"))
        assert specs == sorted(f"{SPEC_PREFIX}{u}.json" for u in claims), (specs, claims)
        socket_root = self.state / "partitions"
        dirs = [d.name for d in socket_root.iterdir()] if socket_root.exists() else []
        strays = [d for d in dirs if not any(d.startswith(u) for u in claims)]
        assert strays == [], f"spike socket directories of no claim: {strays}"
        return claims


def _node(cluster: launcher.LocalCluster) -> NodeView:
    assert cluster.state is not None
    name = cluster.state.nodes[0].name
    layout = realnode.NodeLayout(cluster.dir / "nodes" / name)
    return NodeView(name, layout.bound(STATE_DIR), layout.cdi_dir)


def _pod(name: str, node: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", WORKLOAD],
                    "resources": {"claims": [{"name": "snn"}]},
                }
            ],
            "resourceClaims": [{"name": "snn", "resourceClaimTemplateName": "domain"}],
        },
    }


def _running(kube: Kube, ns: str, name: str) -> dict[str, Any] | None:
    pod = kube.pod(ns, name)
    return pod if pod and pod.get("status", {}).get("phase") == "Running" else None


def _env_logged(kube: Kube, ns: str, name: str) -> str | None:
    """The workload's log once its DARWIN_ environment is in it."""
    logs = kube.core.read_namespaced_pod_log(name, ns) or ""
    return logs if any(line.startswith("DARWIN_PARTITION=") for line in logs.splitlines()) else None


def _claim_uid(kube: Kube, ns: str, pod: dict[str, Any]) -> str:
    [status] = pod["status"]["resourceClaimStatuses"]
    claim = kube.custom.get_namespaced_custom_object(
        "resource.k8s.io", "v1", ns, "resourceclaims", status["resourceClaimName"]
    )
    return str(claim["metadata"]["uid"])


def _container(pod: dict[str, Any]) -> tuple[str, int]:
    [status] = pod["status"]["containerStatuses"]
    return str(status.get("containerID")), int(status["restartCount"])


def _plugins(kube: Kube, release: Release, node: str | None = None) -> list[Any]:
    return list(
        kube.core.list_namespaced_pod(
            release.namespace,
            label_selector="app.kubernetes.io/component=kubelet-plugin",
            field_selector=f"spec.nodeName={node}" if node else "",
        ).items
    )


def _plugin_restarts(kube: Kube, release: Release, node: str) -> int:
    pods = _plugins(kube, release, node)
    return sum(c.restart_count for p in pods for c in (p.status.container_statuses or []))


def _domain_template(kube: Kube, ns: str) -> None:
    """The claim template of every pod here, once the controller's DeviceClasses exist."""
    wait_for(
        "the controller's DeviceClasses",
        lambda: any(
            c["metadata"]["name"] == "darwin-domain.snn.io"
            for c in kube.custom.list_cluster_custom_object(
                "resource.k8s.io", "v1", "deviceclasses"
            )["items"]
        ),
        timeout=120,
    )
    request = {"name": "snn", "exactly": {"deviceClassName": "darwin-domain.snn.io"}}
    kube.create_ns(ns, "resourceclaimtemplates", {
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "domain"},
        "spec": {"spec": {"devices": {"requests": [request]}}},
    })  # fmt: skip


def _plugin_pid(node: str) -> int | None:
    """The host pid of node's plugin process (its container's init), found in /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:3] == [b"/opt/darwin-dra/bin/darwin-dra", b"kubelet-plugin"] and (
            f"NODE_NAME={node}".encode() in environ
        ):
            return int(entry.name)
    return None


def _kill_at(kube: Kube, release: Release, view: NodeView, point: str, before: int) -> float:
    """Wait for the plugin to hold at ``point``, SIGKILL it from the host, and wait for the
    kubelet to have restarted its container; returns the time of the kill."""
    reached = view.state / "crash-point.reached"
    wait_for(f"the plugin at {point}", reached.exists, timeout=SETTLE_S)
    assert reached.read_text().strip() == point
    pid = _plugin_pid(view.name)
    assert pid is not None, f"no plugin process of {view.name} found in /proc"
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    reached.unlink()
    wait_for(
        f"the plugin killed at {point} and its container restarted by the kubelet",
        lambda: _plugin_restarts(kube, release, view.name) > before,
        timeout=SETTLE_S,
    )
    return killed


def _registered_again(kube: Kube, release: Release, node: str) -> None:
    """Wait for the restarted plugin container to be registered with the kubelet again."""

    def registered() -> bool:
        for p in _plugins(kube, release, node):
            try:
                logs = kube.core.read_namespaced_pod_log(
                    p.metadata.name, release.namespace, container="plugin"
                )
            except ApiException as exc:
                if exc.status == 400:  # the new container not started yet
                    continue
                raise
            if "registered with the kubelet" in (logs or ""):
                return True
        return False

    wait_for(f"the restarted plugin of {node} registered with the kubelet", registered, SETTLE_S)


def _nudge(kube: Kube, ns: str, name: str, step: int) -> None:
    """Have the kubelet sync pod ``name`` now: a change of its labels reaches the kubelet as a
    pod update, and an update wakes a pod worker waiting out its back-off after a failed
    NodePrepareResources (or NodeUnprepareResources), so its retry comes at once instead of
    10 to 15 s after each failure (kubelet pod_workers: backOffPeriod). The retry is still the
    kubelet's own, of the same claim, to the new plugin instance."""
    try:
        kube.core.patch_namespaced_pod(
            name, ns, {"metadata": {"labels": {"darwin.snn.io/retry": str(step)}}}
        )
    except ApiException as exc:
        if exc.status != 404:  # an unprepared pod may be gone already
            raise


def test_a_kill_9_of_the_plugin_pod_at_every_step_loses_nothing(
    release: Release, real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    state = real_cluster.state
    assert state is not None
    kube, ns, view = real_kube, real_namespace, _node(real_cluster)
    image = state.images["busybox"]
    _domain_template(kube, ns)
    kube.core.create_namespaced_pod(ns, _pod("neighbour", view.name, image))
    neighbour = wait_for("the neighbour running", lambda: _running(kube, ns, "neighbour"), 180)
    neighbour_uid, neighbour_container = _claim_uid(kube, ns, neighbour), _container(neighbour)
    assert neighbour_uid in view.held()
    armed = view.state / "crash-point"
    survived: list[str] = []
    for i, point in enumerate(crashpoints.POINTS):
        started = time.monotonic()
        name = f"k{i}"
        before = _plugin_restarts(kube, release, view.name)
        killed = None
        if point in crashpoints.PREPARE:
            armed.write_text(point)
            kube.core.create_namespaced_pod(ns, _pod(name, view.name, image))
            killed = _kill_at(kube, release, view, point, before)
            _registered_again(kube, release, view.name)
            _nudge(kube, ns, name, i)
        else:
            kube.core.create_namespaced_pod(ns, _pod(name, view.name, image))
            wait_for(f"{name} running", lambda n=name: _running(kube, ns, n), SETTLE_S)
        pod = wait_for(f"{name} running after {point}", lambda n=name: _running(kube, ns, n),
                       SETTLE_S)  # fmt: skip
        running = time.monotonic()
        uid = _claim_uid(kube, ns, pod)
        held = view.held()
        assert len(held[uid]) == 1, (point, held)  # prepared exactly once
        # Running comes before the container's first write reaches its log: wait for the line.
        logs = wait_for(f"{name}'s environment in its log",
                        lambda n=name: _env_logged(kube, ns, n), 60)  # fmt: skip
        assert f"DARWIN_PARTITION={held[uid][0]}" in logs.splitlines(), (point, logs)
        if point in crashpoints.UNPREPARE:
            armed.write_text(point)
        kube.core.delete_namespaced_pod(name, ns)
        if point in crashpoints.UNPREPARE:
            killed = _kill_at(kube, release, view, point, before)
            _registered_again(kube, release, view.name)
            _nudge(kube, ns, name, i)
        wait_for(f"{name} gone and its claim released after {point}",
                 lambda n=name, u=uid: kube.pod(ns, n) is None and u not in view.recorded(),
                 SETTLE_S)  # fmt: skip
        assert set(view.held()) == {neighbour_uid}, point
        now = _running(kube, ns, "neighbour")
        assert now is not None, f"the neighbour stopped after {point}"
        assert _container(now) == neighbour_container, point
        # the step's time, and how long after the kill its pod ran (prepare) or was gone
        after = (running if point in crashpoints.PREPARE else time.monotonic()) - (killed or 0)
        survived.append(f"{point} {time.monotonic() - started:.0f}s ({after:.0f}s after the kill)")
    print(f"\nkill -9 in the pod under the real kubelet: {len(survived)} of "
          f"{len(crashpoints.POINTS)} steps recovered: {', '.join(survived)}")  # fmt: skip
    assert len(survived) == len(crashpoints.POINTS)


# The streaming workload: `darwin-dra run` of the demo's network again and again on its
# partition, each run's JSON report on a line with its end time (the host's clock).
RUN_STEPS = 5000
STREAM = (
    "trap 'exit 0' TERM; while :; do "
    f"if out=$(darwin-dra run --network {manifests.NETWORK_PATH} --steps {RUN_STEPS} "
    '--window 500 --json); then echo "run $(date +%s.%N) $out"; '
    'else echo "run-failed $(date +%s.%N)"; fi; done'
)


@dataclass(frozen=True)
class Run:
    start: float
    end: float
    spikes: int
    dropped: int


def _runs(logs: str) -> list[Run]:
    out = []
    for line in logs.splitlines():
        assert not line.startswith("run-failed"), f"a run of the workload failed: {line}"
        if line.startswith("run "):
            _, end, report = line.split(" ", 2)
            r = json.loads(report)
            out.append(Run(float(end) - r["wall_s"], float(end), r["spikes"], r["dropped"]))
    return out


def test_a_rolling_update_of_the_plugin_loses_no_spike_of_a_streaming_workload(
    release: Release, real_cluster: launcher.LocalCluster, real_kube: Kube, real_namespace: str
) -> None:
    """The chip host keeps the engine: while `helm upgrade` rolls the plugin DaemonSet, a
    workload stepping its partition through the spike port neither fails a call nor loses a
    spike (every run's spike count equals the first run's, the network being deterministic)
    nor sees a drop in the chip host's counters (queue, fault, budget, input)."""
    state = real_cluster.state
    assert state is not None
    kube, ns, view = real_kube, real_namespace, _node(real_cluster)
    npz = Path(tempfile.mkdtemp()) / manifests.NETWORK_KEY
    save_stage(npz, manifests.network())
    kube.core.create_namespaced_config_map(ns, manifests.networks_configmap(npz.read_bytes()))
    _domain_template(kube, ns)
    pod = _pod("streamer", view.name, release.image)
    pod["spec"]["containers"][0]["command"] = ["/bin/sh", "-c", STREAM]
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "networks", "mountPath": "/networks", "readOnly": True}
    ]
    pod["spec"]["volumes"] = [{"name": "networks", "configMap": {"name": "networks"}}]
    kube.core.create_namespaced_pod(ns, pod)

    def runs() -> list[Run]:
        try:  # an empty log reads as None; a container not started yet is refused
            return _runs(kube.core.read_namespaced_pod_log("streamer", ns) or "")
        except ApiException as exc:
            if exc.status == 400:
                return []
            raise

    wait_for("two runs before the update", lambda: len(runs()) >= 2, SETTLE_S)
    old = {p.metadata.uid for p in _plugins(kube, release)}
    begun = time.time()
    release.helm("upgrade", release.name, str(chart_release.CHART), "-f", str(release.values),
                 "--set", "logLevel=DEBUG")  # fmt: skip

    def rolled() -> bool:
        pods = _plugins(kube, release)
        return (
            len(pods) == len(state.nodes)
            and not {p.metadata.uid for p in pods} & old
            and all(
                p.status.phase == "Running"
                and p.metadata.deletion_timestamp is None
                and all(c.ready for c in p.status.container_statuses or [])
                for p in pods
            )
        )

    wait_for("the plugin DaemonSet rolled", rolled, SETTLE_S)
    ended = time.time()
    wait_for("two runs after the update", lambda: sum(r.start > ended for r in runs()) >= 2,
             SETTLE_S)  # fmt: skip
    done = runs()
    during = [r for r in done if r.end > begun and r.start < ended]
    reference = done[0].spikes
    lost = sum(abs(r.spikes - reference) for r in done)
    dropped = sum(r.dropped for r in done)
    now = kube.pod(ns, "streamer")
    assert now is not None
    print(f"\nrolling update of the plugin under a streaming workload: rolled in "
          f"{ended - begun:.1f}s; {len(done)} runs of {RUN_STEPS} steps ({reference} spikes "
          f"each), {len(during)} overlapping the update ({sum(r.spikes for r in during)} spikes); "
          f"spikes lost {lost}, dropped by the chip host {dropped}, failed runs 0")  # fmt: skip
    assert during, "no run overlapped the rolling update"
    assert lost == 0, [r.spikes for r in done]
    assert dropped == 0
    assert _container(now)[1] == 0  # the workload's container never restarted
