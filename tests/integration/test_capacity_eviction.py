"""The capacity layout on the real control plane: two grants the real scheduler allocates on
one chip's device, `darwin-dra status` counting them, then a domain failed under one grant:
the builder's slices taint the device NoExecute and the real kube-controller-manager's device
taint eviction evicts the pods (simulated node: no lock needed)."""

from __future__ import annotations

import dataclasses

import k8s_helpers
import pytest
from darwin_dra import kubeapi
from darwin_dra.cluster import launcher
from darwin_dra.cluster.nodes import NodeAgent
from darwin_dra.fleet.layout import FleetShape, chip_views, fleet_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import DomainView, Health
from darwin_dra.resources.partitions import CAPACITY_PARTITIONS
from darwin_dra.resources.slices import SliceLayout, build_slices
from test_status_cli import status

pytestmark = pytest.mark.integration

LAYOUT = SliceLayout(partitions=CAPACITY_PARTITIONS)


def test_a_failed_domain_under_a_grant_evicts_its_pods(
    cluster: launcher.LocalCluster, kube: k8s_helpers.Kube, namespace: str, test_id: str
) -> None:
    node = f"cap-{test_id}"
    inv = fleet_inventory(FleetShape(nodes=1))
    views = chip_views(inv, load_profiles(), inv.nodes[0].name)
    api = kubeapi.connect_fleet(cluster.kubeconfig)
    agent = NodeAgent(api, "v1.37.2")
    agent.register(node, launcher.node_labels(node, 0))
    try:
        [first] = build_slices(node, views, layout=LAYOUT)
        kube.create("resourceslices", first)
        cls = f"cap-{test_id}.snn.io"
        only = 'device.attributes["darwin.snn.io"].partition == "capacity"'
        kube.create("deviceclasses", k8s_helpers.device_class(cls, "darwin.snn.io", only))
        grant = {"requests": {"domains": "2", "keps": "50000000"}}
        for name in ("a", "b"):
            req = k8s_helpers.exact_request("g", cls, capacity=grant)
            kube.create_ns(namespace, "resourceclaims", k8s_helpers.claim(name, [req]))
            kube.create_pod(namespace, f"p{name}", {"g": {"resourceClaimName": name}})
        for name in ("a", "b"):
            got = k8s_helpers.wait_for(
                f"claim {name}'s allocation",
                lambda n=name: k8s_helpers.allocated_devices(  # type: ignore[misc]
                    kube.get_ns(namespace, "resourceclaims", n)
                ),
            )
            assert [r["device"] for r in got] == ["chip-0-capacity"]
        text = status(cluster.kubeconfig, node)
        row = next(line for line in text.splitlines() if "32/4/36 (capacity)" in line)
        assert "100 M" in row, text  # KEPS used: the two grants' budgets
        # The plugin placed a on domains 0, 1 and b on 2, 3; domain 1 fails under a.
        chip = dataclasses.replace(
            views[0],
            domains=tuple(
                DomainView(d.index, d.cores, Health.FAILED if d.index == 1 else d.health)
                for d in views[0].domains
            ),
            grants=((0, 1), (2, 3)),
        )
        [hurt] = build_slices(node, [chip, *views[1:]], generation=2, layout=LAYOUT)
        dev = next(d for d in hurt["spec"]["devices"] if d["name"] == "chip-0-capacity")
        assert dev["taints"] == [
            {"key": "darwin.snn.io/unhealthy", "value": "failed", "effect": "NoExecute"}
        ]
        current = kube.get("resourceslices", first["metadata"]["name"])
        hurt["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        hurt["metadata"]["labels"].update(kube.label)  # the test's cleanup finds it
        kube.custom.replace_cluster_custom_object(
            "resource.k8s.io", "v1", "resourceslices", first["metadata"]["name"], hurt
        )

        def evicted() -> bool:
            pods = [kube.pod(namespace, p) for p in ("pa", "pb")]
            return all(p is None or p["metadata"].get("deletionTimestamp") for p in pods)

        k8s_helpers.wait_for("the taint eviction of both pods", evicted, timeout=90)
    finally:
        for p in ("pa", "pb"):
            kube.core.delete_namespaced_pod(p, namespace, grace_period_seconds=0)
        api.close()
        kube.core.delete_node(node)
