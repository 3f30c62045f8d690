"""The kubelet plugin's Preparer for one node: the RPCs, wired to the modules that act.

Who decides and who acts:

- pure decisions: plan.py (a claim's allocation -> a ClaimPlan; status entries), recovery.py
  (rollback victims, keep/recreate/release on restart, lost claims, spike sockets);
- side effects: node.py (chips, checkpoint, CDI, lock), prepare.py, unprepare.py, rollback.py,
  reconcile.py (restart recovery), claimstatus.py (the claim's status.devices), spikeports.py.

The chips are ``Chips``: in a node, the chip host process behind its socket
(chiphost.client.ChipHostClient), which outlives this plugin; in tests, an in-process Engine.
Either way, what lives on the chips belongs to one ``boot_id`` of theirs, and every completed
claim records the boot its partitions were made in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

from darwin_dra.hardware.model import ChipProfile
from darwin_dra.kubelet.preparer import ClaimRef, PrepareResult
from darwin_dra.plugin import claimstatus, plan
from darwin_dra.plugin.checkpoint import read_boot_id
from darwin_dra.plugin.claimstatus import ClaimSource
from darwin_dra.plugin.metrics import PluginMetrics
from darwin_dra.plugin.node import Chips, DriverConfig, Node
from darwin_dra.plugin.prepare import AfterStarted, Done, prepare_locked
from darwin_dra.plugin.reconcile import ReconcileReport, reconcile
from darwin_dra.plugin.records import ClaimPlan
from darwin_dra.plugin.spikeports import PortSync, sync_spike_ports
from darwin_dra.plugin.unprepare import unprepare_locked
from darwin_dra.resources.chips import ChipView


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
        after_started: AfterStarted | None = None,
        spike_ports: PortSync | None = None,
    ) -> None:
        self.node = Node(
            config, engine, profiles, metrics or PluginMetrics(), boot_id, measured_keps
        )
        # What tests and the app reach through the Driver: the node's parts, shared.
        self.config, self.engine, self.store = self.node.config, self.node.engine, self.node.store
        self.cdi, self.metrics = self.node.cdi, self.node.metrics
        self._claims = claims
        self._after_started = after_started
        self.spike_ports = spike_ports
        # One sync at a time, each reading the checkpoint once it has the turn: the last sync
        # then always reflects the last prepare or unprepare (two racing syncs could land in
        # either order at the chip host and leave a gone claim's port serving).
        self._port_turn = asyncio.Lock()
        # Told of the claims the kubelet asks to prepare (earlyprep.py: they are the
        # kubelet's to unprepare from then on).
        self.on_kubelet_prepare: Callable[[Sequence[ClaimRef]], None] | None = None

    def views(self) -> dict[int, ChipView]:
        return self.node.views()

    def set_measured_keps(self, keps: Mapping[int, int]) -> None:
        """The chip host's calibrated KEPS as they are now (they follow its faults)."""
        self.node.measured_keps = dict(keps)

    # ---- Preparer ----
    async def prepare(self, claims: Sequence[ClaimRef]) -> Mapping[str, PrepareResult]:
        if self.on_kubelet_prepare is not None:
            self.on_kubelet_prepare(claims)
        return await self.prepare_early(claims)

    async def prepare_early(self, claims: Sequence[ClaimRef]) -> Mapping[str, PrepareResult]:
        """Prepare as for the kubelet, before it asks (a claim whose routers hold its pod's
        binding: earlyprep.py); the kubelet's own prepare then finds it in the checkpoint."""
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
            results = await asyncio.to_thread(unprepare_locked, self.node, list(claims))
            await self.sync_spike_ports()
            return results
        finally:
            self.metrics.rpc_seconds.labels("NodeUnprepareResources").observe(
                time.perf_counter() - started
            )

    async def sync_spike_ports(self) -> None:
        """Serve the spike port of every prepared partition, and nothing else."""
        if self.spike_ports is not None:
            async with self._port_turn:
                await sync_spike_ports(self.node, self.spike_ports)

    def reconcile(self) -> ReconcileReport:
        """Bring the chips and the CDI directory in line with the checkpoint (blocking)."""
        return reconcile(self.node)

    async def _prepare(self, claims: Sequence[ClaimRef]) -> dict[str, PrepareResult]:
        fetched = await asyncio.gather(
            *(asyncio.to_thread(claimstatus.fetch, self._claims, c) for c in claims)
        )
        views = self.views()
        plans: list[ClaimPlan] = []
        results: dict[str, PrepareResult] = {}
        for ref, got in zip(claims, fetched, strict=True):
            if isinstance(got, str):
                results[ref.uid] = PrepareResult(error=got)
                continue
            try:
                plans.append(
                    plan.plan_claim(got, ref.uid, self.config.node, views, self.node.table)
                )
            except plan.ClaimError as exc:
                results[ref.uid] = PrepareResult(error=str(exc))
        done: list[Done] = []
        if plans:
            outcome = await asyncio.to_thread(prepare_locked, self.node, plans, self._after_started)
            for uid, item in outcome.items():
                if isinstance(item, str):
                    results[uid] = PrepareResult(error=item)
                else:
                    results[uid] = item.result()
                    done.append(item)
        for uid, result in results.items():
            if result.error:
                self.metrics.prepare_total.labels("error").inc()
                ref = next(c for c in claims if c.uid == uid)
                self.node.log.warning(
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
            *(
                claimstatus.write_status(
                    self.node, self._claims, d.plan, d.devices, views, read.get(d.plan.uid)
                )
                for d in done
            )
        )
        return results
