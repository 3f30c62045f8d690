"""The fabric device follows the chips' fabric faults: the controller reads each chip's working
``fabricLinks`` from the node slices the plugins publish (the real builders here) and derives
the fabric device's links and bandwidth from them (pure); reconcile writes the change with the
next pool generation and, once the fault is cleared, the healthy device again."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from darwin_dra.controller.reconcile import reconcile_once
from darwin_dra.hardware.model import ChipEntry, Inventory, NodeEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubetypes import Obj
from darwin_dra.quantity import quantity_or_none
from darwin_dra.resources.chips import fabric_neighbours, nominal_views
from darwin_dra.resources.fabric import (
    FabricSettings,
    FabricsOf,
    nominal_links,
    published_links,
)
from darwin_dra.resources.slices import build_slices
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.controller.test_controller_reconcile import FakeApi

PROFILES = load_profiles()
LINK_KEPS = int(PROFILES["darwin3"].fabric_events_per_s // 1000)  # one link, one direction


def _inventory(chips: dict[str, list[str]]) -> Inventory:
    """node -> the fabric of each of its chips, in order."""
    return Inventory(
        tuple(
            NodeEntry(n, tuple(ChipEntry("darwin3", f"{n}-{i}", f) for i, f in enumerate(fs)))
            for n, fs in chips.items()
        )
    )


def _node_slices(inv: Inventory, working: dict[tuple[str, int], int], gen: int = 1) -> list[Obj]:
    """What each node's plugin publishes: its chips' views with ``working`` fabric links
    where given (a fault), the grid's otherwise."""
    out: list[Obj] = []
    profile = PROFILES["darwin3"]
    for node in inv.nodes:
        views = [
            replace(
                v,
                fabric_links=working[(node.name, v.chip)],
                fabric_events_per_s=working[(node.name, v.chip)] * profile.fabric_events_per_s,
            )
            if (node.name, v.chip) in working
            else v
            for v in nominal_views(node.chips, PROFILES)
        ]
        out += build_slices(node.name, views, generation=gen)
    return out


def _device(slices: list[Obj], fabric: str) -> Obj:
    [s] = [s for s in slices if s["metadata"]["name"] == f"darwin-fabric-{fabric}"]
    dev: Obj = s["spec"]["devices"][0]
    return dev


def _keps(dev: Obj) -> int:
    q = quantity_or_none(dev["capacity"]["keps"]["value"])  # the server may write "10000k"
    assert q is not None
    return int(q)


def test_nominal_links_are_the_engine_grid_of_each_nodes_fabric() -> None:
    inv = _inventory({"a": ["w"] * 10 + ["b"], "c": ["w", "w"]})
    links = nominal_links(inv, PROFILES)
    assert [links[("a", i)] for i in range(10)] == [fabric_neighbours(i, 10, 8) for i in range(10)]
    assert links[("a", 10)] == 0  # alone on its board
    assert (links[("c", 0)], links[("c", 1)]) == (1, 1)


def test_a_healthy_fabric_device_is_the_one_published_before_faults_were_followed() -> None:
    inv = _inventory({"a": ["w", "w"], "b": ["w", "w", "w"]})
    of = FabricsOf(inv, FabricSettings(), PROFILES)
    dev = _device(of(_node_slices(inv, {})), "w")
    assert _keps(dev) == LINK_KEPS
    assert dev["attributes"]["fabricLinks"] == {"int": 2 + 4}  # 1 + 1, 1 + 2 + 1
    assert dev["attributes"]["failedFabricLinks"] == {"int": 0}
    assert of(()) == of(_node_slices(inv, {}))  # nothing published yet: taken as healthy


def test_a_chip_cut_off_takes_the_fabrics_bandwidth_and_clearing_restores_it() -> None:
    # The integration test's fabric: two chips of one node, a link each way.
    inv = _inventory({"n": ["w", "w"]})
    of = FabricsOf(inv, FabricSettings(), PROFILES)
    cut = _device(of(_node_slices(inv, {("n", 0): 0})), "w")
    assert _keps(cut) == 0
    assert cut["attributes"]["fabricLinks"] == {"int": 1}
    assert cut["attributes"]["failedFabricLinks"] == {"int": 1}
    assert "requestPolicy" not in cut["capacity"]["keps"]  # the API server refuses one over 0
    assert _keps(_device(of(_node_slices(inv, {})), "w")) == LINK_KEPS


def test_a_chip_with_a_link_left_scales_the_bandwidth_by_its_share() -> None:
    inv = _inventory({"n": ["w"] * 10})  # chip 1: west, east and south (chip 9)
    of = FabricsOf(inv, FabricSettings(keps=9000), PROFILES)
    dev = _device(of(_node_slices(inv, {("n", 1): 2})), "w")
    assert _keps(dev) == 6000  # 2 of its 3 links
    assert dev["attributes"]["failedFabricLinks"] == {"int": 1}


def test_only_the_newest_generation_of_a_pool_and_the_fewest_a_chip_says_count() -> None:
    inv = _inventory({"n": ["w", "w"]})
    old = _node_slices(inv, {("n", 0): 0}, gen=1)
    new = _node_slices(inv, {}, gen=2)
    assert published_links(old + new) == {("n", 0): 1, ("n", 1): 1}
    half = [*new, *_node_slices(inv, {("n", 1): 0}, gen=2)[-1:]]  # one slice written apart
    assert published_links(half)[("n", 1)] == 0
    other = [{**s, "spec": {**s["spec"], "driver": "other.io"}} for s in old]
    assert published_links(other) == {}


def test_reconcile_follows_a_fault_with_the_next_generation_and_back() -> None:
    inv = _inventory({"n1": ["w", "w"], "n2": ["w"]})
    of = FabricsOf(inv, FabricSettings(), PROFILES)
    api = FakeApi({"n1", "n2"})
    for s in _node_slices(inv, {}):
        api.slices[s["metadata"]["name"]] = s
    reconcile_once(api, None, of)
    assert reconcile_once(api, None, of) == []  # converged: no writes
    name = "darwin-fabric-w"
    assert api.slices[name]["spec"]["pool"]["generation"] == 1
    for s in _node_slices(inv, {("n1", 1): 0}, gen=2):  # the plugin republishes
        api.slices[s["metadata"]["name"]] = s
    [action] = reconcile_once(api, None, of)
    assert (action.verb, action.name) == ("update", name)
    assert api.slices[name]["spec"]["pool"]["generation"] == 2
    assert _keps(api.slices[name]["spec"]["devices"][0]) == 0
    for s in _node_slices(inv, {}, gen=3):
        api.slices[s["metadata"]["name"]] = s
    [action] = reconcile_once(api, None, of)
    assert api.slices[name]["spec"]["pool"]["generation"] == 3
    assert _keps(api.slices[name]["spec"]["devices"][0]) == LINK_KEPS


_fabric_chips = st.lists(st.sampled_from(["w", "x"]), min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(
    layout=st.dictionaries(st.sampled_from(["a", "b", "c"]), _fabric_chips, min_size=1),
    cuts=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 11), st.integers(0, 4))),
    keps=st.sampled_from([None, 1000, 4570]),
)
def test_the_fabric_device_against_a_reference(
    layout: dict[str, list[str]], cuts: list[tuple[int, int, int]], keps: int | None
) -> None:
    inv = _inventory(layout)
    nominal = nominal_links(inv, PROFILES)
    names = sorted(layout)
    working = {}
    for n, c, k in cuts:
        key = (names[n % len(names)], c % len(layout[names[n % len(names)]]))
        if nominal.get(key):
            working[key] = max(0, nominal[key] - k)
    settings_ = FabricSettings(keps=keps)
    devices = {
        s["spec"]["pool"]["name"]: s["spec"]["devices"][0]
        for s in FabricsOf(inv, settings_, PROFILES)(_node_slices(inv, working))
    }
    for fabric in {f for fs in layout.values() for f in fs}:
        chips = [k for k in nominal if inv.node(k[0]).chips[k[1]].fabric == fabric]
        up = {k: working.get(k, nominal[k]) for k in chips}
        share = min((Fraction(up[k], nominal[k]) for k in chips if nominal[k]), default=1)
        base = LINK_KEPS if keps is None else keps
        dev = devices[f"fabric-{fabric}"]
        want = base if share == 1 else int(base * share) // 10 * 10
        assert _keps(dev) == (want if want >= 20 or share == 1 else 0)
        assert _keps(dev) <= base
        assert ("requestPolicy" in dev["capacity"]["keps"]) == (_keps(dev) > 0)
        assert dev["attributes"]["fabricLinks"]["int"] == sum(up.values())
        failed = sum(nominal[k] - up[k] for k in chips)
        assert dev["attributes"]["failedFabricLinks"]["int"] == failed
        # one more link failed never gives the fabric more bandwidth
        more = next((k for k in chips if up[k]), None)
        if more is not None:
            worse = FabricsOf(inv, settings_, PROFILES)(
                _node_slices(inv, {**working, more: up[more] - 1})
            )
            assert _keps(_device(worse, fabric)) <= _keps(dev)
