"""The ChipHost gRPC service: the chips of one node, for as long as this process lives.

The engine's blocking calls run in worker threads. Each partition's SpikePort is a server of
its own (runtime.spikeport), started and stopped here on the client's request, so the spike
streams of the workloads depend on this process only, never on the plugin.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import numpy as np
import structlog

from darwin_dra.chiphost import convert
from darwin_dra.chiphost.faults import Fault, FaultApplier
from darwin_dra.chiphost.metrics import ChipHostMetrics
from darwin_dra.engine import Engine, PartitionConfig, Routing, errors
from darwin_dra.engine import keps as kepsdef
from darwin_dra.hardware.model import ChipInfo
from darwin_dra.kubelet.proto_gen.chiphost_v1alpha1 import chiphost_pb2 as pb
from darwin_dra.kubelet.proto_gen.chiphost_v1alpha1 import chiphost_pb2_grpc as pb_grpc
from darwin_dra.runtime import wire
from darwin_dra.runtime.routes import DEFAULT_CAPACITY, Route, RouteSpec, RouteTable
from darwin_dra.runtime.spikeport import SpikePorts

log = structlog.get_logger(__name__)

ENGINE_CODE_KEY = "darwin-engine-code"
T = TypeVar("T")
Ctx = grpc.aio.ServicerContext[object, object]


def status_code(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status of a failed engine call (pure)."""
    if isinstance(exc, errors.NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, errors.Conflict):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(exc, errors.CapacityExceeded | errors.OutOfMemory | errors.QueueOverflow):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, errors.StateError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


class ChipHostServicer(pb_grpc.ChipHostServicer):
    def __init__(
        self,
        engine: Engine,
        node: str,
        ports: SpikePorts,
        faults: FaultApplier,
        metrics: ChipHostMetrics,
        measured_keps: dict[int, int] | None = None,
    ) -> None:
        self.engine = engine
        self.node = node
        self.ports = ports
        self.faults = faults
        self.metrics = metrics
        self.measured_keps = dict(measured_keps or {})
        self._capacity: dict[tuple[int, frozenset[Fault]], int] = {}  # by chip and its faults
        self.started = time.time()
        self.routes = ports.routes if ports.routes is not None else RouteTable()
        # Create and destroy change which cores are free; one at a time keeps answers exact.
        self._lock = asyncio.Lock()

    @property
    def boot_id(self) -> str:
        return self.engine.boot_id

    async def _call(self, method: str, context: Ctx, work: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            result = await work()
        except (errors.EngineError, ValueError) as exc:
            code = status_code(exc)
            message = exc.message if isinstance(exc, errors.EngineError) else str(exc)
            if isinstance(exc, errors.EngineError):
                context.set_trailing_metadata(((ENGINE_CODE_KEY, str(exc.code)),))
            log.warning("chip host call failed", method=method, code=code.name, error=message)
            # Counted before the status leaves: a client that reads the metrics right after its
            # error must find the call there.
            self._observe(method, code, started)
            await context.abort(code, message)
            raise  # abort raised already; this satisfies the type checker
        except BaseException:
            self._observe(method, grpc.StatusCode.UNKNOWN, started)
            raise
        self._observe(method, grpc.StatusCode.OK, started)
        return result

    def _observe(self, method: str, code: grpc.StatusCode, started: float) -> None:
        self.metrics.requests.labels(method, code.name).inc()
        self.metrics.seconds.labels(method).observe(time.perf_counter() - started)

    def _count(self, partitions: int = 0) -> None:
        # Counted, not listed: a prepare of many claims must not list them all once per claim.
        self.metrics.partitions.inc(partitions)
        self.metrics.ports.set(len(self.ports.serving))
        self.metrics.faults.set(len(self.faults.applied))
        self.metrics.routes.set(len(self.routes.routes))

    def _chips_and_capacity(self) -> tuple[list[ChipInfo], dict[int, int]]:
        """The chips, and (when calibrated) each one's KEPS measured on the chip model as it is
        now: they follow the faults (engine/keps.py), so a fault republishes them."""
        chips = self.engine.chips()
        if not self.measured_keps:
            return chips, {}
        out: dict[int, int] = {}
        for c in chips:
            key = (c.id, frozenset(f for f in self.faults.applied if f.chip == c.id))
            if key not in self._capacity:
                self._capacity[key] = kepsdef.chip_capacity(self.engine, c.id)
            out[c.id] = self._capacity[key]
        return chips, out

    async def Info(self, request: pb.InfoRequest, context: Ctx) -> pb.InfoResponse:  # noqa: N802
        async def work() -> pb.InfoResponse:
            chips, measured = await asyncio.to_thread(self._chips_and_capacity)
            return pb.InfoResponse(
                boot_id=self.boot_id,
                node=self.node,
                engine_version=Engine.version(),
                started_unix=self.started,
                chips=[convert.chip_to_pb(c) for c in chips],
                faults=[
                    pb.Fault(chip=f.chip, kind=f.kind.value, index=f.index)
                    for f in sorted(self.faults.applied)
                ],
                measured_keps=measured,
            )

        return await self._call("Info", context, work)

    async def Cores(self, request: pb.CoresRequest, context: Ctx) -> pb.CoresResponse:  # noqa: N802
        async def work() -> pb.CoresResponse:
            cores = await asyncio.to_thread(self.engine.cores, request.chip)
            return pb.CoresResponse(
                boot_id=self.boot_id, cores=[convert.core_to_pb(c) for c in cores]
            )

        return await self._call("Cores", context, work)

    async def ListPartitions(  # noqa: N802
        self, request: pb.ListPartitionsRequest, context: Ctx
    ) -> pb.ListPartitionsResponse:
        async def work() -> pb.ListPartitionsResponse:
            parts = await asyncio.to_thread(self.engine.partitions)
            out = [convert.partition_to_pb(p) for p in parts]
            for msg in out:
                msg.owner = self.routes.owners.get(msg.id, "")
            return pb.ListPartitionsResponse(boot_id=self.boot_id, partitions=out)

        return await self._call("ListPartitions", context, work)

    async def CreatePartition(  # noqa: N802
        self, request: pb.CreatePartitionRequest, context: Ctx
    ) -> pb.CreatePartitionResponse:
        def create() -> pb.CreatePartitionResponse:
            ids = list(request.cores if request.by_cores else request.domains)
            part = self.engine.create_partition(
                request.chip,
                cores=ids if request.by_cores else None,
                domains=None if request.by_cores else ids,
                shared=request.shared,
                keps_budget=request.keps_budget,
                config=PartitionConfig(
                    timestep_us=request.timestep_us,
                    routing=Routing.from_mode(request.routing_mode or "multicast-tree"),
                    max_neurons=request.max_neurons,
                    max_synapses=request.max_synapses,
                ),
            )
            info = self.engine.partition(part)
            return pb.CreatePartitionResponse(
                boot_id=self.boot_id, partition=convert.partition_to_pb(info)
            )

        async def work() -> pb.CreatePartitionResponse:
            async with self._lock:
                out = await asyncio.to_thread(create)
                self.routes.own(out.partition.id, request.owner)
                out.partition.owner = request.owner
                self._count(+1)
            log.info(
                "partition created",
                partition=out.partition.id,
                chip=out.partition.chip,
                cores=len(out.partition.cores),
                shared=out.partition.shared,
            )
            return out

        return await self._call("CreatePartition", context, work)

    async def DestroyPartition(  # noqa: N802
        self, request: pb.DestroyPartitionRequest, context: Ctx
    ) -> pb.DestroyPartitionResponse:
        async def work() -> pb.DestroyPartitionResponse:
            async with self._lock:
                # Its clients see the port close first, then NOT_FOUND from nowhere.
                keep = {p: part for p, part in self.ports.serving.items() if part != request.id}
                await self.ports.sync(keep)
                await asyncio.to_thread(self.engine.destroy_partition, request.id)
                gone = self.routes.forget(request.id)
                self._count(-1)
            log.info("partition destroyed", partition=request.id, routes_removed=gone)
            return pb.DestroyPartitionResponse(boot_id=self.boot_id)

        return await self._call("DestroyPartition", context, work)

    async def ServePorts(  # noqa: N802
        self, request: pb.ServePortsRequest, context: Ctx
    ) -> pb.ServePortsResponse:
        async def work() -> pb.ServePortsResponse:
            wanted: dict[Path, int] = {}
            for port in request.ports:
                if not os.path.isabs(port.socket):
                    raise ValueError(f"spike socket {port.socket!r} is not an absolute path")
                wanted[Path(port.socket)] = port.partition
            live = {p.id for p in await asyncio.to_thread(self.engine.partitions)}
            failed = {
                p: f"partition {n} does not exist" for p, n in wanted.items() if n not in live
            }
            async with self._lock:
                failed |= await self.ports.sync(
                    {p: n for p, n in wanted.items() if p not in failed}
                )
                self._count()
            return pb.ServePortsResponse(
                boot_id=self.boot_id,
                serving=[
                    pb.Port(socket=os.fspath(p), partition=n)
                    for p, n in sorted(self.ports.serving.items())
                ],
                failed=[
                    pb.PortFailure(socket=os.fspath(p), error=e) for p, e in sorted(failed.items())
                ],
            )

        return await self._call("ServePorts", context, work)

    async def ProgramRoute(  # noqa: N802
        self, request: pb.ProgramRouteRequest, context: Ctx
    ) -> pb.ProgramRouteResponse:
        async def work() -> pb.ProgramRouteResponse:
            spec = RouteSpec(
                name=request.name,
                src=request.src_partition,
                dst=request.dst_partition,
                src_neurons=wire.column(request.src_neurons, "u4", "src_neurons").astype(np.int64),
                dst_inputs=wire.column(request.dst_inputs, "u4", "dst_inputs").astype(np.int64),
                lookahead=request.lookahead_steps,
                src_name=request.src_name,
                dst_name=request.dst_name,
                capacity=request.capacity or DEFAULT_CAPACITY,
            )
            async with self._lock:
                parts = await asyncio.to_thread(self.engine.partitions)
                chips = await asyncio.to_thread(self.engine.chips)
                fabrics = {c.id: c.fabric for c in chips}
                route = self.routes.program(spec, {p.id: p.chip for p in parts}, fabrics)
                self._count()
            log.info(
                "route programmed",
                route=spec.name,
                src=spec.src,
                dst=spec.dst,
                chip=route.chip,
                pairs=int(spec.src_neurons.size),
            )
            return pb.ProgramRouteResponse(boot_id=self.boot_id, route=self._route_pb(route))

        return await self._call("ProgramRoute", context, work)

    async def DeleteRoute(  # noqa: N802
        self, request: pb.DeleteRouteRequest, context: Ctx
    ) -> pb.DeleteRouteResponse:
        async def work() -> pb.DeleteRouteResponse:
            async with self._lock:
                if request.name not in self.routes.routes:
                    raise errors.NotFound(f"no route named {request.name!r}")
                self.routes.delete(request.name)
                self._count()
            log.info("route deleted", route=request.name)
            return pb.DeleteRouteResponse(boot_id=self.boot_id)

        return await self._call("DeleteRoute", context, work)

    async def ListRoutes(  # noqa: N802
        self, request: pb.ListRoutesRequest, context: Ctx
    ) -> pb.ListRoutesResponse:
        async def work() -> pb.ListRoutesResponse:
            routes = sorted(self.routes.routes.values(), key=lambda r: r.spec.name)
            return pb.ListRoutesResponse(
                boot_id=self.boot_id, routes=[self._route_pb(r) for r in routes]
            )

        return await self._call("ListRoutes", context, work)

    def _route_pb(self, r: Route) -> pb.Route:
        return pb.Route(
            name=r.spec.name,
            src_partition=r.spec.src,
            dst_partition=r.spec.dst,
            chip=r.chip,
            owner=r.owner,
            pairs=int(r.spec.src_neurons.size),
            lookahead_steps=r.spec.lookahead,
            src_name=r.spec.src_name,
            dst_name=r.spec.dst_name,
            src_steps=self.routes.steps.get(r.spec.src, 0),
            dst_steps=self.routes.steps.get(r.spec.dst, 0),
            ended=r.ended,
            spikes=r.spikes,
            delivered=r.delivered,
            dropped=r.dropped,
            queued=r.queued,
        )
