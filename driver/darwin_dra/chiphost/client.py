"""The plugin's side of the chip host: a blocking client with the engine's own face.

``ChipHostClient`` offers the calls the plugin makes on its hardware (discovery, partitions,
spike ports) with the engine's types and exceptions, so the plugin's code reads the same
whether the chips are in this process or behind the socket. Every answer carries the chip
host's boot id; ``boot_id`` is the latest one seen, and a change is a chip reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import grpc
import structlog

from darwin_dra.chiphost import convert
from darwin_dra.chiphost.service import ENGINE_CODE_KEY
from darwin_dra.engine import PartitionConfig, PartitionInfo, errors
from darwin_dra.hardware.model import ChipInfo, CoreInfo
from darwin_dra.kubelet.proto_gen.chiphost_v1alpha1 import chiphost_pb2 as pb
from darwin_dra.kubelet.proto_gen.chiphost_v1alpha1 import chiphost_pb2_grpc as pb_grpc
from darwin_dra.runtime import wire
from darwin_dra.runtime.routes import RouteSpec
from darwin_dra.unixsock import grpc_target

log = structlog.get_logger(__name__)

# gRPC backs off reconnecting up to 120 s; a chip host back from a restart must be seen within
# the plugin's next health poll, so retry a local socket at least every second.
RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


class ChipHostUnavailable(errors.EngineError):
    """The chip host does not answer (not started yet, restarting, or gone)."""


class _Reply(Protocol):
    @property
    def boot_id(self) -> str: ...


_BY_STATUS: dict[grpc.StatusCode, type[errors.EngineError]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.CapacityExceeded,
    grpc.StatusCode.FAILED_PRECONDITION: errors.StateError,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
}


def engine_error(exc: grpc.RpcError) -> errors.EngineError:
    """The engine exception a failed call stands for (pure): by the engine's code when the
    chip host sent one, else by the gRPC status."""
    code: grpc.StatusCode = exc.code()
    details = str(exc.details() or code.name)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ChipHostUnavailable(f"chip host unavailable: {details}")
    # at run time each item is a (key, value) tuple; grpc-stubs types it as _Metadatum
    items: Any = exc.trailing_metadata() or ()
    raw = next((str(v) for k, v in items if k == ENGINE_CODE_KEY), None)
    cls = errors.BY_CODE.get(int(raw)) if raw is not None else _BY_STATUS.get(code)
    return (cls or errors.InternalError)(details)


class ChipHostClient:
    """Thread-safe; one channel, reconnecting by itself while the chip host restarts."""

    def __init__(self, socket: Path, timeout_s: float = 30.0) -> None:
        self.socket = socket
        self.timeout_s = timeout_s
        self._exit = contextlib.ExitStack()
        # The target may name a directory fd: it must stay open while the channel reconnects.
        target = self._exit.enter_context(grpc_target(socket))
        self._channel = grpc.insecure_channel(target, options=RECONNECT_OPTIONS)
        self._stub = pb_grpc.ChipHostStub(self._channel)
        self._boot: str | None = None
        self._lock = threading.Lock()
        # What CreatePartition answered, so partition() needs no listing (a partition's chip
        # and cores never change; the entry goes with the partition or the boot).
        self._made: dict[tuple[str, int], PartitionInfo] = {}

    def close(self) -> None:
        self._channel.close()
        self._exit.close()

    def __enter__(self) -> ChipHostClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- identity ----
    def _seen(self, boot: str) -> None:
        with self._lock:
            before, self._boot = self._boot, boot
        if before is not None and before != boot:
            log.warning("chip host restarted: the chips were reset", was=before, now=boot)

    @property
    def boot_id(self) -> str:
        """The boot id of the latest answer (asks when there was none yet)."""
        if self._boot is None:
            self.info()
        assert self._boot is not None
        return self._boot

    def _call(self, method: Any, request: Any, *, wait: bool = False) -> Any:
        try:
            reply = method(request, timeout=self.timeout_s, wait_for_ready=wait)
        except grpc.RpcError as exc:
            raise engine_error(exc) from None
        self._seen(reply.boot_id)
        return reply

    def wait_ready(self, timeout_s: float) -> pb.InfoResponse:
        """Info, waiting up to ``timeout_s`` for a chip host that is still starting."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                reply: pb.InfoResponse = self._stub.Info(
                    pb.InfoRequest(), timeout=max(0.1, min(5.0, deadline - time.monotonic())),
                    wait_for_ready=True,
                )  # fmt: skip
            except grpc.RpcError as exc:
                if time.monotonic() >= deadline:
                    raise ChipHostUnavailable(
                        f"no chip host answered on {self.socket} within {timeout_s:g} s: "
                        f"{engine_error(exc)}"
                    ) from None
                time.sleep(0.2)
                continue
            self._seen(reply.boot_id)
            return reply

    # ---- discovery ----
    def info(self) -> pb.InfoResponse:
        reply: pb.InfoResponse = self._call(self._stub.Info, pb.InfoRequest())
        return reply

    def chips(self) -> list[ChipInfo]:
        return [convert.chip_from_pb(c) for c in self.info().chips]

    def chip_count(self) -> int:
        return len(self.info().chips)

    def cores(self, chip: int) -> list[CoreInfo]:
        reply = self._call(self._stub.Cores, pb.CoresRequest(chip=chip))
        return [convert.core_from_pb(c) for c in reply.cores]

    # ---- partitions ----
    def partitions(self) -> list[PartitionInfo]:
        reply = self._call(self._stub.ListPartitions, pb.ListPartitionsRequest())
        return [convert.partition_from_pb(p) for p in reply.partitions]

    def partition(self, part: int) -> PartitionInfo:
        made = self._made.get((self._boot or "", part))
        if made is not None:
            return made
        for info in self.partitions():
            if info.id == part:
                return info
        raise errors.NotFound(f"partition {part} does not exist")

    def create_partition(
        self,
        chip: int,
        *,
        cores: list[int] | None = None,
        domains: list[int] | None = None,
        shared: bool = False,
        keps_budget: int = 0,
        config: PartitionConfig | None = None,
        owner: str = "",
    ) -> int:
        if (cores is None) == (domains is None):
            raise ValueError("give either cores or domains")
        cfg = config or PartitionConfig()
        req = pb.CreatePartitionRequest(
            timestep_us=cfg.timestep_us,
            routing_mode=cfg.routing.mode,
            max_neurons=cfg.max_neurons,
            max_synapses=cfg.max_synapses,
            chip=chip,
            cores=list(cores or ()),
            domains=list(domains or ()),
            by_cores=cores is not None,
            shared=shared,
            keps_budget=keps_budget,
            owner=owner,
        )
        reply = self._call(self._stub.CreatePartition, req)
        info = convert.partition_from_pb(reply.partition)
        with self._lock:
            self._made = {k: v for k, v in self._made.items() if k[0] == reply.boot_id}
            self._made[(reply.boot_id, info.id)] = info
        return info.id

    def destroy_partition(self, part: int) -> None:
        with self._lock:
            self._made.pop((self._boot or "", part), None)
        self._call(self._stub.DestroyPartition, pb.DestroyPartitionRequest(id=part))

    # ---- spike ports ----
    def serve_ports(self, wanted: Mapping[Path, int]) -> dict[Path, str]:
        """Make the chip host serve exactly ``wanted``; returns the sockets that failed."""
        ports = [pb.Port(socket=str(p), partition=n) for p, n in sorted(wanted.items())]
        reply = self._call(self._stub.ServePorts, pb.ServePortsRequest(ports=ports))
        return {Path(f.socket): f.error for f in reply.failed}

    # ---- routes between partitions of a chip (runtime/routes.py) ----
    def program_route(self, route: RouteSpec) -> pb.Route:
        req = pb.ProgramRouteRequest(
            name=route.name,
            src_partition=route.src,
            dst_partition=route.dst,
            src_neurons=wire.pack(route.src_neurons, "u4"),
            dst_inputs=wire.pack(route.dst_inputs, "u4"),
            lookahead_steps=route.lookahead,
            src_name=route.src_name,
            dst_name=route.dst_name,
            capacity=route.capacity,
        )
        reply: pb.ProgramRouteResponse = self._call(self._stub.ProgramRoute, req)
        return reply.route

    def delete_route(self, name: str) -> None:
        self._call(self._stub.DeleteRoute, pb.DeleteRouteRequest(name=name))

    def routes(self) -> list[pb.Route]:
        reply: pb.ListRoutesResponse = self._call(self._stub.ListRoutes, pb.ListRoutesRequest())
        return list(reply.routes)


class RemotePorts:
    """The plugin's spike ports, served by the chip host (the ``spike_ports`` of the Driver)."""

    def __init__(self, client: ChipHostClient) -> None:
        self.client = client

    async def sync(self, wanted: Mapping[Path, int]) -> dict[Path, str]:
        failed = await asyncio.to_thread(self.client.serve_ports, wanted)
        for path, why in failed.items():
            log.warning("spike port failed to start", socket=str(path), error=why)
        return failed
