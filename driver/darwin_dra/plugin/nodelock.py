"""The node-wide lock that serialises prepare and unprepare across plugin instances."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType


class LockTimeoutError(TimeoutError):
    pass


class NodeLock:
    """Node-wide exclusive lock (flock) serialising prepare/unprepare across plugin instances.

    flock belongs to the open file, so two instances in one process exclude each other too; the
    kernel drops it when the process dies, so a crash never leaves the node locked.
    """

    def __init__(self, path: Path, timeout_s: float = 30.0, poll_s: float = 0.05) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._fd: int | None = None

    def _try(self) -> bool:
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        return True

    def _open(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this NodeLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def _give_up(self) -> None:
        self.release()
        raise LockTimeoutError(f"could not lock {self.path} within {self.timeout_s} s")

    def acquire(self) -> None:
        self._open()
        deadline = time.monotonic() + self.timeout_s
        while not self._try():
            if time.monotonic() >= deadline:
                self._give_up()
            time.sleep(self.poll_s)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> NodeLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
