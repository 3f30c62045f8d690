"""Stages of a split NIR model in one event loop, each on its own partition's SpikePort:
fan-out and fan-in, the outputs equal the unsplit model's spike for spike, backpressure bounds
the lookahead, and bad peers are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.engine import Engine
from darwin_dra.models import compile_graph
from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.run import run_model
from darwin_dra.pipeline.inputs import InputSpec, input_spikes
from darwin_dra.pipeline.outputs import of_result, output_digest
from darwin_dra.pipeline.split import SplitPlan, extract_stage, plan_split
from darwin_dra.runtime.pipeline_stage import PipelineReport, PipelineStage, PipelineStageConfig
from darwin_dra.runtime.spikeport import SpikePortServer
from prometheus_client import generate_latest

from tests.pipeline.graphs import layered

STEPS = 120


def model() -> CompiledModel:
    return compile_graph(layered([24, 30, 20, 12], n_in=10, skips=2, seed=4), dt=1e-3)


async def run_all(
    engine: Engine,
    tmp: Path,
    m: CompiledModel,
    plan: SplitPlan,
    spec: InputSpec,
    window: int = 7,
    lookahead: int = 2,
    keep: list[PipelineStage] | None = None,
    in_place: bool = False,
) -> dict[str, PipelineReport]:
    """Every stage of the plan; ``in_place``: no input stage, its readers draw the input."""
    names = [s.name for s in plan.stages if not (in_place and s.name == "input")]
    ports: dict[str, Path] = {}
    servers = []
    for j, s in enumerate(plan.engine_stages()):
        part = engine.create_partition(j % 2, domains=[j // 2])
        ports[s.name] = tmp / f"{s.name}.spike.sock"
        servers.append(SpikePortServer(engine, part, ports[s.name]))
    for srv in servers:
        await srv.start()
    listen = {n: f"unix://{tmp / (n + '.sock')}" for n in names}
    drawn = {"input"} if in_place else set()
    try:
        stages = []
        for n in names:
            cfg = PipelineStageConfig(
                model=Path("unused.nir"),
                plan=Path("unused.json"),
                stage=n,
                endpoint=f"unix://{ports[n]}" if n in ports else None,
                listen=listen[n] if set(plan.upstream(n)) - drawn else None,
                downstream={d: listen[d] for d in plan.downstream(n)},
                input=spec if n == "input" or (in_place and "input" in plan.upstream(n)) else None,
                steps=STEPS,
                window=window,
                lookahead=lookahead,
            )
            stage = PipelineStage(cfg, model=m, plan=plan)
            await stage.start()
            stages.append(stage)
        if keep is not None:
            keep.extend(stages)
        reports = await asyncio.gather(*(s.run() for s in stages))
    finally:
        for srv in servers:
            await srv.stop()
    return {r.stage: r for r in reports}


def unsplit(m: CompiledModel, spec: InputSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    t, i = input_spikes(spec, m, STEPS)
    return of_result(run_model(m, STEPS, t, i))


@pytest.mark.parametrize("stages", [2, 3])
def test_split_outputs_equal_the_unsplit_model(engine: Engine, tmp_path: Path, stages: int) -> None:
    m = model()
    plan = plan_split(m, stages, max_group_neurons=6)
    assert len(plan.engine_stages()) == stages
    spec = InputSpec("poisson", rate_hz=300.0, seed=7)
    want = unsplit(m, spec)
    assert sum(t.size for t, _ in want.values()) > 50  # the outputs really fire
    stages_run: list[PipelineStage] = []
    reports = asyncio.run(run_all(engine, tmp_path, m, plan, spec, keep=stages_run))
    out = reports["output"]
    assert out.outputs is not None
    for name, (t, i) in want.items():
        assert np.array_equal(out.outputs[name][0], t)
        assert np.array_equal(out.outputs[name][1], i)
    assert out.output_digest == output_digest(want)
    total = STEPS + m.latency
    assert all(r.steps == total for r in reports.values())
    assert all(r.dropped == 0 for r in reports.values())
    # the graph fans out (the input feeds every stage) and in (the last reads them all)
    if stages == 3:
        assert len(plan.downstream("s0")) == 2
        assert len(plan.upstream("s2")) >= 2
    # what each sends, its receiver gets
    for r in reports.values():
        for peer, c in r.sent.items():
            assert reports[peer].received[r.stage].spikes == c.spikes
    # spikes per window: one count a window; what the input made, what the output got, and
    # an engine stage's at least what it sent its busiest downstream, at most what it sent all
    assert all(len(r.window_spikes) == r.windows for r in reports.values())
    assert sum(reports["input"].window_spikes) == input_spikes(spec, m, total)[0].size
    assert sum(out.window_spikes) == out.spikes_in
    for r in reports.values():
        if r.kind == "engine":
            sent = [c.spikes for c in r.sent.values()]
            assert max(sent) <= sum(r.window_spikes) <= sum(sent)
    # and the output stage's finish line carries its outputs spike for spike
    raster = out.summary()["output_raster"]
    for name, (t, i) in want.items():
        assert raster[name] == [t.tolist(), i.tolist()]
    # and the metrics say the same
    s0 = next(x for x in stages_run if x.name == "s0")
    text = generate_latest(s0.metrics.registry).decode()
    assert f"darwin_stage_steps_total {float(total)}" in text
    for peer, c in reports["s0"].sent.items():
        assert f'darwin_stage_spikes_out_total{{peer="{peer}"}} {float(c.spikes)}' in text
        line = f'darwin_stage_wire_bytes_total{{direction="out",peer="{peer}"}} {float(c.bytes)}'
        assert line in text
    assert "darwin_stage_dropped_spikes_total 0.0" in text


def test_an_input_drawn_in_place_gives_the_same_outputs(engine: Engine, tmp_path: Path) -> None:
    m = model()
    plan = plan_split(m, 3, max_group_neurons=6)
    readers = plan.downstream("input")
    assert len(readers) >= 2  # the input fans out: each reader draws its own share
    spec = InputSpec("poisson", rate_hz=300.0, seed=7)
    want = unsplit(m, spec)
    reports = asyncio.run(run_all(engine, tmp_path, m, plan, spec, in_place=True))
    assert "input" not in reports
    out = reports["output"]
    assert out.output_digest == output_digest(want)
    assert all(r.dropped == 0 for r in reports.values())
    # each reader drew what the input stage would have sent it (the inputs it reads, every
    # step of the run), on no wire
    _, fired = input_spikes(spec, m, STEPS + m.latency)
    for r in readers:
        reads = extract_stage(m, plan, r).receives["input"].astype(np.int64)
        want_n = int(np.isin(fired + m.network.n_neurons, reads).sum())
        assert reports[r].drawn == want_n > 0
        assert reports[r].received["input"].bytes == 0


def test_a_slow_receiver_holds_its_senders_back(engine: Engine, tmp_path: Path) -> None:
    m = model()
    plan = plan_split(m, 2, max_group_neurons=6)
    spec = InputSpec("poisson", rate_hz=300.0, seed=7)
    reports = asyncio.run(run_all(engine, tmp_path, m, plan, spec, window=1, lookahead=1))
    assert reports["output"].output_digest == output_digest(unsplit(m, spec))
    # window 1, lookahead 1: every frame waits for the ack of the one before
    assert reports["input"].held_s > 0


def test_a_producer_on_a_socket_feeds_the_input_stage(engine: Engine, tmp_path: Path) -> None:
    from darwin_dra.runtime import framing, links
    from darwin_dra.runtime.pipeline_stage import plan_digest

    m = model()
    plan = plan_split(m, 2, max_group_neurons=6)
    poisson = InputSpec("poisson", rate_hz=300.0, seed=9)
    t, i = input_spikes(poisson, m, STEPS)
    spec = InputSpec("socket", listen=f"unix://{tmp_path / 'producer.sock'}")

    async def produce() -> None:
        await asyncio.sleep(0.2)
        reader, writer = await links.connect(spec.listen or "", 30, None, "input")
        out = links.Outbound("input", m.network.n_inputs, reader, writer)
        await out.hello(framing.Hello(plan_digest(plan), "producer", "input", out.space))
        for start in range(0, STEPS, 13):
            n = min(13, STEPS - start)
            sel = (t >= start) & (t < start + n)
            await out.send(
                framing.Data(start, n, t[sel].astype(np.uint64), i[sel].astype(np.uint32))
            )
        await out.finish(STEPS)
        await out.close()

    async def both() -> dict[str, PipelineReport]:
        task = asyncio.create_task(produce())
        reports = await run_all(engine, tmp_path, m, plan, spec)
        await task
        return reports

    reports = asyncio.run(both())
    assert reports["output"].output_digest == output_digest(unsplit(m, poisson))
    assert reports["input"].received["producer"].spikes == t.size
