"""Free TCP ports on the loopback for a process that will bind them itself.

A port the kernel hands out (bind to 0, then close) comes from the ephemeral range, the same
range outgoing connections take their source ports from, and one did take etcd's in the
seconds between the check and etcd's own bind (CI, 2026-12-02). Ports handed on to another
process therefore come from below that range. A socket that stays open after binding to 0
needs none of this.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Collection
from pathlib import Path

PORT_FLOOR = 10000
_LINUX_DEFAULT_EPHEMERAL_FLOOR = 32768


def ephemeral_floor() -> int:
    """The lowest port the kernel gives outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _LINUX_DEFAULT_EPHEMERAL_FLOOR


def bind_error(port: int) -> OSError | None:
    """Why 127.0.0.1:``port`` cannot be bound now, or None when it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc
        return None


def free_port() -> int:
    """A free TCP port on 127.0.0.1 that no outgoing connection will be given meanwhile."""
    top = ephemeral_floor()
    if top - PORT_FLOOR >= 1000:
        for _ in range(200):
            port = random.randrange(PORT_FLOOR, top)
            if bind_error(port) is None:
                return port
    # A range configured too narrow below the floor: the kernel's choice, with its race.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def distinct_free_ports(count: int, taken: Collection[int | None] = ()) -> list[int]:
    """``count`` free ports, different from each other and from ``taken``."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = free_port()
        if port not in taken and port not in chosen:
            chosen.append(port)
    return chosen
