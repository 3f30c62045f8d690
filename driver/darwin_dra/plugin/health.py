"""The plugin's health watch: the chips' health (as the chip host reports it, faults applied
there from the fault file) and the devices lost in a chip reset, out to the kubelet
(HealthHub) and, through the publisher, to the slices' device taints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

import structlog

from darwin_dra.engine import EngineError
from darwin_dra.kubelet.health_service import DeviceHealthState, Health, HealthHub
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.chips import Health as PartHealth
from darwin_dra.resources.meshlinks import links_crossed
from darwin_dra.resources.partitions import PARTITION_KINDS, health_of, partitions

log = structlog.get_logger(__name__)


def device_states(
    node: str,
    views: Mapping[int, ChipView],
    now: int,
    timeout_s: int = 0,
    lost: frozenset[str] = frozenset(),
    kinds: Sequence[str] = PARTITION_KINDS,
) -> list[DeviceHealthState]:
    """Health of every published device (of ``kinds``, the layout) (pure): UNHEALTHY when
    degraded or failed, or when its claim's partitions died in a chip reset (``lost``)."""
    out = []
    for chip in views.values():
        for part in partitions(chip, kinds):
            health = health_of(chip, part)
            if part.name in lost:
                state = Health.UNHEALTHY
                message = f"chip reset: the partitions on chip {chip.chip} ({chip.serial}) are gone"
            elif health is PartHealth.OK:
                state, message = Health.HEALTHY, ""
            else:
                hurt = [d.index for d in chip.domains if d.index in part.domains and d.health.value]
                links = links_crossed(chip, part.domains, chip.failed_links)
                state = Health.UNHEALTHY
                message = f"{health.name.lower()}: chip {chip.chip} ({chip.serial})"
                message += f" domains {hurt}" if hurt else ""
                message += f" links {links}" if links else ""
                message += "" if hurt or links else " links or controller"
            out.append(DeviceHealthState(node, part.name, state, now, timeout_s, message))
    return out


def state_counts(
    views: Mapping[int, ChipView], kinds: Sequence[str] = PARTITION_KINDS
) -> dict[str, int]:
    counts = {"ok": 0, "degraded": 0, "failed": 0}
    names = {PartHealth.OK: "ok", PartHealth.DEGRADED: "degraded", PartHealth.FAILED: "failed"}
    for chip in views.values():
        for part in partitions(chip, kinds):
            counts[names[health_of(chip, part)]] += 1
    return counts


# What the monitor watches: the chips, and the devices of claims lost in a chip reset.
Snapshot = tuple[dict[int, ChipView], frozenset[str]]


class HealthMonitor:
    """Polls the chips; on a change tells the hub and ``on_change`` (the slice publisher)."""

    def __init__(
        self,
        node: str,
        snapshot: Callable[[], Snapshot],
        hub: HealthHub,
        on_change: Callable[[], None],
        *,
        poll_s: float = 1.0,
        resync_s: float = 30.0,
        kinds: Sequence[str] = PARTITION_KINDS,
    ) -> None:
        self.node = node
        self.kinds = tuple(kinds)  # the published layout's partition kinds
        self._snapshot = snapshot
        self.hub = hub
        self._on_change = on_change
        self.poll_s = poll_s
        self.resync_s = resync_s
        self.last: Snapshot | None = None
        self._last_error: str | None = None
        self._last_publish = 0.0
        self._log = log.bind(node=node)

    def poll_once(self) -> bool:
        """Read the chips' state; True when it differs from the last one read."""
        try:
            now = self._snapshot()
        except EngineError as exc:
            # The chip host is away (restarting: a chip reset is coming) or failing.
            if str(exc) != self._last_error:
                self._log.error("cannot read the chips; keeping their last state", error=str(exc))
                self._last_error = str(exc)
            return False
        if self._last_error is not None:
            self._log.info("chips readable again")
            self._last_error = None
        changed = now != self.last
        self.last = now
        return changed

    def publish(self, force: bool = False) -> None:
        now = time.time()
        if self.last is None or (not force and now - self._last_publish < self.resync_s):
            return
        self._last_publish = now
        # Fresh timestamps every resync keep the kubelet from timing devices out to UNKNOWN.
        timeout = int(self.resync_s * 3)
        views, lost = self.last
        self.hub.publish(device_states(self.node, views, int(now), timeout, lost, self.kinds))

    async def run(self) -> None:
        self.publish(force=True)
        while True:
            changed = await asyncio.to_thread(self.poll_once)
            if changed:
                self.publish(force=True)
                self._on_change()
            else:
                self.publish()
            await asyncio.sleep(self.poll_s)
