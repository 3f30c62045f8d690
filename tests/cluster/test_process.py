from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from darwin_dra.cluster.errors import ComponentError
from darwin_dra.cluster.process import Process, start

from tests.cluster.conftest import MakeExe


def test_a_component_that_dies_on_start_is_named_with_its_log(
    make_exe: MakeExe, tmp_path: Path
) -> None:
    exe = make_exe(
        "etcd", "#!/bin/sh\necho 'listen tcp 127.0.0.1:2379: bind: address in use'\nexit 3\n"
    )
    proc = start("etcd", [str(exe)], tmp_path / "etcd.log")
    with pytest.raises(ComponentError) as info:
        proc.wait_ready(lambda: False, timeout=10)
    assert info.value.component == "etcd"
    assert "exit code 3" in str(info.value)
    assert "address in use" in info.value.log_tail


def test_a_component_that_never_gets_ready_times_out(make_exe: MakeExe, tmp_path: Path) -> None:
    exe = make_exe("slow", "#!/bin/sh\necho starting\nexec sleep 30\n")
    proc = start("slow", [str(exe)], tmp_path / "slow.log")
    try:
        with pytest.raises(ComponentError, match=r"slow: not ready after 1s"):
            proc.wait_ready(lambda: False, timeout=1)
    finally:
        proc.stop()
    assert not proc.alive()


def test_a_missing_binary_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ComponentError, match=r"kube-scheduler: binary .* does not exist"):
        start("kube-scheduler", [str(tmp_path / "nope")], tmp_path / "log")


def test_stop_ends_the_whole_process_group(make_exe: MakeExe, tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    # The component forks a child and ignores SIGTERM itself: both must be gone after stop.
    exe = make_exe(
        "stubborn",
        # Written aside and renamed: the reader must never see the file created but still empty.
        f"#!/bin/sh\ntrap '' TERM\nsleep 60 &\necho $! > {child_pid}.tmp\n"
        f"mv {child_pid}.tmp {child_pid}\nwait\n",
    )
    proc = start("stubborn", [str(exe)], tmp_path / "log")
    try:
        deadline = time.monotonic() + 10
        while not child_pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(child_pid.read_text())
    finally:
        proc.stop(grace=0.5)
    assert not proc.alive()
    time.sleep(0.1)
    # Gone, or a zombie waiting for whichever process inherited it.
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"


def test_a_recorded_pid_running_another_program_is_not_ours() -> None:
    # Our own pid runs python, not the recorded binary: a recycled pid must not be signalled.
    record = Process("etcd", os.getpid(), ("/nonexistent/etcd",), Path("/dev/null"))
    assert not record.alive()
    record.stop()  # nothing to do, and above all no signal to this process
