"""The controller process: leader election in the main thread; while leading, a reconcile
worker (DeviceClasses, fabric slices, orphaned slices) and the SpikingPipeline worker. The
routes a pod's binding waits for are the kubelet plugins' (plugin/earlyprep.py), not this
process's. SIGTERM stops the workers, hands the lease back and exits 0; losing the
lease exits 1 so the pod restarts as a clean standby instead of racing the new leader.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import structlog

from darwin_dra import kubeapi
from darwin_dra.controller.deviceclasses import ClassSettings, device_classes
from darwin_dra.controller.leader import LeaderElector, LeaseConfig
from darwin_dra.controller.metrics import ControllerMetrics
from darwin_dra.controller.pipelines import PipelineWorker
from darwin_dra.controller.reconcile import FabricOf, reconcile_once
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.objects import StageSettings
from darwin_dra.resources.fabric import FabricSettings, FabricsOf, nominal_links

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ControllerOptions:
    inventory: Path
    lease: LeaseConfig
    kubeconfig: Path | None = None
    profiles: Path | None = None
    metrics_port: int | None = None
    resync_s: float = 30.0
    classes: ClassSettings = field(default_factory=ClassSettings)
    fabric: FabricSettings = field(default_factory=FabricSettings)
    install_classes: bool = True
    stages: StageSettings | None = None  # None: SpikingPipelines are not reconciled


def desired_objects(opts: ControllerOptions) -> tuple[list[Obj] | None, FabricsOf]:
    """Classes (None: not managed) and the fabric slices as a function of the node slices
    observed (they follow the chips' fabric faults); raises on a bad inventory before
    anything is written."""
    profiles = load_profiles(opts.profiles)
    inventory = load_inventory(opts.inventory, profiles)
    classes = device_classes(opts.classes) if opts.install_classes else None
    return classes, FabricsOf(inventory, opts.fabric, profiles)


class ReconcileWorker:
    def __init__(
        self,
        api: kubeapi.ControllerKube,
        classes: list[Obj] | None,
        slices: FabricOf,
        metrics: ControllerMetrics,
        resync_s: float,
    ) -> None:
        self.api, self.classes, self.slices = api, classes, slices
        self.metrics, self.resync_s = metrics, resync_s

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            wait = self.resync_s
            try:
                actions = reconcile_once(self.api, self.classes, self.slices)
                for a in actions:
                    self.metrics.actions_total.labels(a.verb, a.kind).inc()
                self.metrics.reconcile_total.labels("changed" if actions else "unchanged").inc()
                if actions:
                    wait = min(wait, 1.0)  # read back what we wrote soon
            except kubeapi.KubeApiError as exc:
                self.metrics.reconcile_total.labels("error").inc()
                self.metrics.errors_total.labels("reconcile").inc()
                log.warning("reconcile failed", error=str(exc), status=exc.status)
                wait = min(wait, 2.0)
            stop.wait(wait)


def run(opts: ControllerOptions, stop: threading.Event) -> int:
    classes, slices = desired_objects(opts)
    nominal = nominal_links(slices.inventory, slices.profiles or {})
    api = kubeapi.connect_controller(opts.kubeconfig)
    metrics = ControllerMetrics()
    if opts.metrics_port is not None:
        metrics.serve(opts.metrics_port)
    structlog.contextvars.bind_contextvars(identity=opts.lease.identity)
    elector = LeaderElector(api, opts.lease)
    work_stop = threading.Event()
    threads: list[threading.Thread] = []
    pipe_api: kubeapi.PipelineKube | None = None
    code = 0
    try:
        while not stop.is_set():
            leading = elector.step()
            metrics.leader.set(1 if leading else 0)
            if leading and not threads:
                reconciler = ReconcileWorker(api, classes, slices, metrics, opts.resync_s)
                targets: list[tuple[str, Callable[[threading.Event], None]]] = [
                    ("reconcile", reconciler.run),
                ]
                if opts.stages is not None:
                    pipe_api = kubeapi.connect_pipelines(opts.kubeconfig)
                    targets.append(
                        (
                            "pipelines",
                            PipelineWorker(pipe_api, metrics, opts.stages, nominal).run,
                        )
                    )
                for name, target in targets:
                    t = threading.Thread(target=target, args=(work_stop,), name=name, daemon=True)
                    t.start()
                    threads.append(t)
                log.info(
                    "leading: workers started",
                    classes=len(classes) if classes is not None else "not managed",
                    fabrics=len(slices(())),
                    pipelines=opts.stages is not None,
                )
            elif not leading and threads:
                metrics.errors_total.labels("leader").inc()
                code = 1
                break
            stop.wait(opts.lease.retry_s)
    finally:
        work_stop.set()
        for t in threads:
            # The watch returns within its timeout; do not hold shutdown hostage to it.
            t.join(timeout=2.0)
        if code == 0:
            elector.release()
        metrics.leader.set(0)
        if pipe_api is not None:  # its own connection, so its watch cannot stall the others
            pipe_api.close()
        api.close()
    log.info("controller stopped", exit_code=code)
    return code


def run_until_signal(opts: ControllerOptions) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received; stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return run(opts, stop)
