"""What this node prepared, kept on disk so unprepare and restarts know it.

Each claim goes through two phases: ``PrepareStarted`` is written before any side effect (with
the claim's plan, enough to undo a half-done prepare), ``PrepareCompleted`` after all of them
(with the prepared devices: engine partition ids, cores and the CDI ids the kubelet gets back).
A claim found in ``PrepareStarted`` after a restart was interrupted and must be rolled back.

The file is versioned and carries the sha256 of its canonical JSON; it is replaced atomically
(temp file, fsync, rename, fsync of the directory). State from an earlier boot is discarded:
partitions and sockets did not survive the reboot. Version 1 files (written by plugins before
the typed plan) are read as well; they are written back as version 2.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from darwin_dra.atomicfile import FileOps, atomic_write
from darwin_dra.plugin.records import ClaimPlan, DeviceIntent, Prepared

log = structlog.get_logger(__name__)

VERSION = 2
READABLE = (1, 2)  # 1: the untyped intent and the per-device copies of its fields
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


class CheckpointError(Exception):
    """The checkpoint file cannot be trusted; it is kept aside for forensics."""


class Phase(enum.StrEnum):
    PREPARE_STARTED = "PrepareStarted"
    PREPARE_COMPLETED = "PrepareCompleted"


@dataclass(frozen=True)
class ClaimRecord:
    plan: ClaimPlan  # what prepare set out to do
    phase: Phase
    devices: tuple[Prepared, ...] = ()  # PrepareCompleted: one per device of the plan
    # The chip host's boot its partitions live in; None in records of older plugins.
    chip_boot: str | None = None

    @property
    def uid(self) -> str:
        return self.plan.uid

    @property
    def namespace(self) -> str:
        return self.plan.namespace

    @property
    def name(self) -> str:
        return self.plan.name


@dataclass(frozen=True)
class Checkpoint:
    boot_id: str
    claims: Mapping[str, ClaimRecord] = field(default_factory=dict)

    def started(self, plan: ClaimPlan) -> Checkpoint:
        """Record the start of a prepare. Restarting an interrupted one is allowed (the caller
        rolled it back first); a completed claim must be reused, not prepared again."""
        current = self.claims.get(plan.uid)
        if current is not None and current.phase is Phase.PREPARE_COMPLETED:
            raise ValueError(f"claim {plan.uid} is already prepared")
        record = ClaimRecord(plan, Phase.PREPARE_STARTED)
        return replace(self, claims={**self.claims, plan.uid: record})

    def completed(
        self, uid: str, devices: tuple[Prepared, ...], chip_boot: str | None = None
    ) -> Checkpoint:
        current = self.claims.get(uid)
        if current is None or current.phase is not Phase.PREPARE_STARTED:
            raise ValueError(f"claim {uid} has no prepare in progress")
        if [d.intent for d in devices] != list(current.plan.devices):
            raise ValueError(f"claim {uid}: the prepared devices are not those of its plan")
        record = replace(
            current, phase=Phase.PREPARE_COMPLETED, devices=devices, chip_boot=chip_boot
        )
        return replace(self, claims={**self.claims, uid: record})

    def without(self, uid: str) -> Checkpoint:
        return replace(self, claims={k: v for k, v in self.claims.items() if k != uid})

    def interrupted(self) -> list[ClaimRecord]:
        """Claims whose prepare started but never completed: roll these back."""
        return [c for c in self.claims.values() if c.phase is Phase.PREPARE_STARTED]


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _to_json(cp: Checkpoint) -> dict[str, Any]:
    claims = {
        uid: {
            "namespace": c.namespace,
            "name": c.name,
            "phase": c.phase.value,
            "plan": c.plan.intent(),
            "chipBoot": c.chip_boot,
            "devices": [
                {"partition": d.partition_id, "cores": list(d.cores), "cdiIds": list(d.cdi_ids)}
                for d in c.devices
            ],
        }
        for uid, c in sorted(cp.claims.items())
    }
    return {"version": VERSION, "bootId": cp.boot_id, "claims": claims}


def _device(intent: DeviceIntent, d: Mapping[str, Any], version: int) -> Prepared:
    if version == 1:
        # Version 1 repeated the intent's request, pool, device and share per device, and kept
        # no cores: the plugin reads them from its hardware view when it needs them.
        if d["device"] != intent.device or d["enginePartition"] is None:
            raise ValueError(f"device {d['device']!r} does not match its intent or partition")
        return Prepared(intent, int(d["enginePartition"]), (), tuple(d["cdiIds"]))
    cores = tuple(int(c) for c in d["cores"])
    return Prepared(intent, int(d["partition"]), cores, tuple(d["cdiIds"]))


def _record(uid: str, c: Mapping[str, Any], version: int) -> ClaimRecord:
    plan = ClaimPlan.from_intent(
        uid, c["namespace"], c["name"], c["plan" if version > 1 else "intent"]
    )
    devices: tuple[Prepared, ...] = ()
    if c["devices"]:
        devices = tuple(
            _device(i, d, version) for i, d in zip(plan.devices, c["devices"], strict=True)
        )
    return ClaimRecord(plan, Phase(c["phase"]), devices, c.get("chipBoot"))


def encode(cp: Checkpoint) -> bytes:
    body = _to_json(cp)
    body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
    return json.dumps(body, sort_keys=True, indent=1).encode()


def decode(data: bytes, source: str = "checkpoint") -> Checkpoint:
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{source} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise CheckpointError(f"{source} is nested too deeply to be a checkpoint") from None
    if not isinstance(body, dict):
        raise CheckpointError(f"{source} is not a JSON object")
    version = body.get("version")
    if version not in READABLE:
        raise CheckpointError(
            f"{source} has version {version!r}; this plugin reads versions "
            f"{', '.join(map(str, READABLE))}"
        )
    checksum = body.pop("checksum", None)
    if checksum != hashlib.sha256(_canonical(body)).hexdigest():
        raise CheckpointError(f"{source} checksum does not match its content")
    try:
        claims = {uid: _record(uid, c, version) for uid, c in body["claims"].items()}
        return Checkpoint(boot_id=str(body["bootId"]), claims=claims)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{source} has an unexpected layout: {exc!r}") from exc


def read_boot_id(path: Path = BOOT_ID_PATH) -> str:
    return path.read_text().strip()


class CheckpointStore:
    def __init__(
        self,
        path: Path,
        boot_id: Callable[[], str] = read_boot_id,
        ops: FileOps | None = None,
    ) -> None:
        self.path = path
        self._boot_id = boot_id
        self._ops = ops or FileOps()
        self._log = log.bind(checkpoint=os.fspath(path))

    def load(self) -> Checkpoint:
        """The current checkpoint; empty when missing or from an earlier boot.

        Raises CheckpointError for a corrupt or foreign-version file (left in place).
        """
        boot = self._boot_id()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return Checkpoint(boot_id=boot)
        cp = decode(data, os.fspath(self.path))
        if cp.boot_id != boot:
            self._log.info(
                "discarding checkpoint of an earlier boot",
                checkpoint_boot=cp.boot_id,
                boot=boot,
                claims=sorted(cp.claims),
            )
            return Checkpoint(boot_id=boot)
        return cp

    def load_or_quarantine(self) -> Checkpoint:
        """Like load, but an untrustworthy file is moved aside and an empty checkpoint used."""
        try:
            return self.load()
        except CheckpointError as exc:
            aside = self.quarantine()
            self._log.error("checkpoint unusable, moved aside", error=str(exc), kept=str(aside))
            return Checkpoint(boot_id=self._boot_id())

    def quarantine(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        os.replace(self.path, aside)
        return aside

    def save(self, cp: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, encode(cp), self._ops)

    def update(self, change: Callable[[Checkpoint], Checkpoint]) -> Checkpoint:
        """Load, apply ``change``, save; returns what was saved. Hold the NodeLock around it."""
        cp = change(self.load())
        self.save(cp)
        return cp
