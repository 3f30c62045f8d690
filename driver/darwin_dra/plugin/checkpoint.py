"""What this node prepared, kept on disk so unprepare and restarts know it.

Each claim goes through two phases: ``PrepareStarted`` is written before any side effect (with
the partition intent, enough to undo a half-done prepare), ``PrepareCompleted`` after all of
them (with the devices, CDI ids and engine partition ids the kubelet gets back). A claim found
in ``PrepareStarted`` after a restart was interrupted and must be rolled back.

The file is versioned and carries the sha256 of its canonical JSON; it is replaced atomically
(temp file, fsync, rename, fsync of the directory). State from an earlier boot is discarded:
partitions and sockets did not survive the reboot.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from darwin_dra.atomicfile import FileOps, atomic_write

log = structlog.get_logger(__name__)

VERSION = 1
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


class CheckpointError(Exception):
    """The checkpoint file cannot be trusted; it is kept aside for forensics."""


class Phase(enum.StrEnum):
    PREPARE_STARTED = "PrepareStarted"
    PREPARE_COMPLETED = "PrepareCompleted"


@dataclass(frozen=True)
class DeviceRecord:
    request_names: tuple[str, ...]
    pool: str
    device: str
    cdi_ids: tuple[str, ...]
    engine_partition: int | None = None
    share_id: str | None = None


@dataclass(frozen=True)
class ClaimRecord:
    uid: str
    namespace: str
    name: str
    phase: Phase
    intent: Mapping[str, Any]  # JSON-able: what prepare set out to do
    devices: tuple[DeviceRecord, ...] = ()
    # The chip host's boot its partitions live in; None in records of older plugins.
    chip_boot: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    boot_id: str
    claims: Mapping[str, ClaimRecord] = field(default_factory=dict)

    def started(self, uid: str, namespace: str, name: str, intent: Mapping[str, Any]) -> Checkpoint:
        """Record the start of a prepare. Restarting an interrupted one is allowed (the caller
        rolled it back first); a completed claim must be reused, not prepared again."""
        current = self.claims.get(uid)
        if current is not None and current.phase is Phase.PREPARE_COMPLETED:
            raise ValueError(f"claim {uid} is already prepared")
        record = ClaimRecord(uid, namespace, name, Phase.PREPARE_STARTED, dict(intent))
        return replace(self, claims={**self.claims, uid: record})

    def completed(
        self, uid: str, devices: tuple[DeviceRecord, ...], chip_boot: str | None = None
    ) -> Checkpoint:
        current = self.claims.get(uid)
        if current is None or current.phase is not Phase.PREPARE_STARTED:
            raise ValueError(f"claim {uid} has no prepare in progress")
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
            "intent": c.intent,
            "chipBoot": c.chip_boot,
            "devices": [
                {
                    "requestNames": list(d.request_names),
                    "pool": d.pool,
                    "device": d.device,
                    "cdiIds": list(d.cdi_ids),
                    "enginePartition": d.engine_partition,
                    "shareId": d.share_id,
                }
                for d in c.devices
            ],
        }
        for uid, c in sorted(cp.claims.items())
    }
    return {"version": VERSION, "bootId": cp.boot_id, "claims": claims}


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
    if body.get("version") != VERSION:
        raise CheckpointError(
            f"{source} has version {body.get('version')!r}; this plugin reads version {VERSION}"
        )
    checksum = body.pop("checksum", None)
    if checksum != hashlib.sha256(_canonical(body)).hexdigest():
        raise CheckpointError(f"{source} checksum does not match its content")
    try:
        claims = {
            uid: ClaimRecord(
                uid=uid,
                namespace=c["namespace"],
                name=c["name"],
                phase=Phase(c["phase"]),
                intent=c["intent"],
                devices=tuple(
                    DeviceRecord(
                        request_names=tuple(d["requestNames"]),
                        pool=d["pool"],
                        device=d["device"],
                        cdi_ids=tuple(d["cdiIds"]),
                        engine_partition=d["enginePartition"],
                        share_id=d["shareId"],
                    )
                    for d in c["devices"]
                ),
                chip_boot=c.get("chipBoot"),
            )
            for uid, c in body["claims"].items()
        }
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


class LockTimeoutError(TimeoutError):
    pass


class NodeLock:
    """Node-wide exclusive lock (flock) serialising prepare/unprepare across plugin instances.

    flock belongs to the open file, so two instances in one process exclude each other too; the
    kernel drops it when the process dies, so a crash never leaves the node locked.
    """

    def __init__(self, path: Path, timeout_s: float = 30.0, poll_s: float = 0.05) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._fd: int | None = None

    def _try(self) -> bool:
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        return True

    def _open(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this NodeLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def _give_up(self) -> None:
        self.release()
        raise LockTimeoutError(f"could not lock {self.path} within {self.timeout_s} s")

    def acquire(self) -> None:
        self._open()
        deadline = time.monotonic() + self.timeout_s
        while not self._try():
            if time.monotonic() >= deadline:
                self._give_up()
            time.sleep(self.poll_s)

    async def acquire_async(self) -> None:
        self._open()
        deadline = time.monotonic() + self.timeout_s
        while not self._try():
            if time.monotonic() >= deadline:
                self._give_up()
            await asyncio.sleep(self.poll_s)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> NodeLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> NodeLock:
        await self.acquire_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
