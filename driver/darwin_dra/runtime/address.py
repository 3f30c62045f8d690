"""Spike endpoints as workloads see them (DARWIN_SPIKE_ENDPOINT): ``unix:///abs/path``.

How a long socket path is reached is darwin_dra.unixsock's business."""

from __future__ import annotations

from pathlib import Path


def parse_endpoint(endpoint: str) -> Path:
    """The socket path of ``unix:///abs/path`` (as in DARWIN_SPIKE_ENDPOINT) or a bare path."""
    for prefix in ("unix://", "unix:"):
        if endpoint.startswith(prefix):
            endpoint = endpoint[len(prefix) :]
            break
    if not endpoint.startswith("/"):
        raise ValueError(f"spike endpoint {endpoint!r} is not an absolute unix socket path")
    return Path(endpoint)
