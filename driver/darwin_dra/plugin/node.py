"""The node as the plugin acts on it: its chips, checkpoint, CDI directory and lock.

``Node`` holds what every step of prepare, unprepare, rollback and recovery touches, and the
few side effects they share: making one engine partition for an intent, removing a claim's
files, the node lock. It also answers the hardware view (``views``, ``cores_of``) the pure
planners take. It decides nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.engine import EngineError, PartitionInfo
from darwin_dra.engine import PartitionConfig as EnginePartitionConfig
from darwin_dra.hardware.model import ChipInfo, ChipProfile, CoreInfo
from darwin_dra.plugin import plan, routeplan
from darwin_dra.plugin.cdi import CDIWriter, socket_dir
from darwin_dra.plugin.checkpoint import Checkpoint, CheckpointError, CheckpointStore, Phase
from darwin_dra.plugin.crashpoints import CrashPoints
from darwin_dra.plugin.metrics import PluginMetrics
from darwin_dra.plugin.nodelock import NodeLock
from darwin_dra.plugin.records import ClaimPlan, DeviceIntent, Prepared
from darwin_dra.resources.chips import ChipView

log = structlog.get_logger(__name__)


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


@dataclass(frozen=True)
class DriverConfig:
    node: str
    state_dir: Path
    cdi_dir: Path
    lock_timeout_s: float = 30.0
    crash_points: Path | None = None  # tests only: see crashpoints.py

    @property
    def checkpoint_path(self) -> Path:
        return self.state_dir / "checkpoint.json"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "prepare.lock"

    @property
    def socket_root(self) -> Path:
        return self.state_dir / "partitions"


class Node:
    def __init__(
        self,
        config: DriverConfig,
        engine: Chips,
        profiles: Mapping[str, ChipProfile],
        metrics: PluginMetrics,
        boot_id: Callable[[], str],
        measured_keps: Mapping[int, int] | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.profiles = dict(profiles)
        self.measured_keps = dict(measured_keps or {})
        self.metrics = metrics
        self.store = CheckpointStore(config.checkpoint_path, boot_id)
        self.cdi = CDIWriter(config.cdi_dir, config.socket_root)
        self.log = log.bind(node=config.node)
        self.crash = CrashPoints(config.crash_points)
        # flock excludes other instances; this excludes our own threads without polling.
        self._local = threading.Lock()
        self._domain_cores: dict[int, dict[int, frozenset[int]]] = {}
        for chip in engine.chips():
            by_domain: dict[int, set[int]] = {}
            for core in engine.cores(chip.id):
                by_domain.setdefault(core.domain, set()).add(core.core)
            self._domain_cores[chip.id] = {d: frozenset(c) for d, c in by_domain.items()}
        self.table = plan.device_domains(self.views())

    # ---- the hardware view ----
    def views(self) -> dict[int, ChipView]:
        return {
            info.id: ChipView.from_info(
                info, self.profiles[info.model], self.measured_keps.get(info.id)
            )
            for info in self.engine.chips()
        }

    def cores_of(self, intent: DeviceIntent) -> frozenset[int]:
        cores = self._domain_cores[intent.chip]
        return frozenset().union(*(cores[d] for d in intent.domains))

    def with_cores(self, device: Prepared) -> Prepared:
        """A device of a checkpoint written before cores were kept, with its cores."""
        if device.cores:
            return device
        return Prepared(
            device.intent,
            device.partition_id,
            tuple(sorted(self.cores_of(device.intent))),
            device.cdi_ids,
        )

    # ---- shared side effects ----
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with self._local, NodeLock(self.config.lock_path, self.config.lock_timeout_s):
            yield

    def create_partition(self, intent: DeviceIntent, owner: str) -> Prepared:
        """``owner``: the claim's uid. A chip host joins partitions by routes only within one
        owner (runtime/routes.py), so the stages of one claim (a pipeline's group on a chip)
        may be routed to each other and nothing else; an in-process engine has no routes."""
        shared = intent.shared
        # Exclusive partitions own their router share outright: no budget to enforce. A
        # capacity grant's domains are its own, its KEPS a budget shared with the chip's others.
        if intent.wanted_domains and not intent.picked:
            raise ValueError(f"{intent.device}: no domains picked for the capacity grant")
        budget = intent.keps if intent.shared or intent.wanted_domains else 0
        cfg = plan.engine_config(intent)
        domains = list(intent.domains)
        if isinstance(self.engine, ChipHostClient):
            part = self.engine.create_partition(
                intent.chip,
                domains=domains,
                shared=shared,
                keps_budget=budget,
                config=cfg,
                owner=owner,
            )
        else:
            part = self.engine.create_partition(
                intent.chip, domains=domains, shared=shared, keps_budget=budget, config=cfg
            )
        return Prepared(intent, part, tuple(self.engine.partition(part).cores))

    def program_routes(self, claim: ClaimPlan, parts: Mapping[str, int]) -> None:
        """The claim's routes on the chip host's router (``parts``: request -> partition);
        RuntimeError naming the route when one cannot be programmed."""
        for route in claim.routes:
            if not isinstance(self.engine, ChipHostClient):
                raise RuntimeError(
                    f"route {route.edge}: the engine runs in the plugin's process on this node, "
                    "and only the device process (chip host) has a router between partitions; "
                    "run the plugin with the chip host (the chart's default)"
                )
            try:
                self.engine.program_route(routeplan.route_spec(claim.uid, route, parts))
            except EngineError as exc:
                raise RuntimeError(f"route {route.edge}: the chip host refused it: {exc}") from exc

    def destroy_quietly(self, parts: Iterable[int]) -> None:
        """Destroy partitions while undoing: one that cannot be destroyed is no new error."""
        for part in parts:
            with contextlib.suppress(EngineError):
                self.engine.destroy_partition(part)

    def make_socket_dirs(self, claim: ClaimPlan) -> None:
        for intent in claim.devices:
            socket_dir(self.config.socket_root, claim.uid, intent).mkdir(
                parents=True, exist_ok=True
            )

    def remove_files(self, claim: ClaimPlan) -> None:
        for intent in claim.devices:
            shutil.rmtree(
                socket_dir(self.config.socket_root, claim.uid, intent), ignore_errors=True
            )
        self.cdi.remove(claim.uid, claim.namespace)

    def count_prepared(self, cp: Checkpoint) -> None:
        self.metrics.prepared_devices.set(
            sum(len(c.devices) for c in cp.claims.values() if c.phase is Phase.PREPARE_COMPLETED)
        )

    def unusable(self, exc: CheckpointError) -> str:
        """The error of every claim of a call that found the checkpoint unusable."""
        return f"node checkpoint unusable ({exc}); see {self.config.checkpoint_path}"

    def unsaved(self, claim: ClaimPlan, exc: OSError) -> str:
        """The error of a claim whose checkpoint could not be written (and which holds nothing)."""
        self.log.error(
            "cannot write the node checkpoint",
            claim_uid=claim.uid,
            namespace=claim.namespace,
            path=str(self.config.checkpoint_path),
            error=str(exc),
        )
        return (
            f"preparing {claim.namespace}/{claim.name} failed: cannot write the node checkpoint "
            f"{self.config.checkpoint_path}: {exc.strerror or exc}; nothing was kept, free "
            "space there and the kubelet's retry prepares the claim"
        )
