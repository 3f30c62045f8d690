"""A stage on a chip that lost a fabric link: the chip's devices carry no taint (the chip runs
on, docs/operations.md), but the pipeline leaves it: ``fabric_faulted`` reads the chips'
published ``fabricLinks`` against the grid's, the decision is a restart off that hardware
(``FabricLinkFailed``), and the new placement's view has no room on that chip."""

from __future__ import annotations

import json
from dataclasses import replace

from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.cluster import cluster_view, fabric_faulted
from darwin_dra.pipeline.placement import place, placement_from_json, placement_json
from darwin_dra.pipeline.reconcile import Observed, decide
from darwin_dra.resources.chips import nominal_views
from darwin_dra.resources.fabric import nominal_links
from darwin_dra.resources.slices import build_slices

from tests.pipeline.pipelines import allocation, inventory, nodes, result
from tests.pipeline.test_pipeline_reconcile import SETTINGS, _converge, _setup

PROFILES = load_profiles()
HINT_MAP = {"input": {"edge": "yes"}, "s0": {"edge": "yes"}, "s2": {"edge": "no"}}


def _slices(cut: dict[tuple[str, int], int]) -> list[Obj]:
    """The plugins' slices of two nodes of two chips, each node's pair on a wafer of its own
    (the integration tests' inventory), chips in ``cut`` with that many fabric links."""
    out: list[Obj] = []
    for node in inventory(2, 2).nodes:
        views = [
            replace(v, fabric_links=cut.get((node.name, v.chip), v.fabric_links))
            for v in nominal_views(node.chips, PROFILES)
        ]
        out += build_slices(node.name, views)
    return out


def _chips(devices: frozenset[tuple[str, str]], slices: list[Obj]) -> set[tuple[str, int]]:
    by_key = {
        (s["spec"]["pool"]["name"], d["name"]): d["attributes"]["chip"]["int"]
        for s in slices
        for d in s["spec"].get("devices", [])
    }
    return {(pool, by_key[(pool, dev)]) for pool, dev in devices}


def test_every_device_of_a_chip_short_of_links_is_faulted_and_no_other() -> None:
    nominal = nominal_links(inventory(2, 2), PROFILES)
    assert set(nominal.values()) == {1}  # a link each way between a node's two chips
    healthy = _slices({})
    assert fabric_faulted(healthy, nominal) == frozenset()
    cut = _slices({("node-1", 0): 0})
    faulted = fabric_faulted(cut, nominal)
    assert _chips(faulted, cut) == {("node-1", 0)}
    on_chip = {
        d["name"]
        for s in cut
        if s["spec"]["nodeName"] == "node-1"
        for d in s["spec"].get("devices", [])
        if d["attributes"].get("chip", {}).get("int") == 0
    }
    assert {dev for _, dev in faulted} == on_chip  # its shares, domains, router, whole chip
    assert fabric_faulted(cut, {}) == frozenset()  # no inventory: nothing to compare with


def test_a_stage_on_a_chip_that_lost_a_fabric_link_restarts_off_it() -> None:
    obj, spec, plan, placement = _setup()
    assert placement.node_of("s2") == "node-1"
    claims, pods = _converge(obj, spec, plan, placement)
    # s2's claim, as the scheduler allocated it on node-1's chip 0
    claims[1]["status"] = allocation(result("s2", "node-1", "chip-0-shared-0"))
    slices = _slices({("node-1", 0): 0})
    faulted = fabric_faulted(slices, nominal_links(inventory(2, 2), PROFILES))
    d = decide(obj, spec, plan, placement, Observed(claims, pods, frozenset(), faulted), SETTINGS)
    assert (d.phase, d.reason) == ("Restarting", "FabricLinkFailed")
    assert d.failed_devices == ["node-1/chip-0-shared-0"]
    assert "fabric links failed under the pipeline: node-1/chip-0-shared-0" in d.message
    deleted = {(a.kind, a.name) for a in d.actions if a.verb == "delete"}
    assert ("ResourceClaim", claims[1]["metadata"]["name"]) in deleted
    assert len([k for k, _ in deleted if k == "Pod"]) == 5
    # A taint on the same device is the stronger word: the chip failed.
    tainted = frozenset({("node-1", "chip-0-shared-0")})
    both = decide(obj, spec, plan, placement, Observed(claims, pods, tainted, faulted), SETTINGS)
    assert both.reason == "ChipFailed"
    # Healthy links: nothing to do.
    calm = decide(obj, spec, plan, placement, Observed(claims, pods), SETTINGS)
    assert calm.reason == "StagesRunning"


def test_the_new_placement_leaves_the_chip_and_the_hints_still_hold() -> None:
    inv = inventory(2, 2)
    slices = _slices({("node-1", 0): 0})
    faulted = fabric_faulted(slices, nominal_links(inv, PROFILES))
    plan = _setup()[2]
    before = place(plan, cluster_view(_slices({}), nodes=nodes(inv)), 1000, HINT_MAP)
    after = place(plan, cluster_view(slices, nodes=nodes(inv), avoid=faulted), 1000, HINT_MAP)
    view = cluster_view(slices, nodes=nodes(inv), avoid=faulted)
    cut = next(c for c in view.chips if (c.node, c.chip) == ("node-1", 0))
    assert cut.halves == ()
    chips_after = {(g.node, g.chip) for g in after.groups}
    assert ("node-1", 0) not in chips_after
    assert ("node-1", 0) in {(g.node, g.chip) for g in before.groups}
    assert after.node_of("s2") == "node-1"  # its hint: the other chip of the same node


def test_the_claims_of_a_placement_off_a_faulted_chip_keep_off_its_serial() -> None:
    inv = inventory(2, 2)
    slices = _slices({("node-1", 0): 0})
    view = cluster_view(
        slices, nodes=nodes(inv), avoid=fabric_faulted(slices, nominal_links(inv, PROFILES))
    )
    assert view.avoid_serials == ("CH-1-0",)
    obj, spec, plan, _ = _setup()
    placement = place(plan, view, spec.target_rate, HINT_MAP)
    assert placement.avoid == ("CH-1-0",)
    assert placement_from_json(placement_json(placement)) == placement
    d = decide(obj, spec, plan, placement, Observed(), SETTINGS)
    [claim, *_] = [a.body for a in d.actions if a.kind == "ResourceClaim" and a.body]
    for r in claim["spec"]["devices"]["requests"]:
        if r["exactly"]["deviceClassName"] == "darwin-shared.snn.io":
            exprs = [s["cel"]["expression"] for s in r["exactly"]["selectors"]]
            assert '!(device.attributes["darwin.snn.io"].serial in ["CH-1-0"])' in exprs
    # A healthy placement is written as before: no "avoid", the same hash for its claims.
    healthy = place(plan, cluster_view(_slices({}), nodes=nodes(inv)), spec.target_rate, HINT_MAP)
    assert "avoid" not in json.loads(placement_json(healthy))
