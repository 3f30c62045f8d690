"""The kubelet plugin assembled: the chip host's client, driver, slice publisher, health
monitor, gRPC servers and metrics, started in an order the kubelet can rely on and stopped
gracefully. The chips, their partitions and spike ports live in the chip host process; this
one can stop at any moment without the workloads noticing."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from darwin_dra import DRIVER_NAME, kubeapi
from darwin_dra.chiphost.app import default_socket
from darwin_dra.chiphost.client import ChipHostClient, RemotePorts
from darwin_dra.engine import EngineError
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.health_service import HealthHub
from darwin_dra.kubelet.server import PluginServer, PluginServerConfig
from darwin_dra.lifecycle import serve_until_signal
from darwin_dra.plugin.checkpoint import CheckpointError
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.earlyprep import EarlyPreparer
from darwin_dra.plugin.health import HealthMonitor, Snapshot, state_counts
from darwin_dra.plugin.metrics import PluginMetrics
from darwin_dra.plugin.node import DriverConfig
from darwin_dra.plugin.placement import with_grants
from darwin_dra.plugin.publisher import Publisher, PublishResult
from darwin_dra.plugin.recovery import live_claims, lost_devices
from darwin_dra.resources.partitions import PARTITION_KINDS, with_reset_taints
from darwin_dra.resources.slices import SliceLayout, build_slices, node_owner

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PluginOptions:
    node: str
    state_dir: Path
    cdi_dir: Path
    plugins_registry: Path
    plugins_dir: Path
    kubeconfig: Path | None = None
    profiles: Path | None = None
    pod_uid: str | None = None
    metrics_port: int | None = None
    health_port: int | None = None
    chip_host: Path | None = None  # default: <state_dir>/chip-host.sock
    chip_host_wait_s: float = 60.0
    fault_poll_s: float = 1.0
    health_resync_s: float = 30.0
    slice_resync_s: float = 60.0
    grace_s: float = 5.0
    drain_s: float = 3.0  # see PluginServerConfig.drain_s
    partitions: tuple[str, ...] = PARTITION_KINDS  # the slice layout (--partitions)
    crash_points: Path | None = None  # tests only (--crash-points-file): see crashpoints.py


class NodeGone(Exception):
    """The plugin's Node object existed and is gone: the node was removed from the cluster."""


class PluginApp:
    def __init__(self, opts: PluginOptions, kube: kubeapi.Kube | None = None) -> None:
        self.opts = opts
        self.kube = kube or kubeapi.connect(opts.kubeconfig)
        self.metrics = PluginMetrics()
        self.profiles = load_profiles(opts.profiles)
        socket = opts.chip_host or default_socket(opts.state_dir)
        self.chip = ChipHostClient(socket)
        try:
            info = self.chip.wait_ready(opts.chip_host_wait_s)
            if info.node != opts.node:
                raise ValueError(
                    f"the chip host on {socket} holds the chips of node {info.node!r}, "
                    f"not {opts.node!r}"
                )
            unknown = sorted({c.model for c in info.chips} - set(self.profiles))
            if unknown:
                raise ValueError(f"the chip host reports chip models without a profile: {unknown}")
            self.hub = HealthHub()
            self._last_desired: list[dict[str, Any]] = []
            self._node_seen = False  # the Node object has existed (its absence is a removal)
            self._tasks: list[asyncio.Task[None]] = []
            self._watch_kube: kubeapi.Kube | None = None
            self.server: PluginServer | None = None
            self.driver = Driver(
                DriverConfig(
                    opts.node, opts.state_dir, opts.cdi_dir, crash_points=opts.crash_points
                ),
                self.chip,
                self.profiles,
                self.kube,
                measured_keps=dict(info.measured_keps) or None,
                metrics=self.metrics,
                spike_ports=RemotePorts(self.chip),
            )
        except BaseException:
            self.chip.close()
            raise
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
            self._snapshot,
            self.hub,
            self.publisher.trigger,
            poll_s=opts.fault_poll_s,
            resync_s=opts.health_resync_s,
            kinds=opts.partitions,
        )

    def _snapshot(self) -> Snapshot:
        """The chips (asking the chip host, so a new boot id is seen first), each with its
        prepared capacity grants, and the devices lost in a chip reset."""
        views = self.driver.views()
        try:
            cp = self.driver.store.load()
        except CheckpointError:
            return views, frozenset()  # prepare and unprepare report it
        boot = self.chip.boot_id
        intents = [d.intent for r in live_claims(cp, boot) for d in r.devices]
        return with_grants(views, intents), lost_devices(cp, boot)

    def _desired_now(self) -> list[dict[str, Any]]:
        try:
            owner = self._node_owner()
        except NodeGone:
            # The node was removed: its slices go with it (the garbage collector deletes the
            # owned ones; this deletes the rest) until it registers again.
            log.warning("the Node object was removed: withdrawing this node's slices")
            self._last_desired = []
            return []
        info = self.chip.info()
        self.metrics.faults.set(len(info.faults))
        if info.measured_keps:  # calibrated: a fault changes them, and this republishes them
            self.driver.set_measured_keps(dict(info.measured_keps))
        views, lost = self._snapshot()
        self.metrics.set_device_states(state_counts(views, self.opts.partitions))
        self._last_desired = with_reset_taints(
            build_slices(
                self.opts.node,
                list(views.values()),
                layout=SliceLayout(partitions=self.opts.partitions),
                owner=owner,
            ),
            lost,
        )
        return self._last_desired

    def _node_owner(self) -> dict[str, Any] | None:
        """The node as its slices' owner, read at every publish: a node deleted and registered
        again has a new uid, and slices owned by the old one would be collected. Before the
        Node object first exists the slices go out unowned (and get it at the next publish);
        once it has existed, its absence means the node was removed (``NodeGone``). An API
        error goes to the publisher's backoff."""
        try:
            uid = self.kube.get_node(self.opts.node)["metadata"]["uid"]
        except kubeapi.NotFound:
            if self._node_seen:
                raise NodeGone(self.opts.node) from None
            log.warning("no Node object yet: slices published without an owner")
            return None
        self._node_seen = True
        return node_owner(self.opts.node, str(uid))

    def _desired(self) -> list[dict[str, Any]]:
        try:
            return self._desired_now()
        except EngineError as exc:
            # The chip host is away (a chip reset is coming): keep publishing what was true
            # last; the health poll triggers a publish once it answers again.
            log.warning("chips unreadable; publishing their last state", error=str(exc))
            return self._last_desired

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
        await asyncio.to_thread(self._desired_now)  # raises here, not in the publisher
        if self.opts.metrics_port is not None:
            self.metrics.serve(self.opts.metrics_port)
        self._tasks.append(asyncio.create_task(self.publisher.run(), name="slice-publisher"))
        self._tasks.append(asyncio.create_task(self.monitor.run(), name="health-monitor"))
        # Claims whose chip routers hold their pod's binding: prepared before it binds. Its
        # own connection, so its long watch never holds one the publisher or prepare needs.
        self._watch_kube = kubeapi.connect(self.opts.kubeconfig)
        early = EarlyPreparer(self.driver, self._watch_kube, self.opts.node, self.opts.state_dir)
        self._tasks.append(asyncio.create_task(early.run(), name="early-prepare"))
        server = PluginServer(
            PluginServerConfig(
                plugins_registry=self.opts.plugins_registry,
                plugins_dir=self.opts.plugins_dir,
                pod_uid=self.opts.pod_uid,
                grace_s=self.opts.grace_s,
                drain_s=self.opts.drain_s,
                health_port=self.opts.health_port,
            ),
            self.driver,
            self.hub,
        )
        await server.start()
        self.server = server
        log.info(
            "kubelet plugin started", chips=self.chip.chip_count(), chip_boot=self.chip.boot_id
        )

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
        if self._watch_kube is not None:
            self._watch_kube.close()
            self._watch_kube = None
        # The spike ports stay: they are the chip host's, and the workloads are using them.
        self.kube.close()
        self.chip.close()
        log.info("kubelet plugin stopped")


async def run_until_signal(opts: PluginOptions) -> int:
    return await serve_until_signal(PluginApp(opts))
