"""`darwin-dra demo` refuses bad input before it starts anything, naming what was wrong."""

from __future__ import annotations

from pathlib import Path

from darwin_dra.testing.cli import Ran, run_cli


def _demo(*args: str) -> Ran:
    return run_cli("demo", *args)


def test_an_unknown_scenario_is_named_with_the_known_ones() -> None:
    out = _demo("--scenario", "examples", "--scenario", "nope")
    assert out.returncode == 2
    assert "unknown --scenario nope (known: examples, fault, meps, pipeline, shared)" in out.stderr


def test_a_missing_image_tar_is_named(tmp_path: Path) -> None:
    out = _demo("--image", str(tmp_path / "gone.tar"))
    assert out.returncode == 2
    assert f"--image {tmp_path / 'gone.tar'}: no such file" in out.stderr
