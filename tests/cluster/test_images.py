"""The image cache: keyed by content, old entries pruned."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from darwin_dra.cluster import images

ROOT = Path(__file__).resolve().parents[2]


def test_old_tars_are_pruned_newest_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARWIN_DRA_CACHE", str(tmp_path))
    (tmp_path / "images").mkdir()
    for i in range(6):
        tar = tmp_path / "images" / f"darwin-dra-{i}.tar"
        tar.write_bytes(b"x")
        os.utime(tar, (1000 + i, 1000 + i))
    (tmp_path / "images" / "busybox-0.tar").write_bytes(b"x")
    gone = images.prune("darwin-dra-*.tar", keep=4)
    assert sorted(p.name for p in gone) == ["darwin-dra-0.tar", "darwin-dra-1.tar"]
    left = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert left == ["busybox-0.tar", *(f"darwin-dra-{i}.tar" for i in range(2, 6))]


def test_the_driver_image_key_follows_its_inputs(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for rel in ("pyproject.toml", "setup.py", "README.md", "deploy/image/Containerfile"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tree / rel)
    shutil.copytree(ROOT / "driver" / "darwin_dra" / "cli", tree / "driver" / "darwin_dra" / "cli")
    key = images.source_key(tree)
    assert images.source_key(tree) == key
    (tree / "driver" / "darwin_dra" / "tests.txt").write_text("not an input")
    assert images.source_key(tree) == key
    (tree / "driver" / "darwin_dra" / "cli" / "main.py").write_text("# changed\n")
    assert images.source_key(tree) != key
