"""The routes the controller writes into a group's claim (pipeline/chiproutes.py): the neuron
map's runs against a list of pairs, the edges that go on a chip's router, and what the
reconcile makes of them: the claim's annotation, ``--on-chip`` on the stage pods, and a source
pod made without waiting for its on-chip destination's IP."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from darwin_dra import schema
from darwin_dra.pipeline import objects
from darwin_dra.pipeline.chiproutes import (
    MAX_ROUTES_CHARS,
    ROUTES_ANNOTATION,
    SCHEMA_FILE,
    RouteEntry,
    decode_map,
    encode_map,
    group_routes,
    on_chip_edges,
    parse_routes,
    peers_on_chip,
)
from darwin_dra.pipeline.reconcile import Observed, decide
from hypothesis import given
from hypothesis import strategies as st

from tests.pipeline.test_pipeline_reconcile import SETTINGS, _created, _run, _setup

pairs = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=60)


@given(pairs)
def test_a_map_reads_back_as_the_same_pairs_in_the_same_order(items: list[tuple[int, int]]) -> None:
    src = np.array([a for a, _ in items], np.int64)
    dst = np.array([b for _, b in items], np.int64)
    text = encode_map(src, dst)
    got_src, got_dst = decode_map(text)
    assert list(zip(got_src.tolist(), got_dst.tolist(), strict=True)) == items
    # every run is as long as the pairs allow: no two runs could be one
    runs = [tuple(int(x) for x in r.split(":")) for r in text.split()]
    for (a, b, n), (c, d, _) in itertools.pairwise(runs):
        assert (c, d) != (a + n, b + n)
    doc = {
        "apiVersion": "darwin.snn.io/v1alpha1",
        "kind": "ClaimRoutes",
        "routes": [{"source": "a", "destination": "b", "neuronMap": text, "lookaheadSteps": 1}],
    }
    assert schema.first_problem(SCHEMA_FILE, doc) is None


def test_a_contiguous_map_is_one_run() -> None:
    assert encode_map(np.arange(5, 105), np.arange(0, 100)) == "5:0:100"
    assert encode_map(np.array([3, 4, 9]), np.array([0, 1, 2])) == "3:0:2 9:2:1"


@pytest.mark.parametrize("bad", ["1:2", "1:2:0", "a:1:1", "1:2:3,4:5:6"])
def test_a_bad_run_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match="run 0"):
        decode_map(bad)


def test_the_annotation_is_checked_against_its_schema_by_field() -> None:
    doc = {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "ClaimRoutes", "routes": [{}]}
    with pytest.raises(ValueError, match=r"ann.routes\[0\].source: is required"):
        parse_routes(json.dumps(doc), "ann")
    with pytest.raises(ValueError, match="ann: not JSON"):
        parse_routes("{", "ann")


def test_only_edges_within_a_group_with_a_map_go_on_the_chip() -> None:
    _, _, plan, placement = _setup()
    g0 = placement.group_of("s0")
    assert g0 is not None
    assert set(g0.stages) == {"s0", "s1"}
    maps = {("s0", "s1"): "0:0:3", ("s1", "s2"): "0:0:1"}  # s2 is in another group
    assert on_chip_edges(plan, placement, maps) == [("s0", "s1")]
    assert on_chip_edges(plan, placement, {}) == []  # no map known: sockets
    too_big = {("s0", "s1"): "0:0:1 " * (MAX_ROUTES_CHARS // 6)}
    assert on_chip_edges(plan, placement, too_big) == []
    assert peers_on_chip("s1", [("s0", "s1")]) == ["s0"]
    [r] = group_routes(g0, [("s0", "s1")], maps, 80)
    assert r == RouteEntry("s0", "s1", "0:0:3", 80)


def test_the_group_claim_carries_its_routes_and_its_pods_go_on_chip() -> None:
    obj, spec, plan, placement = _setup()
    maps = {("s0", "s1"): "0:0:3 7:3:1", ("s1", "s2"): "0:0:1"}
    d = decide(obj, spec, plan, placement, Observed(), SETTINGS, maps)
    claims = {c["metadata"]["name"]: c for c in _created(d, "ResourceClaim")}
    routes = parse_routes(claims["digits-g0"]["metadata"]["annotations"][ROUTES_ANNOTATION], "a")
    lookahead = objects.LOOKAHEAD_WINDOWS * spec.window
    assert routes == (RouteEntry("s0", "s1", "0:0:3 7:3:1", lookahead),)
    assert "annotations" not in claims["digits-g1"]["metadata"]
    # The routed group asks for its chip's router, held to the stages' chip: its binding
    # conditions keep the pods from binding until the plugin has programmed the route.
    devices = claims["digits-g0"]["spec"]["devices"]
    router = {r["name"]: r for r in devices["requests"]}[objects.ROUTER_REQUEST]
    assert router["exactly"] == {"deviceClassName": "darwin-router.snn.io"}
    [constraint] = devices["constraints"]
    assert constraint["requests"] == [*placement.group_of("s0").stages, objects.ROUTER_REQUEST]
    assert constraint["matchAttribute"] == "darwin.snn.io/chip"
    unrouted = claims["digits-g1"]["spec"]["devices"]["requests"]
    assert objects.ROUTER_REQUEST not in {r["name"] for r in unrouted}
    # Downstream first, as ever (an on-chip downstream too, so that one going away is seen);
    # s1 sends to s2 (another chip) over TCP and to nobody on the chip.
    pods = {p["metadata"]["name"]: p for p in _created(d, "Pod")}
    assert list(pods) == ["digits-output"]
    running = [_run(pods["digits-output"], "10.0.0.9", "node-1")]
    made = []
    for _ in range(4):
        d = decide(obj, spec, plan, placement, Observed(claims.values(), running), SETTINGS, maps)
        [pod] = _created(d, "Pod")
        made.append(pod["metadata"]["name"])
        running.append(_run(pod, f"10.0.0.{len(running)}", "node-0"))
    assert made == ["digits-s2", "digits-s1", "digits-s0", "digits-input"]
    cmd = {p["metadata"]["name"]: p["spec"]["containers"][0]["command"] for p in running}
    s0, s1 = cmd["digits-s0"], cmd["digits-s1"]
    assert "--downstream" not in s0
    assert s0[s0.index("--on-chip") + 1] == "s1"
    assert s0[s0.index("--lookahead") + 1] == str(objects.LOOKAHEAD_WINDOWS)
    assert s1[s1.index("--on-chip") + 1] == "s0"
    assert "--listen" not in s1  # nothing reaches it over a socket
    assert s1[s1.index("--downstream") + 1] == "s2=tcp://10.0.0.1:7700"
    s1_pod = next(p for p in running if p["metadata"]["name"] == "digits-s1")
    assert {p["name"] for p in s1_pod["spec"]["containers"][0]["ports"]} == {"metrics"}
    # Every pod running: nothing to do, no restart.
    d = decide(obj, spec, plan, placement, Observed(claims.values(), running), SETTINGS, maps)
    assert d.phase == "Running", d.message
    assert d.actions == []
    # The on-chip destination gone under its source: the run restarts.
    rest = [p for p in running if p is not s1_pod]
    d = decide(obj, spec, plan, placement, Observed(claims.values(), rest), SETTINGS, maps)
    assert d.phase == "Restarting"
    assert "stage s1 went away under stage s0" in d.message


def test_a_claim_with_other_routes_is_replaced() -> None:
    obj, spec, plan, placement = _setup()
    d = decide(obj, spec, plan, placement, Observed(), SETTINGS)  # no maps: no routes
    claims = _created(d, "ResourceClaim")
    d = decide(obj, spec, plan, placement, Observed(claims), SETTINGS, {("s0", "s1"): "0:0:1"})
    assert [(a.verb, a.name, a.why) for a in d.actions if a.kind == "ResourceClaim"] == [
        ("delete", "digits-g0", "its routes changed")
    ]
