"""Leader election on a coordination.k8s.io/v1 Lease, so that of the controller's replicas
exactly one writes at a time.

The decision is pure: it takes the lease as read and how long this process has seen it
unchanged. Expiry is judged by that local observation, not by comparing the lease's renewTime
with our clock, so clock skew between machines cannot make two replicas lead (the same rule
as client-go's leader election).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog

from darwin_dra.kubeapi import KubeApiError, NotFound
from darwin_dra.kubetime import micro_time
from darwin_dra.kubetypes import Obj

log = structlog.get_logger(__name__)


class Decision(enum.Enum):
    CREATE = "create"  # no lease yet
    RENEW = "renew"  # we hold it
    ACQUIRE = "acquire"  # free, released or expired
    WAIT = "wait"  # another holder, still fresh


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    duration_s: int = 15
    renew_deadline_s: float = 10.0
    retry_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_s < self.renew_deadline_s < self.duration_s:
            raise ValueError("need 0 < retry < renew deadline < lease duration")


def holder(lease: Obj | None) -> str:
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


def _duration(lease: Obj) -> int:
    return int((lease.get("spec") or {}).get("leaseDurationSeconds") or 0)


def decide(lease: Obj | None, identity: str, unchanged_for_s: float) -> Decision:
    """What to do with the lease as read; ``unchanged_for_s``: how long we have seen this
    exact lease version (0 when it just changed)."""
    if lease is None:
        return Decision.CREATE
    current = holder(lease)
    if current == identity:
        return Decision.RENEW
    if not current or unchanged_for_s >= _duration(lease):
        return Decision.ACQUIRE
    return Decision.WAIT


def lease_body(
    cfg: LeaseConfig, lease: Obj | None, decision: Decision, now: datetime
) -> Obj | None:
    """The lease to write for ``decision`` (None: write nothing)."""
    stamp = micro_time(now)
    if decision is Decision.WAIT:
        return None
    if decision is Decision.CREATE:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": cfg.name, "namespace": cfg.namespace},
            "spec": {
                "holderIdentity": cfg.identity,
                "leaseDurationSeconds": cfg.duration_s,
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
    assert lease is not None
    spec = dict(lease.get("spec") or {})
    spec["renewTime"] = stamp
    spec["leaseDurationSeconds"] = cfg.duration_s
    if decision is Decision.ACQUIRE:
        spec["holderIdentity"] = cfg.identity
        spec["acquireTime"] = stamp
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
    return {**lease, "spec": spec}


def released_body(cfg: LeaseConfig, lease: Obj, now: datetime) -> Obj | None:
    """The lease handed back on shutdown, so a standby takes over at once instead of waiting
    out the duration; None when we do not hold it."""
    if holder(lease) != cfg.identity:
        return None
    spec = dict(lease.get("spec") or {})
    spec.pop("holderIdentity", None)
    spec["leaseDurationSeconds"] = 1
    spec["renewTime"] = micro_time(now)
    return {**lease, "spec": spec}


class LeaseApi(Protocol):
    def get_lease(self, namespace: str, name: str) -> Obj: ...
    def create_lease(self, namespace: str, body: Obj) -> Obj: ...
    def replace_lease(self, namespace: str, body: Obj) -> Obj: ...


@dataclass
class LeaderElector:
    """One attempt per ``step()``; the caller loops every ``cfg.retry_s``."""

    api: LeaseApi
    cfg: LeaseConfig
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    leading: bool = False
    _seen_version: str = ""
    _seen_at: float = 0.0
    _renewed_at: float = 0.0

    def _read(self) -> Obj | None:
        try:
            lease = self.api.get_lease(self.cfg.namespace, self.cfg.name)
        except NotFound:
            return None
        version = str(lease.get("metadata", {}).get("resourceVersion", ""))
        if version != self._seen_version:
            self._seen_version, self._seen_at = version, self.clock()
        return lease

    def step(self) -> bool:
        """Try to take or keep the lease; returns whether we lead now."""
        try:
            lease = self._read()
            decision = decide(lease, self.cfg.identity, self.clock() - self._seen_at)
            body = lease_body(self.cfg, lease, decision, self.wall())
            if body is None:
                if self.leading:
                    log.warning("leader: another replica holds the lease", holder=holder(lease))
                self.leading = False
                return False
            if decision is Decision.CREATE:
                self.api.create_lease(self.cfg.namespace, body)
            else:
                self.api.replace_lease(self.cfg.namespace, body)
            self._renewed_at = self.clock()
            if not self.leading:
                log.info("leader: acquired", lease=self.cfg.name, how=decision.value)
            self.leading = True
            return True
        except KubeApiError as exc:
            # Conflict: someone wrote the lease between our read and write; they may lead now.
            log.warning("leader: lease write failed", error=str(exc))
        if self.leading and self.clock() - self._renewed_at < self.cfg.renew_deadline_s:
            return True  # a missed renewal; still inside the deadline
        if self.leading:
            log.warning("leader: lost the lease", lease=self.cfg.name)
        self.leading = False
        return False

    def release(self) -> None:
        if not self.leading:
            return
        self.leading = False
        try:
            lease = self.api.get_lease(self.cfg.namespace, self.cfg.name)
            body = released_body(self.cfg, lease, self.wall())
            if body is not None:
                self.api.replace_lease(self.cfg.namespace, body)
                log.info("leader: released", lease=self.cfg.name)
        except KubeApiError as exc:
            log.warning("leader: release failed; the lease will expire", error=str(exc))
