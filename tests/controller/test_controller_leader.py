from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from darwin_dra.controller.leader import (
    Decision,
    LeaderElector,
    LeaseConfig,
    decide,
    holder,
    lease_body,
    released_body,
)
from darwin_dra.kubeapi import Conflict, NotFound, Unavailable
from darwin_dra.kubetime import micro_time, seconds_time
from darwin_dra.kubetypes import Obj

NOW = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def _cfg(identity: str) -> LeaseConfig:
    return LeaseConfig("ns", "lease", identity, duration_s=15, renew_deadline_s=10, retry_s=2)


def _lease(holder_id: str | None, duration: int = 15) -> Obj:
    spec: Obj = {"leaseDurationSeconds": duration, "leaseTransitions": 3}
    if holder_id is not None:
        spec["holderIdentity"] = holder_id
    return {"metadata": {"name": "lease", "resourceVersion": "1"}, "spec": spec}


@pytest.mark.parametrize(
    ("lease", "unchanged_for", "expected"),
    [
        (None, 0, Decision.CREATE),
        (_lease("me"), 100, Decision.RENEW),
        (_lease("other"), 14.9, Decision.WAIT),
        (_lease("other"), 15, Decision.ACQUIRE),
        (_lease(None), 0, Decision.ACQUIRE),  # released
        (_lease(""), 0, Decision.ACQUIRE),
    ],
)
def test_decide(lease: Obj | None, unchanged_for: float, expected: Decision) -> None:
    assert decide(lease, "me", unchanged_for) is expected


def test_micro_time_has_six_fraction_digits() -> None:
    assert micro_time(NOW) == "2026-01-02T03:04:05.000006Z"
    assert seconds_time(NOW) == "2026-01-02T03:04:05Z"


def test_bodies_for_each_decision() -> None:
    cfg = _cfg("me")
    created = lease_body(cfg, None, Decision.CREATE, NOW)
    assert created is not None
    assert created["spec"]["holderIdentity"] == "me"
    assert created["spec"]["leaseTransitions"] == 0
    acquired = lease_body(cfg, _lease("other"), Decision.ACQUIRE, NOW)
    assert acquired is not None
    assert acquired["spec"]["holderIdentity"] == "me"
    assert acquired["spec"]["leaseTransitions"] == 4
    assert acquired["metadata"]["resourceVersion"] == "1"  # the write is guarded
    renewed = lease_body(cfg, _lease("me"), Decision.RENEW, NOW)
    assert renewed is not None
    assert renewed["spec"]["leaseTransitions"] == 3
    assert renewed["spec"]["renewTime"] == micro_time(NOW)
    assert lease_body(cfg, _lease("other"), Decision.WAIT, NOW) is None


def test_release_clears_the_holder_only_when_we_hold_it() -> None:
    out = released_body(_cfg("me"), _lease("me"), NOW)
    assert out is not None
    assert holder(out) == ""
    assert out["spec"]["leaseDurationSeconds"] == 1
    assert released_body(_cfg("me"), _lease("other"), NOW) is None


def test_timings_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="retry < renew deadline < lease duration"):
        LeaseConfig("ns", "l", "me", duration_s=10, renew_deadline_s=10, retry_s=2)


class FakeLeases:
    """One Lease with optimistic concurrency, as the API server keeps it."""

    def __init__(self) -> None:
        self.lease: Obj | None = None
        self.version = 0
        self.down = False

    def get_lease(self, namespace: str, name: str) -> Obj:
        if self.down:
            raise Unavailable("down")
        if self.lease is None:
            raise NotFound("no lease", 404)
        return copy.deepcopy(self.lease)

    def _write(self, body: Obj) -> Obj:
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    def create_lease(self, namespace: str, body: Obj) -> Obj:
        if self.lease is not None:
            raise Conflict("exists", 409)
        return self._write(body)

    def replace_lease(self, namespace: str, body: Obj) -> Obj:
        if self.down:
            raise Unavailable("down")
        assert self.lease is not None
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise Conflict("stale", 409)
        return self._write(body)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _pair() -> tuple[FakeLeases, Clock, LeaderElector, LeaderElector]:
    api, clock = FakeLeases(), Clock()
    a = LeaderElector(api, _cfg("a"), clock=clock, wall=lambda: NOW)
    b = LeaderElector(api, _cfg("b"), clock=clock, wall=lambda: NOW)
    return api, clock, a, b


def test_one_replica_leads_and_the_other_takes_over_only_after_the_lease_expires() -> None:
    api, clock, a, b = _pair()
    assert a.step() is True
    assert b.step() is False
    # a stops renewing (e.g. hung): b waits out the full duration from its own observation.
    clock.t += 14
    assert b.step() is False
    clock.t += 1
    assert b.step() is True
    assert holder(api.lease) == "b"
    assert api.lease is not None
    assert api.lease["spec"]["leaseTransitions"] == 1
    # a comes back and finds it no longer leads.
    assert a.step() is False


def test_renewals_keep_the_lease_fresh_for_the_standby() -> None:
    _, clock, a, b = _pair()
    a.step()
    b.step()
    for _ in range(20):
        clock.t += 2
        assert a.step() is True
        assert b.step() is False


def test_release_hands_over_at_once() -> None:
    api, _, a, b = _pair()
    a.step()
    b.step()
    a.release()
    assert holder(api.lease) == ""
    assert b.step() is True


def test_a_leader_that_cannot_renew_steps_down_after_the_deadline() -> None:
    api, clock, a, _ = _pair()
    assert a.step() is True
    api.down = True
    clock.t += 5
    assert a.step() is True  # inside the renew deadline
    clock.t += 5
    assert a.step() is False
