"""gRPC addresses for unix sockets whose path may exceed sun_path (107 bytes).

The per-partition socket lives under the plugin's state directory with the claim UID in its
name, which can exceed what a sockaddr_un holds. Going through /proc/self/fd/<dir fd> keeps the
address short whatever the directory's length; gRPC binds and connects with it like any path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from darwin_dra.kubelet.server import UNIX_PATH_MAX


def parse_endpoint(endpoint: str) -> Path:
    """The socket path of ``unix:///abs/path`` (as in DARWIN_SPIKE_ENDPOINT) or a bare path."""
    for prefix in ("unix://", "unix:"):
        if endpoint.startswith(prefix):
            endpoint = endpoint[len(prefix) :]
            break
    if not endpoint.startswith("/"):
        raise ValueError(f"spike endpoint {endpoint!r} is not an absolute unix socket path")
    return Path(endpoint)


@contextlib.contextmanager
def unix_target(path: Path) -> Iterator[str]:
    """A gRPC target for ``path``, valid while the context is open (it may hold a dir fd)."""
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        yield f"unix://{path}"
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"unix:///proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)
