"""start_chip_host gives a running chip host or an error, never a process left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from darwin_dra.chiphost.client import ChipHostUnavailable
from darwin_dra.cluster.chiphost import start_chip_host

from tests.chiphost.conftest import NODE, write_inventory


def _chip_hosts_of(state_dir: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"chip-host" in cmdline and os.fsencode(state_dir) in cmdline:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("long_path", [False, True])
def test_a_chip_host_not_ready_in_time_is_killed_not_left(tmp_path: Path, long_path: bool) -> None:
    # A socket path too long for an address, reached before its directory existed, raised
    # FileNotFoundError and left the chip host running (three of them outlived a test run).
    state = tmp_path / ("s" * 120 if long_path else "state")
    with pytest.raises((ChipHostUnavailable, OSError)):
        start_chip_host(
            NODE, write_inventory(tmp_path / "i.yaml"), state, tmp_path / "ch.log", timeout_s=0.01
        )
    assert _chip_hosts_of(state) == []
