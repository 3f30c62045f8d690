"""Which claims the plugin prepares before their pod binds, what it writes on the chip's
router, and what it undoes (plugin/earlybind.py, pure)."""

from __future__ import annotations

from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.chiproutes import RouteEntry
from darwin_dra.plugin.earlybind import (
    allocated_here,
    awaiting_routes,
    router_entries,
    to_undo,
    with_router_failure,
)
from darwin_dra.resources.partitions import ROUTES_FAILED, ROUTES_PROGRAMMED, router_chip

from tests.plugin.claims import claim, result

NODE = "node-a"
BINDING = {"bindingConditions": [ROUTES_PROGRAMMED], "bindingFailureConditions": [ROUTES_FAILED]}


def _routed(uid: str = "u1", pool: str = NODE) -> Obj:
    return claim(
        uid,
        [
            result("chip-1-shared-0", pool, "s0", shareID="a"),
            result("chip-1-shared-0", pool, "s1", shareID="b"),
            result("chip-1-router-0", pool, "chip-router", shareID="c", **BINDING),
        ],
    )


def _with_status(body: Obj, entries: list[Obj]) -> Obj:
    return {**body, "status": {**body["status"], "devices": entries}}


def test_router_names() -> None:
    assert router_chip("chip-12-router-3") == 12
    assert router_chip("chip-1-shared-0") is None
    assert router_chip("chip-1-router") is None
    assert router_chip("fabric-w0") is None


def test_a_claim_whose_router_waits_is_prepared_early_only_on_its_node() -> None:
    body = _routed()
    assert awaiting_routes(body, NODE)
    assert not awaiting_routes(body, "node-b")
    # No router, or a router without binding conditions: the kubelet's prepare is enough.
    plain = claim("u2", [result("chip-1-shared-0", NODE, "s0", shareID="a")])
    assert not awaiting_routes(plain, NODE)
    no_conditions = claim("u3", [result("chip-1-router-0", NODE, "chip-router")])
    assert not awaiting_routes(no_conditions, NODE)
    unallocated = {**body, "status": {}}
    assert not awaiting_routes(unallocated, NODE)


def test_programmed_or_failed_the_router_waits_no_more() -> None:
    body = _routed()
    routes = (RouteEntry("s0", "s1", "0:0:4", 40),)
    [ok] = router_entries(body, NODE, routes, "2026-12-01T00:00:00Z")
    assert (ok["device"], ok["shareID"]) == ("chip-1-router-0", "c")
    conds = {c["type"]: c for c in ok["conditions"]}
    assert conds[ROUTES_PROGRAMMED]["status"] == "True"
    assert conds[ROUTES_FAILED]["status"] == "False"
    assert "on chip 1's router: s0->s1" in conds[ROUTES_PROGRAMMED]["message"]
    assert ok["data"] == {"chip": 1, "routes": ["s0->s1"]}
    assert not awaiting_routes(_with_status(body, [ok]), NODE)

    failed = with_router_failure(body, "u1", NODE, "route s0->s1: refused", "2026-12-01T00:00:00Z")
    assert failed is not None
    [entry] = failed["status"]["devices"]
    conds = {c["type"]: c for c in entry["conditions"]}
    assert conds[ROUTES_FAILED]["status"] == "True"
    assert conds[ROUTES_FAILED]["reason"] == "RouteProgrammingFailed"
    assert "chip 1 failed: route s0->s1: refused" in conds[ROUTES_FAILED]["message"]
    assert conds[ROUTES_PROGRAMMED]["status"] == "False"
    assert not awaiting_routes(failed, NODE)


def test_a_claim_joined_over_a_fabric_names_the_routes_that_cross_its_link() -> None:
    # Groups on chips 1 and 2 of one fabric joined into one claim (pipeline/fabricjoin.py): the
    # router of chip 1 gates both routes, but s1->s2 crosses the fabric link, not its router.
    body = claim(
        "u1",
        [
            result("chip-1-shared-0", NODE, "s0", shareID="a"),
            result("chip-1-shared-0", NODE, "s1", shareID="b"),
            result("chip-2-domain-3", NODE, "s2"),
            result("fabric-w0", NODE, "fabric"),
            result("chip-1-router-0", NODE, "chip-router", shareID="c", **BINDING),
        ],
    )
    routes = (RouteEntry("s0", "s1", "0:0:4", 40), RouteEntry("s1", "s2", "0:0:4", 40))
    [ok] = router_entries(body, NODE, routes, "2026-12-01T00:00:00Z")
    [cond] = [c for c in ok["conditions"] if c["type"] == ROUTES_PROGRAMMED]
    assert cond["message"] == (
        "on chip 1's router: s0->s1; over the fabric link: s1->s2 (chip 1 to chip 2)"
    )
    assert ok["data"] == {"chip": 1, "routes": ["s0->s1", "s1->s2"], "fabricRoutes": ["s1->s2"]}
    only_across = router_entries(body, NODE, routes[1:], "2026-12-01T00:00:00Z")
    [cond] = [c for c in only_across[0]["conditions"] if c["type"] == ROUTES_PROGRAMMED]
    assert cond["message"] == "over the fabric link: s1->s2 (chip 1 to chip 2)"


def test_a_late_failure_never_overwrites_a_newer_result() -> None:
    body = _routed()
    [ok] = router_entries(body, NODE, (), "t")
    done = _with_status(body, [ok])
    assert with_router_failure(done, "u1", NODE, "late", "t") is None
    assert with_router_failure(body, "other-uid", NODE, "recreated", "t") is None
    other_driver = {"driver": "gpu.example.com", "pool": NODE, "device": "gpu-0"}
    kept = with_router_failure(_with_status(body, [other_driver]), "u1", NODE, "x", "t")
    assert kept is not None
    assert kept["status"]["devices"][0] == other_driver


def test_what_was_prepared_early_is_undone_once_its_allocation_is_gone() -> None:
    here, elsewhere = _routed("u1"), _routed("u2", pool="node-b")
    deallocated = {**_routed("u3"), "status": {}}
    claims = {"u1": here, "u2": elsewhere, "u3": deallocated}
    assert to_undo(["u1", "u2", "u3", "u4-deleted"], claims, NODE) == ["u2", "u3", "u4-deleted"]
    assert allocated_here(here, NODE)
    assert not allocated_here(elsewhere, NODE)
