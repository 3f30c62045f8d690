"""A fabric link fault on a real chip host (`darwin-dra chip-host`, three chips on one fabric,
a row of the darwin3 profile's fabric grid: 0 - 1 - 2): the fault file's `fabric` entry fails
the link 0 -> 1, the chip host's Info says so (what the plugin publishes as the chip devices'
fabricLinks and fabricMeps), a route 0 -> 2, which has no other path, loses its spikes at that
link (counted in the metrics), and clearing the fault restores the link, the published figures
and the delivery, over two hops."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from darwin_dra.chiphost import faults
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.cluster.ports import free_port
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.slices import chip_devices
from darwin_dra.runtime.client import SpikePortClient

from tests.chiphost.conftest import Host, write_inventory
from tests.chiphost.test_chiphost_routes import spec
from tests.runtime.nets import relay, sort_aer

FAULT = faults.Fault(0, faults.Kind.FABRIC, 1)


def _cli(state: Path, action: str) -> None:
    """`darwin-dra fault inject|clear --chip 0 --fabric-to 1`, as an operator runs it."""
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", "fault", action, "--state-dir",
           str(state), "--chip", "0", "--fabric-to", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert ("chip 0 fabric 1" in done.stdout) == (action == "inject"), done.stdout


def _published(chip: ChipHostClient, chip_id: int) -> tuple[int, int]:
    """fabricLinks and fabricMeps of the whole-chip device the plugin would publish."""
    info = chip.chips()[chip_id]
    device = chip_devices(ChipView.from_info(info, load_profiles()[info.model]), kinds=("chip",))
    attrs = device[0]["attributes"]
    return attrs["fabricLinks"]["int"], attrs["fabricMeps"]["int"]


def _wait_failed(chip: ChipHostClient, failed: int) -> None:
    deadline = time.monotonic() + 10
    while chip.chips()[0].failed_fabric_links != failed:
        assert time.monotonic() < deadline, f"chip 0 never had {failed} failed fabric links"
        time.sleep(0.1)


def _metric(port: int, name: str, kind: str | None = None) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    labels = 'dst_chip="1",fabric="f0",' + (f'kind="{kind}",' if kind else "") + 'src_chip="0"'
    line = next(x for x in text.splitlines() if x.startswith(f"{name}{{{labels}}}"))
    return line.rsplit(" ", 1)[1]


def test_a_fabric_link_fault_is_published_counted_and_cleared(tmp_path: Path) -> None:
    port = free_port()
    h = Host(tmp_path / "s", write_inventory(tmp_path / "i.yaml", chips=3), tmp_path / "ch.log",
             metrics_port=port)  # fmt: skip
    h.start()
    sockets = {n: h.state_dir / "partitions" / n / "spike.sock" for n in ("a", "b")}
    path = faults.fault_path(h.state_dir)
    try:
        with h.client() as chip:
            healthy = _published(chip, 0)
            assert healthy == (1, 10_000)  # one neighbour (chip 1), 1e10 spikes/s (profile)
            assert _published(chip, 1)[0] == 2
            a = chip.create_partition(0, domains=[0], owner="ns/p")
            b = chip.create_partition(2, domains=[0], owner="ns/p")
            assert chip.serve_ports({sockets["a"]: a, sockets["b"]: b}) == {}
            chip.program_route(spec(a, b, [0, 1, 2, 3], [3, 2, 1, 0]))

            async def exchange(first: int) -> list[tuple[int, int]]:
                async with SpikePortClient(sockets["a"]) as pa, SpikePortClient(sockets["b"]) as pb:
                    if first == 0:
                        for p in (pa, pb):
                            await p.load(relay(4, 1), export=range(4))
                    await pa.step(5, [first] * 4, [0, 1, 2, 3])
                    out = await pb.step(5)
                    return sort_aer(out.steps, out.ids)

            _cli(h.state_dir, "inject")
            assert faults.load(path) == {FAULT}
            _wait_failed(chip, 1)
            assert _published(chip, 0) == (0, 0)  # republished: no working fabric link
            assert asyncio.run(exchange(0)) == []  # 0 -> 1 -> 2 broken at its first hop
            assert _metric(port, "darwin_chiphost_fabric_link_failed") == "1.0"
            lost = _metric(port, "darwin_chiphost_fabric_link_spikes_total", "dropped_fault")
            assert lost == "4.0"
            _cli(h.state_dir, "clear")
            _wait_failed(chip, 0)
            assert _published(chip, 0) == healthy
            assert _metric(port, "darwin_chiphost_fabric_link_failed") == "0.0"
            # the next window: a's neurons at 6, over both hops at 6, b's neurons at 7
            assert asyncio.run(exchange(5)) == [(7, i) for i in range(4)]
            assert _metric(port, "darwin_chiphost_fabric_link_spikes_total", "carried") == "4.0"
    finally:
        assert h.stop() == 0, h.log.read_text()[-3000:]
