"""Preparing claims under the node lock, in an order a crash at any point recovers from:

    node lock -> PrepareStarted (the plan) saved -> partitions -> CDI spec -> PrepareCompleted
    saved -> lock released

A claim already completed is answered from the checkpoint. A claim found started was
interrupted: what it may have made is rolled back and the prepare is redone. A claim prepared
in an earlier chip boot is lost (recovery.is_lost) and refused until it is unprepared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from darwin_dra.kubelet.preparer import PrepareResult
from darwin_dra.plugin import placement, recovery
from darwin_dra.plugin.checkpoint import Checkpoint, CheckpointError, ClaimRecord, Phase
from darwin_dra.plugin.node import Node
from darwin_dra.plugin.records import ClaimPlan, Prepared
from darwin_dra.plugin.rollback import roll_back
from darwin_dra.resources.chips import ChipView

# Crash-test hook: called after PrepareStarted is on disk, before any side effect.
AfterStarted = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class Done:
    """A prepared claim: the kubelet's answer and its status entries are made from it."""

    plan: ClaimPlan
    devices: tuple[Prepared, ...]

    def result(self) -> PrepareResult:
        return PrepareResult(devices=tuple(d.to_kubelet(self.plan.pool) for d in self.devices))


def _cached(node: Node, record: ClaimRecord) -> Done:
    return Done(record.plan, tuple(node.with_cores(d) for d in record.devices))


def _lost(claim: ClaimPlan) -> str:
    return (
        f"the chip was reset after {claim.namespace}/{claim.name} was prepared: "
        "its partitions are gone and its devices tainted; delete the pods "
        "using it (or let the taint evict them), then the claim can be reused"
    )


def prepare_locked(
    node: Node, plans: list[ClaimPlan], after_started: AfterStarted | None = None
) -> dict[str, str | Done]:
    """Prepare every plan (blocking): a Done, or the error the kubelet gets, per claim UID."""
    out: dict[str, str | Done] = {}
    with node.lock():
        try:
            cp = node.store.load()
        except CheckpointError as exc:
            return dict.fromkeys((p.uid for p in plans), node.unusable(exc))
        todo: list[ClaimPlan] = []
        views: dict[int, ChipView] | None = None
        for claim in plans:
            record = cp.claims.get(claim.uid)
            if record is not None and recovery.is_lost(record, node.engine.boot_id):
                out[claim.uid] = _lost(claim)
                continue
            if record is not None and record.phase is Phase.PREPARE_COMPLETED:
                out[claim.uid] = _cached(node, record)
                node.metrics.prepare_total.labels("cached").inc()
                continue
            if record is not None:
                node.log.warning(
                    "rolling back an interrupted prepare",
                    claim_uid=claim.uid,
                    namespace=claim.namespace,
                )
                roll_back(node, record, cp)
                cp = cp.without(claim.uid)
            if any(d.wanted_domains and not d.picked for d in claim.devices):
                # Capacity grants: their domains are picked here, under the lock, against
                # what every other claim of the checkpoint holds, and saved with the plan.
                views = views if views is not None else node.views()
                held = placement.held_domains(r.plan for r in cp.claims.values())
                try:
                    claim = placement.place_claim(claim, views, held)
                except placement.NoRoom as exc:
                    out[claim.uid] = str(exc)
                    continue
            cp = cp.started(claim)
            todo.append(claim)
        if not todo:
            return out
        try:
            node.store.save(cp)
        except OSError as exc:  # nothing done yet: the kubelet retries the whole claim
            for claim in todo:
                out[claim.uid] = node.unsaved(claim, exc)
            return out
        node.crash.reached("prepare-started-saved")
        if after_started is not None:
            after_started([p.uid for p in todo])
        cp = _make_all(node, todo, cp, out)
        try:
            node.store.save(cp)
        except OSError as exc:
            # The disk still says PrepareStarted for these claims: undo what this call
            # made, so nothing is held that the node's record does not know as prepared.
            for claim in todo:
                item = out.get(claim.uid)
                if isinstance(item, Done):
                    _undo(node, item)
                    out[claim.uid] = node.unsaved(claim, exc)
            return out
        node.crash.reached("prepare-completed-saved")
        node.count_prepared(cp)
    return out


def _make_all(
    node: Node, todo: list[ClaimPlan], cp: Checkpoint, out: dict[str, str | Done]
) -> Checkpoint:
    """The side effects of every started claim; one claim's failure never fails the others."""
    for claim in todo:
        bound = node.log.bind(claim_uid=claim.uid, namespace=claim.namespace, claim=claim.name)
        try:
            devices = _make(node, claim)
        except Exception as exc:
            bound.warning("prepare side effects failed; rolled back", error=str(exc))
            cp = cp.without(claim.uid)
            out[claim.uid] = f"preparing {claim.namespace}/{claim.name} failed: {exc}"
            continue
        cp = cp.completed(claim.uid, devices, node.engine.boot_id)
        out[claim.uid] = Done(claim, devices)
        node.metrics.prepare_total.labels("ok").inc()
        node.metrics.set_partitions(
            claim.uid, ((d.intent.device, d.partition_id, d.intent.keps) for d in devices)
        )
        bound.info(
            "claim prepared",
            rpc="NodePrepareResources",
            devices=[d.intent.device for d in devices],
            partitions=[d.partition_id for d in devices],
        )
    return cp


def _make(node: Node, claim: ClaimPlan) -> tuple[Prepared, ...]:
    """Partitions, socket dirs and the CDI spec of one claim; all undone on failure."""
    made: list[Prepared] = []
    try:
        for intent in claim.devices:
            made.append(node.create_partition(intent, claim.uid))
            node.crash.reached("partition-created")
        # The routes between the claim's partitions (they go with the partitions on undo).
        node.program_routes(claim, {p.intent.request: p.partition_id for p in made})
        node.make_socket_dirs(claim)
        ids = node.cdi.write(claim.uid, made, claim.namespace) if made else []
        node.crash.reached("cdi-written")
    except BaseException:
        node.destroy_quietly(p.partition_id for p in made)
        node.remove_files(claim)
        raise
    return tuple(
        Prepared(p.intent, p.partition_id, p.cores, (i,)) for p, i in zip(made, ids, strict=True)
    )


def _undo(node: Node, done: Done) -> None:
    node.destroy_quietly(d.partition_id for d in done.devices)
    node.remove_files(done.plan)
    node.metrics.drop_partitions(
        done.plan.uid, ((d.intent.device, d.partition_id) for d in done.devices)
    )
