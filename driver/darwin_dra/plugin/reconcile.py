"""Restart recovery: bring the chips, the CDI directory and the spike socket directories in
line with the checkpoint.

Interrupted prepares are rolled back; for the completed claims, recovery.plan_restore decides
which partition is kept, which recreated and which released, and which claims were lost in a
chip reset (their devices stay tainted until the kubelet unprepares them). This module performs
those decisions and rewrites the CDI specs whose partition ids changed.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from darwin_dra.engine.errors import NotFound as EngineNotFound
from darwin_dra.plugin import recovery
from darwin_dra.plugin.checkpoint import Checkpoint, ClaimRecord
from darwin_dra.plugin.node import Node
from darwin_dra.plugin.records import Prepared
from darwin_dra.plugin.rollback import roll_back


@dataclass
class ReconcileReport:
    kept: int = 0
    recreated: int = 0
    rolled_back: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    orphan_specs: list[str] = field(default_factory=list)
    orphan_socket_dirs: list[str] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


def reconcile(node: Node) -> ReconcileReport:
    """Recover after a restart (blocking); returns what was done."""
    report = ReconcileReport()
    with node.lock():
        cp = node.store.load_or_quarantine()
        for record in cp.interrupted():
            roll_back(node, record, cp)
            cp = cp.without(record.uid)
            report.rolled_back.append(record.uid)
        boot = node.engine.boot_id
        plan = recovery.plan_restore(
            recovery.wanted(cp, node.cores_of), node.engine.partitions(), boot
        )
        for part in plan.release:
            with contextlib.suppress(EngineNotFound):
                node.engine.destroy_partition(part)
            report.released.append(part)
        report.lost = plan.lost()
        for uid, record in sorted(cp.claims.items()):
            if uid in report.lost:
                node.log.warning(
                    "claim lost in a chip reset: its devices stay tainted until unprepared",
                    claim_uid=uid,
                    namespace=record.namespace,
                    chip_boot=record.chip_boot,
                    boot=boot,
                )
                continue
            try:
                cp, kept, made = _restore(node, cp, record, plan.of(uid), boot)
            except Exception as exc:
                # Keep the record: unprepare must still find it and clean up.
                report.failed[uid] = str(exc)
                node.log.error(
                    "cannot restore a prepared claim",
                    claim_uid=uid,
                    namespace=record.namespace,
                    error=str(exc),
                )
                continue
            report.kept += kept
            report.recreated += made
        known = set(cp.claims)
        for uid in node.cdi.claims():
            if uid not in known:
                node.cdi.remove(uid)
                report.orphan_specs.append(uid)
        root = node.config.socket_root
        present = [d.name for d in root.iterdir()] if root.is_dir() else []
        for name in recovery.orphan_socket_dirs(cp, present):
            shutil.rmtree(root / name, ignore_errors=True)
            report.orphan_socket_dirs.append(name)
        node.store.save(cp)
        node.count_prepared(cp)
    node.log.info(
        "reconciled with checkpoint",
        chip_boot=boot,
        kept=report.kept,
        recreated=report.recreated,
        released=report.released,
        lost=report.lost,
        rolled_back=report.rolled_back,
        failed=report.failed,
        orphan_specs=report.orphan_specs,
        orphan_socket_dirs=report.orphan_socket_dirs,
    )
    return report


def _restore(
    node: Node,
    cp: Checkpoint,
    record: ClaimRecord,
    decisions: Sequence[recovery.Decision],
    boot: str,
) -> tuple[Checkpoint, int, int]:
    """Keep or recreate each device of one completed claim, as ``decisions`` say."""
    kept = made = 0
    devices: list[Prepared] = []
    for dev, decision in zip(record.devices, decisions, strict=True):
        if decision.action is recovery.Action.KEEP:
            devices.append(node.with_cores(dev))
            kept += 1
            continue
        fresh = node.create_partition(dev.intent, record.uid)
        devices.append(Prepared(dev.intent, fresh.partition_id, fresh.cores, dev.cdi_ids))
        made += 1
    if made:
        # The partition ids in the spec changed; containers started later must see the new.
        node.cdi.write(record.uid, devices)
        node.make_socket_dirs(record.plan)
    # A version 1 record gets its cores (it kept none) when written back.
    if made or record.chip_boot != boot or tuple(devices) != record.devices:
        cp = cp.without(record.uid).started(record.plan)
        cp = cp.completed(record.uid, tuple(devices), boot)
    node.metrics.set_partitions(
        record.uid, ((d.intent.device, d.partition_id, d.intent.keps) for d in devices)
    )
    return cp, kept, made
