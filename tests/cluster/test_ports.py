"""Ports handed to another process come from below the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from darwin_dra.cluster import ports


def test_listening_ports_come_from_below_the_ephemeral_range() -> None:
    # An outgoing connection's source port comes from the ephemeral range: a port from there
    # can be taken between our check and the component's own bind.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    taken = {ports.free_port()}
    chosen = ports.distinct_free_ports(20, taken=taken)
    assert len(set(chosen)) == 20
    assert not taken & set(chosen)
    for port in chosen:
        assert ports.PORT_FLOOR <= port < low
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # free when handed out


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # A range of exactly 1000 ports below the floor, one of them held open by us: every pick
    # from 200 tries must skip it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        picks = iter([busy] * 50 + list(range(ports.PORT_FLOOR, ports.PORT_FLOOR + 1000)))
        monkeypatch.setattr(ports.random, "randrange", lambda _a, _b: next(picks))
        monkeypatch.setattr(ports, "ephemeral_floor", lambda: ports.PORT_FLOOR + 1000)
        assert ports.free_port() != busy


def test_a_narrow_range_falls_back_to_the_kernels_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "ephemeral_floor", lambda: ports.PORT_FLOOR + 10)
    port = ports.free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_an_unreadable_range_means_linuxs_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ports, "Path", lambda _p: Path("/nonexistent/ip_local_port_range"))
    assert ports.ephemeral_floor() == 32768
