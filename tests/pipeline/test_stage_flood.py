"""A spike flood into a running pipeline stage: every id of the edge at every step, from an
upstream that keeps to its credit or one that does not, or that sends a header claiming more
than its steps can carry. The stage's memory stays bounded by its credit (lookahead x
window x the edge's ids), what its partition drops is counted, a peer that breaks the bound is
refused by name before its payload is read, and a neighbour pipeline on the same chip, sharing
the flooded stage's cores, gets its outputs spike for spike as alone."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.engine import Engine
from darwin_dra.models import compile_graph
from darwin_dra.models.compile import CompiledModel
from darwin_dra.pipeline.inputs import InputSpec
from darwin_dra.pipeline.outputs import output_digest
from darwin_dra.pipeline.split import SplitPlan, plan_split
from darwin_dra.runtime import framing, links
from darwin_dra.runtime.pipeline_config import plan_digest
from darwin_dra.runtime.pipeline_stage import PipelineReport, PipelineStage, PipelineStageConfig
from darwin_dra.runtime.spikeport import SpikePortServer

from tests.pipeline.graphs import layered

N_IN = 1_000  # the model's inputs: every one the flooded edge carries fires at every step
WINDOW, LOOKAHEAD = 7, 2
CREDIT = WINDOW * LOOKAHEAD
BUDGET_KEPS = 100  # the flooded partition's share of the router: the flood needs ~600

POISSON = InputSpec("poisson", rate_hz=200.0, seed=3)  # both pipelines' input (the neighbour's)
Flooder = Callable[[links.Outbound, int], Awaitable[None]]


def model() -> CompiledModel:
    return compile_graph(layered([16, 8], n_in=N_IN, skips=1, seed=5, density=0.05), dt=1e-3)


def dense(start: int, n: int, space: int) -> framing.Data:
    t, i = np.divmod(np.arange(n * space, dtype=np.uint64), np.uint64(space))
    return framing.Data(start, n, t + np.uint64(start), i.astype(np.uint32))


async def keeps_credit(out: links.Outbound, steps: int) -> None:
    """A legitimate flood: every id at every step, waiting for the credit as a stage does."""
    for start in range(0, steps, WINDOW):
        n = min(WINDOW, steps - start)
        await out.wait_credit(start + n, CREDIT)
        await out.send(dense(start, n, out.space))
    await out.finish(steps)


async def ignores_credit(out: links.Outbound, steps: int) -> None:
    """The same frames as fast as the socket takes them, never waiting for an ack."""
    for start in range(0, steps, WINDOW):
        await out.send(dense(start, min(WINDOW, steps - start), out.space))


async def claims_too_much(out: links.Outbound, steps: int) -> None:
    """A header of the longest window the framing allows (2^20 steps), every id at every step:
    a well-formed claim of 90 MB of payload, which the stage would have read whole (frames of
    up to 256 MiB were), then zeros for as long as the stage reads."""
    n = framing.MAX_WINDOW_STEPS
    cells = n * out.space
    head = framing.varint(n) + framing.varint(cells) + bytes([0]) + framing.varint(cells // 8)
    out.writer.write(framing.DATA + head + b"\0\0\0\0")
    for _ in range(90):
        out.writer.write(bytes(1 << 20))
        await out.writer.drain()


async def run_pipeline(
    engine: Engine,
    tmp: Path,
    m: CompiledModel,
    plan: SplitPlan,
    spec: InputSpec,
    steps: int,
    part: int,
    flood: Flooder | None = None,
) -> tuple[dict[str, PipelineReport | BaseException], list[PipelineStage]]:
    """The plan's stages on partition ``part``; with ``flood`` the input stage is a hostile
    or flooding sender in its place (speaking the plan's hello, so it is admitted)."""
    tmp.mkdir(exist_ok=True)
    names = [s.name for s in plan.stages if not (flood and s.name == "input")]
    port = tmp / "s0.spike.sock"
    server = SpikePortServer(engine, part, port)
    await server.start()
    listen = {s.name: f"unix://{tmp / (s.name + '.sock')}" for s in plan.stages}
    stages: list[PipelineStage] = []
    try:
        for n in names:
            cfg = PipelineStageConfig(
                model=Path("unused.nir"),
                plan=Path("unused.json"),
                stage=n,
                endpoint=f"unix://{port}" if n == "s0" else None,
                listen=listen[n] if plan.upstream(n) else None,
                downstream={d: listen[d] for d in plan.downstream(n)},
                input=spec if n == "input" else None,
                steps=steps,
                window=WINDOW,
                lookahead=LOOKAHEAD,
                connect_timeout_s=30,
            )
            stage = PipelineStage(cfg, model=m, plan=plan)
            await stage.start()
            stages.append(stage)
        runs: list[Awaitable[object]] = [s.run() for s in stages]
        if flood is not None:
            runs.append(_flood(flood, plan, m, listen, steps + m.latency))
        done = await asyncio.gather(*runs, return_exceptions=True)
    finally:
        await server.stop()
    reports: dict[str, PipelineReport | BaseException] = {}
    for name, r in zip(names, done, strict=False):
        reports[name] = r if isinstance(r, BaseException | PipelineReport) else RuntimeError(r)
    return reports, stages


async def _flood(
    flood: Flooder, plan: SplitPlan, m: CompiledModel, listen: dict[str, str], steps: int
) -> None:
    outs = []
    for peer in plan.downstream("input"):
        reader, writer = await links.connect(listen[peer], 30, None, peer)
        space = _space(plan, m, peer)
        out = links.Outbound(peer, space, reader, writer)
        await out.hello(framing.Hello(plan_digest(plan), "input", peer, space))
        outs.append(out)
    try:
        with contextlib.suppress(ConnectionError, OSError):
            await asyncio.gather(*(flood(o, steps) for o in outs))
    finally:
        for o in outs:
            await o.close()


def _space(plan: SplitPlan, m: CompiledModel, peer: str) -> int:
    from darwin_dra.pipeline.split import extract_stage

    return int(extract_stage(m, plan, peer).receives["input"].size)


Reports = dict[str, PipelineReport | BaseException]


def beside_a_neighbour(
    engine: Engine,
    tmp: Path,
    m: CompiledModel,
    plan: SplitPlan,
    steps: int,
    parts: tuple[int, int],
    flood: Flooder,
) -> tuple[Reports, Reports, list[PipelineStage], int]:
    """The flooded pipeline on parts[0] and a neighbour on parts[1], at once, traced: their
    reports, the flooded one's stages and the process's peak of traced bytes."""

    async def both() -> tuple[Reports, Reports, list[PipelineStage]]:
        a = run_pipeline(engine, tmp / "a", m, plan, POISSON, steps, parts[0], flood)
        b = run_pipeline(engine, tmp / "b", m, plan, POISSON, steps, parts[1])
        (ra, stages_a), (rb, _) = await asyncio.gather(a, b)
        return ra, rb, stages_a

    tracemalloc.start()
    try:
        ra, rb, stages_a = asyncio.run(both())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return ra, rb, stages_a, peak


def test_a_flood_within_the_credit_is_held_to_it_counted_and_spares_the_neighbour(
    engine: Engine, tmp_path: Path
) -> None:
    m = model()
    plan = plan_split(m, 1)
    assert plan.downstream("input") == ["s0"]
    steps = 2_000
    flooded = engine.create_partition(0, domains=[0], shared=True, keps_budget=BUDGET_KEPS)
    neighbour = engine.create_partition(0, domains=[0], shared=True)

    ra, rb, stages_a, peak = beside_a_neighbour(
        engine, tmp_path, m, plan, steps, (flooded, neighbour), keeps_credit
    )
    s0_stage = next(s for s in stages_a if s.name == "s0")
    metric = s0_stage.metrics.registry.get_sample_value("darwin_stage_dropped_spikes_total")
    s0, out_b = ra["s0"], rb["output"]
    assert isinstance(s0, PipelineReport), s0
    assert isinstance(out_b, PipelineReport), out_b
    total = steps + m.latency
    space = _space(plan, m, "s0")  # the inputs that have synapses into the stage
    assert space > 600
    sent = total * space
    # nothing lost on the wire: the stage took every spike of the flood, 1.4 million of them
    assert s0.received["input"].spikes == sent
    assert s0.steps == total
    # the flood overran the partition's KEPS budget: the partition dropped, the stage counted
    assert s0.dropped > 0
    assert metric == float(s0.dropped)  # darwin_stage_dropped_spikes_total
    # held to its credit: the 1.4 million spikes decoded are 17 MB; the whole process (both
    # pipelines, their partitions' SpikePort and engine) peaked at a few credits' worth (14
    # steps x the ids, 12 bytes a spike: 116 kB)
    print(f"flood: {sent} spikes, {s0.dropped} dropped by the partition; peak {peak} B")
    assert peak < 4 * 2**20, peak
    # the neighbour on the same cores: its outputs spike for spike as the model's alone
    assert out_b.output_digest == output_digest(unsplit_steps(m, POISSON, steps))
    assert rb["s0"].dropped == 0  # type: ignore[union-attr]


def unsplit_steps(
    m: CompiledModel, spec: InputSpec, steps: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from darwin_dra.models.run import run_model
    from darwin_dra.pipeline.inputs import input_spikes
    from darwin_dra.pipeline.outputs import of_result

    t, i = input_spikes(spec, m, steps)
    return of_result(run_model(m, steps, t, i))


@pytest.mark.parametrize(
    ("flood", "error"),
    [
        (ignores_credit, "input sent a frame of 7 steps ending at step 21: past its credit"),
        (claims_too_much, "input sent a frame of 1048576 steps ending at step 1048576: past"),
    ],
    ids=["ignores-credit", "claims-90-MB"],
)
def test_a_peer_that_breaks_the_bound_is_refused_by_name_before_its_payload_is_read(
    engine: Engine, tmp_path: Path, flood: Flooder, error: str
) -> None:
    m = model()
    plan = plan_split(m, 1)
    steps = 400
    flooded = engine.create_partition(0, domains=[0], shared=True)
    neighbour = engine.create_partition(0, domains=[0], shared=True)

    ra, rb, _, peak = beside_a_neighbour(
        engine, tmp_path, m, plan, steps, (flooded, neighbour), flood
    )
    failed = ra["s0"]
    assert isinstance(failed, ConnectionError), failed
    assert str(failed).startswith("upstream input: ")
    assert error in str(failed)
    print(f"refused: {failed}; peak {peak} B")
    assert peak < 4 * 2**20, peak  # the 256 MiB claimed, or the frames sent unasked, not read
    out_b = rb["output"]
    assert isinstance(out_b, PipelineReport), out_b
    assert out_b.output_digest == output_digest(unsplit_steps(m, POISSON, steps))
