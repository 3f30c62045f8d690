"""plugin/crashpoints.py: the test-only SIGKILL hook is off by default, fires only at the step
its file names (once), and a prepare and an unprepare reach every step in the documented order.
The kill itself under the real kubelet is tests/integration/test_plugin_kill_real.py."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin import crashpoints
from darwin_dra.plugin.crashpoints import CrashPoints
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig

from tests.plugin.claims import ClaimStore, claim, result

REPO = Path(__file__).resolve().parents[2]
REF = ClaimRef("ns", "u1", "c-u1")


class Recorder(CrashPoints):
    def __init__(self) -> None:
        super().__init__(None)
        self.seen: list[str] = []

    def reached(self, point: str) -> None:
        super().reached(point)
        self.seen.append(point)


def test_every_step_is_reached_in_the_documented_order(
    tmp_path: Path, darwin3: ChipProfile
) -> None:
    engine = Engine()
    engine.add_chip(darwin3, ChipEntry(model="darwin3", serial="T-0", fabric="f0"))
    store = ClaimStore(claim("u1", [result("chip-0-domain-1", "node-a", "r0")]))
    config = DriverConfig("node-a", tmp_path / "state", tmp_path / "cdi", lock_timeout_s=5)
    driver = Driver(config, engine, {"darwin3": darwin3}, store, boot_id=lambda: "boot-1")
    recorder = Recorder()
    driver.node.crash = recorder
    assert asyncio.run(driver.prepare([REF]))["u1"].error is None
    assert recorder.seen == list(crashpoints.PREPARE)
    recorder.seen.clear()
    assert asyncio.run(driver.unprepare([REF]))["u1"] is None
    assert recorder.seen == list(crashpoints.UNPREPARE)


def test_off_without_a_file_and_silent_at_other_steps(tmp_path: Path) -> None:
    for point in crashpoints.POINTS:
        CrashPoints(None).reached(point)  # off: no file configured
        CrashPoints(tmp_path / "absent").reached(point)  # armed at no step
    armed = tmp_path / "crash-point"
    armed.write_text("files-removed\n")
    for point in crashpoints.PREPARE:
        CrashPoints(armed).reached(point)
    assert armed.read_text() == "files-removed\n"  # kept for its own step
    with pytest.raises(ValueError, match="unknown crash point 'nowhere'"):
        CrashPoints(armed).reached("nowhere")


def test_the_named_step_kills_the_process_with_sigkill_once(tmp_path: Path) -> None:
    armed = tmp_path / "crash-point"
    child = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from darwin_dra.plugin.crashpoints import CrashPoints
        points = CrashPoints(Path(sys.argv[1]))
        points.reached("prepare-started-saved")
        print("passed prepare-started-saved", flush=True)
        points.reached("cdi-written")
        print("not reached", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for expect_kill in (True, False):
        if expect_kill:
            armed.write_text("cdi-written")
        run = subprocess.run(
            [sys.executable, "-c", child, str(armed)],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        assert "passed prepare-started-saved" in run.stdout
        if expect_kill:
            assert run.returncode == -signal.SIGKILL, run.stderr
            assert "not reached" not in run.stdout
            assert not armed.exists()  # removed before the kill: the restart passes the step
        else:
            assert run.returncode == 0, run.stderr
            assert "not reached" in run.stdout
