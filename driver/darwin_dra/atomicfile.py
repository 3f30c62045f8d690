"""Replace a file atomically: readers see the old content or the new, never a mix, and a crash
at any step leaves no partial file under the real name."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class FileOps:
    """The filesystem steps of an atomic replace, one method each so tests can fail any one."""

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def rename(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def fsync_dir(self, directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes, ops: FileOps | None = None, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new content, never a mix.

    On failure the temp file is removed and the old content stays.
    """
    ops = ops or FileOps()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            ops.write(fd, data)
            ops.fsync(fd)
        finally:
            os.close(fd)
        ops.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # Without this the rename itself may be lost on power failure.
    ops.fsync_dir(path.parent)
