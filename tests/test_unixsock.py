"""Socket paths at and past the 107-byte limit of a unix socket address, over real gRPC."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from darwin_dra.unixsock import (
    UNIX_PATH_MAX,
    SocketInUseError,
    fitting_path,
    grpc_target,
    remove_stale_socket,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

# pytest's first base temp dir (pytest-0) put a real test's spike socket at exactly 107 bytes.
LENGTHS = [UNIX_PATH_MAX - 2, UNIX_PATH_MAX - 1, UNIX_PATH_MAX, UNIX_PATH_MAX + 1, 300]


def socket_of_length(root: Path, length: int) -> Path:
    """A path of exactly ``length`` bytes under ``root``, its directories created."""
    name = "spike.sock"
    room = length - len(os.fsencode(root)) - len(name) - 1  # bytes of "/part" components
    assert room >= 2, "the test's temporary directory is too long for this length"
    parts = []
    while room > 0:
        take = min(room, 200)
        if room - take == 1:  # a lone byte cannot make a "/x" component
            take -= 2
        parts.append("d" * (take - 1))
        room -= take
    directory = root.joinpath(*parts)
    directory.mkdir(parents=True)
    path = directory / name
    assert len(os.fsencode(path)) == length
    return path


@pytest.fixture
def short_root() -> Iterator[Path]:
    # tmp_path itself can be long; a short root lets the test reach every length exactly.
    root = Path(tempfile.mkdtemp(prefix="us", dir="/tmp"))
    yield root
    shutil.rmtree(root)


async def serve_and_call(path: Path) -> str:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    with grpc_target(path) as target:
        assert server.add_insecure_port(target) != 0
    await server.start()
    try:
        # Whatever route bound it, the socket file is at the real path.
        assert path.is_socket()
        with grpc_target(path) as target:
            async with grpc.aio.insecure_channel(target) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    finally:
        await server.stop(0)


@pytest.mark.parametrize("length", LENGTHS)
def test_grpc_binds_and_dials_every_length(short_root: Path, length: int) -> None:
    path = socket_of_length(short_root, length)
    assert asyncio.run(serve_and_call(path)) == "SERVING"


def test_the_direct_route_ends_exactly_at_the_limit(short_root: Path) -> None:
    at = socket_of_length(short_root / "a", UNIX_PATH_MAX)
    past = socket_of_length(short_root / "b", UNIX_PATH_MAX + 1)
    with grpc_target(at) as target:
        assert target == f"unix:{at}"
    with grpc_target(past) as target:
        assert target.startswith("unix:/proc/self/fd/")
        assert target.endswith("/spike.sock")


def test_the_limit_is_the_kernels(short_root: Path) -> None:
    at = socket_of_length(short_root / "a", UNIX_PATH_MAX)
    past = socket_of_length(short_root / "b", UNIX_PATH_MAX + 1)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.fspath(at))
    with socket.socket(socket.AF_UNIX) as sock, pytest.raises(OSError, match="too long"):
        sock.bind(os.fspath(past))


@pytest.mark.parametrize("length", [UNIX_PATH_MAX, UNIX_PATH_MAX + 1])
def test_stale_and_live_sockets_past_the_limit(short_root: Path, length: int) -> None:
    path = socket_of_length(short_root, length)
    with grpc_target(path) as target:
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(target.removeprefix("unix:"))
        stale.close()
    assert remove_stale_socket(path)
    assert not path.exists()

    async def live() -> None:
        server = grpc.aio.server()
        with grpc_target(path) as target:
            server.add_insecure_port(target)
        await server.start()
        try:
            with pytest.raises(SocketInUseError, match="another live process"):
                remove_stale_socket(path)
        finally:
            await server.stop(0)

    asyncio.run(live())


def test_fitting_path_prefers_the_full_name_up_to_the_limit() -> None:
    directory = Path("/" + "d" * (UNIX_PATH_MAX - len("/x.sock") - 1))
    assert fitting_path(directory, "x.sock", "s.sock") == directory / "x.sock"
    assert fitting_path(directory, "xy.sock", "s.sock") == directory / "s.sock"
    with pytest.raises(ValueError, match="longer than 107"):
        fitting_path(directory, "xy.sock", "st.sock")
