"""One stage of a split model (pipeline/split.py), in a graph of stages with fan-in and fan-out.

Every stage derives its part from the same model file and plan (``extract_stage``), so both
ends of an edge agree on what it carries. Three kinds:

- ``input`` reads the model's input (Poisson, a file, or a producer on a socket) and sends each
  downstream the inputs it reads, window by window.
- ``engine`` runs its part on its partition's SpikePort. It runs a window once every upstream
  has finished it (the stage's horizon is the least of its upstreams'), injects what they sent
  (each spike at the step it was fired; the input's synapse carries the cut's delay), steps,
  acknowledges the window upstream and sends what its neurons fired downstream.
- ``output`` collects the model's spiking outputs, in model time, with their digest.

An engine stage that holds a non-spiking Output (an LI or CubaLI readout) reads its potentials
after every step through the SpikePort and reports them at each sample's last step, with the
class of each sample (pipeline/readout.py; the samples' layout is ``--samples``).

Synchronisation is per window of ``window`` steps. A sender runs at most ``lookahead`` windows
ahead of what each of its receivers has acknowledged, so every buffer on the way is bounded
(backpressure); a slow stage slows those before it instead of filling memory. Nothing is
dropped on the wire; what the engine drops (queue, budget, fault, input, export overflows) is
counted and reported. Steps are engine steps, counted from 0 by every stage; a run of N model
steps is N + latency engine steps, so the outputs of the last model step come out.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog
from prometheus_client import start_http_server

from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.nirfile import load_model
from darwin_dra.pipeline.inputs import InputSource
from darwin_dra.pipeline.readout import Readout, held_readout
from darwin_dra.pipeline.split import INPUT, SplitPlan, StagePart, extract_stage
from darwin_dra.runtime import framing, links
from darwin_dra.runtime.client import SpikePortClient
from darwin_dra.runtime.framing import FrameError
from darwin_dra.runtime.pipeline_config import (
    PRODUCER,
    PipelineStageConfig,
    check_reset,
    plan_digest,
    step_capacities,
)
from darwin_dra.runtime.pipeline_connect import StageConnections
from darwin_dra.runtime.pipeline_finish import finish_outputs, finish_readout
from darwin_dra.runtime.pipeline_input import DrawnInput, Pacer
from darwin_dra.runtime.pipeline_report import Metrics, PeerCounts, PipelineReport
from darwin_dra.runtime.pipeline_routes import OnChipEdges
from darwin_dra.runtime.stage import next_window

log = structlog.get_logger(__name__)

I64 = npt.NDArray[np.int64]


class PipelineStage(StageConnections):
    """``address = await stage.start()`` (binds --listen), then ``await stage.run()``."""

    def __init__(
        self,
        config: PipelineStageConfig,
        model: CompiledModel | None = None,
        plan: SplitPlan | None = None,
    ) -> None:
        self.model = model or load_model(config.model, dt=config.dt, reset=config.reset)
        plan = plan or SplitPlan.from_json(Path(config.plan).read_text())
        part: StagePart = extract_stage(self.model, plan, config.stage)
        self.kind = part.kind
        report = PipelineReport(config.stage, self.kind)
        self.metrics = Metrics(config.stage)
        self._wire_out: dict[str, int] = {}
        self.readout: Readout | None = None
        held = held_readout(self.model, config.stage, part.neurons) if part.network else None
        if held is not None:
            self.readout = Readout(held, config.samples, config.steps, self.model.latency)
        elif config.output is not None and self.kind == "engine":
            raise ValueError(f"--output: engine stage {config.stage} holds no readout to save")
        if config.samples is not None and config.samples.reset:
            check_reset(config.samples, config.window, self.model.latency)
        super().__init__(config, plan, part, report, self.model.network.n_inputs)
        self.on_chip = OnChipEdges(config.stage, plan, part, config.on_chip)

    # ---- running ----

    async def run(self) -> PipelineReport:
        cfg = self.config
        if cfg.listen and not self._servers:
            await self.start()
        http = None
        if cfg.metrics_port is not None:
            http = start_http_server(cfg.metrics_port, registry=self.metrics.registry)
        t0 = time.monotonic()
        downs: dict[str, links.Outbound] = {}
        ups: dict[str, links.Inbound] = {}
        try:
            downs = await self._connect()
            for peer, fut in self._inbound.items():
                ups[peer] = await fut
            self._t_run = time.monotonic()
            if self.kind == "input":
                await self._run_input(ups.get(PRODUCER), downs)
            elif self.kind == "engine":
                assert cfg.endpoint is not None
                # a Step on a route may wait for its peer as long as the peer's upstreams take
                timeout = None if self.on_chip else 60.0
                async with SpikePortClient(cfg.endpoint, timeout_s=timeout) as port:
                    try:
                        await self._consume(ups, downs, port)
                    finally:
                        if self.on_chip.downs:  # its destinations must not wait any longer
                            with contextlib.suppress(Exception):
                                await port.end_routes()
                    if self.on_chip:
                        await self.on_chip.settle(port)
            else:
                await self._consume(ups, downs, None)
            for ob in downs.values():
                await ob.finish(self.report.steps)
                self._sync_wire(ob)
        finally:
            for ob in downs.values():
                await ob.close()
            for ib in ups.values():
                await ib.close()
            for s in self._servers:
                s.close()
                with contextlib.suppress(Exception):
                    await s.wait_closed()
            for p in self._unix:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            if http is not None:
                http[0].shutdown()
        r = self.report
        r.wall_s = time.monotonic() - t0
        r.run_s = time.monotonic() - getattr(self, "_t_run", t0)
        for peer, ob in downs.items():
            r.sent[peer] = PeerCounts(ob.spikes_out, ob.bytes_out)
        for peer, ib in ups.items():
            r.received[peer] = PeerCounts(ib.spikes_in, ib.bytes_in)
        self.on_chip.tally(r, self.metrics)
        if r.drawn:  # the input drawn in place: on no wire
            r.received[INPUT] = PeerCounts(r.drawn, 0)
            r.spikes_in += r.drawn
        if self.kind == "output":
            empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
            finish_outputs(self.model, self.config, self.report, getattr(self, "_collected", empty))
        if self.readout is not None:
            assert self.readout is not None
            finish_readout(self.readout, self.model, self.config, self.report)
        log.info("stage finished", **{k: v for k, v in r.summary().items() if k != "sent"})
        return r

    def _total(self, source_steps: int | None) -> int | None:
        steps = self.config.steps if self.config.steps is not None else source_steps
        return None if steps is None else steps + self.model.latency

    async def _send(
        self, downs: Mapping[str, links.Outbound], start: int, n: int, steps: Any, gids: Any
    ) -> None:
        """The window's spikes (global ids) to every downstream, each the ids it reads."""
        lookahead = self.config.credit_steps
        self.report.window_spikes.append(int(np.size(gids)))
        for peer in self.on_chip.downs:  # the chip host moves these; counted here
            n_peer = int(links.positions(self.part.sends[peer], gids)[1].sum())
            self.on_chip.sent[peer] += n_peer
            self.metrics.routed.labels(peer, "out").inc(n_peer)
            self.metrics.spikes_out.labels(peer).inc(n_peer)
            self.report.spikes_out += n_peer
        for peer, ob in downs.items():
            at, mine = links.positions(self.part.sends[peer], gids)
            self.report.held_s += await ob.wait_credit(start + n, lookahead)
            await ob.send(
                framing.Data(start, n, steps[mine].astype(np.uint64), at[mine].astype(np.uint32))
            )
            self._sync_wire(ob)
            self.metrics.spikes_out.labels(peer).inc(int(mine.sum()))
            self.report.spikes_out += int(mine.sum())

    def _sync_wire(self, ob: links.Outbound) -> None:
        """The bytes sent to ob so far (hello and end included) into the metric."""
        seen = self._wire_out.get(ob.peer, 0)
        self.metrics.wire.labels(ob.peer, "out").inc(ob.bytes_out - seen)
        self._wire_out[ob.peer] = ob.bytes_out

    async def _run_input(
        self, producer: links.Inbound | None, downs: Mapping[str, links.Outbound]
    ) -> None:
        cfg = self.config
        n_neurons = self.model.network.n_neurons
        source = None
        if producer is None:
            assert cfg.input is not None
            source = InputSource(cfg.input, self.model, cfg.samples)
        total = self._total(source.steps if source is not None else None)
        pacer = Pacer(cfg.rate)
        now = 0
        produced = producer is not None  # the producer may still send
        p_horizon = 0
        buf_t, buf_i = np.zeros(0, np.int64), np.zeros(0, np.int64)
        while total is None or now < total:
            n = cfg.window if total is None else min(cfg.window, total - now)
            if producer is not None:
                # windows of our own size whatever the producer's frames, so the receivers'
                # windows and the credit line up (a frame is read only when one is needed)
                while produced and p_horizon < now + n:
                    d = await producer.next()
                    if d is None:
                        produced = False
                        break
                    p_horizon = d.window_end
                    buf_t = np.concatenate([buf_t, d.steps.astype(np.int64)])
                    buf_i = np.concatenate([buf_i, d.index.astype(np.int64)])
                    await producer.ack(p_horizon)
                if not produced and total is None and not buf_t.size and p_horizon <= now:
                    break
                due = buf_t < now + n
                t, i = buf_t[due], buf_i[due]
                buf_t, buf_i = buf_t[~due], buf_i[~due]
            else:
                assert source is not None
                t, i = source.window(now, n)
            await pacer.wait(now)
            await self._send(downs, now, n, t, i + n_neurons)
            now += n
            self._advance(n)

    def _advance(self, n: int) -> None:
        if self.report.first_s is None:
            self.report.first_s = time.monotonic() - getattr(self, "_t_run", time.monotonic())
        self.report.steps += n
        self.report.windows += 1
        self.metrics.steps.inc(n)

    async def _consume(
        self,
        ups: Mapping[str, links.Inbound],
        downs: Mapping[str, links.Outbound],
        port: SpikePortClient | None,
    ) -> None:
        """The engine and output stages: run each window once every upstream has finished it."""
        cfg = self.config
        part = self.part
        if port is not None:
            assert part.network is not None
            send_ids = np.unique(np.concatenate([np.zeros(0, np.uint32), *part.sends.values()]))
            export = np.searchsorted(part.neurons, send_ids)
            caps = step_capacities(part.network.n_inputs, export.size, cfg.window)
            readout: list[int] = []
            if self.readout is not None:  # its neurons' local ids (a stage holds it whole)
                ro = self.readout.layer
                readout = np.searchsorted(part.neurons, ro.first + np.arange(ro.count)).tolist()
            await port.load(part.network, export.tolist(), *caps, readout=readout)
        # an engine stage given --input draws the input it reads itself: no stream
        drawn = DrawnInput(cfg, self.model, part) if cfg.input and port else None
        total = self._total(drawn.steps if drawn is not None else None)
        queue: asyncio.Queue[tuple[str, framing.Data | BaseException | None]] = asyncio.Queue(
            maxsize=(cfg.lookahead + 1) * max(1, len(ups))
        )

        async def pump(ib: links.Inbound) -> None:
            try:
                while True:
                    d = await ib.next()
                    await queue.put((ib.peer, d))
                    if d is None:
                        return
            except (FrameError, OSError, ssl.SSLError) as exc:
                await queue.put((ib.peer, exc))

        pumps = [asyncio.create_task(pump(ib)) for ib in ups.values()]
        if self.on_chip and port is not None:
            await self.on_chip.check(port)
        chip_ups = self.on_chip.ups
        all_ups = [*ups, *chip_ups]
        horizon = dict.fromkeys(all_ups, 0)
        ended: set[str] = set()
        seen_in = dict.fromkeys(ups, 0)
        pend_t: list[I64] = []
        pend_g: list[I64] = []
        collected_t: list[I64] = []
        collected_g: list[I64] = []
        now = 0
        try:
            while True:
                target = now + cfg.window if total is None else min(now + cfg.window, total)
                if port is not None and any(
                    horizon[u] < target for u in chip_ups if u not in ended
                ):
                    w0 = time.monotonic()
                    await self.on_chip.refresh(port, target, horizon, ended)
                    self.report.starved_s += time.monotonic() - w0
                live = [horizon[p] for p in all_ups if p not in ended]
                end = min(live) if live else math.inf
                if not live and all_ups and total is None:
                    end = max(horizon.values())  # every upstream ended: run to their end
                if not all_ups and total is None:
                    end = now + cfg.window
                if total is not None:
                    end = min(end, total)
                final = not live or (total is not None and end >= total)
                n = next_window(now, int(end), cfg.window, final)
                if n == 0:
                    if final:
                        break
                    w0 = time.monotonic()
                    peer, got = await queue.get()
                    self.report.starved_s += time.monotonic() - w0
                    if isinstance(got, BaseException):
                        raise ConnectionError(f"upstream {peer}: {got}") from got
                    if got is None:
                        ended.add(peer)
                        continue
                    horizon[peer] = got.window_end
                    g = part.receives[peer][got.index.astype(np.int64)].astype(np.int64)
                    pend_t.append(got.steps.astype(np.int64))
                    pend_g.append(g)
                    self.report.spikes_in += int(g.size)
                    self.metrics.spikes_in.labels(peer).inc(int(g.size))
                    continue
                if drawn is not None:
                    it, ig = await drawn.window(now, n)
                    pend_t.append(it)
                    pend_g.append(ig)
                    self.report.drawn = drawn.drawn
                    self.metrics.spikes_in.labels(INPUT).inc(int(ig.size))
                t = np.concatenate([np.zeros(0, np.int64), *pend_t])
                g = np.concatenate([np.zeros(0, np.int64), *pend_g])
                due = t < now + n
                pend_t, pend_g = [t[~due]], [g[~due]]
                t, g = t[due], g[due]
                order = np.lexsort((g, t))
                t, g = t[order], g[order]
                if port is not None:
                    e0 = time.monotonic()
                    reset = cfg.samples is not None and cfg.samples.resets_at(now)
                    g_in = np.searchsorted(part.inputs_from, g)
                    stepped = await port.step(n, t, g_in, reset=reset)
                    self.report.engine_s += time.monotonic() - e0
                    c = stepped.counters
                    dropped = (
                        c.dropped_queue
                        + c.dropped_fault
                        + c.dropped_budget
                        + c.dropped_input
                        + c.dropped_output
                    )
                    self.metrics.dropped.inc(dropped - self.report.dropped)
                    self.report.dropped = dropped
                    self.report.events = c.events
                    if self.readout is not None:
                        self.readout.add(now, stepped.readout)
                    out_g = part.neurons[stepped.ids.astype(np.int64)].astype(np.int64)
                    await self._send(downs, now, n, stepped.steps.astype(np.int64), out_g)
                else:
                    collected_t.append(t)
                    collected_g.append(g)
                    self.report.window_spikes.append(int(g.size))
                for ib in ups.values():
                    await ib.ack(now + n)
                now += n
                self._advance(n)
                for peer, ib in ups.items():
                    self.metrics.wire.labels(peer, "in").inc(ib.bytes_in - seen_in[peer])
                    seen_in[peer] = ib.bytes_in
        finally:
            for p in pumps:
                p.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await p
        if port is None:
            self._collected = (
                np.concatenate([np.zeros(0, np.int64), *collected_t]),
                np.concatenate([np.zeros(0, np.int64), *collected_g]),
            )


async def run_pipeline_stage(config: PipelineStageConfig) -> PipelineReport:
    stage = PipelineStage(config)
    await stage.start()
    return await stage.run()


__all__ = ["INPUT", "PipelineReport", "PipelineStage", "PipelineStageConfig", "plan_digest",
           "run_pipeline_stage"]  # fmt: skip
