"""kill -9 of the plugin at every step of prepare and of unprepare, with the chips in a real
chip host (so what the killed process made outlives it, as on a node).

The child plugin counts its side effects (checkpoint saves, partitions created and destroyed,
CDI specs written and removed, claim status writes) and SIGKILLs itself just before or just
after the K-th one. For every K of a claim with two devices, a new plugin instance on the same
state directory and chip host then reconciles and finishes the kubelet's work: prepare again if
the kill fell in prepare, unprepare again if it fell in unprepare. Afterwards the invariant
holds: the claim's two partitions and one CDI spec exist exactly when it is prepared, and
after unprepare nothing is left on the chips, on disk or in the checkpoint."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin.checkpoint import Phase
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig

from tests.chiphost.conftest import Host, write_inventory
from tests.plugin.claims import ClaimStore, claim, result

NODE = "node-a"
REPO = Path(__file__).resolve().parents[2]
DEVICES = ("chip-0-quad-4", "chip-1-domain-7")
REF = ClaimRef("ns", "u1", "c-u1")

# The victim. argv: state, cdi, chip host socket, K (-1: count only), before|after.
CHILD = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys
    from pathlib import Path
    from darwin_dra.chiphost.client import ChipHostClient
    from darwin_dra.hardware.profiles import load_profiles
    from darwin_dra.kubelet.preparer import ClaimRef
    from darwin_dra.plugin.driver import Driver
    from darwin_dra.plugin.node import DriverConfig
    from tests.plugin.claims import ClaimStore, claim, result

    state, cdi, socket = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    kill_at, when = int(sys.argv[4]), sys.argv[5]
    steps = []

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            if len(steps) == kill_at and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            out = fn(*args, **kwargs)
            steps.append(name)
            if len(steps) - 1 == kill_at and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        return wrapper

    devices = sys.argv[6].split(",")
    store = ClaimStore(claim("u1", [result(d, "node-a", f"r{i}") for i, d in enumerate(devices)]))
    engine = ChipHostClient(socket)
    profile = load_profiles()["darwin3"]
    driver = Driver(DriverConfig("node-a", state, cdi, lock_timeout_s=5), engine,
                    {"darwin3": profile}, store, boot_id=lambda: "boot-1")
    driver.store.save = counted("checkpoint-save", driver.store.save)
    engine.create_partition = counted("create-partition", engine.create_partition)
    engine.destroy_partition = counted("destroy-partition", engine.destroy_partition)
    driver.cdi.write = counted("cdi-write", driver.cdi.write)
    driver.cdi.remove = counted("cdi-remove", driver.cdi.remove)
    store.update_claim_status = counted("status-write", store.update_claim_status)
    ref = ClaimRef("ns", "u1", "c-u1")
    prepared = asyncio.run(driver.prepare([ref]))["u1"]
    assert prepared.error is None, prepared.error
    prepare_steps = len(steps)
    assert asyncio.run(driver.unprepare([ref]))["u1"] is None
    print(json.dumps({"prepare": steps[:prepare_steps], "unprepare": steps[prepare_steps:]}))
    """
)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    work = tmp_path_factory.mktemp("kill-every-step")
    h = Host(work / "host", write_inventory(work / "inventory.yaml", NODE), work / "chip-host.log")
    h.start()
    try:
        yield h
    finally:
        assert h.stop() == 0, h.log.read_text()[-3000:]


def _child(tmp: Path, host: Host, kill_at: int, when: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = [str(tmp / "state"), str(tmp / "cdi"), str(host.socket), str(kill_at), when]
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args, ",".join(DEVICES)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _steps(tmp_path_factory: pytest.TempPathFactory, host: Host) -> dict[str, list[str]]:
    run = _child(tmp_path_factory.mktemp("count"), host, -1, "after")
    assert run.returncode == 0, run.stderr[-3000:]
    steps: dict[str, list[str]] = json.loads(run.stdout.strip().splitlines()[-1])
    return steps


def _assert_prepared(driver: Driver, chip: ChipHostClient, cdi: Path) -> None:
    record = driver.store.load().claims["u1"]
    assert record.phase is Phase.PREPARE_COMPLETED
    assert sorted(d.intent.device for d in record.devices) == sorted(DEVICES)
    held = {p.id for p in chip.partitions()}
    assert held == {d.partition_id for d in record.devices}  # exactly the claim's, none twice
    assert [p.name for p in cdi.iterdir()] == ["darwin.snn.io-u1.json"]


def _assert_nothing_held(driver: Driver, chip: ChipHostClient, cdi: Path) -> None:
    assert chip.partitions() == []
    assert driver.store.load().claims == {}
    assert not cdi.exists() or list(cdi.iterdir()) == []


@pytest.mark.slow
def test_a_kill_9_at_every_step_of_prepare_and_unprepare_loses_nothing(
    host: Host, tmp_path_factory: pytest.TempPathFactory, darwin3: ChipProfile
) -> None:
    steps = _steps(tmp_path_factory, host)
    # What a prepare and an unprepare of this claim do, in order: a change here changes the
    # kill points, so the list is pinned.
    assert steps["prepare"] == [
        "checkpoint-save",
        "create-partition",
        "create-partition",
        "cdi-write",
        "checkpoint-save",
        "status-write",
    ], steps
    assert steps["unprepare"] == [
        "destroy-partition",
        "destroy-partition",
        "cdi-remove",
        "checkpoint-save",
    ], steps
    n_prepare = len(steps["prepare"])
    total = n_prepare + len(steps["unprepare"])
    survived = 0
    with host.client() as chip:
        for kill_at in range(total):
            for when in ("before", "after"):
                tmp = tmp_path_factory.mktemp(f"k{kill_at}-{when}")
                run = _child(tmp, host, kill_at, when)
                point = (
                    f"{when} step {kill_at} ({(steps['prepare'] + steps['unprepare'])[kill_at]})"
                )
                assert run.returncode == -signal.SIGKILL, (point, run.stderr[-2000:])
                # A new instance, as the DaemonSet restarts the pod, then the kubelet's retry.
                store = ClaimStore(
                    claim("u1", [result(d, NODE, f"r{i}") for i, d in enumerate(DEVICES)])
                )
                config = DriverConfig(NODE, tmp / "state", tmp / "cdi", lock_timeout_s=5)
                driver = Driver(config, chip, {"darwin3": darwin3}, store, boot_id=lambda: "boot-1")
                driver.reconcile()
                if kill_at < n_prepare:
                    done = asyncio.run(driver.prepare([REF]))["u1"]
                    assert done.error is None, (point, done.error)
                    _assert_prepared(driver, chip, tmp / "cdi")
                    # The claim's status tells what the node holds, whoever wrote it.
                    entries = store.claims[("ns", "c-u1")]["status"].get("devices") or []
                    assert sorted(e["device"] for e in entries) == sorted(DEVICES), point
                assert asyncio.run(driver.unprepare([REF]))["u1"] is None, point
                _assert_nothing_held(driver, chip, tmp / "cdi")
                survived += 1
    assert survived == 2 * total  # every kill point tried, every one recovered
