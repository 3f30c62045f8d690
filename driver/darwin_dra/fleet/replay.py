"""Replays a job trace against a live cluster: the edge of the fleet bench.

Sets a simulated fleet up through kubeapi (Node objects kept Ready by fleet/leases.py; the
slices the real builder produces; the DeviceClasses), then creates each job's pods at its
arrival time, watches the real kube-scheduler bind them, reads the claims' allocations, and
deletes each job's pods (grace 0: no kubelet runs them) once it has held its devices for its
duration. The kube-controller-manager creates the claims from the templates and deletes them
after their pods. Trace time runs ``compression`` times faster than wall time.
"""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from darwin_dra import kubeapi
from darwin_dra.controller.deviceclasses import device_classes
from darwin_dra.fleet import claims
from darwin_dra.fleet.claims import Unit
from darwin_dra.fleet.leases import parallel
from darwin_dra.fleet.metrics import Allocated, UnitRecord
from darwin_dra.fleet.trace import Job
from darwin_dra.kubetypes import Obj
from darwin_dra.quantity import parse_quantity
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.partitions import CAPACITY_PARTITIONS
from darwin_dra.resources.slices import SliceLayout, build_slices

log = structlog.get_logger(__name__)


def fleet_slices(
    fleet: Mapping[str, Sequence[ChipView]],
    layout: str,
    builder: Callable[[str, Sequence[ChipView]], list[Obj]] | None = None,
) -> list[Obj]:
    """Every slice of the fleet: ``darwin`` (the kubelet plugin's builder), ``capacity`` (its
    --partitions capacity layout) or ``plain``."""
    from darwin_dra.fleet.layout import plain_slices

    if builder is None:
        capacity = SliceLayout(partitions=CAPACITY_PARTITIONS)
        builder = {
            "darwin": build_slices,
            "capacity": lambda node, views: build_slices(node, views, layout=capacity),
            "plain": plain_slices,
        }[layout]
    return [s for node, views in fleet.items() for s in builder(node, views)]


def install(kube: kubeapi.FleetKube, slices: Sequence[Obj], model: str, namespace: str) -> None:
    """The DeviceClasses of the model, the slices, and the namespace (with its service account)."""
    classes = [claims.blackbox_class()] if model == "blackbox" else device_classes()
    for body in classes:
        with contextlib.suppress(kubeapi.Conflict):
            kube.create_device_class(body)
    parallel(kube.create_slice, slices)
    with contextlib.suppress(kubeapi.Conflict):
        kube.create_namespace(namespace)
    deadline = time.monotonic() + 60
    while not kube.service_account_exists(namespace):
        if time.monotonic() > deadline:
            raise kubeapi.KubeApiError(f"namespace {namespace}: no default service account")
        time.sleep(0.2)


def allocation(claim: Obj) -> tuple[Allocated, ...]:
    """The devices of a claim's allocation (pure)."""
    results = (((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}).get(
        "results"
    ) or []
    out = []
    for r in results:
        consumed = r.get("consumedCapacity") or {}
        out.append(
            Allocated(
                request=str(r.get("request", "")).split("/")[0],
                pool=str(r["pool"]),
                device=str(r["device"]),
                keps=_quantity(consumed.get("keps", "0")),
                neurons=_quantity(consumed.get("neurons", "0")),
                domains=_quantity(consumed.get("domains", "0")),
            )
        )
    return tuple(out)


def _quantity(text: str) -> int:
    """An integral quantity as the server canonicalises it ("5k", "20M", "4096")."""
    return int(parse_quantity(str(text)))


@dataclass
class _UnitState:
    unit: Unit
    created: float | None = None
    bound: float | None = None
    released: float | None = None
    devices: tuple[Allocated, ...] = ()


class Replay:
    """One replay of ``jobs`` in ``namespace`` with the units of ``model``."""

    def __init__(
        self,
        kube: kubeapi.FleetKube,
        jobs: Sequence[Job],
        model: str,
        namespace: str,
        compression: float,
        length_s: float,
        on_progress: Callable[[str], None] | None = None,
        whole_chip: Mapping[str, int] | None = None,
    ) -> None:
        self.kube = kube
        self.jobs = {j.id: j for j in jobs}
        self.model = model
        self.ns = namespace
        self.compression = compression
        self.length_s = length_s
        self.units: dict[str, _UnitState] = {}
        self.by_job: dict[int, list[_UnitState]] = {}
        for job in jobs:
            for u in claims.units(job, model, whole_chip):
                st = _UnitState(u)
                self.units[u.pod_name] = st
                self.by_job.setdefault(job.id, []).append(st)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._releases: list[tuple[float, int]] = []
        self._release_ready = threading.Condition(self._lock)
        self._templates: set[str] = set()
        self._t0 = 0.0
        self._progress = on_progress or (lambda _line: None)
        self.errors: list[str] = []

    def now(self) -> float:
        """Trace seconds since the replay started."""
        return (time.monotonic() - self._t0) * self.compression

    def _wall(self, trace_s: float) -> float:
        return self._t0 + trace_s / self.compression

    # ---- submitting ----
    def _submit(self, state: _UnitState) -> None:
        unit = state.unit
        name = unit.template_name
        try:
            if name not in self._templates:
                with contextlib.suppress(kubeapi.Conflict):
                    self.kube.create_claim_template(self.ns, claims.claim_template(unit.claim_spec))
                self._templates.add(name)
            self.kube.create_pod(self.ns, claims.pod(unit))
            with self._lock:
                state.created = self.now()
        except kubeapi.KubeApiError as exc:
            self.errors.append(f"create {unit.pod_name}: {exc}")

    def _submitter(self, pool: ThreadPoolExecutor) -> None:
        for job in sorted(self.jobs.values(), key=lambda j: j.arrival):
            if job.arrival >= self.length_s:
                break
            delay = self._wall(job.arrival) - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            for state in self.by_job[job.id]:
                pool.submit(self._submit, state)

    # ---- watching ----
    def _on_bound(self, state: _UnitState, pod: Obj) -> None:
        claim_name = next(
            (
                s.get("resourceClaimName")
                for s in (pod.get("status") or {}).get("resourceClaimStatuses") or []
                if s.get("name") == "devices"
            ),
            None,
        )
        devices: tuple[Allocated, ...] = ()
        if claim_name:
            try:
                devices = allocation(self.kube.get_claim(self.ns, claim_name))
            except kubeapi.KubeApiError as exc:
                self.errors.append(f"claim of {state.unit.pod_name}: {exc}")
        with self._lock:
            state.devices = devices
            job_units = self.by_job[state.unit.job.id]
            if all(u.bound is not None for u in job_units) and all(u.devices for u in job_units):
                start = max(u.bound for u in job_units if u.bound is not None)
                due = self._wall(start + state.unit.job.duration)
                heapq.heappush(self._releases, (due, state.unit.job.id))
                self._release_ready.notify()

    def _watcher(self, pool: ThreadPoolExecutor) -> None:
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    pods, rv = self.kube.list_pods(self.ns)
                    for pod in pods:
                        self._see(pod, pool)
                for kind, pod in self.kube.watch_pods(self.ns, rv, timeout_s=30):
                    rv = str((pod.get("metadata") or {}).get("resourceVersion") or rv)
                    if kind in ("ADDED", "MODIFIED"):
                        self._see(pod, pool)
                    if self._stop.is_set():
                        return
            except kubeapi.KubeApiError as exc:
                if exc.status == 410:
                    rv = ""
                    continue
                self.errors.append(f"watch: {exc}")
                time.sleep(0.5)

    def _see(self, pod: Obj, pool: ThreadPoolExecutor) -> None:
        name = pod["metadata"]["name"]
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        with self._lock:
            state = self.units.get(name)
            if state is None or state.bound is not None:
                return
            state.bound = self.now()
        pool.submit(self._on_bound, state, pod)

    # ---- releasing ----
    def _release(self, state: _UnitState) -> None:
        try:
            self.kube.delete_pod_now(self.ns, state.unit.pod_name)
        except kubeapi.KubeApiError as exc:
            self.errors.append(f"delete {state.unit.pod_name}: {exc}")
            return
        with self._lock:
            state.released = self.now()

    def _releaser(self, pool: ThreadPoolExecutor) -> None:
        """Deletes each job's pods when it is due, on ``pool``: one thread deleting in turn
        fell behind the trace on the loaded machine, and a late delete holds the devices."""
        while True:
            with self._lock:
                while not self._stop.is_set():
                    wait = (self._releases[0][0] - time.monotonic()) if self._releases else 1.0
                    if self._releases and wait <= 0:
                        break
                    self._release_ready.wait(min(max(wait, 0.01), 1.0))
                if self._stop.is_set():
                    return
                _, job_id = heapq.heappop(self._releases)
                states = list(self.by_job[job_id])
            for state in states:
                pool.submit(self._release, state)

    def _reporter(self) -> None:
        while not self._stop.wait(10.0):
            with self._lock:
                bound = sum(1 for s in self.units.values() if s.bound is not None)
                running = sum(
                    1 for s in self.units.values() if s.bound is not None and s.released is None
                )
                created = sum(1 for s in self.units.values() if s.created is not None)
            self._progress(
                f"{self.model}: trace {self.now() / 3600:.2f} h of {self.length_s / 3600:.2f} h,"
                f" pods created {created}, bound {bound}, holding devices {running},"
                f" pending {created - bound}"
            )

    def run(self) -> list[UnitRecord]:
        self._t0 = time.monotonic()
        with (
            # Creating pods waits on the API server: enough threads that the bench's client
            # keeps up with the arrivals on a loaded machine (see the creation lag row).
            ThreadPoolExecutor(16, thread_name_prefix="submit") as submit,
            ThreadPoolExecutor(4, thread_name_prefix="claims") as fetch,
            ThreadPoolExecutor(8, thread_name_prefix="release") as release,
        ):
            threads = [
                threading.Thread(target=self._submitter, args=(submit,), name="submitter"),
                threading.Thread(target=self._watcher, args=(fetch,), name="watcher"),
                threading.Thread(target=self._releaser, args=(release,), name="releaser"),
                threading.Thread(target=self._reporter, name="reporter"),
            ]
            for t in threads:
                t.daemon = True
                t.start()
            end = self._wall(self.length_s)
            while time.monotonic() < end:
                time.sleep(min(1.0, max(end - time.monotonic(), 0.0)))
            with self._lock:
                self._stop.set()
                self._release_ready.notify_all()
            for t in threads:
                t.join(timeout=40)
        return self.records()

    def records(self) -> list[UnitRecord]:
        with self._lock:
            out = []
            for state in self.units.values():
                if state.created is None:
                    continue
                released = state.released
                if released is not None and released > self.length_s:
                    released = None
                out.append(
                    UnitRecord(
                        job_id=state.unit.job.id,
                        index=state.unit.index,
                        created=state.created,
                        bound=state.bound if state.devices else None,
                        released=released if state.devices else None,
                        devices=state.devices,
                    )
                )
            return out
