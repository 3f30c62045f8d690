"""Rolling back an interrupted prepare: destroys what recovery.rollback_victims names.

A claim whose checkpoint record says PrepareStarted may hold partitions, socket directories and
a CDI spec, made before the plugin died or before the step that failed. Its partition ids were
never recorded, so the pure decision finds them by their shape; this module performs it.
"""

from __future__ import annotations

from darwin_dra.plugin import recovery
from darwin_dra.plugin.checkpoint import Checkpoint, ClaimRecord
from darwin_dra.plugin.node import Node


def roll_back(node: Node, record: ClaimRecord, cp: Checkpoint) -> None:
    """Undo what the interrupted prepare of ``record`` may have made (``cp``: what else is
    prepared on the node, whose partitions are never touched)."""
    owned = recovery.owned_partitions(cp, node.engine.boot_id)
    live = node.engine.partitions()
    node.destroy_quietly(recovery.rollback_victims(record, live, owned, node.cores_of))
    node.remove_files(record.plan)
