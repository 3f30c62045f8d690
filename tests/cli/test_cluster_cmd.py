from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.cli.main import main


def test_down_and_status_of_an_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cluster", "down", "--dir", str(tmp_path)]) == 0
    assert "nothing running" in capsys.readouterr().out
    assert main(["cluster", "status", "--dir", str(tmp_path)]) == 1
    assert "no cluster recorded" in capsys.readouterr().out


def test_up_needs_at_least_one_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "up", "--nodes", "0", "--dir", str(tmp_path)]) == 2
    assert "--nodes must be at least 1" in capsys.readouterr().err


def test_up_without_go_names_the_missing_toolchain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from darwin_dra.cluster import build

    monkeypatch.setenv("DARWIN_DRA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GO", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(build, "FALLBACK_GO", ())
    assert main(["cluster", "up", "--dir", str(tmp_path / "c")]) == 1
    assert "no Go toolchain found" in capsys.readouterr().err
    assert not (tmp_path / "c" / "cluster.json").exists()
