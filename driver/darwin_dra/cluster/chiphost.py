"""The chip host beside each kubelet plugin, for the local cluster, the demo and the tests.

A node's chip host starts before its plugin (the plugin waits for it up to a minute) and stops
after it; see docs/architecture.md for where it runs in a real cluster.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from darwin_dra.chiphost.app import default_socket
from darwin_dra.chiphost.client import ChipHostClient, ChipHostUnavailable


def chip_host_args(
    node: str,
    inventory: Path,
    state_dir: Path,
    *,
    calibrate: bool = False,
    fault_poll_s: float = 0.2,
    metrics_port: int | None = None,
) -> list[str]:
    """The `darwin-dra` arguments of one node's chip host."""
    args = ["chip-host", "--node-name", node, "--inventory", str(inventory),
            "--state-dir", str(state_dir), "--fault-poll-seconds", str(fault_poll_s)]  # fmt: skip
    if calibrate:
        args.append("--calibrate")
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    return args


def start_chip_host(
    node: str,
    inventory: Path,
    state_dir: Path,
    log: Path,
    *,
    timeout_s: float = 60.0,
    calibrate: bool = False,
    fault_poll_s: float = 0.2,
    metrics_port: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start `darwin-dra chip-host` for ``node`` and return once it answers on its socket."""
    args = chip_host_args(
        node, inventory, state_dir, calibrate=calibrate, fault_poll_s=fault_poll_s,
        metrics_port=metrics_port,
    )  # fmt: skip
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    socket = default_socket(state_dir)

    def exited() -> RuntimeError | None:
        if proc.poll() is None:
            return None
        tail = log.read_text(errors="replace")[-2000:]
        return RuntimeError(f"chip host of {node} exited with {proc.returncode}:\n{tail}")

    try:
        # A socket path too long for an address is reached through its directory's descriptor
        # (unixsock), so the directory the chip host makes must exist before the client does.
        while not socket.parent.is_dir() and time.monotonic() < deadline:
            if (error := exited()) is not None:
                raise error
            time.sleep(0.05)
        with ChipHostClient(socket) as client:
            while True:
                if (error := exited()) is not None:
                    raise error
                try:
                    client.wait_ready(min(1.0, max(0.1, deadline - time.monotonic())))
                    return proc
                except ChipHostUnavailable:
                    if time.monotonic() >= deadline:
                        raise
    except BaseException:
        # whatever failed, the process is not left behind (a test run had leaked three)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
