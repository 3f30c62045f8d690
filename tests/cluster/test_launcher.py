from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from darwin_dra.cluster import launcher
from darwin_dra.cluster.build import Binaries
from darwin_dra.cluster.errors import ComponentError, PortInUseError
from darwin_dra.cluster.process import start
from darwin_dra.cluster.state import ClusterState, ProcessRecord

from tests.cluster.conftest import FAKE_ETCD, MakeExe


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _cluster(tmp_path: Path, make_exe: MakeExe, **config: object) -> launcher.LocalCluster:
    bindir = make_exe("etcd", FAKE_ETCD).parent
    cfg = launcher.ClusterConfig(tmp_path / "c", start_timeout=20, node_kind="harness", **config)  # type: ignore[arg-type]
    return launcher.LocalCluster(cfg, Binaries(bindir, "v1.37.2"))


def test_a_taken_apiserver_port_is_refused_before_anything_starts(
    tmp_path: Path, make_exe: MakeExe, listening: int
) -> None:
    cluster = _cluster(tmp_path, make_exe, apiserver_port=listening)
    with pytest.raises(PortInUseError) as info:
        cluster.up()
    assert info.value.component == "kube-apiserver"
    assert str(listening) in str(info.value)
    assert cluster.processes == []


def test_a_component_dying_on_start_stops_everything_already_started(
    tmp_path: Path, make_exe: MakeExe
) -> None:
    make_exe(
        "kube-apiserver", "#!/bin/sh\necho 'E0101 unrecognized feature gate: Foo' >&2\nexit 1\n"
    )
    stale = tmp_path / "c" / "etcd" / "member"
    stale.mkdir(parents=True)
    cluster = _cluster(tmp_path, make_exe)
    with pytest.raises(ComponentError) as info:
        cluster.up()
    assert info.value.component == "kube-apiserver"
    assert "unrecognized feature gate" in info.value.log_tail

    state = ClusterState.load(tmp_path / "c")
    assert state is not None
    assert [p.name for p in state.processes] == ["etcd", "kube-apiserver"]
    assert not any(p.process().alive() for p in state.processes), "etcd left running"
    assert not stale.exists(), "data of an earlier cluster must not be reused"


@pytest.mark.slow
def test_down_stops_a_cluster_from_its_record(tmp_path: Path, make_exe: MakeExe) -> None:
    # A half-started cluster (its apiserver hangs) is still recorded, and `down` clears it.
    make_exe("kube-apiserver", "#!/bin/sh\nexec sleep 60\n")
    cluster = _cluster(tmp_path, make_exe)
    cluster.config = launcher.ClusterConfig(tmp_path / "c", start_timeout=5, node_kind="harness")
    with pytest.raises(ComponentError, match="kube-apiserver: not ready"):
        cluster.up()
    assert launcher.status(tmp_path / "c") == {"etcd": False, "kube-apiserver": False}

    # Simulate a cluster left running by `cluster up` in another process.
    etcd = start(
        "etcd",
        [str(cluster.bin.path("etcd")), "--listen-client-urls=http://127.0.0.1:0"],
        tmp_path / "etcd.log",
    )
    try:
        state = ClusterState.load(tmp_path / "c")
        assert state is not None
        state.processes = [ProcessRecord("etcd", etcd.pid, list(etcd.argv), str(etcd.log_path))]
        state.save()
        assert launcher.status(tmp_path / "c") == {"etcd": True}
        assert launcher.down(tmp_path / "c") == ["etcd"]
        assert not etcd.alive()
        assert launcher.down(tmp_path / "c") == []
    finally:
        etcd.stop()  # reaps our child whatever happened
