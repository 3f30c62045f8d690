"""Stages of a split model: the pure parts, and a real two-stage pipeline against the same
network run unsplit in one partition."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.cli.main import main as cli_main
from darwin_dra.engine import Engine, Network, NeuronGroup, synapses
from darwin_dra.runtime import wire
from darwin_dra.runtime.address import parse_address
from darwin_dra.runtime.spikeport import SpikePortServer
from darwin_dra.runtime.stage import (
    Stage,
    StageConfig,
    StageNetwork,
    load_stage,
    next_window,
    read_frame,
    route,
    save_stage,
)

from tests.runtime.nets import sort_aer

N, HOP, STEPS = 32, 3, 200
SOURCE = NeuronGroup(count=N, v_reset=0.0, t_ref=0.0, poisson_rate_hz=400.0, poisson_weight=30.0)
RELAY = NeuronGroup(count=N, v_reset=0.0, t_ref=0.0)


def test_next_window_waits_for_the_upstream() -> None:
    assert next_window(0, 25, 10, final=False) == 10
    assert next_window(20, 25, 10, final=False) == 0  # step 25.. may still get input
    assert next_window(20, 25, 10, final=True) == 5
    assert next_window(25, 25, 10, final=True) == 0


def test_route_maps_upstream_neurons_to_inputs() -> None:
    inputs_from = np.array([7, 3, 9], np.uint32)
    found, inputs = route(np.array([3, 4, 9, 7, 3], np.uint32), inputs_from)
    assert found.tolist() == [True, False, True, True, True]
    assert inputs.tolist() == [1, 2, 0, 1]


def test_frames_round_trip_and_refuse_bad_bytes() -> None:
    frame = wire.Frame(10, 5, np.array([10, 14], np.uint64), np.array([3, 1], np.uint32))
    data = wire.encode_frame(frame)
    assert len(data) == wire.HEADER.size + 2 * 12
    count, start, steps = wire.decode_header(data[: wire.HEADER.size])
    back = wire.decode_body(count, start, steps, data[wire.HEADER.size :])
    assert (back.window_start, back.window_steps) == (10, 5)
    assert back.steps.tolist() == [10, 14]
    assert back.ids.tolist() == [3, 1]
    with pytest.raises(wire.WireError, match="magic"):
        wire.decode_header(b"XXXX" + data[4 : wire.HEADER.size])
    with pytest.raises(wire.WireError, match="outside"):
        wire.encode_frame(wire.Frame(10, 4, frame.steps, frame.ids))
    with pytest.raises(wire.WireError, match="24 bytes"):
        wire.decode_body(count, start, steps, data[wire.HEADER.size : -1])


def test_a_stream_cut_inside_a_frame_is_an_error() -> None:
    data = wire.encode_frame(wire.Frame(0, 1, np.zeros(1, np.uint64), np.zeros(1, np.uint32)))

    async def read(chunk: bytes) -> wire.Frame | None:
        reader = asyncio.StreamReader()
        reader.feed_data(chunk)
        reader.feed_eof()
        return await read_frame(reader, window=1, ids=1)

    assert asyncio.run(read(b"")) is None
    assert asyncio.run(read(data)) is not None
    for cut in (5, len(data) - 1):
        with pytest.raises(wire.WireError, match="ended inside"):
            asyncio.run(read(data[:cut]))


def test_an_oversized_frame_is_refused_from_its_header_and_the_honest_maximum_passes() -> None:
    window, ids = 9, 4  # a stage of --window 9 whose inputs come from 4 upstream neurons
    steps = np.repeat(np.arange(window, dtype=np.uint64), ids)  # every neuron, every step
    honest = wire.Frame(0, window, steps, np.tile(np.arange(ids, dtype=np.uint32), window))
    assert honest.steps.size == wire.frame_limit(window, ids) == 36

    async def read(data: bytes, eof: bool = True) -> wire.Frame | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        if eof:
            reader.feed_eof()
        return await asyncio.wait_for(read_frame(reader, window, ids), 5)

    back = asyncio.run(read(wire.encode_frame(honest)))
    assert back is not None
    assert back.ids.tolist() == honest.ids.tolist()
    # A peer's header that claims the most a frame may hold (2^24 spikes, a 201 MB body), or
    # one spike past the honest maximum, or more steps than the window: refused from the 24
    # header bytes alone. The stream stays open and no body follows, so a reader that waited
    # for the body (allocating as it came) would time out instead of refusing.
    for count, claimed, match in (
        (wire.MAX_FRAME_SPIKES, window, r"16777216 spikes exceeds the limit of 36 for 9 steps x 4"),
        (37, window, "limit of 36"),
        (0, window + 1, "10 steps exceeds this stage's window of 9"),
    ):
        head = wire.HEADER.pack(wire.MAGIC, count, 0, claimed)
        with pytest.raises(wire.WireError, match=match):
            asyncio.run(read(head, eof=False))


def test_addresses_and_configs_are_checked() -> None:
    assert parse_address("tcp://127.0.0.1:9000") == ("tcp", "127.0.0.1", 9000)
    assert parse_address("tcp://[::1]:9") == ("tcp", "::1", 9)
    assert parse_address("unix:///run/a.sock") == ("unix", "/run/a.sock", 0)
    for bad in ("127.0.0.1:9", "tcp://host", "unix://rel.sock"):
        with pytest.raises(ValueError, match=r"expected|absolute"):
            parse_address(bad)
    with pytest.raises(ValueError, match="needs --steps"):
        StageConfig("unix:///x", Path("n.npz"))
    with pytest.raises(ValueError, match="at most one input"):
        StageNetwork(_relay_stage(), np.zeros(0, np.uint32), np.zeros(N, np.uint32))


def _source() -> Network:
    return Network((SOURCE,), *synapses([], [], [], []), seed=11)


def _relay_stage() -> Network:
    ids = np.arange(N)
    cols = synapses(N + ids, ids, np.full(N, 30.0), np.full(N, HOP))
    return Network((RELAY,), *cols, n_inputs=N, seed=5)


def _unsplit() -> Network:
    ids = np.arange(N)
    cols = synapses(ids, N + ids, np.full(N, 30.0), np.full(N, HOP))
    return Network((SOURCE, RELAY), *cols, seed=11)


def test_stage_files_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "b.npz"
    save_stage(path, _relay_stage(), export=range(N), inputs_from=np.arange(N)[::-1])
    spec = load_stage(path)
    net = _relay_stage()
    assert spec.network.groups == net.groups
    assert (spec.network.n_inputs, spec.network.seed) == (N, 5)
    assert np.array_equal(spec.network.delay, net.delay)
    assert spec.inputs_from.tolist() == list(range(N))[::-1]
    assert spec.export.tolist() == list(range(N))


def _unsplit_spikes(engine: Engine) -> list[tuple[int, int]]:
    part = engine.create_partition(1, domains=[0])
    engine.load(part, _unsplit())
    engine.record(part, range(2 * N))
    engine.run(part, STEPS)
    steps, ids = engine.read_spikes(part)
    engine.destroy_partition(part)
    return sort_aer(steps, ids)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_two_stages_equal_the_unsplit_network(
    engine: Engine, tmp_path: Path, transport: str
) -> None:
    want = _unsplit_spikes(engine)
    want_a = [(s, i) for s, i in want if i < N]
    want_b = [(s, i - N) for s, i in want if i >= N]
    assert len(want_a) > 100  # the source really drives the cut
    assert len(want_b) == sum(1 for s, _ in want_a if s < STEPS - HOP)  # B relays each

    a_net, b_net = tmp_path / "a.npz", tmp_path / "b.npz"
    save_stage(a_net, _source(), export=range(N))
    save_stage(b_net, _relay_stage(), export=range(N))
    pa = engine.create_partition(0, domains=[0])
    pb = engine.create_partition(0, domains=[1])
    sa, sb = tmp_path / "a.sock", tmp_path / "b.sock"
    listen = "tcp://127.0.0.1:0" if transport == "tcp" else f"unix://{tmp_path / 'b-in.sock'}"

    async def main() -> tuple[list[tuple[int, int]], int]:
        servers = [SpikePortServer(engine, pa, sa), SpikePortServer(engine, pb, sb)]
        for s in servers:
            await s.start()
        try:
            b = Stage(StageConfig(f"unix://{sb}", b_net, window=9, listen=listen))
            address = await b.listen()
            a = Stage(StageConfig(f"unix://{sa}", a_net, window=7, downstream=address, steps=STEPS))
            report_a, report_b = await asyncio.gather(a.run(), b.run())
        finally:
            for s in servers:
                await s.stop()
        assert report_a.exported == report_b.received == len(want_a)
        assert report_b.unrouted == 0
        assert report_b.steps == STEPS
        return sort_aer(*report_b.spikes()), report_a.windows

    got_b, windows_a = asyncio.run(main())
    assert windows_a == -(-STEPS // 7)
    assert got_b == want_b


@pytest.fixture
def served(engine: Engine, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A SpikePort served from another thread's event loop, as the plugin would."""
    part = engine.create_partition(0, domains=[2])
    sock = tmp_path / "spike.sock"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> SpikePortServer:
        server = SpikePortServer(engine, part, sock)  # gRPC binds to the loop it is made in
        await server.start()
        return server

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield sock, part
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_the_stage_command_runs_a_source_stage(
    served: tuple[Path, int],
    tmp_path: Path,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sock, _ = served
    net, out = tmp_path / "a.npz", tmp_path / "out.npz"
    save_stage(net, _source(), export=range(N))
    monkeypatch.setenv("DARWIN_SPIKE_ENDPOINT", f"unix://{sock}")
    args = ["stage", "--network", str(net), "--steps", str(STEPS), "--output", str(out)]
    assert cli_main(args) == 0
    with np.load(out) as z:
        got = sort_aer(z["steps"], z["ids"])
    want = [(s, i) for s, i in _unsplit_spikes(engine) if i < N]
    assert got == want
    assert f"{STEPS} steps in 20 windows" in capsys.readouterr().out


def test_the_stage_command_reports_a_missing_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = tmp_path / "a.npz"
    save_stage(net, _source())
    sock = tmp_path / "nobody.sock"
    args = ["stage", "--endpoint", f"unix://{sock}", "--network", str(net), "--steps", "5"]
    assert cli_main(args) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
