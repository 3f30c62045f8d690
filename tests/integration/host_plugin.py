"""The production chip host and `darwin-dra kubelet-plugin` as processes on the host, for one
node of a local cluster: the plugin publishes the node's slices to the real API server and
registers with that node's kubelet (the harness's or a real one)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_dra import DRIVER_NAME, kubeapi
from darwin_dra.cluster.chiphost import start_chip_host
from darwin_dra.cluster.launcher import LocalCluster
from darwin_dra.cluster.ports import free_port
from darwin_dra.cluster.state import NodeRecord
from k8s_helpers import wait_for


@dataclass
class Plugin:
    node: str
    state_dir: Path
    cdi_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    kube: kubeapi.Kube
    cmd: list[str]
    chips: subprocess.Popen[bytes]
    inventory: Path

    def slices(self) -> list[dict[str, Any]]:
        return self.kube.list_slices(DRIVER_NAME, self.node)

    def start(self) -> None:
        """A new plugin process (after a crash or for an upgrade), on the same directories."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
            )

    def start_chips(self) -> None:
        log = self.state_dir.parent / "chip-host.log"
        self.chips = start_chip_host(self.node, self.inventory, self.state_dir, log)

    def fault(self, *args: str) -> None:
        """`darwin-dra fault ARGS` against this node's chip host, as an operator runs it."""
        run_fault(self.state_dir, *args)


def run_fault(state_dir: Path, *args: str) -> None:
    """`darwin-dra fault ARGS --state-dir STATE_DIR`, as an operator runs it on the node."""
    cli = [sys.executable, "-m", "darwin_dra.cli.main", "fault", *args]
    subprocess.run([*cli, "--state-dir", str(state_dir)], check=True, capture_output=True)


def write_inventory(path: Path, node: str, chips: int = 2, fabric: str = "wafer-it") -> Path:
    """An inventory of ``chips`` Darwin3 chips of node ``node`` on one fabric."""
    entries = "\n".join(
        f"          - {{model: darwin3, serial: IT-{i}, pcieRoot: 'pci0000:00', firmware: 1.4.2}}"
        for i in range(chips)
    )
    path.write_text(
        "apiVersion: darwin.snn.io/v1alpha1\nkind: Inventory\nnodes:\n"
        f"  - name: {node}\n    fabrics:\n      - id: {fabric}\n        chips:\n{entries}\n"
    )
    return path


@contextlib.contextmanager
def running_plugin(
    cluster: LocalCluster,
    node: NodeRecord,
    work: Path,
    *,
    cdi_dir: Path | None = None,
    calibrate: bool = False,
    registered: bool = False,
    chip_host_timeout_s: float = 60.0,
    ready_timeout_s: float = 30.0,
) -> Iterator[Plugin]:
    """The real chip host and `darwin-dra kubelet-plugin` for ``node``, once its 3 slices are
    published (and, with ``registered``, once the kubelet has registered it: a pod reaching
    the kubelet before that fails its prepare and waits out the pod worker's back-off);
    stopped with SIGTERM (both must exit 0) and its slices deleted afterwards. The CDI specs go
    to ``cdi_dir`` (a real node's, for containerd to read) or to a directory in ``work``."""
    log = work / "plugin.log"
    cdi = cdi_dir or work / "cdi"
    inventory = write_inventory(work / "inventory.yaml", node.name)
    # The chip host first: it owns the chips; the plugin is its client.
    chips = start_chip_host(
        node.name, inventory, work / "state", work / "chip-host.log",
        timeout_s=chip_host_timeout_s, calibrate=calibrate,
    )  # fmt: skip
    cmd = [
        sys.executable, "-m", "darwin_dra.cli.main", "kubelet-plugin",
        "--node-name", node.name,
        "--kubeconfig", str(cluster.kubeconfig),
        "--plugins-registry-dir", node.plugins_registry,
        "--plugins-dir", node.plugins,
        "--cdi-dir", str(cdi),
        "--state-dir", str(work / "state"),
        "--fault-poll-seconds", "0.2",
        "--metrics-port", str(free_port()),
        "--health-port", "0",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    kube = kubeapi.connect(cluster.kubeconfig)
    started = Plugin(node.name, work / "state", cdi, proc, log, kube, cmd, chips, inventory)
    try:
        wait_for("the plugin's slices", lambda: len(started.slices()) == 3, ready_timeout_s)
        if registered:
            wait_for(
                "the kubelet's registration of the plugin",
                lambda: "registered with the kubelet" in log.read_text(errors="replace"),
                timeout=60,
            )
        yield started
    finally:
        started.proc.send_signal(signal.SIGTERM)
        code = started.proc.wait(timeout=30)
        started.chips.send_signal(signal.SIGTERM)
        chips_code = started.chips.wait(timeout=30)
        for s in kube.list_slices(DRIVER_NAME, node.name):
            kube.delete_slice(s["metadata"]["name"])
        kube.close()
        print(log.read_text()[-4000:])
        assert code == 0, f"plugin exited with {code}"
        assert chips_code == 0, f"chip host exited with {chips_code}"
