"""The API server dies under a running plugin and stays down for a minute: the plugin keeps
running, retries with backoff, and publishes the change it could not publish while the server
was down."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from darwin_dra import DRIVER_NAME, kubeapi
from darwin_dra.cluster import build, launcher
from darwin_dra.cluster.chiphost import start_chip_host
from host_plugin import run_fault
from k8s_helpers import wait_for

pytestmark = pytest.mark.integration

OUTAGE_S = 60


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[launcher.LocalCluster]:
    # a cluster of its own: the other tests should not see this API server die
    directory = Path(tempfile.mkdtemp(prefix="dra-crash-"))
    local = launcher.LocalCluster(launcher.ClusterConfig(directory, nodes=1, node_kind="harness"),
                                  build.ensure_binaries())  # fmt: skip
    local.up()
    try:
        yield local
    finally:
        local.down()
        shutil.rmtree(directory, ignore_errors=True)


def test_plugin_rides_out_an_api_server_crash(own_cluster: launcher.LocalCluster) -> None:
    assert own_cluster.state is not None
    node = own_cluster.state.nodes[0]
    work = own_cluster.dir / "plugin"
    work.mkdir()
    inventory = work / "inventory.yaml"
    inventory.write_text(
        "apiVersion: darwin.snn.io/v1alpha1\nkind: Inventory\nnodes:\n"
        f"  - name: {node.name}\n    fabrics:\n      - id: w\n        chips:\n"
        "          - {model: darwin3, serial: CR-0}\n"
    )
    log = work / "plugin.log"
    cmd = [
        sys.executable, "-m", "darwin_dra.cli.main", "kubelet-plugin",
        "--node-name", node.name,
        "--kubeconfig", str(own_cluster.kubeconfig),
        "--plugins-registry-dir", node.plugins_registry, "--plugins-dir", node.plugins,
        "--cdi-dir", str(work / "cdi"), "--state-dir", str(work / "state"),
        "--fault-poll-seconds", "0.2",
    ]  # fmt: skip
    kube = kubeapi.connect(own_cluster.kubeconfig, timeout_s=5)
    chips = start_chip_host(node.name, inventory, work / "state", work / "chip-host.log")
    with log.open("wb") as out:
        plugin = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        wait_for(
            "the first publish", lambda: len(kube.list_slices(DRIVER_NAME, node.name)) == 2, 30
        )

        own_cluster.crash_apiserver()
        # while the server is gone, a domain fails: the plugin must not lose this change
        run_fault(work / "state", "inject", "--chip", "0", "--domain", "7")
        # Down for a minute (issue 14's figure): long enough for every retry to back off to
        # its cap; the plugin must stay up all along and not give up.
        down_until = time.monotonic() + OUTAGE_S
        while time.monotonic() < down_until:
            assert plugin.poll() is None, log.read_text()[-3000:]
            time.sleep(2)
        own_cluster.restart_apiserver()
        back = time.monotonic()

        def tainted() -> bool:
            return any(
                d.get("taints")
                for s in kube.list_slices(DRIVER_NAME, node.name)
                for d in s["spec"].get("devices", [])
                if d["name"] == "chip-0-domain-7"
            )

        wait_for("the taint published after the restart", tainted, timeout=60)
        print(f"taint published {time.monotonic() - back:.1f} s after the API server came back")
        text = log.read_text()
        assert "slice publish failed" in text  # it did try, and backed off, while down
        assert plugin.poll() is None
    finally:
        plugin.send_signal(signal.SIGTERM)
        code = plugin.wait(timeout=30)
        chips.terminate()
        chips.wait(timeout=30)
        kube.close()
    assert code == 0, log.read_text()[-3000:]
