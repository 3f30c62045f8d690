"""Placement of a split plan on the live cluster's chips: the view read from real slices, the
grouping by heavy edges, hints, failed hardware, and properties against a brute-force model."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest
from darwin_dra.pipeline.chiproutes import on_chip_edges
from darwin_dra.pipeline.cluster import ChipSlot, ClusterView, FabricLink, Half, cluster_view
from darwin_dra.pipeline.placement import (
    Placement,
    PlacementError,
    fabric_keps,
    place,
    placement_from_json,
    placement_json,
)
from darwin_dra.pipeline.plan import EdgeLoad, PlanError, PlanView, StageLoad
from darwin_dra.resources.partitions import ROUTERS_PER_CHIP, router_name
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.pipeline.pipelines import allocation, chain, inventory, nodes, result, slices


def test_view_of_real_slices_has_each_chip_with_its_two_shared_halves() -> None:
    inv = inventory(2, 2)
    view = cluster_view(slices(inv), nodes=nodes(inv))
    assert [c.name for c in view.chips] == [
        "node-0/chip-0",
        "node-0/chip-1",
        "node-1/chip-0",
        "node-1/chip-1",
    ]
    assert all(len(c.halves) == 2 for c in view.chips)
    assert {c.fabric for c in view.chips} == {"wafer-0", "wafer-1"}
    assert all(h.keps > 400_000 for c in view.chips for h in c.halves)
    assert [(f.id, f.nodes, f.keps) for f in view.fabrics] == [
        ("wafer-0", ("node-0",), 1_000_000),
        ("wafer-1", ("node-1",), 1_000_000),
    ]
    assert view.node_labels["node-0"]["edge"] == "yes"


def test_view_leaves_out_tainted_halves_and_counts_other_claims() -> None:
    inv = inventory(1, 1)
    objs = slices(inv)
    for s in objs:
        for dev in s["spec"].get("devices") or []:
            if dev["name"] == "chip-0-shared-0":
                dev["taints"] = [
                    {"key": "darwin.snn.io/unhealthy", "value": "fault", "effect": "NoExecute"}
                ]
    used = result("r", "node-0", "chip-0-shared-1", consumedCapacity={"keps": "100k"})
    claim = {"metadata": {"uid": "other"}, "status": allocation(used)}
    [chip] = cluster_view(objs, [claim]).chips
    [half] = chip.halves
    assert half.device == "chip-0-shared-1"
    full = cluster_view(objs).chips[0].halves[0].keps
    assert half.keps == full - 100_000
    # The pipeline's own claims count as free when it places again.
    [again] = cluster_view(objs, [claim], ignore_claims=frozenset({"other"})).chips
    assert again.halves[0].keps == full


def test_view_blocks_a_half_an_exclusive_partition_holds() -> None:
    inv = inventory(1, 1)
    claim = {
        "metadata": {"uid": "x"},
        "status": allocation(result("r", "node-0", "chip-0-domain-0")),
    }
    [chip] = cluster_view(slices(inv), [claim]).chips
    assert [h.device for h in chip.halves] == ["chip-0-shared-1"]


def test_view_counts_each_chips_published_routers_less_tainted_and_taken_ones() -> None:
    inv = inventory(1, 2)
    objs = slices(inv)
    # What the slices publish is the one source: ROUTERS_PER_CHIP a chip.
    assert [c.routers for c in cluster_view(objs).chips] == [ROUTERS_PER_CHIP] * 2
    for s in objs:
        for dev in s["spec"].get("devices") or []:
            if dev["name"] == router_name(1, 3):
                dev["taints"] = [
                    {"key": "darwin.snn.io/unhealthy", "value": "fault", "effect": "NoExecute"}
                ]
    taken = {
        "metadata": {"uid": "other"},
        "status": allocation(
            result("chip-router", "node-0", router_name(0, 0)),
            result("chip-router", "node-0", router_name(0, 2)),
        ),
    }
    assert [c.routers for c in cluster_view(objs, [taken]).chips] == [
        ROUTERS_PER_CHIP - 2,
        ROUTERS_PER_CHIP - 1,
    ]
    # The pipeline's own claims' routers count as free when it places again.
    again = cluster_view(objs, [taken], ignore_claims=frozenset({"other"}))
    assert [c.routers for c in again.chips] == [ROUTERS_PER_CHIP, ROUTERS_PER_CHIP - 1]


def _pairs(n: int) -> PlanView:
    """n pairs of stages, each pair exchanging spikes, no traffic between pairs."""
    stages = tuple(StageLoad(f"s{i}", 1, 1, 1) for i in range(2 * n))
    edges = tuple(EdgeLoad(f"s{2 * i}", f"s{2 * i + 1}", 10.0) for i in range(n))
    return PlanView(stages, edges)


_BIG = (Half("n", "h0", 100, 100, 100), Half("n", "h1", 100, 100, 100))


def test_no_chip_gets_more_routed_groups_than_it_has_routers() -> None:
    plan = _pairs(ROUTERS_PER_CHIP + 1)
    # One chip: room for every pair, routers for ROUTERS_PER_CHIP of them. The last pair still
    # shares the chip, without a router: its claim asks for none, its edge stays on a socket.
    one = ClusterView((ChipSlot("n", 0, "f", _BIG),))
    p = place(plan, one, target_rate=10)
    assert [g.routed for g in p.groups] == [True] * ROUTERS_PER_CHIP + [False]
    maps = {(e.src, e.dst): "0:0:1" for e in plan.edges}
    last = 2 * ROUTERS_PER_CHIP
    assert (f"s{last}", f"s{last + 1}") not in on_chip_edges(plan, p, maps)
    assert len(on_chip_edges(plan, p, maps)) == ROUTERS_PER_CHIP
    # A second chip with a free router: the last pair goes there, routed.
    two = ClusterView((ChipSlot("n", 0, "f", _BIG), ChipSlot("n", 1, "f", _BIG)))
    p = place(plan, two, target_rate=10)
    assert all(g.routed for g in p.groups)
    assert [g.chip for g in p.groups] == [0] * ROUTERS_PER_CHIP + [1]
    # Routers other claims hold are not free: one left on chip 0 takes one pair.
    busy = ClusterView((ChipSlot("n", 0, "f", _BIG, routers=1), ChipSlot("n", 1, "f", _BIG)))
    p = place(_pairs(2), busy, target_rate=10)
    assert [(g.chip, g.routed) for g in p.groups] == [(0, True), (1, True)]


def test_the_stored_placement_keeps_whether_a_group_holds_a_router() -> None:
    plan = _pairs(2)
    p = place(plan, ClusterView((ChipSlot("n", 0, "f", _BIG, routers=1),)), target_rate=10)
    assert [g.routed for g in p.groups] == [True, False]
    assert placement_from_json(placement_json(p)) == p


def test_heavy_edge_shares_a_chip_and_a_hint_pins_a_stage_to_its_node() -> None:
    inv = inventory(2, 2)
    view = cluster_view(slices(inv), nodes=nodes(inv))
    # s0 -> s1 heavy, s1 -> s2 light; s2 must run off the edge node.
    plan = chain(200_000_000, 200_000_000, 100_000_000, spikes=(500.0, 20.0))
    hints = {"s0": {"edge": "yes"}, "s2": {"edge": "no"}}
    p = place(plan, view, target_rate=1000, hints=hints)
    g0, g1 = p.groups
    assert g0.stages == ("s0", "s1")
    assert (g0.node, g0.fabric) == ("node-0", "wafer-0")
    assert g1.stages == ("s2",)
    assert (g1.node, g1.node_selector) == ("node-1", {"edge": "no"})
    assert p.links == {("s0", "s1"): "chip", ("s1", "s2"): "network"}
    assert p.cross_node() == 20.0 * 1000
    assert p.crossing("fabric", "network") == 20_000


def test_stages_too_big_for_one_chip_meet_on_a_fabric_and_claim_its_bandwidth() -> None:
    inv = inventory(2, 2)
    view = cluster_view(slices(inv), nodes=nodes(inv))
    # Each stage needs most of a half: two per chip at most, and never both on one half.
    plan = chain(450_000_000, 450_000_000, 450_000_000, spikes=(50.0, 40.0))
    p = place(plan, view, target_rate=1000)
    [g0, g1] = p.groups
    assert g0.stages == ("s0", "s1")
    assert g1.stages == ("s2",)
    assert g0.fabric == g1.fabric  # the second chip of the same wafer, not the other node
    assert p.links[("s1", "s2")] == "fabric"
    assert g1.fabric_keps == fabric_keps(40 * 1000) == 40
    assert p.cross_node() == 0


@pytest.mark.parametrize(
    ("plan", "hints", "error"),
    [
        (chain(900_000_000), None, r"stage\(s\) s0 \(900000000 keps"),
        (chain(10), {"nope": {"a": "b"}}, "hint names stage 'nope'"),
        (chain(10), {"s0": {"edge": "yes"}}, r"on nodes labelled \[\{'edge': 'yes'\}\]"),
    ],
    ids=["no-room", "hint-for-no-stage", "no-node-with-the-labels"],
)
def test_no_room_names_the_stage_and_what_it_needs(
    plan: PlanView, hints: dict[str, dict[str, str]] | None, error: str
) -> None:
    view = cluster_view(slices(inventory(1, 1)))
    with pytest.raises(PlacementError, match=error):
        place(plan, view, target_rate=10, hints=hints)


def test_fabric_bandwidth_is_checked_against_what_is_free() -> None:
    inv = inventory(1, 2)
    view = cluster_view(slices(inv, fabric_keps=100), nodes=nodes(inv))
    plan = chain(450_000_000, 450_000_000, 450_000_000, spikes=(500.0, 400.0))
    with pytest.raises(PlacementError, match="fabric wafer-0: the pipeline needs 400 keps"):
        place(plan, view, target_rate=1000)


_AB = (StageLoad("a", 1, 1, 1), StageLoad("b", 1, 1, 1))


@pytest.mark.parametrize(
    ("stages", "edges", "error"),
    [
        (_AB, (EdgeLoad("a", "b", 1), EdgeLoad("b", "a", 1)), "cycle through a, b"),
        ((StageLoad("Stage_A", 1, 1, 1),), (), "DNS label"),
        (_AB, (EdgeLoad("a", "c", 1),), "edge a -> c"),
    ],
    ids=["cycle", "not-a-dns-label", "edge-to-no-stage"],
)
def test_plan_rejects_cycles_and_bad_names(
    stages: tuple[StageLoad, ...], edges: tuple[EdgeLoad, ...], error: str
) -> None:
    with pytest.raises(PlanError, match=error):
        PlanView(stages, edges)


# ---- properties against a brute-force reference ----


def _fits(loads: list[StageLoad], halves: tuple[Half, ...]) -> bool:
    """Reference: some assignment of the stages to the halves respects every capacity."""
    for assign in itertools.product(range(len(halves)), repeat=len(loads)):
        ok = True
        for i, h in enumerate(halves):
            mine = [s for s, a in zip(loads, assign, strict=True) if a == i]
            if (
                sum(s.keps for s in mine) > h.keps
                or sum(s.neurons for s in mine) > h.neurons
                or sum(s.synapses for s in mine) > h.synapses
            ):
                ok = False
                break
        if ok:
            return True
    return False


def _feasible(plan: PlanView, view: ClusterView, hints: Mapping[str, Mapping[str, str]]) -> bool:
    chips = view.chips
    for assign in itertools.product(range(len(chips)), repeat=len(plan.stages)):
        good = all(
            all(
                view.node_labels.get(chips[a].node, {}).get(k) == v
                for k, v in hints.get(s.name, {}).items()
            )
            for s, a in zip(plan.stages, assign, strict=True)
        )
        if good and all(
            _fits([s for s, a in zip(plan.stages, assign, strict=True) if a == i], c.halves)
            for i, c in enumerate(chips)
        ):
            return True
    return False


def _check_valid(
    p: Placement, plan: PlanView, view: ClusterView, hints: Mapping[str, Mapping[str, str]]
) -> None:
    assert sorted(s for g in p.groups for s in g.stages) == sorted(s.name for s in plan.stages)
    per_chip: dict[tuple[str, int], list[StageLoad]] = {}
    for g in p.groups:
        chip = next(c for c in view.chips if (c.node, c.chip) == (g.node, g.chip))
        assert g.fabric == chip.fabric
        for s in g.stages:
            for k, v in hints.get(s, {}).items():
                assert view.node_labels[g.node].get(k) == v
        per_chip.setdefault((g.node, g.chip), []).extend(plan.stage(s) for s in g.stages)
        # A group's stages share one chip: they must fit it on their own.
        assert _fits([plan.stage(s) for s in g.stages], chip.halves)
    for (node, chip_id), loads in per_chip.items():
        chip = next(c for c in view.chips if (c.node, c.chip) == (node, chip_id))
        assert _fits(loads, chip.halves)
    for (a, b), link in p.links.items():
        ga, gb = p.group_of(a), p.group_of(b)
        assert link == ("chip" if ga == gb else "fabric" if ga.fabric == gb.fabric else "network")
    total = sum(p.spikes_per_s.values())
    assert p.crossing("fabric", "network") <= total + 1e-9
    _check_routers(p, plan, view)


def _check_routers(p: Placement, plan: PlanView, view: ClusterView) -> None:
    """Reference: a claim needs a router when an edge of the plan joins two of its stages; it
    holds at most one (a ``routed`` group: the router is on that group's chip); no chip has
    more routed groups than free routers; a claim left without one has every chip of its
    groups' routers held by the pipeline's other claims; joined claims are one node's and
    one fabric's, and hold a router; only the edges inside a claim holding one are routed."""
    routed_on: dict[tuple[str, int], int] = {}
    for g in p.groups:
        if g.routed:
            routed_on[(g.node, g.chip)] = routed_on.get((g.node, g.chip), 0) + 1
    for c in view.chips:
        assert routed_on.get((c.node, c.chip), 0) <= c.routers
    for name, groups in p.claims().items():
        stages = {s for g in groups for s in g.stages}
        inside = any(e.src in stages and e.dst in stages for e in plan.edges)
        holders = [g for g in groups if g.routed]
        assert len(holders) <= 1, name
        if holders:
            assert inside, name  # no router for a claim that routes nothing
        elif inside:
            for g in groups:
                chip = next(c for c in view.chips if (c.node, c.chip) == (g.node, g.chip))
                assert routed_on.get((g.node, g.chip), 0) == chip.routers
        if len(groups) > 1:
            assert len({(g.node, g.fabric) for g in groups}) == 1
            assert holders
    maps = {(e.src, e.dst): "0:0:1" for e in plan.edges}
    for a, b in on_chip_edges(plan, p, maps):
        claim = p.claim_of(a)
        assert any(g.routed for g in claim)
        assert claim == p.claim_of(b)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PlanView, ClusterView, dict[str, dict[str, str]]]:
    n = draw(st.integers(1, 4))
    stages = tuple(
        StageLoad(
            f"s{i}", draw(st.integers(0, 6)), draw(st.integers(0, 6)), draw(st.integers(0, 6))
        )
        for i in range(n)
    )
    edges = []
    for j in range(1, n):
        for i in range(j):
            if draw(st.booleans()):
                edges.append(EdgeLoad(f"s{i}", f"s{j}", float(draw(st.integers(0, 50)))))
    chips = []
    labels: dict[str, dict[str, str]] = {}
    for c in range(draw(st.integers(1, 3))):
        node = f"n{draw(st.integers(0, 1))}"
        labels[node] = {"role": node}
        halves = tuple(
            Half(
                node,
                f"chip-{c}-shared-{h}",
                draw(st.integers(0, 8)),
                draw(st.integers(0, 8)),
                draw(st.integers(0, 8)),
            )
            for h in range(draw(st.integers(1, 2)))
        )
        routers = draw(st.integers(0, 2))
        chips.append(ChipSlot(node, c, f"f{draw(st.integers(0, 1))}", halves, routers))
    fabrics = tuple(FabricLink(f, f, f"fabric-{f}", (), 10**9) for f in ("f0", "f1"))
    hints = {}
    if draw(st.booleans()):
        hints[f"s{draw(st.integers(0, n - 1))}"] = {"role": f"n{draw(st.integers(0, 1))}"}
    return PlanView(stages, tuple(edges)), ClusterView(tuple(chips), fabrics, labels), hints


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_placement_is_valid_and_never_claims_an_impossible_one(
    case: tuple[PlanView, ClusterView, dict[str, dict[str, str]]],
) -> None:
    plan, view, hints = case
    try:
        p = place(plan, view, target_rate=10, hints=hints)
    except PlacementError:
        # Greedy may miss a packing; but never says "no" when even one stage cannot go anywhere
        # ... and never says "yes" to an impossible one (below).
        return
    assert _feasible(plan, view, hints)
    _check_valid(p, plan, view, hints)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=5), st.integers(1, 3))
def test_a_chain_that_fits_one_chip_crosses_nothing(traffic: list[int], chips: int) -> None:
    n = len(traffic)
    plan = PlanView(
        tuple(StageLoad(f"s{i}", 1, 1, 1) for i in range(n + 1)),
        tuple(EdgeLoad(f"s{i}", f"s{i + 1}", float(t)) for i, t in enumerate(traffic)),
    )
    big = (Half("n", "h0", 100, 100, 100), Half("n", "h1", 100, 100, 100))
    view = ClusterView(tuple(ChipSlot("n", c, "f", big) for c in range(chips)))
    p = place(plan, view, target_rate=1000)
    assert len(p.groups) == 1
    assert p.crossing("fabric", "network") == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 100), min_size=2, max_size=6))
def test_greedy_never_moves_more_across_chips_than_one_stage_per_chip(traffic: list[int]) -> None:
    n = len(traffic)
    plan = PlanView(
        tuple(StageLoad(f"s{i}", 1, 1, 4) for i in range(n + 1)),
        tuple(EdgeLoad(f"s{i}", f"s{i + 1}", float(t)) for i, t in enumerate(traffic)),
    )
    # Room for two stages a chip: the greedy pairs the heaviest edges.
    view = ClusterView(
        tuple(ChipSlot("n", c, "f", (Half("n", "h", 8, 8, 8),)) for c in range(n + 1)),
        (FabricLink("f", "f", "fabric-f", ("n",), 10**9),),
    )
    p = place(plan, view, target_rate=1)
    assert p.crossing("fabric", "network") <= sum(traffic)
    # The heaviest edge never crosses: nothing outranks it when the greedy starts.
    heaviest = max(range(n), key=lambda i: (traffic[i], -i))
    assert p.links[(f"s{heaviest}", f"s{heaviest + 1}")] == "chip"


@st.composite
def roomy(draw: st.DrawFn) -> tuple[PlanView, ClusterView]:
    """Many small stages and chips with room for all of them, but few routers."""
    n = draw(st.integers(2, 10))
    stages = tuple(StageLoad(f"s{i}", 1, 1, draw(st.integers(1, 30))) for i in range(n))
    edges = tuple(
        EdgeLoad(f"s{i}", f"s{j}", float(draw(st.integers(0, 50))))
        for j in range(1, n)
        for i in range(j)
        if draw(st.integers(0, 3)) == 0
    )
    chips = tuple(
        ChipSlot(
            f"n{c % 2}",
            c,
            f"f{draw(st.integers(0, 1))}",
            (Half("p", "h0", 40, 100, 100), Half("p", "h1", 40, 100, 100)),
            draw(st.integers(0, ROUTERS_PER_CHIP)),
        )
        for c in range(draw(st.integers(1, 3)))
    )
    fabrics = tuple(FabricLink(f, f, f"fabric-{f}", (), 10**9) for f in ("f0", "f1"))
    return PlanView(stages, edges), ClusterView(chips, fabrics)


@settings(max_examples=200, deadline=None)
@given(roomy())
def test_routed_groups_never_outnumber_a_chips_routers(case: tuple[PlanView, ClusterView]) -> None:
    plan, view = case
    try:
        p = place(plan, view, target_rate=10)
    except PlacementError:
        return  # greedy missed a packing; the test above covers what it may refuse
    _check_valid(p, plan, view, {})
