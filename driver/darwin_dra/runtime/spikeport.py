"""The SpikePort service of one engine partition, served on the partition's spike.sock.

A servicer owns one partition for the lifetime of its server; the engine's blocking calls run in
worker threads so one busy partition never stalls the plugin's event loop. ``SpikePorts`` keeps
the set of running servers equal to what the plugin says should run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import numpy as np
import structlog

from darwin_dra.engine import Engine, errors
from darwin_dra.engine.fabric import fabric_send
from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2 as pb
from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2_grpc as pb_grpc
from darwin_dra.runtime import wire
from darwin_dra.runtime.portmessages import network_from, status_code, step_telemetry
from darwin_dra.runtime.portstate import PortState
from darwin_dra.runtime.routes import RouteTable, merge_inputs, port_routes
from darwin_dra.unixsock import grpc_target, remove_stale_socket

log = structlog.get_logger(__name__)
T = TypeVar("T")

DEFAULT_EXPORT_CAPACITY = 1 << 20
# A network of ten million synapses is 100 MB on the wire; gRPC's default cap is 4 MB.
MAX_MESSAGE_BYTES = 1 << 30
MESSAGE_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)


def fabric_sends(
    routes: Sequence[tuple[int, np.ndarray, np.ndarray]],
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The fabric sends of one Step's routes, (source partition, steps, inputs) each, in step
    order across the routes: a fabric link is a FIFO in time (docs/engine.md), so one route's
    whole window sent first would push another's earlier steps behind it (deferred, and past
    its backlog dropped). Within a step, in the routes' order; empty sends left out."""
    steps = [s for _, s, _ in routes if s.size]
    if not steps:
        return []
    out: list[tuple[int, np.ndarray, np.ndarray]] = []
    for t in np.unique(np.concatenate(steps)):
        for src, s, i in routes:
            at = s == t
            if at.any():
                out.append((src, s[at], i[at]))
    return out


class SpikePortServicer(pb_grpc.SpikePortServicer):
    def __init__(self, engine: Engine, partition: int, routes: RouteTable | None = None) -> None:
        self.engine = engine
        self.partition = partition
        self._state: PortState | None = None  # the loaded network, for readout and reset
        # The chip host's routes (runtime/routes.py); None in the plugin's in-process ports.
        self.routes = routes
        # inject, run and drain of one Step belong together; two clients must not interleave.
        self._lock = asyncio.Lock()

    async def _answer(
        self,
        context: grpc.aio.ServicerContext[object, object],
        work: Callable[[], T],
        empty: type[T],
        *,
        locked: bool = True,
    ) -> T:
        """Run ``work`` on a worker thread (one call at a time when ``locked``) and answer with
        its result, or with the engine's error as the call's gRPC status."""
        try:
            async with self._lock if locked else contextlib.nullcontext():
                return await asyncio.to_thread(work)
        except (errors.EngineError, ValueError) as exc:
            context.set_code(status_code(exc))
            context.set_details(exc.message if isinstance(exc, errors.EngineError) else str(exc))
        # The status is set, not raised with context.abort: an abort's traceback holds this
        # call's frames with the request, and gRPC keeps it in a cycle until the collector
        # runs; in a spike flood that was 12 MB per refused message, the chip host's memory
        # climbing by hundreds of MB between collections (tests/chiphost/test_spike_flood.py).
        return empty()

    def _load(self, req: pb.LoadRequest, routed: np.ndarray | None = None) -> pb.LoadResponse:
        net = network_from(req)
        export = wire.column(req.export_neurons, "u4", "export_neurons").astype(np.int64)
        if routed is not None and routed.size:  # the routes' neurons are recorded too
            export = np.union1d(export, routed)
        state = PortState(
            net,
            export,
            req.export_capacity or DEFAULT_EXPORT_CAPACITY,
            req.input_capacity,
            wire.column(req.readout_neurons, "u4", "readout_neurons").astype(np.int64),
        )
        self._state = None
        state.load(self.engine, self.partition)
        self._state = state
        t = self.engine.telemetry(self.partition)
        return pb.LoadResponse(
            neurons=net.n_neurons,
            cores_used=t.cores_used,
            synapse_bytes=t.synapse_bytes,
            quant_error_mv=t.quant_error_mv,
        )

    def _step(
        self,
        req: pb.StepRequest,
        routed: tuple[np.ndarray, np.ndarray] | None = None,
        fabric: Sequence[tuple[int, np.ndarray, np.ndarray]] = (),
    ) -> pb.StepResponse:
        steps: np.ndarray
        ids: np.ndarray
        steps, ids = wire.spikes(req.inputs.steps, req.inputs.ids)
        state = self._state
        if state is None:
            raise errors.StateError("no network loaded")
        if req.reset:
            state.reset(self.engine, self.partition)
        if routed is not None and routed[0].size:
            steps, ids = merge_inputs(steps, ids, *routed)
        if steps.size:
            # On overflow the earliest spikes stay queued and nothing runs: the caller decides.
            self.engine.inject(self.partition, state.to_engine(steps.astype(np.uint64)), ids)
        for src, at, f_ids in fabric_sends(
            [(src, state.to_engine(s.astype(np.uint64)), i) for src, s, i in fabric]
        ):  # routes from another chip: over the fabric link
            fabric_send(self.engine, src, self.partition, at, f_ids)
        readout = state.run(self.engine, self.partition, req.steps)
        out_steps: list[np.ndarray] = []
        out_ids: list[np.ndarray] = []
        while True:
            s, i = self.engine.read_spikes(self.partition, state.capacity)
            out_steps.append(s)
            out_ids.append(i)
            if s.size < state.capacity:
                break
        exported = pb.Spikes(
            steps=wire.pack(np.concatenate(out_steps) + np.uint64(state.offset), "u8"),
            ids=wire.pack(np.concatenate(out_ids), "u4"),
        )
        t = state.counters(self.engine.telemetry(self.partition))
        return pb.StepResponse(exported=exported, telemetry=step_telemetry(t), readout=readout)

    def _unload(self) -> pb.UnloadResponse:
        self._state = None
        self.engine.unload(self.partition)
        return pb.UnloadResponse()

    def _telemetry(self) -> pb.TelemetryResponse:
        t = self.engine.telemetry(self.partition)
        t = t if self._state is None else self._state.counters(t)
        return pb.TelemetryResponse(
            counters=step_telemetry(t),
            drive_events=t.drive_events,
            packets=t.packets,
            queue_peak=t.queue_peak,
            wall_ns=t.wall_ns,
            network_bytes=t.network_bytes,
            synapse_bytes=t.synapse_bytes,
            cores_used=t.cores_used,
        )

    async def Load(  # noqa: N802 (gRPC method)
        self, request: pb.LoadRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.LoadResponse:
        if self.routes is None:
            work = functools.partial(self._load, request)
            return await self._answer(context, work, pb.LoadResponse)
        refused = self.routes.refuse_load(self.partition, request)
        if refused:
            context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            context.set_details(refused)
            return pb.LoadResponse()
        routed = self.routes.exported(self.partition)
        work = functools.partial(self._load, request, routed)
        out = await self._answer(context, work, pb.LoadResponse)
        if out.neurons:
            self.routes.loaded(self.partition)
        return out

    async def Step(  # noqa: N802 (gRPC method)
        self, request: pb.StepRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.StepResponse:
        if self.routes is None:
            work = functools.partial(self._step, request)
            return await self._answer(context, work, pb.StepResponse)
        # lockstep with the routes' other ends, then their spikes due in this window
        await self.routes.wait_turn(self.partition, request.steps)
        # Shielded: once the route's spikes are taken, the Step and its bookkeeping finish
        # even if the caller goes (a worker thread's Step would run on anyway), so the spikes
        # are delivered or given back and what the partition fired goes on its routes.
        return await asyncio.shield(self._routed_step(request, context))

    async def _routed_step(
        self, request: pb.StepRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.StepResponse:
        assert self.routes is not None
        routed = self.routes.take_due(self.partition, request.steps)
        fabric = self.routes.take_fabric_due(self.partition, request.steps)
        ran = False
        try:
            out = await self._answer(
                context, functools.partial(self._step, request, routed, fabric), pb.StepResponse
            )
            ran = out.HasField("telemetry")
        finally:
            self.routes.settle(self.partition, ran)
        if ran:
            s, i = wire.spikes(out.exported.steps, out.exported.ids)
            self.routes.stepped(
                self.partition, out.telemetry.steps, s.astype(np.int64), i.astype(np.int64)
            )
        return out

    async def Routes(  # noqa: N802 (gRPC method)
        self, request: pb.RoutesRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.RoutesResponse:
        if self.routes is None:
            context.set_code(grpc.StatusCode.UNIMPLEMENTED)
            context.set_details("this spike port has no chip host, so no routes")
            return pb.RoutesResponse()
        if request.wait_steps:
            await self.routes.wait_sources(self.partition, request.wait_steps)
        return pb.RoutesResponse(routes=port_routes(self.routes, self.partition))

    async def EndRoutes(  # noqa: N802 (gRPC method)
        self, request: pb.EndRoutesRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.EndRoutesResponse:
        if self.routes is not None:
            self.routes.end(self.partition)
        return pb.EndRoutesResponse()

    async def Telemetry(  # noqa: N802 (gRPC method)
        self, request: pb.TelemetryRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.TelemetryResponse:
        return await self._answer(context, self._telemetry, pb.TelemetryResponse, locked=False)

    async def Unload(  # noqa: N802 (gRPC method)
        self, request: pb.UnloadRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.UnloadResponse:
        out = await self._answer(context, self._unload, pb.UnloadResponse)
        if self.routes is not None:  # its destinations must not wait for it
            self.routes.end(self.partition)
        return out


@dataclass(frozen=True)
class SocketAccess:
    """Who may connect to a partition's spike socket. By default only its owner (the plugin or
    the chip host, root): the socket is 0600 in a 0700 directory. With a group, members of
    that group too (0660 in 0710), so a workload that runs as non-root joins it through its
    pod's supplementalGroups instead of running as root."""

    gid: int | None = None

    @property
    def socket_mode(self) -> int:
        return 0o600 if self.gid is None else 0o660

    @property
    def directory_mode(self) -> int:
        return 0o700 if self.gid is None else 0o710

    def narrow(self, path: Path, mode: int) -> None:
        os.chmod(path, mode)
        if self.gid is not None:
            os.chown(path, -1, self.gid)


class SpikePortServer:
    """One partition's SpikePort on a unix socket; ``stop`` removes the socket."""

    def __init__(
        self,
        engine: Engine,
        partition: int,
        path: Path,
        grace_s: float = 2.0,
        access: SocketAccess = SocketAccess(),
        routes: RouteTable | None = None,
    ) -> None:
        self.partition = partition
        self.path = path
        self.grace_s = grace_s
        self.access = access
        self._server = grpc.aio.server(options=MESSAGE_OPTIONS)
        servicer = SpikePortServicer(engine, partition, routes)
        pb_grpc.add_SpikePortServicer_to_server(servicer, self._server)

    async def start(self) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        # The directory is narrowed before the bind: the socket is born with the process umask,
        # and nobody outside the access may reach it in the moment before its own chmod.
        self.access.narrow(directory, self.access.directory_mode)
        remove_stale_socket(self.path)
        with grpc_target(self.path) as target:
            # Binding happens here, so the directory fd only has to live this long.
            if self._server.add_insecure_port(target) == 0:
                raise RuntimeError(f"cannot bind the spike port at {self.path}")
        self.access.narrow(self.path, self.access.socket_mode)
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(self.grace_s)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()


@dataclass(frozen=True)
class PortChange:
    start: dict[Path, int]
    stop: tuple[Path, ...]


def port_change(running: Mapping[Path, int], wanted: Mapping[Path, int]) -> PortChange:
    """What to stop and start so that the socket -> partition map becomes ``wanted``."""
    stop = tuple(sorted(p for p, part in running.items() if wanted.get(p) != part))
    start = {p: part for p, part in wanted.items() if running.get(p) != part}
    return PortChange(start, stop)


class SpikePorts:
    """The spike ports of a plugin: ``sync`` makes the running servers match a wanted map."""

    def __init__(
        self,
        engine: Engine,
        grace_s: float = 2.0,
        access: SocketAccess = SocketAccess(),
        routes: RouteTable | None = None,
    ) -> None:
        self.engine = engine
        self.grace_s = grace_s
        self.access = access
        self.routes = routes
        self._servers: dict[Path, SpikePortServer] = {}
        self._lock = asyncio.Lock()

    @property
    def serving(self) -> dict[Path, int]:
        return {p: s.partition for p, s in self._servers.items()}

    async def sync(self, wanted: Mapping[Path, int]) -> dict[Path, str]:
        """Start and stop servers; returns the sockets that failed to start, with why."""
        failed: dict[Path, str] = {}
        async with self._lock:
            change = port_change(self.serving, wanted)
            for path in change.stop:
                await self._servers.pop(path).stop()
                if path not in wanted:
                    # Its claim is gone: a start that raced the unprepare's removal may have
                    # made the directory again. A container still mounting it would keep it
                    # non-empty, so only an empty one goes.
                    with contextlib.suppress(OSError):
                        path.parent.rmdir()
                log.info("spike port stopped", socket=os.fspath(path))
            for path, part in sorted(change.start.items()):
                server = SpikePortServer(
                    self.engine, part, path, self.grace_s, self.access, self.routes
                )
                try:
                    await server.start()
                except Exception as exc:  # one bad socket must not keep the others down
                    failed[path] = str(exc)
                    log.warning(
                        "spike port failed to start", socket=os.fspath(path), error=str(exc)
                    )
                    continue
                self._servers[path] = server
                log.info("spike port serving", socket=os.fspath(path), partition=part)
        return failed

    async def close(self) -> None:
        """Stop every server and keep the directories: the claims still hold them, and their
        containers mount them (a restarted chip host binds the sockets there again)."""
        async with self._lock:
            for path in sorted(self._servers):
                await self._servers.pop(path).stop()
