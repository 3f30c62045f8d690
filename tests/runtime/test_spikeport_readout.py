"""The SpikePort's readout: a Load naming readout neurons gets their potentials after every
step in Step's answer, equal to what the local runner reads from the engine (an LI layer fires
no spikes, so this is how its output leaves a partition)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest
from darwin_dra.engine import Engine
from darwin_dra.engine.network import Reset
from darwin_dra.models.compile import CompiledModel, compile_graph
from darwin_dra.models.run import run_model
from darwin_dra.runtime.client import SpikePortClient, Stepped
from darwin_dra.runtime.spikeport import SpikePortServer
from darwin_dra.splitlearn.nirexport import DT_S, split_graph
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart

STEPS = 40


@pytest.fixture(scope="module")
def model() -> CompiledModel:
    cfg = Config()
    graph = split_graph(EdgePart(cfg, 3), ServerPart(cfg, 3))
    return compile_graph(graph, dt=DT_S, reset=Reset.VALUE, name="split")


def test_the_readout_equals_the_local_runners_trace(
    engine: Engine, model: CompiledModel, tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    dense = rng.random((STEPS, model.network.n_inputs)) < 0.3
    t, i = np.nonzero(dense)
    want = run_model(model, STEPS, t.astype(np.int64), i.astype(np.int64)).outputs["output"]
    assert want.potentials is not None
    assert np.abs(want.potentials).max() > 0.1
    layer = model.layer(model.outputs["output"])
    total = STEPS + model.latency
    part = engine.create_partition(1, domains=list(range(engine.chip(1).n_domains)))
    sock = tmp_path / "spike.sock"
    got: list[np.ndarray] = []

    async def main() -> None:
        server = SpikePortServer(engine, part, sock)
        await server.start()
        try:
            async with SpikePortClient(f"unix://{sock}") as port:
                readout = list(range(layer.first, layer.first + layer.count))
                await port.load(model.network, readout=readout, input_capacity=int(t.size))
                done = 0
                for n in (7, 1, 13, total):  # windows of any size: one row per step
                    n = min(n, total - done)
                    out = await port.step(n, t if done == 0 else (), i if done == 0 else ())
                    assert out.readout.shape == (n, layer.count)
                    got.append(out.readout)
                    done += n
                # a network loaded without readout neurons answers none
                await port.load(model.network)
                assert (await port.step(3)).readout.shape == (3, 0)
        finally:
            await server.stop()

    asyncio.run(main())
    rows = np.concatenate(got)
    np.testing.assert_array_equal(rows[layer.depth : layer.depth + STEPS], want.potentials)


def test_a_readout_neuron_outside_the_network_is_refused(
    engine: Engine, model: CompiledModel, tmp_path: Path
) -> None:
    part = engine.create_partition(0, domains=[0, 1])
    sock = tmp_path / "spike.sock"

    async def main() -> None:
        server = SpikePortServer(engine, part, sock)
        await server.start()
        try:
            async with SpikePortClient(f"unix://{sock}") as port:
                n = model.network.n_neurons
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await port.load(model.network, readout=[0, n])
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert f"readout_neurons: neuron {n}" in str(err.value.details())
        finally:
            await server.stop()

    asyncio.run(main())


def test_a_reset_runs_the_next_sample_as_if_loaded_afresh(
    engine: Engine, model: CompiledModel, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    n_in, period = model.network.n_inputs, 32
    layer = model.layer(model.outputs["output"])
    readout = list(range(layer.first, layer.first + layer.count))
    export = range(model.layer("server").first, layer.first)
    a_t, a_i = np.nonzero(rng.random((16, n_in)) < 0.3)
    b_t, b_i = np.nonzero(rng.random((16, n_in)) < 0.3)
    part = engine.create_partition(1, domains=list(range(engine.chip(1).n_domains)))
    sock = tmp_path / "spike.sock"
    seen: dict[str, object] = {}

    async def main() -> None:
        server = SpikePortServer(engine, part, sock)
        await server.start()
        try:
            async with SpikePortClient(f"unix://{sock}") as port:
                await port.load(model.network, export=export, readout=readout)
                first = await port.step(period, a_t, a_i)
                again = await port.step(period, b_t + period, b_i, reset=True)
                seen["counters"] = (first.counters, again.counters)
                seen["stream"] = again
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await port.step(1, [period - 1], [0])
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "before the last reset (step 32)" in str(err.value.details())
                await port.load(model.network, export=export, readout=readout)
                seen["fresh"] = await port.step(period, b_t, b_i)
        finally:
            await server.stop()

    asyncio.run(main())
    stream, fresh = seen["stream"], seen["fresh"]
    assert isinstance(stream, Stepped)
    assert isinstance(fresh, Stepped)
    assert fresh.ids.size > 0
    np.testing.assert_array_equal(stream.readout, fresh.readout)
    np.testing.assert_array_equal(stream.steps, fresh.steps + period)
    np.testing.assert_array_equal(stream.ids, fresh.ids)
    first, after = seen["counters"]  # type: ignore[misc]
    assert after.steps == 2 * period
    assert after.input_spikes == a_t.size + b_t.size
    assert after.spikes == first.spikes + fresh.counters.spikes
