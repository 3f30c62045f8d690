"""The real `darwin-dra kubelet-plugin` process on a simulated node of the local cluster: it
publishes the node's slices to the real API server, the real scheduler allocates from them by
CEL, and the kubelet harness prepares and unprepares through the plugin's sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from darwin_dra import DRIVER_NAME
from darwin_dra.cluster.launcher import LocalCluster
from darwin_dra.runtime.client import SpikePortClient
from host_plugin import Plugin, running_plugin
from k8s_helpers import (
    Kube,
    allocated_devices,
    claim_template,
    device_class,
    device_taints,
    exact_request,
    wait_for,
)

from tests.chiphost.workload import Stepper
from tests.runtime.nets import relay

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plugin(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    assert cluster.state is not None
    with running_plugin(cluster, cluster.state.nodes[0], tmp_path_factory.mktemp("plugin")) as p:
        yield p


def _taints(plugin: Plugin) -> dict[str, list[dict[str, Any]]]:
    return device_taints(plugin.slices())


def test_plugin_publishes_slices_the_api_server_stores(plugin: Plugin) -> None:
    slices = sorted(plugin.slices(), key=lambda s: s["metadata"]["name"])
    names = [s["metadata"]["name"] for s in slices]
    assert names == [
        f"{plugin.node}-darwin-a-counters-00",
        f"{plugin.node}-darwin-b-devices-00",
        f"{plugin.node}-darwin-b-devices-01",
    ]
    pools = {(s["spec"]["pool"]["name"], s["spec"]["pool"]["resourceSliceCount"]) for s in slices}
    assert pools == {(plugin.node, 3)}
    assert len({s["spec"]["pool"]["generation"] for s in slices}) == 1
    counters = slices[0]["spec"]["sharedCounters"]
    assert [c["name"] for c in counters] == [
        "chip-0-top",
        "chip-0-bottom",
        "chip-1-top",
        "chip-1-bottom",
    ]
    devices = {d["name"]: d for d in slices[1]["spec"]["devices"]}
    assert len(devices) == 54  # 50 partitions and 4 routers (resources/routers.py)
    shared = devices["chip-0-shared-0"]
    assert shared["allowMultipleAllocations"] is True
    assert shared["capacity"]["keps"]["requestPolicy"]["validRange"]["step"] == "10"


def test_faults_taint_devices_and_clearing_them_removes_the_taint(plugin: Plugin) -> None:
    def fault(*args: str) -> None:
        plugin.fault(*args, "--chip", "1")

    fault("inject", "--core", "40")  # tile (17, 1): a core of domain 4, degraded
    taints = wait_for("NoSchedule taints", lambda: _taints(plugin) or None, timeout=20)
    assert set(taints) == {
        "chip-1-domain-4",
        "chip-1-quad-2",
        "chip-1-half-0",
        "chip-1",
        "chip-1-shared-0",
    }
    assert {t[0]["effect"] for t in taints.values()} == {"NoSchedule"}
    assert all(
        t[0]["key"] == "darwin.snn.io/unhealthy" and t[0].get("timeAdded") for t in taints.values()
    )

    fault("inject", "--whole-chip")
    wait_for(
        "NoExecute on every chip-1 device",
        lambda: len([n for n, t in _taints(plugin).items() if t[0]["effect"] == "NoExecute"]) == 54,
        timeout=20,
    )
    # A failed chip sorts last: its device slice is renamed to the lowest priority.
    fault("clear", "--all")
    wait_for("taints cleared", lambda: _taints(plugin) == {}, timeout=20)


def test_scheduler_allocates_by_cel_and_the_plugin_prepares_and_unprepares(
    plugin: Plugin, kube: Kube, namespace: str, test_id: str
) -> None:
    cls = f"darwin-domain-{test_id}"
    body = device_class(
        cls, DRIVER_NAME, f'device.attributes["{DRIVER_NAME}"].partition == "domain"'
    )
    params = {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "PartitionConfig", "timestepUs": 250}
    body["spec"]["config"] = [{"opaque": {"driver": DRIVER_NAME, "parameters": params}}]
    kube.create("deviceclasses", body)
    kube.create_ns(
        namespace, "resourceclaimtemplates", claim_template("snn", [exact_request("snn", cls)])
    )
    kube.core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "app"},
            "spec": {
                "nodeName": None,
                "nodeSelector": {"kubernetes.io/hostname": plugin.node},
                "terminationGracePeriodSeconds": 5,
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.invalid/x:1",
                        "resources": {"claims": [{"name": "snn"}]},
                    }
                ],
                "resourceClaims": [{"name": "snn", "resourceClaimTemplateName": "snn"}],
            },
        },
    )

    def running() -> bool:
        return (kube.pod(namespace, "app") or {}).get("status", {}).get("phase") == "Running"

    wait_for("pod Running after the plugin prepared its claim", running, timeout=60)
    name = kube.pod_claim_name(namespace, "app", "snn")
    assert name is not None
    claim = kube.get_ns(namespace, "resourceclaims", name)
    assert claim is not None
    [alloc] = allocated_devices(claim)
    assert alloc["driver"] == DRIVER_NAME
    assert alloc["pool"] == plugin.node
    assert alloc["device"].startswith("chip-0-domain-")  # first fit: healthiest chip, smallest

    def status_devices() -> list[dict[str, Any]] | None:
        obj = kube.get_ns(namespace, "resourceclaims", name) or {}
        return obj.get("status", {}).get("devices")

    [entry] = wait_for("status.devices written", status_devices, timeout=20)
    assert entry["device"] == alloc["device"]
    assert entry["data"]["cores"] in (15, 16)
    assert entry["data"]["config"]["timestepUs"] == 250  # the class config reached the node
    assert entry["conditions"][0]["type"] == "Ready"
    assert entry["conditions"][0]["status"] == "True"
    uid = claim["metadata"]["uid"]
    spec = plugin.cdi_dir / f"darwin.snn.io-{uid}.json"
    assert spec.exists()
    checkpoint = json.loads((plugin.state_dir / "checkpoint.json").read_text())
    assert checkpoint["claims"][uid]["phase"] == "PrepareCompleted"
    sock = _spike_socket(json.loads(spec.read_text()))
    assert asyncio.run(_relay_over(sock)) == [(4, 2)]  # the plugin serves the claim's port

    kube.core.delete_namespaced_pod("app", namespace)
    wait_for("CDI spec removed by unprepare", lambda: not spec.exists(), timeout=60)

    # the CDI spec goes first; the checkpoint entry, then the spike port follow in the same
    # unprepare call
    wait_for("the spike port closed", lambda: not sock.exists(), timeout=10)

    def forgotten() -> bool:
        claims = json.loads((plugin.state_dir / "checkpoint.json").read_text())["claims"]
        return uid not in claims

    wait_for("the claim dropped from the checkpoint", forgotten, timeout=10)


def _spike_socket(spec: dict[str, Any]) -> Path:
    """The host path behind the container's DARWIN_SPIKE_ENDPOINT."""
    [dev] = spec["devices"]
    env = dict(e.split("=", 1) for e in dev["containerEdits"]["env"])
    endpoint = Path(env["DARWIN_SPIKE_ENDPOINT"].removeprefix("unix://"))
    [mount] = dev["containerEdits"]["mounts"]
    assert mount["containerPath"] == str(endpoint.parent)
    return Path(mount["hostPath"]) / endpoint.name


async def _relay_over(sock: Path) -> list[tuple[int, int]]:
    async with SpikePortClient(sock) as port:
        # The class config's timestepUs (250) is enforced by the engine: a 0.1 ms network is
        # refused, a 0.25 ms one loads.
        with pytest.raises(grpc.aio.AioRpcError, match="timestepUs"):
            await port.load(relay(4, 2), export=range(4))
        await port.load(dataclasses.replace(relay(4, 2), dt_ms=0.25), export=range(4))
        out = await port.step(6, [2], [2])
        return list(zip(out.steps.tolist(), out.ids.tolist(), strict=True))


def test_metrics_count_what_happened(plugin: Plugin) -> None:
    """Prometheus scrapes the running plugin: publishes, prepares and faults are counted."""
    port = plugin.proc.args[plugin.proc.args.index("--metrics-port") + 1]  # type: ignore[union-attr]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['darwin_dra_slice_publish_total{result="changed"}'] >= 1
    assert samples["darwin_dra_resource_slices"] == 3
    assert samples["darwin_dra_pool_generation"] >= 1
    assert any(k.startswith("darwin_dra_prepare_claims_total") for k in samples)
    assert any(k.startswith("darwin_dra_rpc_duration_seconds_count") for k in samples)


def _domain_pod(kube: Kube, namespace: str, test_id: str, node: str) -> None:
    cls = f"darwin-domain-{test_id}"
    kube.create(
        "deviceclasses",
        device_class(cls, DRIVER_NAME, f'device.attributes["{DRIVER_NAME}"].partition == "domain"'),
    )
    kube.create_ns(
        namespace, "resourceclaimtemplates", claim_template("snn", [exact_request("snn", cls)])
    )
    kube.core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "work"},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": node},
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.invalid/x:1",
                        "resources": {"claims": [{"name": "snn"}]},
                    }
                ],
                "resourceClaims": [{"name": "snn", "resourceClaimTemplateName": "snn"}],
            },
        },
    )


def test_a_workload_outlives_a_plugin_kill_9_and_a_chip_reset_evicts_it(
    plugin: Plugin, kube: Kube, namespace: str, test_id: str
) -> None:
    _domain_pod(kube, namespace, test_id, plugin.node)

    def running() -> bool:
        return (kube.pod(namespace, "work") or {}).get("status", {}).get("phase") == "Running"

    wait_for("pod Running", running, timeout=60)
    name = kube.pod_claim_name(namespace, "work", "snn")
    assert name is not None
    claim = kube.get_ns(namespace, "resourceclaims", name)
    assert claim is not None
    uid = claim["metadata"]["uid"]
    [alloc] = allocated_devices(claim)
    spec = json.loads((plugin.cdi_dir / f"darwin.snn.io-{uid}.json").read_text())
    stepper = Stepper(_spike_socket(spec))
    stepper.start()
    try:
        wait_for("the workload stepping", lambda: stepper.calls >= 20 or stepper.errors, 30)
        # 1. the plugin dies hard and comes back: the workload never notices
        plugin.proc.kill()
        plugin.proc.wait(timeout=10)
        at_kill = stepper.calls
        plugin.start()
        wait_for("the restarted plugin's reconcile", lambda: "reconciled with checkpoint"
                 in plugin.log.read_text().split("kubelet plugin stopped")[-1], 30)  # fmt: skip
        wait_for("more steps after the restart", lambda: stepper.calls >= at_kill + 50, 30)
        assert stepper.errors == []
        assert stepper.lost_nothing()
        assert _taints(plugin) == {}
        # 2. the chip host dies: a chip reset. The stream breaks; the plugin taints the device
        plugin.chips.kill()
        plugin.chips.wait(timeout=10)
        stepper.join(timeout=30)
        assert stepper.errors
        plugin.start_chips()
        # The taint lives only until the kubelet unprepares the evicted pod's claim (0.37 s was
        # seen on a quiet machine): poll fast enough to see it.
        taint = wait_for(
            "the reset taint", lambda: _taints(plugin).get(alloc["device"]), 60, every=0.02
        )
        assert taint == [{**taint[0], "key": "darwin.snn.io/unhealthy", "value": "reset",
                          "effect": "NoExecute"}]  # fmt: skip
    finally:
        stepper.stop.set()
    # the real kube-controller-manager evicts the pod, the kubelet unprepares the lost claim
    wait_for("the pod evicted", lambda: kube.pod(namespace, "work") is None, timeout=90)

    def forgotten() -> bool:
        claims = json.loads((plugin.state_dir / "checkpoint.json").read_text())["claims"]
        return uid not in claims

    wait_for("the lost claim unprepared", forgotten, timeout=60)
    wait_for("the taint gone with it", lambda: _taints(plugin) == {}, timeout=30)
    assert plugin.proc.poll() is None
