from __future__ import annotations

import os
from pathlib import Path

import pytest
from darwin_dra.cluster import build
from darwin_dra.cluster.errors import BuildError, ToolchainError

from tests.cluster.conftest import MakeExe


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    mod = tmp_path / "local"
    (mod / "cmd" / "etcd").mkdir(parents=True)
    (mod / "go.mod").write_text("module x\n\nrequire k8s.io/kubernetes v1.37.2\n")
    (mod / "go.sum").write_text("k8s.io/kubernetes v1.37.2 h1:abc\n")
    (mod / "cmd" / "etcd" / "main.go").write_text("package main\n")
    monkeypatch.setenv("DARWIN_DRA_K8S_MODULE", str(mod))
    monkeypatch.setenv("DARWIN_DRA_CACHE", str(tmp_path / "cache"))
    return mod


def fake_go(make_exe: MakeExe, calls: Path, *, fail: bool = False) -> Path:
    """A `go` that records each call and writes every binary into the -o directory."""
    outputs = " ".join(f'"$out/{name}"' for name in build.BINARIES)
    body = f"""#!/bin/sh
echo "$@" >> {calls}
out=$(echo "$@" | sed -e 's/.*-o \\([^ ]*\\) .*/\\1/')
{"echo 'cmd/kubelet-harness/main.go:3:2: undefined: dra.NewManager' >&2; exit 1" if fail else ""}
for f in {outputs}; do printf '#!/bin/sh\\n' > "$f"; chmod +x "$f"; done
"""
    return make_exe("go", body)


def test_builds_once_then_reuses_the_cache(
    module: Path, make_exe: MakeExe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    monkeypatch.setenv("GO", str(fake_go(make_exe, calls)))
    first = build.ensure_binaries()
    assert first.version == "v1.37.2"
    assert first.directory.parent.name.startswith("k8s-v1.37.2-")
    assert all(os.access(first.path(name), os.X_OK) for name in build.BINARIES)
    assert "-trimpath" in calls.read_text()
    assert "k8s.io/component-base/version.gitVersion=v1.37.2" in calls.read_text()
    assert build.ensure_binaries() == first
    assert len(calls.read_text().splitlines()) == 1, "cached binaries must not invoke go"


def test_changed_module_files_get_a_new_cache_entry(
    module: Path, make_exe: MakeExe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GO", str(fake_go(make_exe, tmp_path / "calls")))
    before = build.ensure_binaries()
    (module / "go.sum").write_text("k8s.io/kubernetes v1.37.2 h1:changed\n")
    assert build.cached() is None
    assert build.ensure_binaries().directory != before.directory


def test_a_failing_build_names_the_error_and_keeps_no_binaries(
    module: Path, make_exe: MakeExe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GO", str(fake_go(make_exe, tmp_path / "calls", fail=True)))
    with pytest.raises(BuildError, match=r"(?s)exit 1.*undefined: dra.NewManager"):
        build.ensure_binaries()
    assert build.cached() is None


def test_no_go_toolchain_is_a_clear_error(
    module: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GO", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(build, "FALLBACK_GO", (str(tmp_path / "nogo"),))
    with pytest.raises(ToolchainError, match="no Go toolchain found"):
        build.ensure_binaries()


def test_a_missing_module_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARWIN_DRA_K8S_MODULE", str(tmp_path))
    with pytest.raises(ToolchainError, match="no Go module"):
        build.module_dir()


def test_the_repository_module_pins_matching_staging_releases() -> None:
    mod = Path(__file__).resolve().parents[2] / "deploy" / "local" / "go.mod"
    text = mod.read_text()
    version = build.kubernetes_version(mod.parent)
    staging = version.replace("v1.", "v0.")
    replaces = [line.split() for line in text.splitlines() if "=>" in line]
    assert len(replaces) > 20
    for old, _, new, ver in replaces:
        assert old == new, (old, new)
        assert old.startswith("k8s.io/"), old
        assert ver == staging, f"{old} pinned to {ver}, kubernetes is {version}"


def test_old_cache_entries_are_pruned(
    module: Path, make_exe: MakeExe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    for i in range(4):
        old = cache / f"k8s-v1.36.{i}-abc"
        old.mkdir(parents=True)
        os.utime(old, (1000 + i, 1000 + i))
    monkeypatch.setenv("GO", str(fake_go(make_exe, tmp_path / "calls")))
    current = build.ensure_binaries()
    left = sorted(d.name for d in cache.glob("k8s-*"))
    assert current.directory.parent.name in left
    assert left.count("k8s-v1.36.3-abc") == 1, "the newest other entry is kept"
    assert len(left) == build.KEEP_ENTRIES
