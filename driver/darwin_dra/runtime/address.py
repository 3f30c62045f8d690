"""The addresses the runtime takes, parsed in one place: spike endpoints as workloads see them
(DARWIN_SPIKE_ENDPOINT, ``unix:///abs/path``) and stage addresses (``tcp://host:port`` or
``unix:///abs/path``).

How a long socket path is reached is darwin_dra.unixsock's business."""

from __future__ import annotations

from pathlib import Path


def _unix_path(path: str, address: str, what: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"{what} {address!r} is not an absolute unix socket path")
    return path


def parse_endpoint(endpoint: str) -> Path:
    """The socket path of ``unix:///abs/path`` (as in DARWIN_SPIKE_ENDPOINT) or a bare path."""
    path = endpoint
    for prefix in ("unix://", "unix:"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    return Path(_unix_path(path, path, "spike endpoint"))


def parse_address(address: str) -> tuple[str, str, int]:
    """``tcp://host:port`` or ``unix:///path`` -> (kind, host or path, port)."""
    if address.startswith("unix://"):
        return "unix", _unix_path(address[len("unix://") :], address, "address"), 0
    if address.startswith("tcp://"):
        host, sep, port = address[len("tcp://") :].rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"{address}: expected tcp://host:port")
        return "tcp", host.strip("[]"), int(port)
    raise ValueError(f"{address}: expected tcp://host:port or unix:///path")
