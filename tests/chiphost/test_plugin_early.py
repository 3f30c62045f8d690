"""Prepared before the pod binds (plugin/earlyprep.py) on a real chip host: a claim whose chip
router awaits its binding gets its partitions and routes as soon as the plugin sees the
allocation, and RoutesProgrammed on the router; the kubelet's prepare then finds it done and
owns it; an early prepare whose allocation goes (deallocated, deleted, also while the plugin
was down) is undone; a route that cannot be programmed fails the binding with the reason and
leaves nothing."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path

from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.chiproutes import ROUTES_ANNOTATION, RouteEntry, routes_annotation
from darwin_dra.plugin.earlyprep import EARLY_FILE, EarlyPreparer
from darwin_dra.resources.partitions import ROUTES_FAILED, ROUTES_PROGRAMMED

from tests.chiphost.conftest import NODE, Host
from tests.chiphost.test_plugin_routes import MAP, _driver
from tests.plugin.claims import ClaimStore, claim, result

BINDING = {"bindingConditions": [ROUTES_PROGRAMMED], "bindingFailureConditions": [ROUTES_FAILED]}


class WatchedStore(ClaimStore):
    def list_claims(self) -> tuple[list[Obj], str]:
        return [copy.deepcopy(c) for c in self.claims.values()], "1"

    def watch_claims(self, resource_version: str, timeout_s: int) -> Iterator[tuple[str, Obj]]:
        return iter(())


def _routed(uid: str, first: str, second: str, route: RouteEntry) -> Obj:
    body = claim(
        uid,
        [
            result(first, NODE, "s0"),
            result(second, NODE, "s1"),
            result("chip-0-router-0", NODE, "chip-router", **BINDING),
        ],
    )
    body["metadata"]["annotations"] = {ROUTES_ANNOTATION: routes_annotation([route])}
    return body


def _router(store: ClaimStore, name: str) -> dict[str, Obj]:
    entries = store.get_claim("ns", name)["status"].get("devices") or []
    [entry] = [e for e in entries if e["device"] == "chip-0-router-0"]
    assert "shareID" not in entry
    return {c["type"]: c for c in entry["conditions"]}


def _early(state: Path) -> list[str]:
    return sorted(json.loads((state / EARLY_FILE).read_text())["claims"])


def _deallocated(store: ClaimStore, name: str) -> Obj:
    body = store.get_claim("ns", name)
    body["status"] = {}
    store.add(body)
    return body


def test_prepared_before_binding_handed_to_the_kubelet_undone_when_the_allocation_goes(
    host: Host, tmp_path: Path
) -> None:
    route = RouteEntry("s0", "s1", MAP, 40)
    store = WatchedStore(
        _routed("u1", "chip-0-domain-3", "chip-0-domain-4", route),
        _routed("u2", "chip-0-domain-5", "chip-0-domain-6", route),
        _routed("u3", "chip-0-domain-7", "chip-0-domain-8", route),
        _routed("u4", "chip-0-domain-9", "chip-0-domain-10", RouteEntry("s0", "s9", MAP, 40)),
    )
    with host.client() as chip:
        driver = _driver(host, tmp_path, chip, store)
        early = EarlyPreparer(driver, store, NODE, host.state_dir)
        asyncio.run(early.handle("LIST", store.list_claims()[0]))
        # u1, u2, u3: partitions and routes made, RoutesProgrammed on the router.
        assert sorted(r.name for r in chip.routes()) == ["u1/s0->s1", "u2/s0->s1", "u3/s0->s1"]
        assert len(chip.partitions()) == 6
        for uid in ("u1", "u2", "u3"):
            conds = _router(store, f"c-{uid}")
            assert conds[ROUTES_PROGRAMMED]["status"] == "True"
            assert conds[ROUTES_FAILED]["status"] == "False"
        # u4: its route names no request: the binding fails with that reason, nothing is kept.
        conds = _router(store, "c-u4")
        assert conds[ROUTES_FAILED]["status"] == "True"
        assert (
            "route s0->s9: its destination request 's9' has no device"
            in (conds[ROUTES_FAILED]["message"])
        )
        assert conds[ROUTES_PROGRAMMED]["status"] == "False"
        assert _early(host.state_dir) == ["u1", "u2", "u3"]
        # Seen again (its own status write is an event): nothing more happens.
        writes = store.status_writes
        asyncio.run(early.handle("MODIFIED", store.get_claim("ns", "c-u1")))
        assert store.status_writes == writes

        # The pod of u1 bound: the kubelet's prepare is answered from the checkpoint, and u1
        # is the kubelet's from now on (its later deallocation is not ours to undo).
        [done] = asyncio.run(driver.prepare([ClaimRef("ns", "u1", "c-u1")])).values()
        assert done.error is None
        assert len(done.devices) == 2  # the two partitions; the router is no CDI device
        assert _early(host.state_dir) == ["u2", "u3"]
        asyncio.run(early.handle("MODIFIED", _deallocated(store, "c-u1")))
        assert "u1/s0->s1" in [r.name for r in chip.routes()]

        # u2 deallocated before its pod bound (a failed or timed-out binding): undone.
        asyncio.run(early.handle("MODIFIED", _deallocated(store, "c-u2")))
        assert sorted(r.name for r in chip.routes()) == ["u1/s0->s1", "u3/s0->s1"]
        assert _early(host.state_dir) == ["u3"]

        # u3 deleted while the plugin was down: the restarted plugin's first list undoes it.
        del store.claims[("ns", "c-u3")]
        restarted = _driver(host, tmp_path, chip, store)
        again = EarlyPreparer(restarted, store, NODE, host.state_dir)
        asyncio.run(again.handle("LIST", store.list_claims()[0]))
        assert [r.name for r in chip.routes()] == ["u1/s0->s1"]
        assert len(chip.partitions()) == 2
        assert _early(host.state_dir) == []
        assert asyncio.run(restarted.unprepare([ClaimRef("ns", "u1", "c-u1")])) == {"u1": None}
        assert chip.partitions() == []
