"""deploy/step.sh, the Makefile's timed set-up step: the command's output goes to its log, the
console gets `done TITLE (N s)`, and a failure prints the log's tail and keeps the exit status."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

STEP = Path(__file__).resolve().parents[2] / "deploy" / "step.sh"


def test_a_step_logs_its_output_and_prints_its_time(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "pip.log"
    out = subprocess.run(
        [str(STEP), "pip, upgraded", str(log), "bash", "-c", "echo Collecting pip; sleep 0.3"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert re.fullmatch(r"  done pip, upgraded \(\d+\.\d s\)\n", out.stdout), out.stdout
    assert log.read_text() == "Collecting pip\n"


def test_a_failed_step_shows_its_logs_tail_and_exit_status(tmp_path: Path) -> None:
    log = tmp_path / "install.log"
    script = "for i in $(seq 1 40); do echo line $i; done; echo 'error: no gcc' >&2; exit 3"
    out = subprocess.run(
        [str(STEP), "the C engine", str(log), "bash", "-c", script],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 3
    want = rf"FAILED the C engine after \d+\.\d s \(exit 3\); the end of {re.escape(str(log))}:"
    assert re.search(want, out.stdout), out.stdout
    assert "    error: no gcc" in out.stdout
    assert "    line 40" in out.stdout
    assert "line 5\n" not in out.stdout  # the tail only
    assert "line 5\n" in log.read_text()
