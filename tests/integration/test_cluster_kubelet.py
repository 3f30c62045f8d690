"""The kubelet side: the harness (real kubelet plugin manager and DRA manager) registers a DRA
plugin from the node's plugins_registry and calls NodePrepareResources / NodeUnprepareResources
exactly as a kubelet would, for a pod the real scheduler placed on that node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dra_wire
import pytest
from darwin_dra.cluster.launcher import LocalCluster
from dra_test_plugin import MinimalDRAPlugin
from k8s_helpers import (
    Kube,
    allocated_devices,
    claim_template,
    device_class,
    exact_request,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def plugin(cluster: LocalCluster, driver: str) -> Iterator[MinimalDRAPlugin]:
    assert cluster.state is not None
    node = cluster.state.nodes[0]

    def devices(claim: dra_wire.Claim) -> list[dra_wire.Device]:
        return [dra_wire.Device(["chip"], node.name, "chip-0", [f"{driver}/chip=chip-0"])]

    started = MinimalDRAPlugin(
        driver, Path(node.plugins_registry), Path(node.plugins), devices
    ).start()
    try:
        yield started
    finally:
        started.stop()


def _running_pod(kube: Kube, plugin: MinimalDRAPlugin, namespace: str, node: str) -> None:
    """One device on `node`, a class, a template and a pod using it, prepared and Running."""
    assert plugin.calls.wait(lambda: bool(plugin.calls.registered), 30), "plugin never registered"
    assert plugin.calls.registered[-1] == (True, ""), plugin.calls.registered
    driver = plugin.driver
    kube.create(
        "resourceslices",
        {
            "kind": "ResourceSlice",
            "metadata": {"name": f"{driver}-{node}"},
            "spec": {
                "driver": driver,
                "nodeName": node,
                "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                "devices": [{"name": "chip-0", "attributes": {"model": {"string": "darwin3"}}}],
            },
        },
    )
    kube.create("deviceclasses", device_class(driver, driver))
    kube.create_ns(
        namespace, "resourceclaimtemplates", claim_template("chip", [exact_request("chip", driver)])
    )
    kube.create_pod(namespace, "app", {"chip": {"resourceClaimTemplateName": "chip"}})

    def running() -> bool:
        pod = kube.pod(namespace, "app") or {}
        return pod.get("status", {}).get("phase") == "Running"

    wait_for("pod Running after NodePrepareResources", running)


def test_harness_prepares_and_unprepares_claims_through_the_plugin(
    kube: Kube, plugin: MinimalDRAPlugin, namespace: str, nodes: list[str]
) -> None:
    _running_pod(kube, plugin, namespace, nodes[0])
    claim_name = kube.pod_claim_name(namespace, "app", "chip")
    assert claim_name is not None
    claim = kube.get_ns(namespace, "resourceclaims", claim_name)
    assert claim is not None
    assert [d["device"] for d in allocated_devices(claim)] == ["chip-0"]
    expected = dra_wire.Claim(namespace, claim["metadata"]["uid"], claim_name)
    assert plugin.calls.prepared == [expected]
    assert plugin.calls.unprepared == []

    kube.core.delete_namespaced_pod("app", namespace)
    assert plugin.calls.wait(lambda: expected in plugin.calls.unprepared, 60), (
        "NodeUnprepareResources not called after the pod was deleted"
    )
    wait_for("pod removed by the harness", lambda: kube.pod(namespace, "app") is None)
    wait_for(
        "generated claim deleted",
        lambda: kube.get_ns(namespace, "resourceclaims", claim_name) is None,
    )
    assert plugin.calls.prepared == [expected], "prepared more than once"


def test_device_health_from_the_plugin_reaches_the_pod_status(
    kube: Kube, plugin: MinimalDRAPlugin, namespace: str, nodes: list[str]
) -> None:
    """ResourceHealthStatus: the kubelet's DRA manager reads the plugin's health stream and the
    pod's containers report the health of the devices they use."""
    _running_pod(kube, plugin, namespace, nodes[0])

    def health() -> list[dict[str, Any]] | None:
        pod = kube.pod(namespace, "app") or {}
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        found: list[dict[str, Any]] | None = statuses[0].get("allocatedResourcesStatus")
        return found

    resource_id = f"{plugin.driver}/chip=chip-0"  # the first CDI id names the device
    for state, word in ((dra_wire.HEALTHY, "Healthy"), (dra_wire.UNHEALTHY, "Unhealthy")):
        report = dra_wire.DeviceHealth(nodes[0], "chip-0", state, int(time.time()), message=word)
        plugin.report_health([report])
        expected = [
            {"name": "claim:chip", "resources": [{"resourceID": resource_id, "health": word}]}
        ]

        def matches(want: list[dict[str, Any]] = expected) -> bool:
            got = health() or []
            # The health message appears only with the alpha ResourceHealthStatusMessage gate.
            for status in got:
                for res in status.get("resources", []):
                    res.pop("message", None)
            return got == want

        wait_for(f"allocatedResourcesStatus {word}", matches, timeout=30)
