"""The plugin's gRPC face over real unix sockets, with a real grpc.aio client channel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from darwin_dra.kubelet.health_service import DeviceHealthState, Health, HealthHub
from darwin_dra.kubelet.preparer import ClaimRef, PreparedDevice, PrepareResult
from darwin_dra.kubelet.proto_gen.dra_health_v1 import api_pb2 as h_v1
from darwin_dra.kubelet.proto_gen.dra_health_v1 import api_pb2_grpc as h_v1_grpc
from darwin_dra.kubelet.proto_gen.dra_health_v1alpha1 import api_pb2 as h_v1alpha1
from darwin_dra.kubelet.proto_gen.dra_health_v1alpha1 import api_pb2_grpc as h_v1alpha1_grpc
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2 as v1
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2_grpc as v1_grpc
from darwin_dra.kubelet.proto_gen.dra_v1beta1 import api_pb2 as v1beta1
from darwin_dra.kubelet.proto_gen.dra_v1beta1 import api_pb2_grpc as v1beta1_grpc
from darwin_dra.kubelet.proto_gen.pluginregistration_v1 import api_pb2 as reg
from darwin_dra.kubelet.proto_gen.pluginregistration_v1 import api_pb2_grpc as reg_grpc
from darwin_dra.kubelet.server import PluginServer, PluginServerConfig, socket_paths
from darwin_dra.unixsock import SocketInUseError, grpc_target, remove_stale_socket
from grpc_health.v1 import health_pb2, health_pb2_grpc

POOL = "node-a"


class MemoryPreparer:
    """A real, in-memory implementation of the Preparer protocol.

    Claims whose name starts with "bad" fail; claims in ``shared`` get a share id; unprepare of
    an unknown claim succeeds, as the kubelet requires.
    """

    def __init__(self, shared: set[str] | None = None, explode: bool = False) -> None:
        self.prepared: dict[str, PrepareResult] = {}
        self.calls: list[tuple[str, list[str]]] = []
        self.shared = shared or set()
        self.explode = explode

    async def prepare(self, claims: Sequence[ClaimRef]) -> Mapping[str, PrepareResult]:
        self.calls.append(("prepare", [c.uid for c in claims]))
        if self.explode:
            raise OSError("engine gone")
        out: dict[str, PrepareResult] = {}
        for c in claims:
            if c.name.startswith("bad"):
                out[c.uid] = PrepareResult(error=f"claim {c.namespace}/{c.name} is not allocated")
                continue
            dev = PreparedDevice(
                request_names=("snn",),
                pool_name=POOL,
                device_name="chip-0-domain-3",
                cdi_device_ids=(f"darwin.snn.io/partition={c.uid}-snn-chip-0-domain-3",),
                share_id=f"share-{c.uid}" if c.uid in self.shared else None,
            )
            out[c.uid] = self.prepared.setdefault(c.uid, PrepareResult(devices=(dev,)))
        return out

    async def unprepare(self, claims: Sequence[ClaimRef]) -> Mapping[str, str | None]:
        self.calls.append(("unprepare", [c.uid for c in claims]))
        for c in claims:
            self.prepared.pop(c.uid, None)
        return {c.uid: None for c in claims}


def run_with_server(
    tmp_path: Path,
    body: Callable[[PluginServer], Awaitable[None]],
    preparer: MemoryPreparer | None = None,
    hub: HealthHub | None = None,
    pod_uid: str | None = None,
    health_port: int | None = None,
) -> None:
    async def main() -> None:
        config = PluginServerConfig(
            plugins_registry=tmp_path / "plugins_registry",
            plugins_dir=tmp_path / "plugins",
            pod_uid=pod_uid,
            grace_s=1.0,
            health_port=health_port,
        )
        server = PluginServer(config, preparer or MemoryPreparer(), hub or HealthHub())
        await server.start()
        try:
            await asyncio.wait_for(body(server), timeout=20)
        finally:
            await server.stop()

    asyncio.run(main())


@contextlib.asynccontextmanager
async def channel(path: Path) -> AsyncIterator[grpc.aio.Channel]:
    # the kubelet's way to a socket would be its name; a test's tmp dir may be too long for that
    with grpc_target(path) as target:
        async with grpc.aio.insecure_channel(target) as ch:
            yield ch


def test_registration_get_info_and_notify(tmp_path: Path) -> None:
    async def body(server: PluginServer) -> None:
        async with channel(server.paths.registration) as ch:
            stub = reg_grpc.RegistrationStub(ch)
            info = await stub.GetInfo(reg.InfoRequest())
            assert info.type == "DRAPlugin"
            assert info.name == "darwin.snn.io"
            assert info.endpoint == str(tmp_path / "plugins" / "darwin.snn.io" / "dra.sock")
            assert list(info.supported_versions) == [
                "v1.DRAPlugin",
                "v1beta1.DRAPlugin",
                "v1alpha1.DRAResourceHealth",
                "v1.DRAResourceHealth",
            ]
            assert server.registration.status is None
            await stub.NotifyRegistrationStatus(
                reg.RegistrationStatus(plugin_registered=False, error="version mismatch")
            )
            status = await server.registration.wait_for_status(timeout=5)
            assert (status.registered, status.error) == (False, "version mismatch")
            await stub.NotifyRegistrationStatus(reg.RegistrationStatus(plugin_registered=True))
            assert server.registration.status is not None
            assert server.registration.status.registered

    run_with_server(tmp_path, body)


def test_registration_socket_is_where_the_kubelet_looks(tmp_path: Path) -> None:
    async def body(server: PluginServer) -> None:
        assert server.paths.registration == tmp_path / "plugins_registry" / "darwin.snn.io-reg.sock"
        assert server.paths.registration.is_socket()
        assert server.paths.dra.is_socket()
        for path in (server.paths.registration, server.paths.dra):
            st = path.stat()
            assert stat.S_IMODE(st.st_mode) == 0o600, path  # only the kubelet (root) calls
            assert st.st_uid == os.geteuid()

    run_with_server(tmp_path, body)
    # Graceful stop removes our sockets.
    assert not (tmp_path / "plugins_registry" / "darwin.snn.io-reg.sock").exists()
    assert not (tmp_path / "plugins" / "darwin.snn.io" / "dra.sock").exists()


def test_stop_withdraws_the_registration_first_and_drains_the_dra_socket(tmp_path: Path) -> None:
    # A rolling update: once the registration socket is gone the kubelet calls the other
    # instance, but a call it had already routed here must still be answered.
    async def main() -> None:
        config = PluginServerConfig(
            plugins_registry=tmp_path / "plugins_registry",
            plugins_dir=tmp_path / "plugins",
            grace_s=1.0,
            drain_s=1.5,
        )
        server = PluginServer(config, MemoryPreparer(), HealthHub())
        await server.start()
        stopping = asyncio.create_task(server.stop())
        for _ in range(100):
            if not server.paths.registration.exists():
                break
            await asyncio.sleep(0.01)
        assert not server.paths.registration.exists()  # withdrawn at once
        async with channel(server.paths.dra) as ch:
            resp = await v1_grpc.DRAPluginStub(ch).NodePrepareResources(
                v1.NodePrepareResourcesRequest(
                    claims=[v1.Claim(namespace="ns", uid="uid-1", name="c1")]
                ),
                timeout=5,
            )
            assert resp.claims["uid-1"].error == ""  # still served during the drain
        await stopping
        assert not server.paths.dra.exists()

    asyncio.run(main())


def test_v1_prepare_and_unprepare(tmp_path: Path) -> None:
    preparer = MemoryPreparer(shared={"uid-2"})

    async def body(server: PluginServer) -> None:
        async with channel(server.paths.dra) as ch:
            stub = v1_grpc.DRAPluginStub(ch)
            resp = await stub.NodePrepareResources(
                v1.NodePrepareResourcesRequest(
                    claims=[
                        v1.Claim(namespace="ns", uid="uid-1", name="c1"),
                        v1.Claim(namespace="ns", uid="uid-2", name="c2"),
                        v1.Claim(namespace="ns", uid="uid-3", name="bad-one"),
                    ]
                )
            )
            assert set(resp.claims) == {"uid-1", "uid-2", "uid-3"}
            one = resp.claims["uid-1"]
            assert one.error == ""
            assert [d.device_name for d in one.devices] == ["chip-0-domain-3"]
            assert list(one.devices[0].request_names) == ["snn"]
            assert one.devices[0].pool_name == POOL
            assert list(one.devices[0].cdi_device_ids) == [
                "darwin.snn.io/partition=uid-1-snn-chip-0-domain-3"
            ]
            assert not one.devices[0].HasField("share_id")
            assert resp.claims["uid-2"].devices[0].share_id == "share-uid-2"
            assert "not allocated" in resp.claims["uid-3"].error

            un = await stub.NodeUnprepareResources(
                v1.NodeUnprepareResourcesRequest(
                    claims=[
                        v1.Claim(namespace="ns", uid="uid-1", name="c1"),
                        v1.Claim(namespace="ns", uid="never", name="x"),
                    ]
                )
            )
            assert {k: v.error for k, v in un.claims.items()} == {"uid-1": "", "never": ""}
        assert set(preparer.prepared) == {"uid-2"}

    run_with_server(tmp_path, body, preparer=preparer)


def test_a_uid_named_twice_in_one_call_is_prepared_once_or_refused(tmp_path: Path) -> None:
    # Found by the dra fuzz target: the same uid three times in one call made the driver
    # prepare it, then undo the first preparation while "retrying" the second.
    preparer = MemoryPreparer()

    async def body(server: PluginServer) -> None:
        async with channel(server.paths.dra) as ch:
            stub = v1_grpc.DRAPluginStub(ch)
            same = v1.Claim(namespace="ns", uid="uid-1", name="c1")
            other = v1.Claim(namespace="ns", uid="uid-2", name="c2")
            renamed = v1.Claim(namespace="ns", uid="uid-2", name="c2-again")
            req = v1.NodePrepareResourcesRequest(claims=[same, same, other, renamed])
            resp = await stub.NodePrepareResources(req)
            assert resp.claims["uid-1"].error == ""
            assert "named twice in one request, as ns/c2 and ns/c2-again" in (
                resp.claims["uid-2"].error
            )
            un = await stub.NodeUnprepareResources(
                v1.NodeUnprepareResourcesRequest(claims=[same, same, other, renamed])
            )
            assert un.claims["uid-1"].error == ""
            assert "named twice" in un.claims["uid-2"].error

    run_with_server(tmp_path, body, preparer=preparer)
    assert preparer.calls == [("prepare", ["uid-1"]), ("unprepare", ["uid-1"])]


def test_v1beta1_drops_share_id_but_keeps_the_rest(tmp_path: Path) -> None:
    preparer = MemoryPreparer(shared={"uid-9"})

    async def body(server: PluginServer) -> None:
        async with channel(server.paths.dra) as ch:
            stub = v1beta1_grpc.DRAPluginStub(ch)
            resp = await stub.NodePrepareResources(
                v1beta1.NodePrepareResourcesRequest(
                    claims=[v1beta1.Claim(namespace="ns", uid="uid-9", name="c9")]
                )
            )
            dev = resp.claims["uid-9"].devices[0]
            assert dev.device_name == "chip-0-domain-3"
            assert list(dev.cdi_device_ids) == ["darwin.snn.io/partition=uid-9-snn-chip-0-domain-3"]
            # The v1beta1 wire has no field 5; decode as v1 to prove nothing extra was sent.
            as_v1 = v1.NodePrepareResourcesResponse.FromString(resp.SerializeToString())
            assert not as_v1.claims["uid-9"].devices[0].HasField("share_id")
            un = await stub.NodeUnprepareResources(
                v1beta1.NodeUnprepareResourcesRequest(
                    claims=[v1beta1.Claim(namespace="ns", uid="uid-9", name="c9")]
                )
            )
            assert un.claims["uid-9"].error == ""
        assert preparer.prepared == {}

    run_with_server(tmp_path, body, preparer=preparer)


def test_a_crashing_preparer_becomes_per_claim_errors(tmp_path: Path) -> None:
    async def body(server: PluginServer) -> None:
        async with channel(server.paths.dra) as ch:
            resp = await v1_grpc.DRAPluginStub(ch).NodePrepareResources(
                v1.NodePrepareResourcesRequest(
                    claims=[
                        v1.Claim(namespace="a", uid="u1", name="n1"),
                        v1.Claim(namespace="a", uid="u2", name="n2"),
                    ]
                )
            )
            assert {k: v.error for k, v in resp.claims.items()} == {
                "u1": "prepare failed: engine gone",
                "u2": "prepare failed: engine gone",
            }

    run_with_server(tmp_path, body, preparer=MemoryPreparer(explode=True))


def _state(device: str, health: Health, t: int, msg: str = "") -> DeviceHealthState:
    return DeviceHealthState(POOL, device, health, last_updated=t, timeout_seconds=60, message=msg)


@pytest.mark.parametrize(
    ("stub_cls", "module"),
    [
        (h_v1alpha1_grpc.DRAResourceHealthStub, h_v1alpha1),
        (h_v1_grpc.DRAResourceHealthStub, h_v1),
    ],
)
def test_health_stream_snapshot_then_changes(tmp_path: Path, stub_cls: Any, module: Any) -> None:
    hub = HealthHub()
    hub.publish(
        [_state("chip-0", Health.HEALTHY, 100), _state("chip-0-domain-1", Health.HEALTHY, 100)]
    )

    async def body(server: PluginServer) -> None:
        async with channel(server.paths.dra) as ch:
            stream = stub_cls(ch).NodeWatchResources(module.NodeWatchResourcesRequest())
            first = await stream.read()
            assert [
                (d.device.pool_name, d.device.device_name, d.health) for d in first.devices
            ] == [
                (POOL, "chip-0", module.HEALTHY),
                (POOL, "chip-0-domain-1", module.HEALTHY),
            ]
            assert first.devices[0].health_check_timeout_seconds == 60
            # Republishing an identical state sends nothing; a change sends only that device.
            hub.publish([_state("chip-0", Health.HEALTHY, 100)])
            hub.publish([_state("chip-0-domain-1", Health.UNHEALTHY, 130, "3 cores failed")])
            second = await stream.read()
            assert [
                (d.device.device_name, d.health, d.last_updated_time, d.message)
                for d in second.devices
            ] == [("chip-0-domain-1", module.UNHEALTHY, 130, "3 cores failed")]
            stream.cancel()

    run_with_server(tmp_path, body, hub=hub)


def test_health_stream_ends_on_graceful_stop(tmp_path: Path) -> None:
    hub = HealthHub()
    hub.publish([_state("chip-0", Health.HEALTHY, 1)])

    async def main() -> None:
        config = PluginServerConfig(
            plugins_registry=tmp_path / "r", plugins_dir=tmp_path / "p", grace_s=2.0
        )
        server = PluginServer(config, MemoryPreparer(), hub)
        await server.start()
        async with channel(server.paths.dra) as ch:
            stream = h_v1_grpc.DRAResourceHealthStub(ch).NodeWatchResources(
                h_v1.NodeWatchResourcesRequest()
            )
            responses = aiter(stream)
            assert len((await anext(responses)).devices) == 1
            await server.stop()
            # The stream closes cleanly instead of hanging until the kubelet gives up.
            assert [r async for r in responses] == []
            assert await stream.code() == grpc.StatusCode.OK

    asyncio.run(main())


def test_hub_resyncs_a_reader_that_fell_behind() -> None:
    async def main() -> None:
        hub = HealthHub(max_pending=2)
        watch = hub.watch()
        assert await anext(watch) == []
        for t in range(5):
            hub.publish([_state(f"chip-{t}", Health.HEALTHY, t)])
        # The backlog overflowed: the reader gets the whole picture once, not five batches.
        assert [s.device for s in await anext(watch)] == [f"chip-{t}" for t in range(5)]
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await anext(watch)

    asyncio.run(main())


def test_grpc_health_reports_serving_only_while_sockets_answer(tmp_path: Path) -> None:
    async def body(server: PluginServer) -> None:
        for path in (server.paths.registration, server.paths.dra):
            async with channel(path) as ch:
                resp = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service="darwin.snn.io")
                )
                assert resp.status == health_pb2.HealthCheckResponse.SERVING
        # Take the registration socket away: the next probe must notice and say so on the other.
        server.paths.registration.unlink()
        assert not await server.probe()
        assert not server.serving
        async with channel(server.paths.dra) as ch:
            resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
            assert resp.status == health_pb2.HealthCheckResponse.NOT_SERVING

    run_with_server(tmp_path, body)


def test_liveness_probe_port_tells_the_same_as_the_sockets(tmp_path: Path) -> None:
    """The kubelet's gRPC liveness probe reaches a TCP port: it must say what the sockets say."""

    async def check(port: int) -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
            return int(resp.status)

    async def body(server: PluginServer) -> None:
        assert server.health_port
        assert await check(server.health_port) == health_pb2.HealthCheckResponse.SERVING
        server.paths.dra.unlink()  # the DRA socket is gone: not alive any more
        assert not await server.probe()
        assert await check(server.health_port) == health_pb2.HealthCheckResponse.NOT_SERVING

    run_with_server(tmp_path, body, health_port=0)  # 0: any free port


def test_per_pod_socket_names() -> None:
    uid = "0b8c3a4e-1111-2222-3333-444455556666"
    kubelet = Path("/var/lib/kubelet")
    paths = socket_paths(kubelet / "plugins_registry", kubelet / "plugins", pod_uid=uid)
    assert paths.registration == kubelet / f"plugins_registry/darwin.snn.io-{uid}-reg.sock"
    assert paths.dra == kubelet / f"plugins/darwin.snn.io/dra-{uid}.sock"
    deep = Path("/" + "d" * 60)
    long_paths = socket_paths(deep, deep, pod_uid=uid)
    for path in (long_paths.registration, long_paths.dra):
        assert len(str(path)) <= 107
        assert uid not in path.name
    assert long_paths.registration.name.startswith("darwin.snn.io-")
    assert long_paths.registration.name.endswith("-reg.sock")
    other = socket_paths(deep, deep, pod_uid=uid.replace("0b8c", "0b8d"))
    assert other.registration != long_paths.registration
    assert other.dra != long_paths.dra
    with pytest.raises(ValueError, match="longer than 107"):
        socket_paths(Path("/" + "d" * 100), deep, pod_uid=uid)


def test_per_pod_sockets_serve() -> None:
    uid = "0b8c3a4e-1111-2222-3333-444455556666"

    async def body(server: PluginServer) -> None:
        assert server.paths.registration.name == f"darwin.snn.io-{uid}-reg.sock"
        async with channel(server.paths.registration) as ch:
            info = await reg_grpc.RegistrationStub(ch).GetInfo(reg.InfoRequest())
            assert info.endpoint.endswith(f"/darwin.snn.io/dra-{uid}.sock")

    # pytest's tmp_path is too long for a unix socket path with a pod UID in it.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="dra") as short:
        run_with_server(Path(short), body, pod_uid=uid)


def test_stale_socket_removed_live_socket_and_files_kept(tmp_path: Path) -> None:
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(os.fspath(stale))  # bound, never listening, closed: what a crash leaves
    assert remove_stale_socket(stale)
    assert not stale.exists()

    live = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(os.fspath(live))
        s.listen(1)
        with pytest.raises(SocketInUseError, match="another live process"):
            remove_stale_socket(live)
        assert live.exists()

    plain = tmp_path / "plain.sock"
    plain.write_text("not ours")
    with pytest.raises(SocketInUseError, match="not a socket"):
        remove_stale_socket(plain)
    assert plain.read_text() == "not ours"
    assert not remove_stale_socket(tmp_path / "absent.sock")


def test_start_replaces_a_stale_socket_of_a_crashed_instance(tmp_path: Path) -> None:
    reg_dir = tmp_path / "plugins_registry"
    reg_dir.mkdir()
    leftover = reg_dir / "darwin.snn.io-reg.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, grpc_target(leftover) as t:
        s.bind(t.removeprefix("unix:"))

    async def body(server: PluginServer) -> None:
        async with channel(server.paths.registration) as ch:
            info = await reg_grpc.RegistrationStub(ch).GetInfo(reg.InfoRequest())
            assert info.name == "darwin.snn.io"

    run_with_server(tmp_path, body)
