"""The SpikePort servicer and client over real unix sockets, with a real engine."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
from darwin_dra.engine import Engine, Model, Network, NeuronGroup, Reset, synapses
from darwin_dra.engine import errors as engine_errors
from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2 as pb
from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2_grpc as pb_grpc
from darwin_dra.runtime import wire
from darwin_dra.runtime.client import SpikePortClient, load_request
from darwin_dra.runtime.portmessages import network_from, status_code
from darwin_dra.runtime.spikeport import SocketAccess, SpikePorts, SpikePortServer, port_change
from darwin_dra.unixsock import grpc_target

from tests.runtime.nets import relay, sort_aer

Scenario = Callable[[SpikePortClient], Awaitable[None]]


def _serve(engine: Engine, part: int, sock: Path, scenario: Scenario) -> None:
    async def main() -> None:
        server = SpikePortServer(engine, part, sock)
        await server.start()
        try:
            async with SpikePortClient(f"unix://{sock}") as port:
                await scenario(port)
        finally:
            await server.stop()
        assert not sock.exists()

    asyncio.run(main())


def _long_dir(tmp_path: Path) -> Path:
    # Longer than sun_path allows, as the plugin's per-claim directories can be.
    d = tmp_path / ("x" * 60) / ("y" * 60)
    d.mkdir(parents=True)
    return d


def test_relay_spikes_equal_the_engines_own_record(engine: Engine, tmp_path: Path) -> None:
    n, delay = 16, 3
    net = relay(n, delay)
    rng = np.random.default_rng(7)
    steps = rng.integers(0, 40, 200).astype(np.uint64)
    ids = rng.integers(0, n, 200).astype(np.uint32)

    direct = engine.create_partition(0, domains=[0])
    engine.load(direct, net)
    engine.record(direct, range(n))
    engine.inject(direct, steps, ids)
    engine.run(direct, 50)
    want = sort_aer(*engine.read_spikes(direct))
    assert len(want) > 50  # the relay really fires

    served = engine.create_partition(0, domains=[1])
    sock = _long_dir(tmp_path) / "spike.sock"

    async def scenario(port: SpikePortClient) -> None:
        loaded = await port.load(net, export=range(n))
        assert loaded.neurons == n
        assert loaded.cores_used > 0
        assert loaded.synapse_bytes > 0
        # Two windows: spikes for the second are queued during the first.
        a = await port.step(20, steps, ids)
        b = await port.step(30)
        assert a.steps.dtype == np.uint64
        assert a.ids.dtype == np.uint32
        assert a.steps.max() < 20 <= b.steps.min()
        got = sort_aer(np.concatenate([a.steps, b.steps]), np.concatenate([a.ids, b.ids]))
        assert got == want
        assert b.counters.steps == 50
        assert b.counters.input_spikes == 200
        assert b.counters.spikes == len(want)
        assert b.counters.events > 0
        t = await port.telemetry()
        assert t.counters.steps == 50
        assert t.cores_used == loaded.cores_used

    _serve(engine, served, sock, scenario)


def test_input_delay_sets_the_firing_step(engine: Engine, tmp_path: Path) -> None:
    part = engine.create_partition(0, domains=[0])

    async def scenario(port: SpikePortClient) -> None:
        await port.load(relay(4, 3), export=[2])
        out = await port.step(12, [5, 5], [2, 1])  # input 1 is not exported
        assert (out.steps.tolist(), out.ids.tolist()) == ([8], [2])

    _serve(engine, part, tmp_path / "spike.sock", scenario)


async def _code(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


def test_errors_carry_the_right_codes_and_the_engines_message(
    engine: Engine, tmp_path: Path
) -> None:
    part = engine.create_partition(0, domains=[0])

    async def scenario(port: SpikePortClient) -> None:
        code, msg = await _code(port.step(1))
        assert code is grpc.StatusCode.FAILED_PRECONDITION
        assert msg
        bad = relay(4, 3)
        bad = Network(bad.groups, bad.src, bad.dst + 100, bad.weight, bad.delay, n_inputs=4)
        code, msg = await _code(port.load(bad))
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert "synapse 0" in msg
        huge = NeuronGroup(count=10_000_000)
        empty = synapses([], [], [], [])
        code, msg = await _code(port.load(Network((huge,), *empty)))
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert msg
        await port.load(relay(4, 3))
        code, msg = await _code(port.step(1, [0], [9]))  # no input 9
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert "input 9" in msg
        await port.step(10)
        code, msg = await _code(port.step(1, [2], [0]))  # step 2 is past
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert "past" in msg
        await port.unload()
        code, _ = await _code(port.telemetry())
        assert code is grpc.StatusCode.FAILED_PRECONDITION

    _serve(engine, part, tmp_path / "spike.sock", scenario)


def test_malformed_columns_are_invalid_argument(engine: Engine, tmp_path: Path) -> None:
    part = engine.create_partition(0, domains=[0])
    sock = tmp_path / "spike.sock"

    async def main() -> None:
        server = SpikePortServer(engine, part, sock)
        await server.start()
        try:
            with grpc_target(sock) as target:
                async with grpc.aio.insecure_channel(target) as ch:
                    stub = pb_grpc.SpikePortStub(ch)
                    req = pb.LoadRequest(groups=[pb.NeuronGroup(count=2)], src=b"\0" * 5)
                    code, msg = await _code(stub.Load(req))
                    assert code is grpc.StatusCode.INVALID_ARGUMENT
                    assert "src" in msg
                    spikes = pb.Spikes(steps=b"\0" * 16, ids=b"\0" * 4)
                    code, msg = await _code(stub.Step(pb.StepRequest(inputs=spikes, steps=1)))
                    assert code is grpc.StatusCode.INVALID_ARGUMENT
                    assert "2 spikes" in msg
        finally:
            await server.stop()

    asyncio.run(main())


def test_a_flood_is_resource_exhausted_with_the_accepted_count(
    engine: Engine, tmp_path: Path
) -> None:
    part = engine.create_partition(0, domains=[0])
    cap, flood = 1000, 1500

    async def scenario(port: SpikePortClient) -> None:
        await port.load(relay(8, 1), export=range(8), input_capacity=cap)
        steps = np.repeat(np.arange(flood // 8 + 1), 8)[:flood]
        ids = np.tile(np.arange(8), flood // 8 + 1)[:flood]
        code, msg = await _code(port.step(5, steps, ids))
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"accepted {cap} of {flood}" in msg
        # The earliest spikes went in and still run; the port keeps serving.
        out = await port.step(cap // 8 + 2)
        assert out.counters.input_spikes == cap
        assert out.counters.dropped_input == flood - cap
        assert len(out.steps) == cap

    _serve(engine, part, tmp_path / "spike.sock", scenario)


def test_the_export_buffer_is_drained_past_its_capacity(engine: Engine, tmp_path: Path) -> None:
    part = engine.create_partition(0, domains=[0])

    async def scenario(port: SpikePortClient) -> None:
        await port.load(relay(8, 1), export=range(8), export_capacity=16)
        out = await port.step(3, np.repeat([0, 1], 8), np.tile(np.arange(8), 2))
        assert len(out.steps) == 16
        assert out.counters.dropped_output == 0

    _serve(engine, part, tmp_path / "spike.sock", scenario)


def test_status_codes_by_engine_error() -> None:
    cases = {
        engine_errors.InvalidArgument("x"): grpc.StatusCode.INVALID_ARGUMENT,
        wire.WireError("x"): grpc.StatusCode.INVALID_ARGUMENT,
        engine_errors.QueueOverflow("x", 3): grpc.StatusCode.RESOURCE_EXHAUSTED,
        engine_errors.CapacityExceeded("x"): grpc.StatusCode.RESOURCE_EXHAUSTED,
        engine_errors.StateError("x"): grpc.StatusCode.FAILED_PRECONDITION,
        engine_errors.NotFound("x"): grpc.StatusCode.NOT_FOUND,
        engine_errors.InternalError("x"): grpc.StatusCode.INTERNAL,
    }
    assert {type(e): status_code(e) for e in cases} == {type(e): c for e, c in cases.items()}


def test_port_change_restarts_moved_partitions_only() -> None:
    a, b, c = Path("/a"), Path("/b"), Path("/c")
    change = port_change({a: 1, b: 2}, {a: 1, b: 5, c: 3})
    assert change.stop == (b,)
    assert change.start == {b: 5, c: 3}


def test_spike_ports_sync_starts_and_stops_servers(engine: Engine, tmp_path: Path) -> None:
    p0 = engine.create_partition(0, domains=[0])
    p1 = engine.create_partition(0, domains=[1])
    s0, s1 = tmp_path / "p0" / "spike.sock", tmp_path / "p1" / "spike.sock"
    blocker = tmp_path / "p2" / "spike.sock"
    blocker.parent.mkdir()
    blocker.write_text("not a socket")

    async def main() -> None:
        ports = SpikePorts(engine)
        failed = await ports.sync({s0: p0, s1: p1, blocker: p1})
        assert set(failed) == {blocker}
        assert "not a socket" in failed[blocker]
        assert ports.serving == {s0: p0, s1: p1}
        async with SpikePortClient(s1) as port:
            await port.load(relay(2, 1), export=[0])
            assert (await port.step(3, [0], [0])).ids.tolist() == [0]
        await ports.sync({s0: p0})
        assert ports.serving == {s0: p0}
        assert not s1.exists()
        assert not s1.parent.exists()  # its claim is gone, and the directory it made with it
        assert s0.exists()
        await ports.close()
        assert not s0.exists()
        assert s0.parent.is_dir()  # a closing chip host leaves its claims' directories

    asyncio.run(main())


def test_a_port_started_after_its_claim_was_released_leaves_no_directory(
    engine: Engine, tmp_path: Path
) -> None:
    """A sync that read the checkpoint before an unprepare starts the port after the unprepare
    removed its directory (making it again); the unprepare's own sync then leaves nothing."""
    part = engine.create_partition(0, domains=[0])
    sock = tmp_path / "claim-dev" / "spike.sock"

    async def main() -> None:
        ports = SpikePorts(engine)
        assert await ports.sync({sock: part}) == {}  # the stale view: the claim still there
        assert sock.exists()
        await ports.sync({})  # the unprepare's view
        assert list(tmp_path.iterdir()) == []

    asyncio.run(main())


def test_nir_model_groups_and_bias_cross_the_wire() -> None:
    """A network of NIR models (with bias) arrives at the spike port as it was sent."""
    groups = (
        NeuronGroup.nir(Model.CUBA_LIF, 2, tau_m=5.0, tau_syn=2.0, w_in=1.5, reset=Reset.SUBTRACT),
        NeuronGroup.nir(Model.LI, 1, tau_m=3.0, r=2.0),
    )
    net = Network(
        groups=groups,
        src=np.array([0, 1], np.uint32),
        dst=np.array([2, 2], np.uint32),
        weight=np.array([0.5, -0.25], np.float32),
        delay=np.array([1, 2], np.uint16),
        bias=np.array([0.1, 0.0, -0.2], np.float32),
    )
    back = network_from(load_request(net))
    assert back.groups == groups
    assert back.groups[0].reset is Reset.SUBTRACT
    assert back.bias is not None
    np.testing.assert_array_equal(back.bias, net.bias)
    plain = network_from(
        load_request(
            Network(
                groups=(NeuronGroup(3),),
                src=net.src,
                dst=net.dst,
                weight=net.weight,
                delay=net.delay,
            )
        )
    )
    assert plain.bias is None


@pytest.mark.parametrize(
    ("access", "socket_mode", "directory_mode"),
    [(SocketAccess(), 0o600, 0o700), (SocketAccess(gid=4242), 0o660, 0o710)],
    ids=["owner-only", "group"],
)
def test_a_spike_socket_is_reachable_only_by_its_owner_or_its_group(
    engine: Engine, tmp_path: Path, access: SocketAccess, socket_mode: int, directory_mode: int
) -> None:
    if access.gid is not None and os.geteuid() != 0:
        pytest.skip("giving a socket to another group needs root")
    part = engine.create_partition(0, domains=[0])
    sock = tmp_path / "claim-snn-dev" / "spike.sock"
    old = os.umask(0)  # the widest umask: the modes must not depend on the caller's
    seen: list[os.stat_result] = []

    async def main() -> None:
        server = SpikePortServer(engine, part, sock, access=access)
        await server.start()
        try:
            seen.extend([sock.stat(), sock.parent.stat()])
            # The owner still connects: the partition answers (it has no network yet).
            async with SpikePortClient(f"unix://{sock}") as port:
                with pytest.raises(grpc.aio.AioRpcError) as answer:
                    await port.telemetry()
                assert answer.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    finally:
        os.umask(old)
    socket_stat, directory_stat = seen
    assert stat.S_ISSOCK(socket_stat.st_mode)
    assert stat.S_IMODE(socket_stat.st_mode) == socket_mode
    assert stat.S_IMODE(directory_stat.st_mode) == directory_mode
    if access.gid is not None:
        assert socket_stat.st_gid == directory_stat.st_gid == access.gid
