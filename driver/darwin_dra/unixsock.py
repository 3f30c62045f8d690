"""Unix socket paths and the gRPC targets that reach them: the one place that knows the limits.

A sockaddr_un holds 107 bytes of path (108 with the NUL). gRPC takes a path up to that length
only in its ``unix:/abs/path`` form: its ``unix:///abs/path`` URI form already refuses 106
bytes ("Path name should not have more than 107 characters"; measured with grpcio 1.85, pinned
by tests/test_unixsock.py). So every target we bind or dial is written ``unix:<path>``.

One strategy for a path too long for a socket: reach it through ``/proc/self/fd/<dir fd>``,
which any process can do for the sockets it binds or dials itself, whatever the directory's
length. Sockets that another process finds by name (the kubelet's registration and DRA sockets)
cannot go through our descriptors; for those, :func:`fitting_path` picks a short name instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

# Bytes of path a unix socket address holds (sun_path is 108 bytes including the NUL).
UNIX_PATH_MAX = 107


def fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= UNIX_PATH_MAX


@contextlib.contextmanager
def _socket_address(path: Path) -> Iterator[str]:
    """A name for the socket at ``path`` that fits a socket address, while the context is open."""
    if fits(path):
        yield os.fspath(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        short = Path(f"/proc/self/fd/{fd}") / path.name
        if not fits(short):
            raise ValueError(f"socket name {path.name!r} is longer than {UNIX_PATH_MAX} bytes")
        yield os.fspath(short)
    finally:
        os.close(fd)


@contextlib.contextmanager
def grpc_target(path: Path) -> Iterator[str]:
    """A gRPC target for ``path``, valid while the context is open (it may hold a dir fd).

    A server binds while the context is open; a channel may reconnect later, so a client keeps
    the context open for the channel's life."""
    with _socket_address(path) as address:
        yield f"unix:{address}"


def fitting_path(directory: Path, name: str, short_name: str) -> Path:
    """``directory/name`` if it fits a socket address, else ``directory/short_name``: for
    sockets another process must find by their name."""
    for candidate in (directory / name, directory / short_name):
        if fits(candidate):
            return candidate
    raise ValueError(f"socket path {directory / short_name} is longer than {UNIX_PATH_MAX} bytes")


class SocketInUseError(RuntimeError):
    pass


def _answers(path: Path) -> bool:
    with _socket_address(path) as address, socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise
        return True


def remove_stale_socket(path: Path) -> bool:
    """Remove a leftover socket of ours at ``path``; returns whether one was removed.

    Only a socket nobody listens on is removed: a live one belongs to another instance and a
    non-socket file is not ours to delete.
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(mode):
        raise SocketInUseError(f"{path} exists and is not a socket; refusing to remove it")
    if _answers(path):
        raise SocketInUseError(f"{path} is served by another live process")
    path.unlink()
    return True
