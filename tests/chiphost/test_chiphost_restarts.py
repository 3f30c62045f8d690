"""The chip outlives the plugin: a workload keeps stepping across a plugin kill -9 and restart;
restarting the chip host is a chip reset that the plugin sees and reports."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from darwin_dra.chiphost.client import ChipHostClient, RemotePorts
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig
from darwin_dra.plugin.recovery import lost_devices

from tests.chiphost.conftest import NODE, Host
from tests.chiphost.workload import WINDOW, Stepper
from tests.plugin.claims import ClaimStore, claim, result

REPO = Path(__file__).resolve().parents[2]

# A plugin's driver as a process of its own, on the chip host, stopped dead once it serves.
PLUGIN = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from darwin_dra.chiphost.client import ChipHostClient, RemotePorts
    from darwin_dra.hardware.profiles import load_profiles
    from darwin_dra.kubelet.preparer import ClaimRef
    from darwin_dra.plugin.driver import Driver
    from darwin_dra.plugin.node import DriverConfig
    from tests.plugin.claims import ClaimStore, claim, result

    state, cdi, sock, marker = (Path(a) for a in sys.argv[1:5])
    chip = ChipHostClient(sock)
    store = ClaimStore(claim("u1", [result("chip-0-domain-3", "node-a")]))
    driver = Driver(DriverConfig("node-a", state, cdi, lock_timeout_s=5), chip,
                    load_profiles(), store, boot_id=lambda: "boot-1",
                    spike_ports=RemotePorts(chip))
    driver.reconcile()
    assert asyncio.run(driver.prepare([ClaimRef("ns", "u1", "c-u1")]))["u1"].error is None
    marker.write_text("prepared")
    time.sleep(600)  # killed here
    """
)


def _driver(host: Host, tmp: Path, chip: ChipHostClient) -> Driver:
    store = ClaimStore(claim("u1", [result("chip-0-domain-3", NODE)]))
    config = DriverConfig(NODE, host.state_dir, tmp / "cdi", lock_timeout_s=5)
    return Driver(config, chip, load_profiles(), store, boot_id=lambda: "boot-1",
                  spike_ports=RemotePorts(chip))  # fmt: skip


def _spike_socket(host: Host) -> Path:
    return host.state_dir / "partitions" / "u1-r-chip-0-domain-3" / "spike.sock"


def test_a_workload_steps_on_across_a_plugin_kill_9_and_restart(host: Host, tmp_path: Path) -> None:
    marker = tmp_path / "prepared"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    log = tmp_path / "plugin.log"
    with log.open("wb") as out:
        plugin = subprocess.Popen(
            [sys.executable, "-c", PLUGIN, str(host.state_dir), str(tmp_path / "cdi"),
             str(host.socket), str(marker)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert plugin.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the plugin never prepared the claim"
        time.sleep(0.05)

    stepper = Stepper(_spike_socket(host))
    stepper.start()
    while stepper.calls < 20 and not stepper.errors:
        time.sleep(0.01)
    os.kill(plugin.pid, signal.SIGKILL)
    assert plugin.wait(timeout=10) == -signal.SIGKILL
    at_kill = stepper.calls
    time.sleep(0.3)  # the workload carries on with no plugin at all
    no_plugin = stepper.calls - at_kill
    with ChipHostClient(host.socket) as chip:
        driver = _driver(host, tmp_path, chip)  # the plugin's next instance
        report = driver.reconcile()
        assert (report.kept, report.recreated, report.released) == (1, 0, [])
        asyncio.run(driver.sync_spike_ports())
        restarted = stepper.calls
        while stepper.calls < restarted + 20 and not stepper.errors:
            time.sleep(0.01)
        stepper.stop.set()
        stepper.join(timeout=30)
        assert stepper.errors == []
        assert no_plugin > 0
        # not one step lost: the counters grew by exactly one window per call throughout,
        # and every input spike came out two steps later
        assert stepper.steps == [WINDOW * (i + 1) for i in range(stepper.calls)]
        assert stepper.fired == [(i * WINDOW + 2, i % 4) for i in range(stepper.calls)]
        assert asyncio.run(driver.unprepare([ClaimRef("ns", "u1", "c-u1")])) == {"u1": None}
        assert chip.partitions() == []


def test_a_chip_host_restart_is_a_chip_reset_the_plugin_sees(host: Host, tmp_path: Path) -> None:
    with ChipHostClient(host.socket) as chip:
        driver = _driver(host, tmp_path, chip)
        driver.reconcile()
        assert asyncio.run(driver.prepare([ClaimRef("ns", "u1", "c-u1")]))["u1"].error is None
        stepper = Stepper(_spike_socket(host))
        stepper.start()
        while stepper.calls < 5 and not stepper.errors:
            time.sleep(0.01)
        boot = chip.boot_id
        assert lost_devices(driver.store.load(), boot) == frozenset()

        host.kill()  # the chip resets
        stepper.join(timeout=30)
        assert stepper.errors, "the workload's stream must break with the chip"
        host.start()
        chip.chips()  # what the plugin's health poll does each second
        assert chip.boot_id != boot
        assert lost_devices(driver.store.load(), chip.boot_id) == {"chip-0-domain-3"}
        # a restarted plugin keeps the claim lost rather than giving it a blank partition
        again = _driver(host, tmp_path, chip).reconcile()
        assert (again.lost, again.kept, again.recreated) == (["u1"], 0, 0)
        assert asyncio.run(driver.unprepare([ClaimRef("ns", "u1", "c-u1")])) == {"u1": None}
        assert lost_devices(driver.store.load(), chip.boot_id) == frozenset()
        assert chip.partitions() == []
