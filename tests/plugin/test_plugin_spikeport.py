"""The plugin serves each prepared partition's SpikePort where DARWIN_SPIKE_ENDPOINT points."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig
from darwin_dra.runtime.client import SpikePortClient
from darwin_dra.runtime.spikeport import SpikePorts

from tests.plugin.claims import ClaimStore, claim, result
from tests.plugin.test_plugin_driver import NODE, _driver, _engine, _ref
from tests.runtime.nets import relay


@pytest.fixture
def dirs(tmp_path: Path) -> DriverConfig:
    return DriverConfig(NODE, tmp_path / "state", tmp_path / "cdi", lock_timeout_s=5)


def _host_socket(cfg: DriverConfig, uid: str) -> dict[str, Path]:
    """Device name -> the host path behind the container's DARWIN_SPIKE_ENDPOINT."""
    spec = json.loads((cfg.cdi_dir / f"darwin.snn.io-{uid}.json").read_text())
    out = {}
    for dev in spec["devices"]:
        edits = dev["containerEdits"]
        env = dict(e.split("=", 1) for e in edits["env"])
        endpoint = Path(env["DARWIN_SPIKE_ENDPOINT"].removeprefix("unix://"))
        [mount] = [m for m in edits["mounts"] if m["containerPath"] == str(endpoint.parent)]
        out[dev["name"]] = Path(mount["hostPath"]) / endpoint.name
    return out


async def _relay_fires(sock: Path) -> list[tuple[int, int]]:
    async with SpikePortClient(sock) as port:
        await port.load(relay(4, 2), export=range(4))
        out = await port.step(5, [0, 1], [3, 1])
        return sorted(zip(out.steps.tolist(), out.ids.tolist(), strict=True))


def test_prepared_claims_are_served_until_unprepared(
    dirs: DriverConfig, darwin3: ChipProfile
) -> None:
    results = [result("chip-0-domain-3", NODE), result("chip-1-quad-0", NODE, "b")]
    store = ClaimStore(claim("u1", results))

    async def main(eng: Engine) -> None:
        driver = _driver(dirs, eng, darwin3, store, spike_ports=SpikePorts(eng, grace_s=0.1))
        assert driver.spike_ports is not None
        try:
            await scenario(driver, driver.spike_ports)
        finally:
            await driver.spike_ports.close()

    async def scenario(driver: Driver, ports: SpikePorts) -> None:
        prepared = await driver.prepare([_ref("u1")])
        assert prepared["u1"].error is None
        socks = _host_socket(dirs, "u1")
        assert len(socks) == 2
        assert set(ports.serving) == set(socks.values())
        for sock in socks.values():
            assert await _relay_fires(sock) == [(2, 3), (3, 1)]
        # A repeated prepare (answered from the checkpoint) keeps the same servers.
        await driver.prepare([_ref("u1")])
        assert set(ports.serving) == set(socks.values())
        assert await driver.unprepare([_ref("u1")]) == {"u1": None}
        assert ports.serving == {}
        for sock in socks.values():
            assert not sock.exists()

    with _engine(darwin3) as eng:
        asyncio.run(main(eng))


def test_a_restarted_plugin_leaves_the_spike_ports_serving(
    dirs: DriverConfig, darwin3: ChipProfile
) -> None:
    """The ports belong to the chips (the chip host), not to a plugin: a new plugin instance
    reconciles and syncs, and a workload's connection and loaded network carry on."""
    store = ClaimStore(claim("u1", [result("chip-1-domain-7", NODE)]))

    async def main(eng: Engine) -> None:
        ports = SpikePorts(eng, grace_s=0.1)  # outlives both plugin instances
        try:
            first = _driver(dirs, eng, darwin3, store, spike_ports=ports)
            assert (await first.prepare([_ref("u1")]))["u1"].error is None
            [sock] = _host_socket(dirs, "u1").values()
            async with SpikePortClient(sock) as port:
                await port.load(relay(4, 2), export=range(4))
                before = await port.step(3, [0], [1])
                second = _driver(dirs, eng, darwin3, store, spike_ports=ports)
                report = await asyncio.to_thread(second.reconcile)
                assert (report.kept, report.recreated) == (1, 0)
                await second.sync_spike_ports()
                after = await port.step(3, [3], [3])  # same connection, same network
            assert before.counters.steps == 3
            assert after.counters.steps == 6
            assert sorted(zip(after.steps.tolist(), after.ids.tolist(), strict=True)) == [(5, 3)]
            await second.unprepare([_ref("u1")])
            assert not sock.exists()
        finally:
            await ports.close()

    with _engine(darwin3) as eng:
        asyncio.run(main(eng))
