"""The kubelet plugin's Preparer: checkpoint, engine partitions, CDI spec, claim status.

Decisions come from state.py; this module only performs them, in an order that a crash at any
point can be recovered from:

    node lock -> PrepareStarted (intent) saved -> partitions -> CDI spec -> PrepareCompleted saved
    -> lock released -> claim status.devices written (informational, never fails a claim)

A claim already completed is answered from the checkpoint. A claim found started was
interrupted: what it may have created is destroyed and the prepare is redone.

The chips are ``Chips``: in a node, the chip host process behind its socket
(chiphost.client.ChipHostClient), which outlives this plugin; in tests, an in-process Engine.
Either way, what lives on the chips belongs to one ``boot_id`` of theirs, and every completed
claim records the boot its partitions were made in. After a restart, ``reconcile`` keeps the
partitions that are still there, recreates missing ones and releases strays
(plugin/restore.py); claims of an earlier chip boot are *lost* (a chip reset): their devices
are reported by ``lost_devices`` (tainted, unhealthy) until the kubelet unprepares them.

With ``spike_ports``, every completed claim's partitions are served on their spike.sock;
``sync_spike_ports`` derives the set from the checkpoint after each prepare and unprepare, and
once after ``reconcile``. A port already serving is left alone, so a restarted plugin never
interrupts a workload's spikes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from darwin_dra.engine import EngineError, PartitionInfo
from darwin_dra.engine import PartitionConfig as EnginePartitionConfig
from darwin_dra.engine.errors import NotFound as EngineNotFound
from darwin_dra.hardware.model import ChipInfo, ChipProfile, CoreInfo
from darwin_dra.kubeapi import KubeApiError, NotFound, Unavailable
from darwin_dra.kubelet.preparer import ClaimRef, PreparedDevice, PrepareResult
from darwin_dra.kubetypes import Obj
from darwin_dra.plugin import cdi, restore, state
from darwin_dra.plugin.cdi import CDIWriter
from darwin_dra.plugin.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    ClaimRecord,
    DeviceRecord,
    NodeLock,
    Phase,
    read_boot_id,
)
from darwin_dra.plugin.metrics import PluginMetrics
from darwin_dra.plugin.slices import ChipView

log = structlog.get_logger(__name__)


# A prepared claim: the kubelet's answer, and what its status entries are made from.
_Done = tuple[PrepareResult, tuple[state.ClaimPlan, list[state.PreparedPartition]]]


class Chips(Protocol):
    """The node's chips as the plugin uses them: the chip host's client, or an Engine."""

    @property
    def boot_id(self) -> str: ...

    def chips(self) -> list[ChipInfo]: ...

    def cores(self, chip: int) -> list[CoreInfo]: ...

    def partitions(self) -> list[PartitionInfo]: ...

    def partition(self, part: int) -> PartitionInfo: ...

    def create_partition(
        self,
        chip: int,
        *,
        domains: list[int],
        shared: bool = False,
        keps_budget: int = 0,
        config: EnginePartitionConfig | None = None,
    ) -> int: ...

    def destroy_partition(self, part: int) -> None: ...


class PortSync(Protocol):
    async def sync(self, wanted: Mapping[Path, int]) -> dict[Path, str]: ...


class ClaimSource(Protocol):
    def get_claim(self, namespace: str, name: str) -> Obj: ...

    def update_claim_status(
        self,
        namespace: str,
        name: str,
        change: Callable[[Obj], Obj | None],
        attempts: int = 5,
        current: Obj | None = None,
    ) -> Obj | None: ...


@dataclass(frozen=True)
class DriverConfig:
    node: str
    state_dir: Path
    cdi_dir: Path
    lock_timeout_s: float = 30.0

    @property
    def checkpoint_path(self) -> Path:
        return self.state_dir / "checkpoint.json"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "prepare.lock"

    @property
    def socket_root(self) -> Path:
        return self.state_dir / "partitions"


@dataclass
class ReconcileReport:
    kept: int = 0
    recreated: int = 0
    rolled_back: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    orphan_specs: list[str] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


def is_lost(record: ClaimRecord, boot: str) -> bool:
    """A completed claim whose partitions died in a chip reset (pure)."""
    return (
        record.phase is Phase.PREPARE_COMPLETED
        and record.chip_boot is not None
        and record.chip_boot != boot
    )


def lost_devices(cp: Checkpoint, boot: str) -> frozenset[str]:
    """The devices of claims prepared in an earlier chip boot: tainted until unprepared."""
    return frozenset(d.device for r in cp.claims.values() if is_lost(r, boot) for d in r.devices)


def spike_sockets(cp: Checkpoint, socket_root: Path, boot: str) -> dict[Path, int]:
    """The spike.sock of every partition of a completed claim, and the partition it serves."""
    out: dict[Path, int] = {}
    for record in cp.claims.values():
        if record.phase is not Phase.PREPARE_COMPLETED or is_lost(record, boot):
            continue
        plan = state.ClaimPlan.from_intent(record.uid, record.namespace, record.name, record.intent)
        for intent, dev in zip(plan.devices, record.devices, strict=True):
            if dev.engine_partition is not None:
                sock = state.socket_dir(socket_root, record.uid, intent) / cdi.SPIKE_SOCKET
                out[sock] = dev.engine_partition
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Driver:
    """Implements kubelet.preparer.Preparer for one node."""

    def __init__(
        self,
        config: DriverConfig,
        engine: Chips,
        profiles: Mapping[str, ChipProfile],
        claims: ClaimSource,
        *,
        measured_keps: Mapping[int, int] | None = None,
        metrics: PluginMetrics | None = None,
        boot_id: Callable[[], str] = read_boot_id,
        after_started: Callable[[Sequence[str]], None] | None = None,
        spike_ports: PortSync | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.profiles = dict(profiles)
        self.measured_keps = dict(measured_keps or {})
        self.metrics = metrics or PluginMetrics()
        self._claims = claims
        self.store = CheckpointStore(config.checkpoint_path, boot_id)
        self.cdi = CDIWriter(config.cdi_dir)
        # Crash-test hook: called after PrepareStarted is on disk, before any side effect.
        self._after_started = after_started
        self.spike_ports = spike_ports
        # flock excludes other instances; this excludes our own threads without polling.
        self._local = threading.Lock()
        self._log = log.bind(node=config.node)
        chips = engine.chips()
        self._domain_cores: dict[int, dict[int, frozenset[int]]] = {}
        for chip in chips:
            by_domain: dict[int, set[int]] = {}
            for core in engine.cores(chip.id):
                by_domain.setdefault(core.domain, set()).add(core.core)
            self._domain_cores[chip.id] = {d: frozenset(c) for d, c in by_domain.items()}
        self._table = state.device_domains(self.views())

    # ---- hardware view ----
    def views(self) -> dict[int, ChipView]:
        out = {}
        for info in self.engine.chips():
            view = ChipView.from_info(
                info, self.profiles[info.model], self.measured_keps.get(info.id)
            )
            out[info.id] = view
        return out

    def _cores_of(self, intent: state.DeviceIntent) -> frozenset[int]:
        cores = self._domain_cores[intent.chip]
        return frozenset().union(*(cores[d] for d in intent.domains))

    # ---- Preparer ----
    async def prepare(self, claims: Sequence[ClaimRef]) -> Mapping[str, PrepareResult]:
        started = time.perf_counter()
        try:
            results = await self._prepare(claims)
            await self.sync_spike_ports()
            return results
        finally:
            self.metrics.rpc_seconds.labels("NodePrepareResources").observe(
                time.perf_counter() - started
            )

    async def unprepare(self, claims: Sequence[ClaimRef]) -> Mapping[str, str | None]:
        started = time.perf_counter()
        try:
            results = await asyncio.to_thread(self._unprepare_locked, list(claims))
            await self.sync_spike_ports()
            return results
        finally:
            self.metrics.rpc_seconds.labels("NodeUnprepareResources").observe(
                time.perf_counter() - started
            )

    async def sync_spike_ports(self) -> None:
        """Serve the spike port of every prepared partition, and nothing else."""
        if self.spike_ports is None:
            return
        try:
            cp = await asyncio.to_thread(self.store.load)
        except CheckpointError as exc:
            # Prepare and unprepare report the unusable checkpoint themselves.
            self._log.warning("spike ports left as they are", error=str(exc))
            return
        # A port that cannot start is logged there; the claim itself stays prepared.
        try:
            boot = await asyncio.to_thread(lambda: self.engine.boot_id)
            await self.spike_ports.sync(spike_sockets(cp, self.config.socket_root, boot))
        except EngineError as exc:  # the chip host away: the next prepare or start syncs again
            self._log.warning("spike ports not synced", error=str(exc))

    async def _prepare(self, claims: Sequence[ClaimRef]) -> dict[str, PrepareResult]:
        fetched = await asyncio.gather(*(asyncio.to_thread(self._fetch, c) for c in claims))
        views = self.views()
        plans: list[state.ClaimPlan] = []
        results: dict[str, PrepareResult] = {}
        for ref, got in zip(claims, fetched, strict=True):
            if isinstance(got, str):
                results[ref.uid] = PrepareResult(error=got)
                continue
            try:
                plans.append(state.plan_claim(got, ref.uid, self.config.node, views, self._table))
            except state.ClaimError as exc:
                results[ref.uid] = PrepareResult(error=str(exc))
        done: dict[str, tuple[state.ClaimPlan, list[state.PreparedPartition]]] = {}
        if plans:
            outcome = await asyncio.to_thread(self._prepare_locked, plans)
            for uid, item in outcome.items():
                if isinstance(item, str):
                    results[uid] = PrepareResult(error=item)
                else:
                    results[uid] = item[0]
                    done[uid] = item[1]
        for uid, result in results.items():
            if result.error:
                self.metrics.prepare_total.labels("error").inc()
                ref = next(c for c in claims if c.uid == uid)
                self._log.warning(
                    "prepare failed",
                    claim_uid=uid,
                    namespace=ref.namespace,
                    claim=ref.name,
                    rpc="NodePrepareResources",
                    error=result.error,
                )
        read = {
            ref.uid: got
            for ref, got in zip(claims, fetched, strict=True)
            if not isinstance(got, str)
        }
        await asyncio.gather(
            *(self._write_status(p, parts, views, read.get(p.uid)) for p, parts in done.values())
        )
        return results

    def _fetch(self, ref: ClaimRef) -> Obj | str:
        try:
            return self._claims.get_claim(ref.namespace, ref.name)
        except NotFound:
            return (
                f"ResourceClaim {ref.namespace}/{ref.name} not found: it was deleted before the "
                "node prepared it"
            )
        except Unavailable as exc:
            return f"cannot read ResourceClaim {ref.namespace}/{ref.name}: {exc}; will retry"
        except KubeApiError as exc:
            return f"cannot read ResourceClaim {ref.namespace}/{ref.name}: {exc}"

    @contextlib.contextmanager
    def _node_lock(self) -> Any:
        with self._local, NodeLock(self.config.lock_path, self.config.lock_timeout_s):
            yield

    def _load(self) -> Checkpoint:
        return self.store.load()

    def _prepare_locked(self, plans: list[state.ClaimPlan]) -> dict[str, str | _Done]:
        out: dict[str, str | _Done] = {}
        with self._node_lock():
            try:
                cp = self._load()
            except CheckpointError as exc:
                msg = f"node checkpoint unusable ({exc}); see {self.config.checkpoint_path}"
                return {p.uid: msg for p in plans}
            todo: list[state.ClaimPlan] = []
            for plan in plans:
                record = cp.claims.get(plan.uid)
                if record is not None and is_lost(record, self.engine.boot_id):
                    out[plan.uid] = (
                        f"the chip was reset after {plan.namespace}/{plan.name} was prepared: "
                        "its partitions are gone and its devices tainted; delete the pods "
                        "using it (or let the taint evict them), then the claim can be reused"
                    )
                    continue
                if record is not None and record.phase is Phase.PREPARE_COMPLETED:
                    out[plan.uid] = self._from_record(record)
                    self.metrics.prepare_total.labels("cached").inc()
                    continue
                if record is not None:
                    self._log.warning(
                        "rolling back an interrupted prepare",
                        claim_uid=plan.uid,
                        namespace=plan.namespace,
                    )
                    self._rollback(record, cp)
                    cp = cp.without(plan.uid)
                cp = cp.started(plan.uid, plan.namespace, plan.name, plan.intent())
                todo.append(plan)
            if not todo:
                return out
            try:
                self.store.save(cp)
            except OSError as exc:  # nothing done yet: the kubelet retries the whole claim
                for plan in todo:
                    out[plan.uid] = self._unsaved(plan, exc)
                return out
            if self._after_started is not None:
                self._after_started([p.uid for p in todo])
            for plan in todo:
                bound = self._log.bind(
                    claim_uid=plan.uid, namespace=plan.namespace, claim=plan.name
                )
                try:
                    prepared = self._create(plan, cp)
                except Exception as exc:  # one claim's failure must not fail the others
                    bound.warning("prepare side effects failed; rolled back", error=str(exc))
                    cp = cp.without(plan.uid)
                    out[plan.uid] = f"preparing {plan.namespace}/{plan.name} failed: {exc}"
                    continue
                devices = tuple(
                    DeviceRecord(
                        request_names=(p.intent.request,),
                        pool=plan.pool,
                        device=p.intent.device,
                        cdi_ids=ids,
                        engine_partition=p.partition_id,
                        share_id=p.intent.share_id,
                    )
                    for p, ids in prepared
                )
                cp = cp.completed(plan.uid, devices, self.engine.boot_id)
                parts = [p for p, _ in prepared]
                out[plan.uid] = (self._result(devices), (plan, parts))
                self.metrics.prepare_total.labels("ok").inc()
                self.metrics.set_partitions(
                    plan.uid, ((p.intent.device, p.partition_id, p.intent.keps) for p in parts)
                )
                bound.info(
                    "claim prepared",
                    rpc="NodePrepareResources",
                    devices=[d.device for d in devices],
                    partitions=[p.partition_id for p in parts],
                )
            try:
                self.store.save(cp)
            except OSError as exc:
                # The disk still says PrepareStarted for these claims: undo what this call
                # made, so nothing is held that the node's record does not know as prepared.
                for plan in todo:
                    item = out.get(plan.uid)
                    if isinstance(item, tuple):
                        parts = item[1][1]
                        for part in parts:
                            with contextlib.suppress(EngineError):
                                self.engine.destroy_partition(part.partition_id)
                        self._remove_files(plan)
                        self.metrics.drop_partitions(
                            plan.uid, ((p.intent.device, p.partition_id) for p in parts)
                        )
                        out[plan.uid] = self._unsaved(plan, exc)
                return out
            self._count_prepared(cp)
        return out

    def _unsaved(self, plan: state.ClaimPlan, exc: OSError) -> str:
        self._log.error(
            "cannot write the node checkpoint",
            claim_uid=plan.uid,
            namespace=plan.namespace,
            path=str(self.config.checkpoint_path),
            error=str(exc),
        )
        return (
            f"preparing {plan.namespace}/{plan.name} failed: cannot write the node checkpoint "
            f"{self.config.checkpoint_path}: {exc.strerror or exc}; nothing was kept, free "
            "space there and the kubelet's retry prepares the claim"
        )

    def _create(
        self, plan: state.ClaimPlan, cp: Checkpoint
    ) -> list[tuple[state.PreparedPartition, tuple[str, ...]]]:
        """Partitions, socket dirs and the CDI spec of one claim; all undone on failure."""
        created: list[state.PreparedPartition] = []
        try:
            for intent in plan.devices:
                created.append(self._create_partition(intent))
            for p in created:
                state.socket_dir(self.config.socket_root, plan.uid, p.intent).mkdir(
                    parents=True, exist_ok=True
                )
            specs = state.cdi_devices(plan, created, self.config.socket_root)
            ids = self.cdi.write(plan.uid, specs, plan.namespace) if specs else []
        except BaseException:
            for p in created:
                with contextlib.suppress(EngineError):
                    self.engine.destroy_partition(p.partition_id)
            self._remove_files(plan)
            raise
        return [(p, (i,)) for p, i in zip(created, ids, strict=True)]

    def _create_partition(self, intent: state.DeviceIntent) -> state.PreparedPartition:
        part = self.engine.create_partition(
            intent.chip,
            domains=list(intent.domains),
            shared=intent.shared,
            # Exclusive partitions own their router share outright: no budget to enforce.
            keps_budget=intent.keps if intent.shared else 0,
            config=state.engine_config(intent),
        )
        info = self.engine.partition(part)
        return state.PreparedPartition(intent, part, info.cores)

    def _remove_files(self, plan: state.ClaimPlan) -> None:
        self.cdi.remove(plan.uid, plan.namespace)
        for intent in plan.devices:
            shutil.rmtree(
                state.socket_dir(self.config.socket_root, plan.uid, intent), ignore_errors=True
            )

    def _owned(self, cp: Checkpoint) -> set[int]:
        boot = self.engine.boot_id
        return {
            d.engine_partition
            for c in cp.claims.values()
            if c.phase is Phase.PREPARE_COMPLETED and not is_lost(c, boot)
            for d in c.devices
            if d.engine_partition is not None
        }

    def _rollback(self, record: ClaimRecord, cp: Checkpoint) -> None:
        """Undo an interrupted prepare from its intent: the partition ids were never recorded,
        so destroy partitions matching each intent that no completed claim owns."""
        plan = state.ClaimPlan.from_intent(record.uid, record.namespace, record.name, record.intent)
        owned = self._owned(cp)
        existing = self.engine.partitions()
        for intent in plan.devices:
            cores = self._cores_of(intent)
            for info in existing:
                if (
                    info.id not in owned
                    and info.chip == intent.chip
                    and info.shared == intent.shared
                    and frozenset(info.cores) == cores
                ):
                    with contextlib.suppress(EngineError):
                        self.engine.destroy_partition(info.id)
                    owned.add(info.id)  # one intent undoes at most one partition
                    break
        self._remove_files(plan)

    def _result(self, devices: Sequence[DeviceRecord]) -> PrepareResult:
        return PrepareResult(
            devices=tuple(
                PreparedDevice(
                    request_names=d.request_names,
                    pool_name=d.pool,
                    device_name=d.device,
                    cdi_device_ids=d.cdi_ids,
                    share_id=d.share_id,
                )
                for d in devices
            )
        )

    def _from_record(self, record: ClaimRecord) -> _Done:
        plan = state.ClaimPlan.from_intent(record.uid, record.namespace, record.name, record.intent)
        parts = []
        for intent, dev in zip(plan.devices, record.devices, strict=True):
            assert dev.engine_partition is not None
            cores = tuple(sorted(self._cores_of(intent)))
            parts.append(state.PreparedPartition(intent, dev.engine_partition, cores))
        return self._result(record.devices), (plan, parts)

    def _count_prepared(self, cp: Checkpoint) -> None:
        self.metrics.prepared_devices.set(
            sum(len(c.devices) for c in cp.claims.values() if c.phase is Phase.PREPARE_COMPLETED)
        )

    async def _write_status(
        self,
        plan: state.ClaimPlan,
        parts: list[state.PreparedPartition],
        views: Mapping[int, ChipView],
        fetched: Obj | None = None,
    ) -> None:
        if not parts:
            return
        entries = state.status_entries(plan, parts, views, _now())

        def change(claim: Obj) -> Obj | None:
            if (claim.get("metadata") or {}).get("uid") != plan.uid:
                return None  # recreated meanwhile: not ours to annotate
            return state.with_status(claim, plan.pool, entries)

        try:
            await asyncio.to_thread(
                self._claims.update_claim_status,
                plan.namespace,
                plan.name,
                change,
                current=fetched,
            )
        except KubeApiError as exc:
            # The status is for people and controllers; the pod can run without it.
            self.metrics.claim_status_errors.inc()
            self._log.warning(
                "could not write claim status",
                claim_uid=plan.uid,
                namespace=plan.namespace,
                error=str(exc),
            )

    # ---- unprepare ----
    def _unprepare_locked(self, claims: list[ClaimRef]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        with self._node_lock():
            try:
                cp = self._load()
            except CheckpointError as exc:
                msg = f"node checkpoint unusable ({exc}); see {self.config.checkpoint_path}"
                return {c.uid: msg for c in claims}
            changed = False
            for ref in claims:
                bound = self._log.bind(
                    claim_uid=ref.uid, namespace=ref.namespace, rpc="NodeUnprepareResources"
                )
                record = cp.claims.get(ref.uid)
                if record is None:
                    out[ref.uid] = None  # never prepared here, or already released
                    self.metrics.unprepare_total.labels("unknown").inc()
                    continue
                try:
                    if record.phase is Phase.PREPARE_STARTED:
                        self._rollback(record, cp)
                    else:
                        lost = is_lost(record, self.engine.boot_id)
                        for dev in record.devices:
                            if lost:
                                break  # its ids may name another claim's partitions now
                            if dev.engine_partition is None:
                                continue
                            # Gone already (a restart that could not restore it): fine.
                            with contextlib.suppress(EngineNotFound):
                                self.engine.destroy_partition(dev.engine_partition)
                        plan = state.ClaimPlan.from_intent(
                            record.uid, record.namespace, record.name, record.intent
                        )
                        self._remove_files(plan)
                        self.metrics.drop_partitions(
                            ref.uid,
                            (
                                (d.device, d.engine_partition)
                                for d in record.devices
                                if d.engine_partition is not None
                            ),
                        )
                except Exception as exc:
                    bound.warning("unprepare failed", error=str(exc))
                    out[ref.uid] = f"unpreparing {ref.namespace}/{ref.name} failed: {exc}"
                    self.metrics.unprepare_total.labels("error").inc()
                    continue
                cp = cp.without(ref.uid)
                changed = True
                out[ref.uid] = None
                self.metrics.unprepare_total.labels("ok").inc()
                bound.info("claim unprepared", devices=[d.device for d in record.devices])
            if changed:
                try:
                    self.store.save(cp)
                except OSError as exc:
                    # What was undone stays undone; the record still lists the claims, so
                    # the kubelet's retry undoes them again (idempotent) and saves.
                    self._log.error(
                        "cannot write the node checkpoint",
                        path=str(self.config.checkpoint_path),
                        error=str(exc),
                    )
                    for uid, error in list(out.items()):
                        if error is None:
                            out[uid] = (
                                f"cannot write the node checkpoint {self.config.checkpoint_path}"
                                f": {exc.strerror or exc}; the kubelet retries"
                            )
                    return out
            self._count_prepared(cp)
        return out

    # ---- startup ----
    def reconcile(self) -> ReconcileReport:
        """Bring the chips and the CDI directory in line with the checkpoint (blocking)."""
        report = ReconcileReport()
        with self._node_lock():
            cp = self.store.load_or_quarantine()
            for record in cp.interrupted():
                self._rollback(record, cp)
                cp = cp.without(record.uid)
                report.rolled_back.append(record.uid)
            boot = self.engine.boot_id
            plan = restore.plan_restore(self._wanted(cp), self.engine.partitions(), boot)
            for part in plan.release:
                with contextlib.suppress(EngineNotFound):
                    self.engine.destroy_partition(part)
                report.released.append(part)
            report.lost = plan.lost()
            for uid, record in sorted(cp.claims.items()):
                if uid in report.lost:
                    self._log.warning(
                        "claim lost in a chip reset: its devices stay tainted until unprepared",
                        claim_uid=uid,
                        namespace=record.namespace,
                        chip_boot=record.chip_boot,
                        boot=boot,
                    )
                    continue
                try:
                    cp, kept, made = self._restore(cp, record, plan.of(uid), boot)
                except Exception as exc:
                    # Keep the record: unprepare must still find it and clean up.
                    report.failed[uid] = str(exc)
                    self._log.error(
                        "cannot restore a prepared claim",
                        claim_uid=uid,
                        namespace=record.namespace,
                        error=str(exc),
                    )
                    continue
                report.kept += kept
                report.recreated += made
            known = set(cp.claims)
            for uid in self.cdi.claims():
                if uid not in known:
                    self.cdi.remove(uid)
                    report.orphan_specs.append(uid)
            self.store.save(cp)
            self._count_prepared(cp)
        self._log.info(
            "reconciled with checkpoint",
            chip_boot=boot,
            kept=report.kept,
            recreated=report.recreated,
            released=report.released,
            lost=report.lost,
            rolled_back=report.rolled_back,
            failed=report.failed,
            orphan_specs=report.orphan_specs,
        )
        return report

    def _wanted(self, cp: Checkpoint) -> list[restore.Wanted]:
        out = []
        for record in cp.claims.values():
            if record.phase is not Phase.PREPARE_COMPLETED:
                continue
            plan = state.ClaimPlan.from_intent(
                record.uid, record.namespace, record.name, record.intent
            )
            for i, (intent, dev) in enumerate(zip(plan.devices, record.devices, strict=True)):
                out.append(
                    restore.Wanted(
                        uid=record.uid,
                        index=i,
                        chip=intent.chip,
                        cores=self._cores_of(intent),
                        shared=intent.shared,
                        partition=dev.engine_partition,
                        chip_boot=record.chip_boot,
                    )
                )
        return out

    def _restore(
        self,
        cp: Checkpoint,
        record: ClaimRecord,
        decisions: Sequence[restore.Decision],
        boot: str,
    ) -> tuple[Checkpoint, int, int]:
        plan = state.ClaimPlan.from_intent(record.uid, record.namespace, record.name, record.intent)
        kept = made = 0
        parts: list[state.PreparedPartition] = []
        devices: list[DeviceRecord] = []
        for intent, dev, decision in zip(plan.devices, record.devices, decisions, strict=True):
            if decision.action is restore.Action.KEEP:
                assert dev.engine_partition is not None
                cores = tuple(sorted(decision.wanted.cores))
                parts.append(state.PreparedPartition(intent, dev.engine_partition, cores))
                devices.append(dev)
                kept += 1
                continue
            p = self._create_partition(intent)
            parts.append(p)
            made += 1
            devices.append(
                DeviceRecord(
                    dev.request_names,
                    dev.pool,
                    dev.device,
                    dev.cdi_ids,
                    p.partition_id,
                    dev.share_id,
                )
            )
        if made:
            # The partition ids in the spec changed; containers started later must see the new.
            self.cdi.write(plan.uid, state.cdi_devices(plan, parts, self.config.socket_root))
            for p in parts:
                state.socket_dir(self.config.socket_root, plan.uid, p.intent).mkdir(
                    parents=True, exist_ok=True
                )
        if made or record.chip_boot != boot:
            cp = cp.without(record.uid).started(
                record.uid, record.namespace, record.name, record.intent
            )
            cp = cp.completed(record.uid, tuple(devices), boot)
        self.metrics.set_partitions(
            plan.uid, ((p.intent.device, p.partition_id, p.intent.keps) for p in parts)
        )
        return cp, kept, made
