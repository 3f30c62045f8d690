"""The in-memory claim source runs kubeapi's claim status contract: a stale write is a
Conflict, retried with a fresh read, so what another writer put in the status survives."""

from __future__ import annotations

import pytest
from darwin_dra.kubeapi import Conflict, NotFound, Unavailable
from darwin_dra.kubetypes import Obj
from darwin_dra.testing.claims import MemoryClaims


def _claim() -> Obj:
    return {"metadata": {"name": "c", "namespace": "ns"}, "spec": {}}


def test_a_stale_write_is_retried_on_a_fresh_read_and_keeps_the_other_writer() -> None:
    store = MemoryClaims()
    created = store.create_claim("ns", _claim())
    stale = store.get_claim("ns", "c")
    other = store.get_claim("ns", "c")
    other["status"] = {"devices": [{"driver": "other"}]}
    store.replace_claim_status(other)  # another writer got in between

    def add_ours(claim: Obj) -> Obj:
        devices = claim.setdefault("status", {}).setdefault("devices", [])
        devices.append({"driver": "ours"})
        return claim

    out = store.update_claim_status("ns", "c", add_ours, current=stale)
    assert out is not None
    assert [d["driver"] for d in out["status"]["devices"]] == ["other", "ours"]
    assert store.conflicts == 1
    assert store.status_writes == 2
    assert created["metadata"]["resourceVersion"] == "1"
    assert out["metadata"]["resourceVersion"] == "3"


def test_nothing_to_do_writes_nothing_and_errors_surface() -> None:
    store = MemoryClaims()
    store.create_claim("ns", _claim())
    assert store.update_claim_status("ns", "c", lambda c: None) is None
    assert store.status_writes == 0
    with pytest.raises(NotFound):
        store.get_claim("ns", "absent")
    always_stale = store.get_claim("ns", "c")
    always_stale["metadata"]["resourceVersion"] = "0"
    with pytest.raises(Conflict):
        store.update_claim_status("ns", "c", lambda c: always_stale, attempts=3)
    assert store.conflicts == 3
    store.fail_status = Unavailable("API server away")
    with pytest.raises(Unavailable):
        store.update_claim_status("ns", "c", lambda c: c)
