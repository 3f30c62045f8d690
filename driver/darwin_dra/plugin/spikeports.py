"""Serving the spike port of every prepared partition, and nothing else.

The set of ports is derived from the checkpoint (recovery.spike_sockets) after each prepare and
unprepare, and once after a restart's reconcile. A port already serving is left alone, so a
restarted plugin never interrupts a workload's spikes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from darwin_dra.engine import EngineError
from darwin_dra.plugin import recovery
from darwin_dra.plugin.checkpoint import CheckpointError
from darwin_dra.plugin.node import Node


class PortSync(Protocol):
    async def sync(self, wanted: Mapping[Path, int]) -> dict[Path, str]: ...


async def sync_spike_ports(node: Node, ports: PortSync) -> None:
    try:
        cp = await asyncio.to_thread(node.store.load)
    except CheckpointError as exc:
        # Prepare and unprepare report the unusable checkpoint themselves.
        node.log.warning("spike ports left as they are", error=str(exc))
        return
    # A port that cannot start is logged there; the claim itself stays prepared.
    try:
        boot = await asyncio.to_thread(lambda: node.engine.boot_id)
        await ports.sync(recovery.spike_sockets(cp, node.config.socket_root, boot))
    except EngineError as exc:  # the chip host away: the next prepare or start syncs again
        node.log.warning("spike ports not synced", error=str(exc))
