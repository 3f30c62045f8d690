"""The chip host process (`darwin-dra chip-host`): the engine with the node's chips, the fault
file applied to it, the ChipHost service and grpc.health.v1 on a unix socket, the partitions'
spike ports, and metrics. It outlives any number of plugin restarts; its own restart is a chip
reset (a new boot id, every partition gone)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from darwin_dra.chiphost.faults import FaultApplier, fault_path
from darwin_dra.chiphost.metrics import ChipHostMetrics
from darwin_dra.chiphost.service import ChipHostServicer
from darwin_dra.engine import Engine, cap_mmap_threshold
from darwin_dra.engine import keps as kepsdef
from darwin_dra.engine.calibrate import calibrate
from darwin_dra.grpchealth import async_health_servicer
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.proto_gen.chiphost_v1alpha1 import chiphost_pb2_grpc as pb_grpc
from darwin_dra.lifecycle import serve_until_signal
from darwin_dra.runtime.routes import RouteTable
from darwin_dra.runtime.spikeport import SocketAccess, SpikePorts
from darwin_dra.unixsock import grpc_target, remove_stale_socket

log = structlog.get_logger(__name__)

SOCKET_NAME = "chip-host.sock"
SERVICE = "darwin.chiphost.v1alpha1.ChipHost"
MMAP_THRESHOLD = 1 << 20  # blocks from 1 MiB up are mmapped, so freed back (cap_mmap_threshold)


def default_socket(state_dir: Path) -> Path:
    """Where the chip host listens unless told otherwise: beside the plugin's state."""
    return state_dir / SOCKET_NAME


@dataclass(frozen=True)
class ChipHostOptions:
    node: str
    inventory: Path
    state_dir: Path
    socket: Path | None = None
    profiles: Path | None = None
    metrics_port: int | None = None
    calibrate: bool = False
    fault_poll_s: float = 1.0
    grace_s: float = 5.0
    spike_socket_gid: int | None = None  # a group that may connect too (non-root workloads)

    @property
    def socket_path(self) -> Path:
        return self.socket or default_socket(self.state_dir)


def calibrate_keps(engine: Engine, metrics: ChipHostMetrics | None = None) -> dict[int, int]:
    """Calibrated KEPS of every chip (engine/keps.py: model time, from the chip model, so lower
    on a chip with failed cores or links), and this host's speed on one whole-chip run per chip
    model, on its first chip, exported as ``darwin_chiphost_host_keps`` (a metric, not capacity).
    It runs before the chip host serves, on idle chips."""
    speed: dict[str, float] = {}
    out: dict[int, int] = {}
    for chip in engine.chips():
        if chip.model not in speed:
            part = engine.create_partition(chip.id, domains=list(range(chip.n_domains)))
            try:
                result = calibrate(engine, part)
                speed[chip.model] = result.host_keps
                if metrics is not None:
                    metrics.host_keps.labels(model=chip.model).set(result.host_keps)
                log.info(
                    "calibrated",
                    model=chip.model,
                    chip=chip.id,
                    keps=result.keps,
                    host_keps=round(result.host_keps),
                    realtime_factor=round(result.realtime_factor, 6),
                )
            finally:
                engine.destroy_partition(part)
        out[chip.id] = kepsdef.chip_capacity(engine, chip.id)
    return out


class ChipHostApp:
    def __init__(self, opts: ChipHostOptions) -> None:
        self.opts = opts
        profiles = load_profiles(opts.profiles)
        inventory = load_inventory(opts.inventory, profiles)
        # Spike messages of megabytes come and go: their buffers must go back to the system
        # (engine/native.py says why), or each gRPC thread's arena keeps the largest seen.
        cap_mmap_threshold(MMAP_THRESHOLD)
        self.engine = Engine.for_node(inventory, profiles, opts.node)
        self.metrics = ChipHostMetrics()
        self.metrics.watch_fabric(self.engine)
        measured = calibrate_keps(self.engine, self.metrics) if opts.calibrate else None
        self.routes = RouteTable(lambda kind, n: self.metrics.routed.labels(kind).inc(n))
        self.ports = SpikePorts(
            self.engine, access=SocketAccess(opts.spike_socket_gid), routes=self.routes
        )
        self.faults = FaultApplier(self.engine, fault_path(opts.state_dir))
        self.servicer = ChipHostServicer(
            self.engine, opts.node, self.ports, self.faults, self.metrics, measured
        )
        self._server = grpc.aio.server()
        pb_grpc.add_ChipHostServicer_to_server(self.servicer, self._server)
        self._health = async_health_servicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._tasks: list[asyncio.Task[None]] = []
        self._bound = False  # only a socket this instance bound is its to remove
        self._log = log.bind(node=opts.node, boot_id=self.engine.boot_id)

    async def start(self) -> None:
        structlog.contextvars.bind_contextvars(node=self.opts.node, boot_id=self.engine.boot_id)
        path = self.opts.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_socket(path)  # SocketInUseError when another chip host answers there
        # The faults present at start are the chip's state before anyone sees it.
        await asyncio.to_thread(self.faults.poll_once)
        with grpc_target(path) as target:
            if self._server.add_insecure_port(target) == 0:
                raise RuntimeError(f"cannot bind the chip host socket {path}")
        self._bound = True
        await self._server.start()
        os.chmod(path, 0o600)
        for service in ("", SERVICE):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        if self.opts.metrics_port is not None:
            self.metrics.serve(self.opts.metrics_port)
        self.metrics.info.labels(self.engine.boot_id, self.opts.node).set(1)
        self.metrics.started.set(self.servicer.started)
        self.metrics.chips.set(self.engine.chip_count())
        self._tasks.append(asyncio.create_task(self._poll_faults(), name="fault-file"))
        self._log.info("chip host serving", socket=os.fspath(path), chips=self.engine.chip_count())

    async def _poll_faults(self) -> None:
        while True:
            await asyncio.sleep(self.opts.fault_poll_s)
            await asyncio.to_thread(self.faults.poll_once)
            self.metrics.faults.set(len(self.faults.applied))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._health.enter_graceful_shutdown()
        await self._server.stop(self.opts.grace_s)
        await self.ports.close()
        if self._bound:
            with contextlib.suppress(FileNotFoundError):
                self.opts.socket_path.unlink()
        self.engine.close()
        self._log.info("chip host stopped: the chips are reset")


async def run_until_signal(opts: ChipHostOptions) -> int:
    return await serve_until_signal(ChipHostApp(opts))
