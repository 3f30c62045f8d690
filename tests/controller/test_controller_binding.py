from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from darwin_dra.controller.binding import (
    FAIL_ANNOTATION,
    injected_failure,
    pending,
    routes,
    with_setup_result,
)
from darwin_dra.kubetypes import Obj

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _result(device: str, pool: str, conditions: bool = True, **extra: Any) -> Obj:
    r: Obj = {"request": "r", "driver": "darwin.snn.io", "pool": pool, "device": device, **extra}
    if conditions:
        r |= {
            "bindingConditions": ["RoutesProgrammed"],
            "bindingFailureConditions": ["RoutesFailed"],
        }
    return r


def _claim(*results: Obj, devices: list[Obj] | None = None, annotations: Obj | None = None) -> Obj:
    return {
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "uid": "u1",
            "generation": 2,
            "annotations": annotations or {},
        },
        "status": {"allocation": {"devices": {"results": list(results)}}, "devices": devices or []},
    }


FABRIC = _result("fabric-w0", "fabric-w0", shareID="s-1")
CHIP_A = _result("chip-0-domain-1", "node-a", conditions=False)
CHIP_B = _result("chip-1-quad-0", "node-b", conditions=False)


def test_only_devices_with_binding_conditions_are_pending() -> None:
    refs = pending(_claim(FABRIC, CHIP_A))
    assert [(r.pool, r.device, r.share_id) for r in refs] == [("fabric-w0", "fabric-w0", "s-1")]
    assert pending(_claim(CHIP_A)) == []
    assert pending({"metadata": {}}) == []  # not allocated


def test_other_drivers_devices_are_not_ours_to_set_up() -> None:
    other = {**FABRIC, "driver": "gpu.example.com"}
    assert pending(_claim(other)) == []


def test_ready_result_sets_the_conditions_and_route_data_and_ends_pending() -> None:
    claim = _claim(FABRIC, CHIP_A, CHIP_B)
    [ref] = pending(claim)
    assert routes(claim, ref) == ["node-a/chip-0-domain-1", "node-b/chip-1-quad-0"]
    out = with_setup_result(claim, ref, None, routes(claim, ref), NOW)
    assert out is not None
    [entry] = out["status"]["devices"]
    assert (entry["pool"], entry["device"], entry["shareID"]) == ("fabric-w0", "fabric-w0", "s-1")
    conds = {c["type"]: c for c in entry["conditions"]}
    assert conds["RoutesProgrammed"]["status"] == "True"
    assert conds["RoutesFailed"]["status"] == "False"
    assert conds["RoutesProgrammed"]["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert conds["RoutesProgrammed"]["observedGeneration"] == 2
    assert entry["data"] == {
        "fabric": "w0",
        "routes": ["node-a/chip-0-domain-1", "node-b/chip-1-quad-0"],
    }
    assert pending(out) == []
    assert claim["status"]["devices"] == []  # the input is left alone


def test_failed_result_reports_the_reason_through_the_failure_condition() -> None:
    claim = _claim(FABRIC, annotations={FAIL_ANNOTATION: "link 3 down"})
    [ref] = pending(claim)
    out = with_setup_result(claim, ref, injected_failure(claim), [], NOW)
    assert out is not None
    conds = {c["type"]: c for c in out["status"]["devices"][0]["conditions"]}
    assert conds["RoutesFailed"]["status"] == "True"
    assert conds["RoutesFailed"]["reason"] == "RouteSetupFailed"
    assert "link 3 down" in conds["RoutesFailed"]["message"]
    assert conds["RoutesProgrammed"]["status"] == "False"
    assert "data" not in out["status"]["devices"][0]
    assert pending(out) == []


def test_failure_injection_reads_the_annotation() -> None:
    assert injected_failure(_claim(FABRIC)) is None
    assert injected_failure(_claim(FABRIC, annotations={FAIL_ANNOTATION: ""})) == "failure injected"


def test_other_status_entries_survive_the_write() -> None:
    plugin_entry = {
        "driver": "darwin.snn.io",
        "pool": "node-a",
        "device": "chip-0-domain-1",
        "data": {"cores": 16},
    }
    claim = _claim(FABRIC, CHIP_A, devices=[plugin_entry])
    [ref] = pending(claim)
    out = with_setup_result(claim, ref, None, [], NOW)
    assert out is not None
    assert out["status"]["devices"][0] == plugin_entry
    assert len(out["status"]["devices"]) == 2


def test_a_reallocated_or_finished_claim_is_not_written() -> None:
    claim = _claim(FABRIC)
    [ref] = pending(claim)
    done = with_setup_result(claim, ref, None, [], NOW)
    assert done is not None
    assert with_setup_result(done, ref, None, [], NOW) is None
    moved = _claim({**FABRIC, "shareID": "s-2"})  # freed and allocated again meanwhile
    assert with_setup_result(moved, ref, None, [], NOW) is None
