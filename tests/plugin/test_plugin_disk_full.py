"""A full disk under the plugin's state directory (a real 512 KiB tmpfs, filled to the last
byte): prepare fails with an error that says so, nothing is half-written (no partition left in
the engine, no CDI spec, no temp file, the checkpoint still the last good one), and once space
is back the kubelet's retry prepares the claim. Mounting needs root, as `make test` runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin.checkpoint import Phase
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig

from tests.plugin.claims import ClaimStore, claim, result

NODE = "node-a"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (make test runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """Take every free byte of the file system under `directory`."""
    ballast = directory / "ballast"
    with ballast.open("wb", buffering=0) as out:
        for size in (65536, 4096, 1):  # down to the last byte
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                pass
    return ballast


def test_a_full_disk_fails_prepare_cleanly_and_the_retry_succeeds(
    small_disk: Path, tmp_path: Path, darwin3: ChipProfile
) -> None:
    state, cdi_dir = small_disk / "state", tmp_path / "cdi"
    cfg = DriverConfig(NODE, state, cdi_dir, lock_timeout_s=5)
    store = ClaimStore(
        claim("u1", [result("chip-0-quad-4", NODE)]), claim("u2", [result("chip-1-half-0", NODE)])
    )
    with Engine() as engine:
        for i in range(2):
            engine.add_chip(darwin3, ChipEntry(model="darwin3", serial=f"T-{i}", fabric="f0"))
        driver = Driver(cfg, engine, {"darwin3": darwin3}, store, boot_id=lambda: "boot-1")

        def prepare(uid: str) -> object:
            return asyncio.run(driver.prepare([ClaimRef("ns", uid, f"c-{uid}")]))[uid]

        first = prepare("u1")
        assert first.error is None  # type: ignore[attr-defined]
        good = (state / "checkpoint.json").read_bytes()
        partitions = engine.partitions()
        ballast = _fill(state)

        failed = prepare("u2")
        error = failed.error  # type: ignore[attr-defined]
        assert error is not None
        assert "No space left on device" in error, error
        # Nothing half-done: the engine holds only u1's partition, no spec for u2, no temp
        # files beside the checkpoint, and the checkpoint is byte for byte the last good one.
        assert engine.partitions() == partitions
        assert not (cdi_dir / "darwin.snn.io-u2.json").exists()
        assert sorted(p.name for p in state.iterdir() if p.is_file()) == sorted(
            p.name for p in state.iterdir() if p.is_file() and not p.name.startswith(".")
        )
        assert (state / "checkpoint.json").read_bytes() == good
        assert "u2" not in json.loads(good)["claims"]

        ballast.unlink()  # space is back; the kubelet retries
        again = prepare("u2")
        assert again.error is None  # type: ignore[attr-defined]
        assert driver.store.load().claims["u2"].phase is Phase.PREPARE_COMPLETED
        assert (cdi_dir / "darwin.snn.io-u2.json").exists()
        assert len(engine.partitions()) == 2


def test_a_disk_that_fills_between_the_two_phases_leaves_nothing_held(
    small_disk: Path, tmp_path: Path, darwin3: ChipProfile
) -> None:
    # PrepareStarted reaches the disk, then the disk fills (the driver's after_started hook):
    # the partition and the CDI spec are made, PrepareCompleted cannot be written, and the
    # driver undoes them instead of holding what its record does not know as prepared.
    state, cdi_dir = small_disk / "state", tmp_path / "cdi"
    cfg = DriverConfig(NODE, state, cdi_dir, lock_timeout_s=5)
    store = ClaimStore(claim("u1", [result("chip-0-quad-4", NODE)]))
    ballast: list[Path] = []
    with Engine() as engine:
        engine.add_chip(darwin3, ChipEntry(model="darwin3", serial="T-0", fabric="f0"))
        driver = Driver(
            cfg,
            engine,
            {"darwin3": darwin3},
            store,
            boot_id=lambda: "boot-1",
            after_started=lambda uids: ballast.append(_fill(state)),
        )
        ref = ClaimRef("ns", "u1", "c-u1")
        failed = asyncio.run(driver.prepare([ref]))["u1"]
        assert failed.error is not None
        assert "No space left on device" in failed.error
        assert engine.partitions() == []
        assert not (cdi_dir / "darwin.snn.io-u1.json").exists()
        assert driver.store.load().claims["u1"].phase is Phase.PREPARE_STARTED

        ballast[0].unlink()
        driver._after_started = None  # the retry runs without the filling hook
        again = asyncio.run(driver.prepare([ref]))["u1"]
        assert again.error is None
        assert len(engine.partitions()) == 1

        # Unprepare on a full disk: an error the kubelet retries, and the retry completes.
        ballast.append(_fill(state))
        assert "No space left" in (asyncio.run(driver.unprepare([ref]))["u1"] or "")
        assert engine.partitions() == []  # what was undone stays undone
        ballast[-1].unlink()
        assert asyncio.run(driver.unprepare([ref]))["u1"] is None
        assert "u1" not in driver.store.load().claims
