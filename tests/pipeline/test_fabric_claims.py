"""Two groups on two chips of one fabric on one node join one claim (fabricjoin.join_on_fabric),
so the route between them is one claim's and goes over the engine's fabric link: the decision,
the claim the controller writes for it, and its pods."""

from __future__ import annotations

from darwin_dra.pipeline import objects
from darwin_dra.pipeline.chiproutes import ROUTES_ANNOTATION, on_chip_edges, parse_routes
from darwin_dra.pipeline.cluster import cluster_view
from darwin_dra.pipeline.fabricjoin import join_on_fabric
from darwin_dra.pipeline.placement import (
    Group,
    Link,
    fabric_keps,
    place,
    placement_from_json,
    placement_json,
)
from darwin_dra.pipeline.reconcile import Observed, decide
from darwin_dra.pipeline.spec import parse_spec

from tests.pipeline.pipelines import chain, inventory, nodes, pipeline_obj, slices
from tests.pipeline.test_pipeline_reconcile import SETTINGS, _created, _run


def _g(name: str, stages: tuple[str, ...], node: str, chip: int, routed: bool = False) -> Group:
    return Group(name, stages, node, chip, "f", routed=routed)


def _claims(groups: tuple[Group, ...]) -> dict[str, str]:
    return {g.name: g.claim_id for g in groups}


EDGE = {("s0", "s1"): 10.0}
FABRIC: dict[tuple[str, str], Link] = {("s0", "s1"): "fabric"}


def test_two_groups_on_one_nodes_fabric_join_one_claim_with_a_router_of_the_source() -> None:
    groups = (_g("g0", ("s0",), "n", 0), _g("g1", ("s1",), "n", 1))
    out = join_on_fabric(groups, EDGE, FABRIC, {("n", 0): 4, ("n", 1): 4})
    assert _claims(out) == {"g0": "g0", "g1": "g0"}
    assert [g.routed for g in out] == [True, False]  # the router on s0's chip
    # No router left on the source's chip: the destination's.
    out = join_on_fabric(groups, EDGE, FABRIC, {("n", 0): 0, ("n", 1): 1})
    assert [(g.claim_id, g.routed) for g in out] == [("g0", False), ("g0", True)]
    # None on either: no claim can gate its routes, they stay apart (the edge on a socket).
    out = join_on_fabric(groups, EDGE, FABRIC, {("n", 0): 0, ("n", 1): 0})
    assert _claims(out) == {"g0": "g0", "g1": "g1"}
    assert not any(g.routed for g in out)


def test_groups_on_two_nodes_or_over_the_network_stay_apart() -> None:
    apart = (_g("g0", ("s0",), "n", 0), _g("g1", ("s1",), "m", 0))
    routers = {("n", 0): 4, ("m", 0): 4}
    assert _claims(join_on_fabric(apart, EDGE, FABRIC, routers)) == {"g0": "g0", "g1": "g1"}
    one = (_g("g0", ("s0",), "n", 0), _g("g1", ("s1",), "n", 1))
    network: dict[tuple[str, str], Link] = {("s0", "s1"): "network"}
    out = join_on_fabric(one, EDGE, network, {("n", 0): 4, ("n", 1): 4})
    assert _claims(out) == {"g0": "g0", "g1": "g1"}


def test_two_routed_claims_joined_keep_one_router_and_give_the_other_back() -> None:
    groups = (
        _g("g0", ("s0", "s1"), "n", 0, routed=True),
        _g("g1", ("s2", "s3"), "n", 1, routed=True),
        _g("g2", ("s4", "s5"), "n", 1),  # placed without a router: chip 1 had none left
    )
    traffic = {("s0", "s1"): 9.0, ("s1", "s2"): 5.0, ("s2", "s3"): 9.0, ("s4", "s5"): 1.0}
    links: dict[tuple[str, str], Link] = {
        ("s0", "s1"): "chip",
        ("s1", "s2"): "fabric",
        ("s2", "s3"): "chip",
        ("s4", "s5"): "chip",
    }
    out = join_on_fabric(groups, traffic, links, {("n", 0): 0, ("n", 1): 0})
    assert _claims(out) == {"g0": "g0", "g1": "g0", "g2": "g2"}
    # g0 keeps its router; g1's, on chip 1, goes to g2, which wanted one.
    assert [g.routed for g in out] == [True, False, True]


def test_place_joins_stages_that_meet_on_a_fabric_and_the_claim_routes_their_edge() -> None:
    inv = inventory(1, 2)
    view = cluster_view(slices(inv), nodes=nodes(inv))
    # Each stage needs most of a half: s0 and s1 share chip 0, s2 has chip 1 of the fabric.
    plan = chain(450_000_000, 450_000_000, 450_000_000, spikes=(50.0, 40.0))
    p = place(plan, view, target_rate=1000)
    g0, g1 = p.groups
    assert (g0.stages, g0.chip, g1.stages, g1.chip) == (("s0", "s1"), 0, ("s2",), 1)
    assert (g0.claim_id, g1.claim_id) == ("g0", "g0")
    assert (g0.routed, g1.routed) == (True, False)  # one router for the claim, on chip 0
    assert p.links[("s1", "s2")] == "fabric"
    assert g1.fabric_keps == fabric_keps(40 * 1000)  # it still crosses the fabric
    assert placement_from_json(placement_json(p)) == p
    maps = {("s0", "s1"): "0:0:3", ("s1", "s2"): "0:0:2"}
    assert on_chip_edges(plan, p, maps) == [("s0", "s1"), ("s1", "s2")]


def test_the_joined_claim_holds_both_chips_stages_and_its_pods_route_over_the_fabric() -> None:
    inv = inventory(1, 2)
    view = cluster_view(slices(inv), nodes=nodes(inv))
    plan = chain(450_000_000, 450_000_000, 450_000_000, spikes=(50.0, 40.0), io=True)
    obj = pipeline_obj()
    spec = parse_spec(obj)
    p = place(plan, view, spec.target_rate)
    maps = {("s0", "s1"): "0:0:3", ("s1", "s2"): "0:0:2"}
    d = decide(obj, spec, plan, p, Observed(), SETTINGS, maps)
    claims = {c["metadata"]["name"]: c for c in _created(d, "ResourceClaim")}
    assert list(claims) == ["digits-g0"]
    devices = claims["digits-g0"]["spec"]["devices"]
    requests = {r["name"]: r["exactly"] for r in devices["requests"]}
    assert list(requests) == ["s0", "s1", "s2", objects.FABRIC_REQUEST, objects.ROUTER_REQUEST]
    assert requests[objects.FABRIC_REQUEST]["capacity"]["requests"] == {
        "keps": str(fabric_keps(40 * 1000))
    }
    assert devices["constraints"] == [
        {"requests": ["s0", "s1", objects.ROUTER_REQUEST], "matchAttribute": "darwin.snn.io/chip"},
        {"requests": ["s0", "s1", "s2"], "matchAttribute": "darwin.snn.io/fabric"},
    ]
    routes = parse_routes(claims["digits-g0"]["metadata"]["annotations"][ROUTES_ANNOTATION], "a")
    assert [r.edge for r in routes] == ["s0->s1", "s1->s2"]
    # Pods, downstream first; s2 takes its own request of the one claim, s1 reaches it on the
    # chip host's route (--on-chip), not a socket.
    running = []
    for _ in range(5):
        d = decide(obj, spec, plan, p, Observed(claims.values(), running), SETTINGS, maps)
        [pod] = _created(d, "Pod")
        running.append(_run(pod, f"10.0.0.{len(running) + 1}", "node-0"))
    pods = {x["metadata"]["name"]: x["spec"] for x in running}
    s2 = pods["digits-s2"]
    assert s2["resourceClaims"] == [{"name": "snn", "resourceClaimName": "digits-g0"}]
    assert s2["containers"][0]["resources"]["claims"] == [{"name": "snn", "request": "s2"}]
    s1 = pods["digits-s1"]["containers"][0]["command"]
    assert sorted(s1[i + 1] for i, a in enumerate(s1) if a == "--on-chip") == ["s0", "s2"]
    assert "--downstream" not in s1
