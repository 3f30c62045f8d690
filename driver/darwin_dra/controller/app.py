"""The controller process: leader election in the main thread; while leading, a reconcile
worker (DeviceClasses, fabric slices, orphaned slices) and a binding worker (claims with
binding conditions). SIGTERM stops the workers, hands the lease back and exits 0; losing the
lease exits 1 so the pod restarts as a clean standby instead of racing the new leader.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import structlog

from darwin_dra import kubeapi
from darwin_dra.controller import binding
from darwin_dra.controller.deviceclasses import ClassSettings, device_classes
from darwin_dra.controller.leader import LeaderElector, LeaseConfig
from darwin_dra.controller.metrics import ControllerMetrics
from darwin_dra.controller.pipelines import PipelineWorker
from darwin_dra.controller.reconcile import reconcile_once
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.objects import StageSettings
from darwin_dra.resources.fabric import FabricSettings, fabric_slices

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ControllerOptions:
    inventory: Path
    lease: LeaseConfig
    kubeconfig: Path | None = None
    profiles: Path | None = None
    metrics_port: int | None = None
    resync_s: float = 30.0
    setup_s: float = 2.0  # simulated time to program a fabric's cross-chip routes
    watch_s: int = 30
    classes: ClassSettings = field(default_factory=ClassSettings)
    fabric: FabricSettings = field(default_factory=FabricSettings)
    install_classes: bool = True
    stages: StageSettings | None = None  # None: SpikingPipelines are not reconciled


def desired_objects(opts: ControllerOptions) -> tuple[list[Obj] | None, list[Obj]]:
    """Classes (None: not managed) and fabric slices; raises on a bad inventory before
    anything is written."""
    inventory = load_inventory(opts.inventory, load_profiles(opts.profiles))
    classes = device_classes(opts.classes) if opts.install_classes else None
    return classes, fabric_slices(inventory, opts.fabric)


class ReconcileWorker:
    def __init__(
        self,
        api: kubeapi.ControllerKube,
        classes: list[Obj] | None,
        slices: list[Obj],
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


class BindingWorker:
    """Watches claims; for each allocated device with binding conditions, runs the setup in
    a thread pool (setups are slow and independent) and writes the result."""

    def __init__(
        self,
        api: kubeapi.ControllerKube,
        metrics: ControllerMetrics,
        setup_s: float,
        watch_s: int,
        resync_s: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api, self.metrics = api, metrics
        self.setup_s, self.watch_s, self.resync_s, self.now = setup_s, watch_s, resync_s, now
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="route-setup")
        self.lock = threading.Lock()
        self.in_flight: set[tuple[str, tuple[str, str, str, str | None]]] = set()
        self.stop = threading.Event()

    def handle(self, claim: Obj) -> None:
        meta = claim.get("metadata") or {}
        for ref in binding.pending(claim):
            key = (str(meta.get("uid")), ref.key)
            with self.lock:
                if key in self.in_flight:
                    continue
                self.in_flight.add(key)
            self.pool.submit(self._setup, meta["namespace"], meta["name"], key, ref)

    def _setup(
        self,
        namespace: str,
        name: str,
        key: tuple[str, tuple[str, str, str, str | None]],
        ref: binding.DeviceRef,
    ) -> None:
        started = time.monotonic()
        log_ = log.bind(claim=f"{namespace}/{name}", device=f"{ref.pool}/{ref.device}")
        try:
            # The simulated programming of cross-chip routes: time passes, then it is done
            # (or fails, when the claim asks for a failure).
            if self.stop.wait(self.setup_s):
                return
            uid = key[0]
            outcome: dict[str, str] = {}

            def change(current: Obj) -> Obj | None:
                if current.get("metadata", {}).get("uid") != uid:
                    return None  # deleted and made again under the same name
                error = binding.injected_failure(current)
                endpoints = binding.routes(current, ref)
                updated = binding.with_setup_result(current, ref, error, endpoints, self.now())
                outcome["result"] = "stale" if updated is None else error or "ready"
                return updated

            self.api.update_claim_status(namespace, name, change)
            result = outcome.get("result", "stale")
            label = result if result in ("ready", "stale") else "failed"
            self.metrics.binding_total.labels(label).inc()
            self.metrics.binding_seconds.observe(time.monotonic() - started)
            log_.info("route setup", result=label, detail=result)
        except kubeapi.NotFound:
            self.metrics.binding_total.labels("stale").inc()
        except kubeapi.KubeApiError as exc:
            self.metrics.errors_total.labels("binding").inc()
            log_.warning("route setup: status write failed; retried on next event", error=str(exc))
        finally:
            with self.lock:
                self.in_flight.discard(key)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                claims, version = self.api.list_claims()
                for claim in claims:
                    self.handle(claim)
                deadline = time.monotonic() + self.resync_s
                # Watch until the next resync; a relist now and then repairs missed setups
                # (e.g. a status write that lost to a conflict).
                while not stop.is_set() and time.monotonic() < deadline:
                    for kind, claim in self.api.watch_claims(version, self.watch_s):
                        version = str(claim.get("metadata", {}).get("resourceVersion", version))
                        if kind in ("ADDED", "MODIFIED"):
                            self.handle(claim)
                        if stop.is_set():
                            break
            except kubeapi.KubeApiError as exc:
                self.metrics.errors_total.labels("claims").inc()
                log.warning("claim watch failed; listing again", error=str(exc), status=exc.status)
                stop.wait(1.0)

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)


def run(opts: ControllerOptions, stop: threading.Event) -> int:
    classes, slices = desired_objects(opts)
    api = kubeapi.connect_controller(opts.kubeconfig)
    metrics = ControllerMetrics()
    if opts.metrics_port is not None:
        metrics.serve(opts.metrics_port)
    structlog.contextvars.bind_contextvars(identity=opts.lease.identity)
    elector = LeaderElector(api, opts.lease)
    work_stop = threading.Event()
    threads: list[threading.Thread] = []
    binder = BindingWorker(api, metrics, opts.setup_s, opts.watch_s, opts.resync_s)
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
                    ("binding", binder.run),
                ]
                if opts.stages is not None:
                    pipe_api = kubeapi.connect_pipelines(opts.kubeconfig)
                    targets.append(
                        ("pipelines", PipelineWorker(pipe_api, metrics, opts.stages).run)
                    )
                for name, target in targets:
                    t = threading.Thread(target=target, args=(work_stop,), name=name, daemon=True)
                    t.start()
                    threads.append(t)
                log.info(
                    "leading: workers started",
                    classes=len(classes) if classes is not None else "not managed",
                    fabrics=len(slices),
                    pipelines=opts.stages is not None,
                )
            elif not leading and threads:
                metrics.errors_total.labels("leader").inc()
                code = 1
                break
            stop.wait(opts.lease.retry_s)
    finally:
        work_stop.set()
        binder.close()
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
