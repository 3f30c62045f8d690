"""Supervision of the cluster's child processes: start detached, probe, report, stop.

Processes run in their own session so that `cluster up` can exit and leave them running, and so
that a whole component (and anything it forked) is stopped through its process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from darwin_dra.cluster.errors import ComponentError

log = structlog.get_logger(__name__)

Probe = Callable[[], bool]


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Process:
    """One running component: enough to probe it, and to stop it from another process."""

    name: str
    pid: int
    argv: tuple[str, ...]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _pid_runs(self.pid, self.argv[0])

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def wait_ready(self, probe: Probe, timeout: float, interval: float = 0.25) -> None:
        """Return once `probe` succeeds; raise naming the component if it dies or times out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise ComponentError(
                    self.name,
                    f"exited during start (exit code {self.exit_code()})",
                    tail(self.log_path),
                )
            with contextlib.suppress(Exception):
                if probe():
                    log.debug("component ready", component=self.name, pid=self.pid)
                    return
            if time.monotonic() > deadline:
                raise ComponentError(
                    self.name, f"not ready after {timeout:.0f}s", tail(self.log_path)
                )
            time.sleep(interval)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
        if not self.alive():
            self._reap()
            return
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive():
            log.warning("component ignored SIGTERM, killing", component=self.name, pid=self.pid)
            _signal_group(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        self._reap()

    def _reap(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=1)


def start(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    wrapper: Sequence[str] = (),
) -> Process:
    """Start `argv` detached in a new session, stdout and stderr appended to `log_path`.
    A `wrapper` (nsenter, unshare) that execs `argv` in place runs first; the record is of
    `argv`, which is what /proc shows once the wrapper has exec'd it."""
    if not Path(argv[0]).exists():
        raise ComponentError(name, f"binary {argv[0]} does not exist")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        popen = subprocess.Popen(
            [*wrapper, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    log.info("component started", component=name, pid=popen.pid, log=str(log_path))
    return Process(name, popen.pid, tuple(argv), log_path, popen)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _pid_runs(pid: int, executable: str) -> bool:
    """True if `pid` is alive and still runs `executable` (a recycled pid is not ours)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    # A script shows up as its interpreter followed by the script path.
    return executable.encode() in cmdline[:2]
