"""Prepare storms against the real engine, checkpoint and CDI directory: 100 claims in one
call, then 1,000 prepared and unprepared in churn. Nothing may leak: no partition, spike socket
directory, CDI spec or checkpoint entry left, no file descriptor, and memory back near where it
started."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
from pathlib import Path

import pytest
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig

from tests.plugin.claims import ClaimStore, claim, result
from tests.plugin.invariant import assert_nothing_held

NODE = "node-a"
CHIPS = 3  # 108 single domains: enough for 100 claims at once


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _domains(darwin3: ChipProfile) -> list[str]:
    return [f"chip-{c}-domain-{d}" for c in range(CHIPS) for d in range(darwin3.n_domains)]


@pytest.mark.slow
def test_a_hundred_claims_in_one_call_then_a_thousand_in_churn_leak_nothing(
    tmp_path: Path, darwin3: ChipProfile
) -> None:
    cfg = DriverConfig(NODE, tmp_path / "state", tmp_path / "cdi", lock_timeout_s=10)
    devices = _domains(darwin3)
    claims = [claim(f"u{i}", [result(devices[i % len(devices)], NODE)]) for i in range(1000)]
    store = ClaimStore(*claims)
    with Engine() as engine:
        for i in range(CHIPS):
            engine.add_chip(darwin3, ChipEntry(model="darwin3", serial=f"S-{i}", fabric="f0"))
        driver = Driver(cfg, engine, {"darwin3": darwin3}, store, boot_id=lambda: "boot-1")
        refs = [ClaimRef("ns", f"u{i}", f"c-u{i}") for i in range(1000)]

        def prepare(batch: list[ClaimRef]) -> None:
            results = asyncio.run(driver.prepare(batch))
            errors = {uid: r.error for uid, r in results.items() if r.error}
            assert not errors, errors

        def unprepare(batch: list[ClaimRef]) -> None:
            results = asyncio.run(driver.unprepare(batch))
            assert all(e is None for e in results.values()), results

        # Warm up once (imports, thread pools, gRPC-free paths), then take the baseline.
        prepare(refs[:1])
        unprepare(refs[:1])
        gc.collect()
        fds, rss = _open_fds(), _rss_kib()

        # 100 claims in one NodePrepareResources call: 100 partitions, 100 specs, one lock.
        prepare(refs[:100])
        assert len(engine.partitions()) == 100
        assert len(list(cfg.cdi_dir.iterdir())) == 100
        assert len(driver.store.load().claims) == 100
        assert len({p.id for p in engine.partitions()}) == 100  # none granted twice
        unprepare(refs[:100])
        assert_nothing_held(driver, engine, cfg)

        # 1,000 claims in churn: batches of 10 prepared and unprepared, as pods come and go.
        for start in range(0, 1000, 10):
            prepare(refs[start : start + 10])
            unprepare(refs[start : start + 10])
        assert_nothing_held(driver, engine, cfg)
        gc.collect()
        assert _open_fds() <= fds, "file descriptors leaked"
        growth = _rss_kib() - rss
        # Allocator slack, not a leak of ~1,100 claims' partitions (each holds MiBs of state).
        assert growth < 64 * 1024, f"RSS grew by {growth} KiB over 1,100 claims"
