"""The chip host process over its real unix socket: discovery, partitions with the engine's
errors, spike ports it serves itself, the fault file, grpc health, metrics and its logs."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from darwin_dra.chiphost import faults
from darwin_dra.chiphost.app import default_socket
from darwin_dra.chiphost.client import ChipHostClient, ChipHostUnavailable
from darwin_dra.cluster.chiphost import chip_host_args, start_chip_host
from darwin_dra.cluster.ports import free_port
from darwin_dra.engine.errors import Conflict, InvalidArgument, NotFound
from darwin_dra.runtime.client import SpikePortClient
from darwin_dra.unixsock import grpc_target
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.chiphost.conftest import NODE, Host, write_inventory
from tests.runtime.nets import relay


def test_discovery_and_partitions_with_the_engines_errors(host: Host) -> None:
    with host.client() as chip:
        info = chip.info()
        assert info.node == NODE
        assert [c.serial for c in chip.chips()] == ["CH-0", "CH-1"]
        assert len(info.boot_id) == 32
        cores = chip.cores(1)
        assert len(cores) == chip.chips()[1].n_cores
        assert all(c.partition is None for c in cores)
        part = chip.create_partition(1, domains=[3])
        info_p = chip.partition(part)
        assert info_p.chip == 1
        assert len(info_p.cores) == 16
        assert {c.partition for c in chip.cores(1) if c.domain == 3} == {part}
        with pytest.raises(Conflict):
            chip.create_partition(1, domains=[3])
        with pytest.raises(NotFound, match="chip 7"):
            chip.create_partition(7, domains=[0])
        with pytest.raises(InvalidArgument):
            chip.create_partition(1, domains=[99])
        chip.destroy_partition(part)
        with pytest.raises(NotFound):
            chip.destroy_partition(part)
        assert chip.partitions() == []
        assert chip.boot_id == info.boot_id


def test_spike_ports_are_served_by_the_chip_host(host: Host, tmp_path: Path) -> None:
    sock = host.state_dir / "partitions" / "c1-r-chip-0-domain-0" / "spike.sock"
    with host.client() as chip:
        part = chip.create_partition(0, domains=[0])
        assert chip.serve_ports({sock: part}) == {}
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600  # the owner (the plugin's side) only
        missing = host.state_dir / "partitions" / "x" / "spike.sock"
        failed = chip.serve_ports({sock: part, missing: part + 40})
        assert list(failed) == [missing]
        assert "does not exist" in failed[missing]

        async def fire() -> list[tuple[int, int]]:
            async with SpikePortClient(sock) as port:
                await port.load(relay(4, 2), export=range(4))
                out = await port.step(5, [0], [2])
                return list(zip(out.steps.tolist(), out.ids.tolist(), strict=True))

        assert asyncio.run(fire()) == [(2, 2)]
        chip.destroy_partition(part)  # stops its port first
        assert not sock.exists()


def test_the_fault_file_reaches_the_chips(host: Host) -> None:
    path = faults.fault_path(host.state_dir)
    with host.client() as chip:
        faults.edit(path, add=[faults.Fault(1, faults.Kind.DOMAIN, 5)])
        deadline = time.monotonic() + 10
        while chip.chips()[1].domains[5].healthy:
            assert time.monotonic() < deadline, "the fault never reached the chip"
            time.sleep(0.1)
        assert [(f.chip, f.kind, f.index) for f in chip.info().faults] == [(1, "domain", 5)]
        faults.edit(path, remove=[faults.Fault(1, faults.Kind.DOMAIN, 5)])
        while not chip.chips()[1].domains[5].healthy:
            assert time.monotonic() < deadline, "the fault was never cleared"
            time.sleep(0.1)


def test_a_restart_is_a_chip_reset_with_the_faults_read_again(host: Host) -> None:
    faults.edit(faults.fault_path(host.state_dir), add=[faults.Fault(0, faults.Kind.CHIP, 0)])
    with host.client() as chip:
        chip.create_partition(1, domains=[0])
        before = chip.boot_id
        host.kill()
        with pytest.raises(ChipHostUnavailable):
            chip.partitions()
        host.start()
        assert chip.partitions() == []  # the same client reconnects; the chips are blank
        assert chip.boot_id != before
        assert not chip.chips()[0].healthy  # the hardware's faults are back at once


def test_health_metrics_and_json_logs(tmp_path: Path) -> None:
    h = Host(tmp_path / "s", write_inventory(tmp_path / "i.yaml"), tmp_path / "ch.log",
             metrics_port=free_port())  # fmt: skip
    h.start()
    try:
        with grpc_target(h.socket) as target, grpc.insecure_channel(target) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for service in ("", "darwin.chiphost.v1alpha1.ChipHost"):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with h.client() as chip:
            boot = chip.boot_id
            chip.destroy_partition(chip.create_partition(0, domains=[1]))
            chip.create_partition(1, domains=[2])
            with pytest.raises(NotFound):
                chip.destroy_partition(99)
        url = f"http://127.0.0.1:{h.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        assert f'darwin_chiphost_boot{{boot_id="{boot}",node="{NODE}"}} 1.0' in text
        assert "darwin_chiphost_chips 2.0" in text
        assert "darwin_chiphost_partitions 1.0" in text
        assert 'darwin_chiphost_requests_total{code="NOT_FOUND",method="DestroyPartition"}' in text
    finally:
        assert h.stop() == 0
    lines = [json.loads(line) for line in h.log.read_text().splitlines() if line.startswith("{")]
    serving = next(e for e in lines if e["event"] == "chip host serving")
    assert (serving["node"], serving["boot_id"]) == (NODE, boot)
    assert any(e["event"] == "chip host stopped: the chips are reset" for e in lines)
    assert not h.socket.exists()


def test_a_second_chip_host_on_the_same_socket_is_refused(host: Host) -> None:
    args = chip_host_args(NODE, host.inventory, host.state_dir)
    done = subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "served by another live process" in done.stderr
    with host.client() as chip:
        assert chip.info().node == NODE  # the first one carries on


def test_the_chip_host_socket_is_for_its_owner_only(host: Host) -> None:
    # The chips' control socket creates and destroys partitions: the plugin (root) only.
    st = host.socket.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()


def test_spike_sockets_admit_the_group_the_operator_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--spike-socket-group` (here through its variable, as the chart sets it): a non-root
    workload in that group may connect, nobody else."""
    if os.geteuid() != 0:
        pytest.skip("giving a socket to another group needs root")
    monkeypatch.setenv("DARWIN_SPIKE_SOCKET_GROUP", "4242")
    h = Host(tmp_path / "state", write_inventory(tmp_path / "inventory.yaml"), tmp_path / "ch.log")
    h.start()
    try:
        sock = h.state_dir / "partitions" / "c1-r-chip-0-domain-0" / "spike.sock"
        sock.parent.mkdir(parents=True)
        with h.client() as chip:
            part = chip.create_partition(0, domains=[0])
            assert chip.serve_ports({sock: part}) == {}
            st, dir_st = sock.stat(), sock.parent.stat()
            assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, 4242)
            assert (stat.S_IMODE(dir_st.st_mode), dir_st.st_gid) == (0o710, 4242)
            chip.destroy_partition(part)
    finally:
        assert h.stop() == 0, h.log.read_text()[-3000:]


def test_a_negative_spike_socket_group_is_refused_by_name(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory.yaml")
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", "chip-host", "--node-name", NODE]
    cmd += ["--inventory", str(inventory), "--state-dir", str(tmp_path / "s")]
    done = subprocess.run([*cmd, "--spike-socket-group", "-1"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--spike-socket-group must be a group id >= 0, not -1" in done.stderr


@pytest.mark.slow
def test_calibrated_capacity_follows_the_faults(tmp_path: Path) -> None:
    """`--calibrate`: each chip's KEPS measured on the chip model (where its links saturate);
    a failed domain lowers that chip's figure in the next Info (what the plugin republishes),
    the other chip's stays, and clearing the fault restores it."""
    state, log = tmp_path / "state", tmp_path / "ch.log"
    inventory = write_inventory(tmp_path / "inventory.yaml")
    proc = start_chip_host(NODE, inventory, state, log, calibrate=True, timeout_s=180)
    path = faults.fault_path(state)
    try:
        with ChipHostClient(default_socket(state)) as chip:
            healthy = dict(chip.info().measured_keps)
            assert healthy[0] == healthy[1] > 0
            faults.edit(path, add=[faults.Fault(1, faults.Kind.DOMAIN, 5)])
            deadline = time.monotonic() + 30
            while chip.chips()[1].domains[5].healthy:
                assert time.monotonic() < deadline, "the fault never reached the chip"
                time.sleep(0.1)
            degraded = dict(chip.info().measured_keps)
            assert degraded[0] == healthy[0]
            assert 0 < degraded[1] < healthy[1]
            faults.edit(path, remove=[faults.Fault(1, faults.Kind.DOMAIN, 5)])
            while not chip.chips()[1].domains[5].healthy:
                assert time.monotonic() < deadline, "the fault was never cleared"
                time.sleep(0.1)
            assert dict(chip.info().measured_keps) == healthy
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0, log.read_text()[-3000:]
