"""`darwin-dra demo` refuses bad input before it starts anything, naming what was wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "demo", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_an_unknown_scenario_is_named_with_the_known_ones() -> None:
    out = _demo("--scenario", "examples", "--scenario", "nope")
    assert out.returncode == 2
    assert "unknown --scenario nope (known: examples, fault, meps, pipeline, shared)" in out.stderr


def test_a_missing_image_tar_is_named(tmp_path: Path) -> None:
    out = _demo("--image", str(tmp_path / "gone.tar"))
    assert out.returncode == 2
    assert f"--image {tmp_path / 'gone.tar'}: no such file" in out.stderr
