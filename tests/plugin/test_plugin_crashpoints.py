"""plugin/crashpoints.py: the test-only crash hook is off by default, holds the process (to be
killed with SIGKILL) only at the step its file names, once, and a prepare and an unprepare
reach every step in the documented order.
The kill itself under the real kubelet is tests/integration/test_plugin_kill_real.py."""

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
from darwin_dra.plugin import crashpoints
from darwin_dra.plugin.crashpoints import CrashPoints
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig
from darwin_dra.polling import wait_for

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


def test_the_named_step_holds_the_process_until_it_is_killed_and_only_once(
    tmp_path: Path,
) -> None:
    armed = tmp_path / "crash-point"
    reached = tmp_path / "crash-point.reached"
    child = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from darwin_dra.plugin.crashpoints import CrashPoints
        points = CrashPoints(Path(sys.argv[1]))
        points.reached("prepare-started-saved")
        print("passed prepare-started-saved", flush=True)
        points.reached("cdi-written")
        print("passed cdi-written", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", child, str(armed)]
    armed.write_text("cdi-written")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        wait_for("the child at its crash point", reached.exists, timeout=60, every=0.05)
        assert reached.read_text() == "cdi-written\n"
        assert not armed.exists()  # removed first: the restarted plugin passes the step
        time.sleep(0.2)
        assert proc.poll() is None  # held there
        proc.kill()  # SIGKILL, as the tests on real nodes do from the host
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert "passed prepare-started-saved" in out
    assert "passed cdi-written" not in out
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert again.returncode == 0, again.stderr  # the file is gone: every step passes
    assert "passed cdi-written" in again.stdout
