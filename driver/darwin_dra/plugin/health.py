"""The simulated hardware health monitor: the fault file into the engine, the engine's health
out to the kubelet (HealthHub) and, through the publisher, to the slices' device taints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from darwin_dra.engine import Engine, EngineError
from darwin_dra.kubelet.health_service import DeviceHealthState, Health, HealthHub
from darwin_dra.plugin import faults
from darwin_dra.plugin.slices import ChipView, partition_health, partitions
from darwin_dra.plugin.slices import Health as PartHealth

log = structlog.get_logger(__name__)


def device_states(
    node: str, views: Mapping[int, ChipView], now: int, timeout_s: int = 0
) -> list[DeviceHealthState]:
    """Health of every published device (pure): UNHEALTHY when degraded or failed."""
    out = []
    for chip in views.values():
        for part in partitions(chip):
            health = partition_health(chip, part.domains)
            if health is PartHealth.OK:
                state, message = Health.HEALTHY, ""
            else:
                hurt = [d.index for d in chip.domains if d.index in part.domains and d.health.value]
                state = Health.UNHEALTHY
                message = f"{health.name.lower()}: chip {chip.chip} ({chip.serial})"
                message += f" domains {hurt}" if hurt else " links or controller"
            out.append(DeviceHealthState(node, part.name, state, now, timeout_s, message))
    return out


def state_counts(views: Mapping[int, ChipView]) -> dict[str, int]:
    counts = {"ok": 0, "degraded": 0, "failed": 0}
    names = {PartHealth.OK: "ok", PartHealth.DEGRADED: "degraded", PartHealth.FAILED: "failed"}
    for chip in views.values():
        for part in partitions(chip):
            counts[names[partition_health(chip, part.domains)]] += 1
    return counts


class HealthMonitor:
    """Polls the fault file; applies changes to the engine; tells the hub and ``on_change``."""

    def __init__(
        self,
        node: str,
        engine: Engine,
        fault_file: Path,
        views: Callable[[], dict[int, ChipView]],
        hub: HealthHub,
        on_change: Callable[[], None],
        *,
        poll_s: float = 1.0,
        resync_s: float = 30.0,
    ) -> None:
        self.node = node
        self.engine = engine
        self.fault_file = fault_file
        self._views = views
        self.hub = hub
        self._on_change = on_change
        self.poll_s = poll_s
        self.resync_s = resync_s
        self.applied: frozenset[faults.Fault] = frozenset()
        self._rejected: frozenset[faults.Fault] = frozenset()
        self._last_text: str | None = None
        self._last_publish = 0.0
        self._log = log.bind(node=node, fault_file=str(fault_file))

    def poll_once(self) -> bool:
        """Apply the file's faults to the engine; True when the engine's health changed."""
        try:
            wanted = faults.load(self.fault_file)
        except faults.FaultFileError as exc:
            text = str(exc)
            if text != self._last_text:
                self._log.error("fault file unreadable; keeping the current faults", error=text)
                self._last_text = text
            return False
        self._last_text = None
        inject, clear = faults.diff(self.applied, wanted - self._rejected)
        self._rejected &= wanted  # a removed bad entry may come back fixed
        changed = False
        for fault in clear:
            try:
                self.engine.clear_fault(fault.chip, fault.kind.engine, fault.index)
            except EngineError as exc:
                self._log.error("clearing a fault failed", fault=fault.to_json(), error=str(exc))
            self.applied -= {fault}
            changed = True
            self._log.info("fault cleared", fault=fault.to_json())
        for fault in inject:
            try:
                self.engine.inject_fault(fault.chip, fault.kind.engine, fault.index)
            except EngineError as exc:
                self._log.error(
                    "fault rejected by the engine", fault=fault.to_json(), error=str(exc)
                )
                self._rejected |= {fault}
                continue
            self.applied |= {fault}
            changed = True
            self._log.warning("fault injected", fault=fault.to_json())
        return changed

    def publish(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_publish < self.resync_s:
            return
        self._last_publish = now
        # Fresh timestamps every resync keep the kubelet from timing devices out to UNKNOWN.
        timeout = int(self.resync_s * 3)
        self.hub.publish(device_states(self.node, self._views(), int(now), timeout))

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
