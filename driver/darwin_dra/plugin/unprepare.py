"""Unpreparing claims under the node lock: partitions destroyed, files removed, record dropped.

Idempotent: a claim the checkpoint does not know is already released; a partition already gone
is fine. A claim lost in a chip reset destroys nothing (its ids may name another claim's
partitions now); an interrupted one is rolled back.
"""

from __future__ import annotations

import contextlib

from darwin_dra.engine.errors import NotFound as EngineNotFound
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin import recovery
from darwin_dra.plugin.checkpoint import CheckpointError, ClaimRecord, Phase
from darwin_dra.plugin.node import Node
from darwin_dra.plugin.rollback import roll_back


def _release(node: Node, record: ClaimRecord) -> None:
    if not recovery.is_lost(record, node.engine.boot_id):
        for dev in record.devices:
            # Gone already (a restart that could not restore it): fine.
            with contextlib.suppress(EngineNotFound):
                node.engine.destroy_partition(dev.partition_id)
            node.crash.reached("partition-destroyed")
    node.remove_files(record.plan)
    node.crash.reached("files-removed")
    node.metrics.drop_partitions(
        record.uid, ((d.intent.device, d.partition_id) for d in record.devices)
    )


def unprepare_locked(node: Node, claims: list[ClaimRef]) -> dict[str, str | None]:
    """Unprepare every claim (blocking): None or the error the kubelet gets, per claim UID."""
    out: dict[str, str | None] = {}
    with node.lock():
        try:
            cp = node.store.load()
        except CheckpointError as exc:
            return dict.fromkeys((c.uid for c in claims), node.unusable(exc))
        changed = False
        for ref in claims:
            bound = node.log.bind(
                claim_uid=ref.uid, namespace=ref.namespace, rpc="NodeUnprepareResources"
            )
            record = cp.claims.get(ref.uid)
            if record is None:
                out[ref.uid] = None  # never prepared here, or already released
                node.metrics.unprepare_total.labels("unknown").inc()
                continue
            try:
                if record.phase is Phase.PREPARE_STARTED:
                    roll_back(node, record, cp)
                else:
                    _release(node, record)
            except Exception as exc:
                bound.warning("unprepare failed", error=str(exc))
                out[ref.uid] = f"unpreparing {ref.namespace}/{ref.name} failed: {exc}"
                node.metrics.unprepare_total.labels("error").inc()
                continue
            cp = cp.without(ref.uid)
            changed = True
            out[ref.uid] = None
            node.metrics.unprepare_total.labels("ok").inc()
            bound.info("claim unprepared", devices=[d.intent.device for d in record.devices])
        if changed:
            try:
                node.store.save(cp)
            except OSError as exc:
                # What was undone stays undone; the record still lists the claims, so
                # the kubelet's retry undoes them again (idempotent) and saves.
                node.log.error(
                    "cannot write the node checkpoint",
                    path=str(node.config.checkpoint_path),
                    error=str(exc),
                )
                for uid, error in list(out.items()):
                    if error is None:
                        out[uid] = (
                            f"cannot write the node checkpoint {node.config.checkpoint_path}"
                            f": {exc.strerror or exc}; the kubelet retries"
                        )
                return out
            node.crash.reached("unprepare-saved")
        node.count_prepared(cp)
    return out
