"""The kubelet plugin assembled: engine, driver, slice publisher, health monitor, gRPC servers
and metrics, started in an order the kubelet can rely on and stopped gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from darwin_dra import kubeapi
from darwin_dra.engine import Engine
from darwin_dra.engine.calibrate import calibrate
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.health_service import HealthHub
from darwin_dra.kubelet.server import DRIVER_NAME, PluginServer, PluginServerConfig
from darwin_dra.plugin import faults
from darwin_dra.plugin.driver import Driver, DriverConfig
from darwin_dra.plugin.health import HealthMonitor, state_counts
from darwin_dra.plugin.metrics import PluginMetrics
from darwin_dra.plugin.publisher import Publisher, PublishResult
from darwin_dra.plugin.slices import PARTITION_KINDS, SliceLayout, build_slices
from darwin_dra.runtime.spikeport import SpikePorts

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PluginOptions:
    node: str
    inventory: Path
    state_dir: Path
    cdi_dir: Path
    plugins_registry: Path
    plugins_dir: Path
    kubeconfig: Path | None = None
    profiles: Path | None = None
    pod_uid: str | None = None
    metrics_port: int | None = None
    health_port: int | None = None
    calibrate: bool = False
    fault_poll_s: float = 1.0
    health_resync_s: float = 30.0
    slice_resync_s: float = 60.0
    grace_s: float = 5.0
    partitions: tuple[str, ...] = PARTITION_KINDS  # the slice layout (--partitions)


def calibrate_keps(engine: Engine, profiles: dict[str, ChipProfile]) -> dict[int, int]:
    """Measured KEPS of every chip: one whole-chip run per chip model, on its first chip.

    Chips of one model are identical in the engine, so one measurement stands for all; running
    every chip would multiply the start-up time for no new information."""
    by_model: dict[str, int] = {}
    out: dict[int, int] = {}
    for chip in engine.chips():
        if chip.model not in by_model:
            part = engine.create_partition(chip.id, domains=list(range(chip.n_domains)))
            try:
                result = calibrate(engine, part)
            finally:
                engine.destroy_partition(part)
            by_model[chip.model] = max(1, int(result.keps))
            log.info("calibrated", model=chip.model, chip=chip.id, keps=by_model[chip.model])
        out[chip.id] = by_model[chip.model]
    return out


class PluginApp:
    def __init__(self, opts: PluginOptions, kube: kubeapi.Kube | None = None) -> None:
        self.opts = opts
        self.kube = kube or kubeapi.connect(opts.kubeconfig)
        self.metrics = PluginMetrics()
        self.profiles = load_profiles(opts.profiles)
        inventory = load_inventory(opts.inventory, self.profiles)
        self.engine = Engine.for_node(inventory, self.profiles, opts.node)
        self.hub = HealthHub()
        self._tasks: list[asyncio.Task[None]] = []
        self.server: PluginServer | None = None
        measured = calibrate_keps(self.engine, self.profiles) if opts.calibrate else None
        self.spike_ports = SpikePorts(self.engine)
        self.driver = Driver(
            DriverConfig(opts.node, opts.state_dir, opts.cdi_dir),
            self.engine,
            self.profiles,
            self.kube,
            measured_keps=measured,
            metrics=self.metrics,
            spike_ports=self.spike_ports,
        )
        self.publisher = Publisher(
            self.kube,
            DRIVER_NAME,
            opts.node,
            self._desired,
            resync_s=opts.slice_resync_s,
            on_result=self._published,
        )
        self.monitor = HealthMonitor(
            opts.node,
            self.engine,
            faults.fault_path(opts.state_dir),
            self.driver.views,
            self.hub,
            self.publisher.trigger,
            poll_s=opts.fault_poll_s,
            resync_s=opts.health_resync_s,
        )

    def _desired(self) -> list[dict[str, Any]]:
        views = self.driver.views()
        self.metrics.set_device_states(state_counts(views))
        self.metrics.faults.set(len(self.monitor.applied))
        layout = SliceLayout(partitions=self.opts.partitions)
        return build_slices(self.opts.node, list(views.values()), layout=layout)

    def _published(self, result: PublishResult | None, exc: Exception | None) -> None:
        if result is not None:
            self.metrics.publish_total.labels(
                "unchanged" if result.generation is None else "changed"
            ).inc()
            self.metrics.slices_published.set(result.slices)
            if result.generation is not None:
                self.metrics.pool_generation.set(result.generation)
        else:
            kind = "conflict" if isinstance(exc, kubeapi.Conflict) else "error"
            self.metrics.publish_total.labels(kind).inc()

    async def start(self) -> None:
        structlog.contextvars.bind_contextvars(node=self.opts.node)
        await asyncio.to_thread(self.driver.reconcile)
        await self.driver.sync_spike_ports()
        # Faults present at start must be in the very first slices we publish.
        await asyncio.to_thread(self.monitor.poll_once)
        if self.opts.metrics_port is not None:
            self.metrics.serve(self.opts.metrics_port)
        self._tasks.append(asyncio.create_task(self.publisher.run(), name="slice-publisher"))
        self._tasks.append(asyncio.create_task(self.monitor.run(), name="health-monitor"))
        server = PluginServer(
            PluginServerConfig(
                plugins_registry=self.opts.plugins_registry,
                plugins_dir=self.opts.plugins_dir,
                pod_uid=self.opts.pod_uid,
                grace_s=self.opts.grace_s,
                health_port=self.opts.health_port,
            ),
            self.driver,
            self.hub,
        )
        await server.start()
        self.server = server
        log.info("kubelet plugin started", chips=self.engine.chip_count())

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.spike_ports.close()
        self.kube.close()
        self.engine.close()
        log.info("kubelet plugin stopped")


async def run_until_signal(opts: PluginOptions) -> int:
    app = PluginApp(opts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        await stop.wait()
        log.info("signal received, stopping")
    finally:
        await app.stop()
    return 0
