"""`darwin-dra status` against the real control plane: the builder's slices for a simulated
node, a claim the real scheduler allocates, and the table the command prints."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import k8s_helpers
import pytest
from darwin_dra import kubeapi
from darwin_dra.cluster import launcher
from darwin_dra.cluster.nodes import NodeAgent
from darwin_dra.fleet.layout import FleetShape, chip_views, fleet_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import Health
from darwin_dra.resources.slices import build_slices

pytestmark = pytest.mark.integration


def status(kubeconfig: Path, node: str) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "darwin_dra.cli.main",
            "status",
            "--kubeconfig",
            str(kubeconfig),
            "--node",
            node,
            "--width",
            "260",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def test_status_shows_partitions_keps_health_of_a_live_node(
    cluster: launcher.LocalCluster, kube: k8s_helpers.Kube, namespace: str, test_id: str
) -> None:
    node = f"status-{test_id}"
    inv = fleet_inventory(FleetShape(nodes=1))
    views = chip_views(inv, load_profiles(), inv.nodes[0].name)
    views[1] = replace(views[1], health=Health.DEGRADED)
    api = kubeapi.connect_fleet(cluster.kubeconfig)
    agent = NodeAgent(api, "v1.37.2")
    agent.register(node, launcher.node_labels(node, 0))
    try:
        for body in build_slices(node, views):
            kube.create("resourceslices", body)
        cls = f"status-{test_id}.snn.io"
        domain = 'device.attributes["darwin.snn.io"].partition == "domain"'
        kube.create("deviceclasses", k8s_helpers.device_class(cls, "darwin.snn.io", domain))
        req = k8s_helpers.exact_request("d", cls, count=2)
        kube.create_ns(namespace, "resourceclaims", k8s_helpers.claim("two", [req]))
        kube.create_pod(namespace, "p", {"d": {"resourceClaimName": "two"}})
        k8s_helpers.wait_for(
            "the claim's allocation",
            lambda: k8s_helpers.allocated_devices(kube.get_ns(namespace, "resourceclaims", "two")),
        )
        text = status(cluster.kubeconfig, node)
        assert node in text
        assert "True" in text  # Ready
        rows = [line for line in text.splitlines() if "darwin3" in line]
        assert len(rows) == 4, text
        # Chip 0: two domains taken by the scheduler; quad 0 is no longer free.
        for part in ("34/2/36", "8/0/9", "1/0/2", "healthy"):
            assert part in rows[0], text
        assert "53.9 M" in rows[0], text  # KEPS used: domains 0 and 1' router share
        assert "50 degraded" in rows[1], text
        assert "darwin3-fastroute" in rows[2], text
        assert "16/0/16" in rows[2], text
        assert "1 nodes, 4 chips" in text
    finally:
        kube.core.delete_namespaced_pod("p", namespace, grace_period_seconds=0)
        api.close()
        kube.core.delete_node(node)
