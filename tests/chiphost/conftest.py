"""A real chip host process per test (`darwin-dra chip-host`), on a two-chip inventory."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from darwin_dra.chiphost.app import default_socket
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.cluster.chiphost import start_chip_host

NODE = "node-a"


def write_inventory(path: Path, node: str = NODE, chips: int = 2) -> Path:
    entries = "\n".join(f"          - {{model: darwin3, serial: CH-{i}}}" for i in range(chips))
    path.write_text(
        "apiVersion: darwin.snn.io/v1alpha1\nkind: Inventory\nnodes:\n"
        f"  - name: {node}\n    fabrics:\n      - id: f0\n        chips:\n{entries}\n"
    )
    return path


@dataclass
class Host:
    """One node's chip host: restartable, as a chip is resettable."""

    state_dir: Path
    inventory: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int | None = None

    @property
    def socket(self) -> Path:
        return default_socket(self.state_dir)

    def start(self) -> None:
        self.proc = start_chip_host(
            NODE, self.inventory, self.state_dir, self.log, metrics_port=self.metrics_port
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=20)

    def client(self) -> ChipHostClient:
        return ChipHostClient(self.socket)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(tmp_path / "state", write_inventory(tmp_path / "inventory.yaml"), tmp_path / "ch.log")
    h.start()
    try:
        yield h
    finally:
        if h.proc is not None and h.proc.poll() is None:
            code = h.stop()
            assert code == 0, h.log.read_text()[-3000:]
