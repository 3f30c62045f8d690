"""A real kill -9 of a plugin process between the two checkpoint phases loses nothing: the next
instance finds the claim half-prepared, rolls it back and prepares it again. With the chips in
a chip host, what the killed instance made is still there and must be undone exactly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin.checkpoint import CheckpointStore, Phase
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import Chips, DriverConfig

from tests.chiphost.conftest import Host, write_inventory
from tests.plugin.claims import ClaimStore, claim, result

NODE = "node-a"
REPO = Path(__file__).resolve().parents[2]

# The victim: a driver that stops dead after PrepareStarted reached the disk.
CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from darwin_dra.engine import Engine
    from darwin_dra.hardware.model import ChipEntry
    from darwin_dra.hardware.profiles import load_profiles
    from darwin_dra.kubelet.preparer import ClaimRef
    from darwin_dra.plugin.driver import Driver
    from darwin_dra.plugin.node import DriverConfig
    from tests.plugin.claims import ClaimStore, claim, result

    state, cdi, marker = (Path(a) for a in sys.argv[1:4])
    where, chip_host = sys.argv[4], sys.argv[5]
    profile = load_profiles()["darwin3"]
    if chip_host:
        from darwin_dra.chiphost.client import ChipHostClient
        engine = ChipHostClient(Path(chip_host))
    else:
        engine = Engine()
        for i in range(2):
            engine.add_chip(profile, ChipEntry(model="darwin3", serial=f"T-{i}", fabric="f0"))

    def hang(uids):
        marker.write_text(",".join(uids))
        time.sleep(600)  # killed here

    store = ClaimStore(claim("u1", [result("chip-0-quad-4", "node-a")]))
    driver = Driver(DriverConfig("node-a", state, cdi, lock_timeout_s=5), engine,
                    {"darwin3": profile}, store, boot_id=lambda: "boot-1",
                    after_started=hang if where == "after-started" else None)
    if where == "after-cdi":  # the partition and the CDI spec exist, PrepareCompleted not yet
        write = driver.cdi.write
        def write_then_hang(uid, *args, **kwargs):
            ids = write(uid, *args, **kwargs)
            hang([uid])
            return ids
        driver.cdi.write = write_then_hang
    asyncio.run(driver.prepare([ClaimRef("ns", "u1", "c-u1")]))
    """
)


@pytest.mark.parametrize("chips", ["in-process", "chip-host"])
@pytest.mark.parametrize("where", ["after-started", "after-cdi"])
def test_kill_9_between_phases_loses_nothing(
    tmp_path: Path, darwin3: ChipProfile, where: str, chips: str
) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    host = None
    if chips == "chip-host":
        inventory = write_inventory(tmp_path / "inventory.yaml", NODE)
        host = Host(tmp_path / "host", inventory, tmp_path / "chip-host.log")
        host.start()
    try:
        _kill_and_recover(tmp_path, darwin3, where, env, host)
    finally:
        if host is not None:
            assert host.stop() == 0


def _kill_and_recover(
    tmp_path: Path, darwin3: ChipProfile, where: str, env: dict[str, str], host: Host | None
) -> None:
    state, cdi, marker = tmp_path / "state", tmp_path / "cdi", tmp_path / "started"
    log = tmp_path / "child.log"
    socket = str(host.socket) if host is not None else ""
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(state), str(cdi), str(marker), where, socket],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the child never reached PrepareStarted"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL

    config = DriverConfig(NODE, state, cdi, lock_timeout_s=5)
    left = CheckpointStore(config.checkpoint_path, lambda: "boot-1").load()
    assert left.claims["u1"].phase is Phase.PREPARE_STARTED  # the first phase survived
    assert (cdi / "darwin.snn.io-u1.json").exists() == (where == "after-cdi")

    if host is not None:
        with host.client() as chip:
            # what the killed instance made is still on the chips
            assert len(chip.partitions()) == (where == "after-cdi")
            _recover(config, chip, darwin3, cdi)
        return
    # a new plugin instance on a fresh engine (the engine died with the process)
    with Engine() as engine:
        for i in range(2):
            engine.add_chip(darwin3, ChipEntry(model="darwin3", serial=f"T-{i}", fabric="f0"))
        _recover(config, engine, darwin3, cdi)


def _recover(config: DriverConfig, engine: Chips, darwin3: ChipProfile, cdi: Path) -> None:
    store = ClaimStore(claim("u1", [result("chip-0-quad-4", NODE)]))
    driver = Driver(config, engine, {"darwin3": darwin3}, store, boot_id=lambda: "boot-1")
    driver.reconcile()
    done = asyncio.run(driver.prepare([ClaimRef("ns", "u1", "c-u1")]))["u1"]
    assert done.error is None, done.error
    record = driver.store.load().claims["u1"]
    assert record.phase is Phase.PREPARE_COMPLETED
    [part] = engine.partitions()
    assert len(part.cores) == 64  # a quad: 4 domains of 16 cores
    assert [p.name for p in cdi.iterdir()] == ["darwin.snn.io-u1.json"]
    # and the kubelet may ask again: same answer, nothing created twice
    again = asyncio.run(driver.prepare([ClaimRef("ns", "u1", "c-u1")]))["u1"]
    assert again.devices == done.devices
    assert len(engine.partitions()) == 1
