"""The chart installed on the real nodes for a test module: the driver's image built and imported
the way a user does it, `helm install --wait` with the local cluster's values, and the uninstall
with what it leaves removed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from darwin_dra.cluster import launcher
from kubernetes import client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
import helm_chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "darwin-dra"
SPIKE_GROUP = 4242  # the chart's chipHost.spikeSocketGroup in these releases


@dataclass
class Release:
    name: str
    namespace: str
    kubeconfig: Path
    values: Path

    @property
    def image(self) -> str:
        """The driver's image the release runs (its repository:tag)."""
        image = json.loads(self.values.read_text())["image"]
        return f"{image['repository']}:{image['tag']}"

    def helm(self, *args: str) -> str:
        where = ("--kubeconfig", str(self.kubeconfig), "-n", self.namespace)
        out = helm_chart.helm(*args, *where, timeout=400)
        return out.stdout


def _inventory(nodes: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "darwin.snn.io/v1alpha1",
        "kind": "Inventory",
        "nodes": [
            {
                "name": node,
                "fabrics": [
                    {
                        "id": f"wafer-{i}",
                        "chips": [
                            {"model": "darwin3", "serial": f"CH-{i}-{c}", "firmware": "1.4.2"}
                            for c in range(2)
                        ],
                    }
                ],
            }
            for i, node in enumerate(nodes)
        ],
    }


def _forget_driver(cluster: launcher.LocalCluster) -> None:
    """What the uninstalled driver leaves by design: the kubelets wipe a gone plugin's slices
    only after a delay, and the controller's DeviceClasses and fabric slices stay. Later tests
    on the same cluster run a plugin of their own: remove them now."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        custom = client.CustomObjectsApi(api)
        group = ("resource.k8s.io", "v1")
        for item in custom.list_cluster_custom_object(*group, "resourceslices")["items"]:
            if item["spec"]["driver"] == "darwin.snn.io":
                custom.delete_cluster_custom_object(
                    *group, "resourceslices", item["metadata"]["name"]
                )
        for item in custom.list_cluster_custom_object(*group, "deviceclasses")["items"]:
            if item["metadata"]["name"].endswith("snn.io"):
                custom.delete_cluster_custom_object(
                    *group, "deviceclasses", item["metadata"]["name"]
                )
    finally:
        api.close()


def _bridge_address(state: Any) -> str:
    from darwin_dra.cluster import realnode

    return realnode.networks(state.slot, 1)[0].gateway


def install(
    real_cluster: launcher.LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
    extra: dict[str, Any] | None = None,
) -> Iterator[Release]:
    """Build and import the driver's image, `helm install --wait` the chart with it (values
    ``extra`` on top of the local cluster's), and uninstall it at the end."""
    state = real_cluster.state
    assert state is not None
    started = time.monotonic()
    # The way a user makes the image and puts it on the nodes.
    out = subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "cluster", "image",
         "--dir", str(real_cluster.dir)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    image = lines[-3].split()[0]
    assert f"imported into {', '.join(n.name for n in state.nodes)}" in lines[-1]
    print(f"\n{lines[-3]}\n{lines[-2].strip()}; {time.monotonic() - started:.1f}s with the import")
    port = state.ports["kube-apiserver"]
    values = tmp_path_factory.mktemp("chart") / "values.yaml"
    repository, tag = image.rsplit(":", 1)
    values.write_text(
        json.dumps(
            {
                "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
                # No kube-proxy on the local cluster: the pods use the API server's address
                # on the nodes' bridge.
                "apiServer": {"host": _bridge_address(state), "port": str(port)},
                "inventory": _inventory([n.name for n in state.nodes]),
                "controller": {"replicas": 1},
                "chipHost": {"spikeSocketGroup": SPIKE_GROUP},
                **(extra or {}),
            }
        )
    )
    rel = Release("darwin", "darwin-dra", real_cluster.kubeconfig, values)
    started = time.monotonic()
    rel.helm("install", rel.name, str(CHART), "--create-namespace", "-f", str(values),
             "--wait", "--timeout", "5m")  # fmt: skip
    print(f"helm install --wait: {time.monotonic() - started:.1f}s")
    try:
        yield rel
    finally:
        rel.helm("uninstall", rel.name, "--wait", "--timeout", "2m")
        _forget_driver(real_cluster)
