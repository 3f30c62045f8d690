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
import hashlib
import math
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog
from prometheus_client import CollectorRegistry, Counter, start_http_server

from darwin_dra.engine.network import Reset
from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.nirfile import load_model
from darwin_dra.pipeline import outputs as outs
from darwin_dra.pipeline.inputs import InputSource, InputSpec
from darwin_dra.pipeline.split import INPUT, SplitPlan, StagePart, extract_stage
from darwin_dra.runtime import framing, links
from darwin_dra.runtime.client import SpikePortClient
from darwin_dra.runtime.framing import FrameError
from darwin_dra.runtime.stage import next_window, parse_address
from darwin_dra.runtime.tls import TlsFiles, client_context, peer_name, server_context
from darwin_dra.unixsock import remove_stale_socket

log = structlog.get_logger(__name__)

I64 = npt.NDArray[np.int64]
PRODUCER = "producer"  # the sender's name on a socket input
MAX_INPUT_QUEUE = 1 << 24
MAX_RASTER = 20_000  # the finish line carries every output spike up to this many


def plan_digest(plan: SplitPlan) -> str:
    """Both ends of an edge must run the same plan: the hello carries this."""
    return hashlib.sha256(plan.to_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PipelineStageConfig:
    model: Path
    plan: Path
    stage: str
    endpoint: str | None = None
    listen: str | None = None
    downstream: Mapping[str, str] = field(default_factory=dict)
    tls: TlsFiles | None = None
    input: InputSpec | None = None
    steps: int | None = None  # model steps
    window: int = 10
    lookahead: int = 4
    rate: float | None = None
    metrics_port: int | None = None
    output: Path | None = None
    connect_timeout_s: float = 120.0
    dt: float | None = None
    reset: Reset | None = None

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("--window must be at least 1 step")
        if self.lookahead < 1:
            raise ValueError("--lookahead must be at least 1 window")
        if self.steps is not None and self.steps < 0:
            raise ValueError("--steps must be >= 0")
        if self.rate is not None and not self.rate > 0:
            raise ValueError("--rate must be > 0 steps per second")


@dataclass
class PeerCounts:
    spikes: int = 0
    bytes: int = 0


@dataclass
class PipelineReport:
    stage: str
    kind: str
    steps: int = 0
    windows: int = 0
    spikes_in: int = 0
    spikes_out: int = 0
    dropped: int = 0
    refused: int = 0
    wall_s: float = 0.0
    held_s: float = 0.0  # waiting for a receiver's acknowledgement (backpressure)
    starved_s: float = 0.0  # waiting for an upstream's frame
    engine_s: float = 0.0
    run_s: float = 0.0  # from every stream connected to the end
    first_s: float | None = None  # from every stream connected to the first window run
    events: int = 0
    sent: dict[str, PeerCounts] = field(default_factory=dict)
    received: dict[str, PeerCounts] = field(default_factory=dict)
    outputs: dict[str, tuple[I64, I64]] | None = None
    output_digest: str | None = None
    # per window, the spikes it sent (input, engine: what its neurons fired) or got (output)
    window_spikes: list[int] = field(default_factory=list)

    @property
    def bytes_out(self) -> int:
        return sum(p.bytes for p in self.sent.values())

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stage": self.stage,
            "kind": self.kind,
            "steps": self.steps,
            "windows": self.windows,
            "spikes_in": self.spikes_in,
            "spikes_out": self.spikes_out,
            "dropped": self.dropped,
            "refused": self.refused,
            "wall_s": round(self.wall_s, 4),
            "held_s": round(self.held_s, 4),
            "starved_s": round(self.starved_s, 4),
            "engine_s": round(self.engine_s, 4),
            "run_s": round(self.run_s, 4),
            "first_s": None if self.first_s is None else round(self.first_s, 4),
            "events": self.events,
            "bytes_out": self.bytes_out,
            "sent": {p: vars(c) for p, c in self.sent.items()},
            "received": {p: vars(c) for p, c in self.received.items()},
            "window_spikes": self.window_spikes,
        }
        if self.outputs is not None:
            out["output_spikes"] = outs.count(self.outputs)
            out["output_digest"] = self.output_digest
            if out["output_spikes"] <= MAX_RASTER:  # each output's (steps, indices)
                out["output_raster"] = {
                    n: [t.tolist(), i.tolist()] for n, (t, i) in self.outputs.items()
                }
        return out


class Metrics:
    def __init__(self, stage: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.steps = Counter("darwin_stage_steps", "Engine steps run", registry=r)
        self.spikes_in = Counter("darwin_stage_spikes_in", "Spikes received", ["peer"], registry=r)
        self.spikes_out = Counter("darwin_stage_spikes_out", "Spikes sent", ["peer"], registry=r)
        self.dropped = Counter(
            "darwin_stage_dropped_spikes", "Spikes or events the engine dropped", registry=r
        )
        self.wire = Counter(
            "darwin_stage_wire_bytes", "Bytes on the wire", ["peer", "direction"], registry=r
        )
        self.stage = stage


class PipelineStage:
    """``address = await stage.start()`` (binds --listen), then ``await stage.run()``."""

    def __init__(
        self,
        config: PipelineStageConfig,
        model: CompiledModel | None = None,
        plan: SplitPlan | None = None,
    ) -> None:
        self.config = config
        self.model = model or load_model(config.model, dt=config.dt, reset=config.reset)
        self.plan = plan or SplitPlan.from_json(Path(config.plan).read_text())
        self.part: StagePart = extract_stage(self.model, self.plan, config.stage)
        self.name = config.stage
        self.kind = self.part.kind
        self.digest = plan_digest(self.plan)
        self.report = PipelineReport(self.name, self.kind)
        self.metrics = Metrics(self.name)
        self._servers: list[asyncio.Server] = []
        self._wire_out: dict[str, int] = {}
        self._unix: list[Path] = []
        loop = asyncio.get_running_loop()
        ups = self.plan.upstream(self.name)
        self._wanted: dict[str, int] = {u: int(self.part.receives[u].size) for u in ups}
        if self.kind == "input" and config.input is not None and config.input.kind == "socket":
            self._wanted[PRODUCER] = self.model.network.n_inputs
        self._inbound: dict[str, asyncio.Future[links.Inbound]] = {
            u: loop.create_future() for u in self._wanted
        }
        self._check()

    def _check(self) -> None:
        cfg = self.config
        downs = set(self.plan.downstream(self.name))
        given = set(cfg.downstream)
        if downs - given:
            raise ValueError(
                f"stage {self.name}: no --downstream for {', '.join(sorted(downs - given))} "
                f"(the plan sends to {', '.join(sorted(downs)) or 'nobody'})"
            )
        if given - downs:
            raise ValueError(
                f"stage {self.name}: --downstream {', '.join(sorted(given - downs))} is not a "
                f"downstream of it in the plan ({', '.join(sorted(downs)) or 'none'})"
            )
        ups = [u for u in self._wanted if u != PRODUCER]
        if ups and not cfg.listen:
            raise ValueError(f"stage {self.name} has upstreams ({', '.join(ups)}): give --listen")
        if self.kind == "engine" and not cfg.endpoint:
            raise ValueError(f"engine stage {self.name} needs --endpoint or DARWIN_SPIKE_ENDPOINT")
        if self.kind == "input":
            if cfg.input is None:
                raise ValueError("the input stage needs --input")
        elif cfg.input is not None:
            raise ValueError(f"--input is for the input stage, not {self.kind} stage {self.name}")
        if cfg.output is not None and self.kind != "output":
            raise ValueError(f"--output is for the output stage, not {self.kind} stage {self.name}")

    # ---- connections ----

    async def _serve(self, address: str, tls: ssl.SSLContext | None) -> str:
        kind, where, port = parse_address(address)
        loop = asyncio.get_running_loop()
        accept = self._accept_cb(tls)

        def factory() -> asyncio.Protocol:
            if tls is None:
                return asyncio.StreamReaderProtocol(asyncio.StreamReader(), accept)
            return _TlsAccept(tls, accept, self._refuse)

        if kind == "unix":
            remove_stale_socket(Path(where))
            self._servers.append(await loop.create_unix_server(factory, where))
            self._unix.append(Path(where))
            return address
        server = await loop.create_server(factory, where, port)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        return f"tcp://{where}:{bound[1]}"

    def _refuse(self, where: object, exc: BaseException) -> None:
        self.report.refused += 1
        reason = str(exc) or type(exc).__name__
        log.warning("refused a peer", stage=self.name, peer=str(where), reason=reason)

    async def start(self) -> str | None:
        """Binds --listen (and --input-listen); returns the bound --listen address."""
        cfg = self.config
        tls = server_context(cfg.tls) if cfg.tls else None
        bound = await self._serve(cfg.listen, tls) if cfg.listen else None
        if cfg.input is not None and cfg.input.kind == "socket" and cfg.input.listen:
            await self._serve(cfg.input.listen, tls)
        return bound

    def _accept_cb(self, tls: ssl.SSLContext | None) -> Any:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            where = writer.get_extra_info("peername") or "a unix peer"
            try:
                cn = peer_name(writer.get_extra_info("peercert")) if tls is not None else None
                hello = await asyncio.wait_for(links.read_hello(reader), 30)
                self._admit(hello, cn)
            except (ssl.SSLError, FrameError, TimeoutError, OSError, ValueError) as exc:
                self._refuse(where, exc)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                return
            ib = links.Inbound(hello.sender, hello.space, reader, writer)
            self._inbound[hello.sender].set_result(ib)
            log.info("upstream connected", stage=self.name, peer=hello.sender)

        return accept

    def _admit(self, h: framing.Hello, cn: str | None) -> None:
        if h.plan != self.digest:
            raise ValueError(f"{h.sender} runs plan {h.plan}, this stage runs {self.digest}")
        if h.receiver != self.name:
            raise ValueError(f"{h.sender} meant stage {h.receiver}, this is {self.name}")
        if h.sender not in self._inbound:
            raise ValueError(f"{h.sender} is not an upstream of {self.name} in the plan")
        if self.config.tls is not None and h.sender != PRODUCER and cn != h.sender:
            raise ValueError(f"a certificate for {cn!r} says it is {h.sender}")
        if h.space != self._wanted[h.sender]:
            raise ValueError(
                f"{h.sender} sends {h.space} ids, the plan says {self._wanted[h.sender]}"
            )
        if self._inbound[h.sender].done():
            raise ValueError(f"{h.sender} is already connected")

    async def _connect(self) -> dict[str, links.Outbound]:
        cfg = self.config
        tls = client_context(cfg.tls) if cfg.tls else None
        out: dict[str, links.Outbound] = {}
        for peer in self.plan.downstream(self.name):
            reader, writer = await links.connect(
                cfg.downstream[peer], cfg.connect_timeout_s, tls, peer
            )
            ob = links.Outbound(peer, int(self.part.sends[peer].size), reader, writer)
            await ob.hello(framing.Hello(self.digest, self.name, peer, ob.space))
            out[peer] = ob
        return out

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
                async with SpikePortClient(cfg.endpoint) as port:
                    await self._consume(ups, downs, port)
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
        if self.kind == "output":
            self._finish_outputs()
        log.info("stage finished", **{k: v for k, v in r.summary().items() if k != "sent"})
        return r

    def _total(self, source_steps: int | None) -> int | None:
        steps = self.config.steps if self.config.steps is not None else source_steps
        return None if steps is None else steps + self.model.latency

    async def _send(
        self, downs: Mapping[str, links.Outbound], start: int, n: int, steps: Any, gids: Any
    ) -> None:
        """The window's spikes (global ids) to every downstream, each the ids it reads."""
        lookahead = self.config.lookahead * self.config.window
        self.report.window_spikes.append(int(np.size(gids)))
        for peer, ob in downs.items():
            space = self.part.sends[peer]
            at = np.searchsorted(space, gids)
            at_c = np.minimum(at, max(space.size - 1, 0))
            mine = (at < space.size) & (space[at_c] == gids) if space.size else at < 0
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
            source = InputSource(cfg.input, self.model)
        total = self._total(source.steps if source is not None else None)
        start_wall = time.monotonic()
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
            if cfg.rate is not None:
                delay = start_wall + now / cfg.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
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
            cap = min(MAX_INPUT_QUEUE, max(1, part.network.n_inputs * cfg.window))
            await port.load(part.network, export=export.tolist(), input_capacity=cap)
        total = self._total(None)
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
        horizon = dict.fromkeys(ups, 0)
        ended: set[str] = set()
        seen_in = dict.fromkeys(ups, 0)
        pend_t: list[I64] = []
        pend_g: list[I64] = []
        collected_t: list[I64] = []
        collected_g: list[I64] = []
        now = 0
        try:
            while True:
                live = [horizon[p] for p in ups if p not in ended]
                end = min(live) if live else math.inf
                if not live and ups and total is None:
                    end = max(horizon.values())  # every upstream ended: run to their end
                if not ups and total is None:
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
                t = np.concatenate([np.zeros(0, np.int64), *pend_t])
                g = np.concatenate([np.zeros(0, np.int64), *pend_g])
                due = t < now + n
                pend_t, pend_g = [t[~due]], [g[~due]]
                t, g = t[due], g[due]
                order = np.lexsort((g, t))
                t, g = t[order], g[order]
                if port is not None:
                    e0 = time.monotonic()
                    stepped = await port.step(n, t, np.searchsorted(part.inputs_from, g))
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

    def _finish_outputs(self) -> None:
        t, g = getattr(self, "_collected", (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        steps = self.config.steps
        if steps is None and self.report.steps:
            steps = max(0, self.report.steps - self.model.latency)
        o = outs.to_outputs(self.model, t, g, steps)
        self.report.outputs = o
        self.report.output_digest = outs.output_digest(o)
        if self.config.output is not None:
            arrays: dict[str, Any] = {}
            for name, (tt, ii) in o.items():
                arrays[f"{name}.steps"] = tt
                arrays[f"{name}.ids"] = ii
            np.savez(self.config.output, **arrays)


class _TlsAccept(asyncio.Protocol):
    """Accepts a connection and makes it TLS before a byte is read (so none of the handshake
    is lost to a plain reader); a peer that fails the handshake (no certificate, another CA)
    is refused and counted, then the stream goes to ``accept`` as asyncio streams."""

    def __init__(self, tls: ssl.SSLContext, accept: Any, refuse: Any) -> None:
        self.tls = tls
        self.accept = accept
        self.refuse = refuse

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._upgrade(transport))

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        where = transport.get_extra_info("peername") or "a unix peer"
        reader = asyncio.StreamReader()
        proto = asyncio.StreamReaderProtocol(reader)
        try:
            tls_transport = await loop.start_tls(
                transport, proto, self.tls, server_side=True, ssl_handshake_timeout=30
            )
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            self.refuse(where, exc)
            transport.close()
            return
        if tls_transport is None:
            transport.close()
            return
        writer = asyncio.StreamWriter(tls_transport, proto, reader, loop)
        await self.accept(reader, writer)


async def run_pipeline_stage(config: PipelineStageConfig) -> PipelineReport:
    stage = PipelineStage(config)
    await stage.start()
    return await stage.run()


__all__ = ["INPUT", "PipelineReport", "PipelineStage", "PipelineStageConfig", "run_pipeline_stage"]
