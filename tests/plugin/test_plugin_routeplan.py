"""The plugin's reading of a claim's routes (plugin/routeplan.py, pure): which routes a claim
may have on this node, the checkpoint's record of them, the chip host's request."""

from __future__ import annotations

import pytest
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.pipeline.chiproutes import ROUTES_ANNOTATION, RouteEntry, routes_annotation
from darwin_dra.plugin.config import PartitionConfig
from darwin_dra.plugin.plan import ClaimError, plan_claim
from darwin_dra.plugin.records import ClaimPlan, DeviceIntent, Prepared
from darwin_dra.plugin.routeplan import route_spec, status_routes
from darwin_dra.resources.chips import ChipView

from tests.plugin.claims import claim, result

NODE = "node-a"
CHIPS = {
    i: ChipView.nominal(i, ChipEntry("darwin3", f"T-{i}", "f0"), load_profiles()["darwin3"])
    for i in range(2)
}


def _claim(devices: list[tuple[str, str]], *routes: RouteEntry) -> dict:
    body = claim("u1", [result(d, NODE, r) for r, d in devices])
    body["metadata"]["annotations"] = {ROUTES_ANNOTATION: routes_annotation(routes)}
    return body


def test_the_routes_go_into_the_plan_and_back_out_of_the_checkpoint() -> None:
    route = RouteEntry("s0", "s1", "3:0:4", 12)
    body = _claim([("s0", "chip-1-domain-0"), ("s1", "chip-1-domain-1")], route)
    plan = plan_claim(body, "u1", NODE, CHIPS)
    assert plan.routes == (route,)
    assert ClaimPlan.from_intent("u1", "ns", "c-u1", plan.intent()) == plan
    spec = route_spec("u1", route, {"s0": 7, "s1": 9})
    assert (spec.name, spec.src, spec.dst, spec.lookahead) == ("u1/s0->s1", 7, 9, 12)
    assert spec.src_neurons.tolist() == [3, 4, 5, 6]
    assert spec.dst_inputs.tolist() == [0, 1, 2, 3]


def test_a_claim_without_routes_keeps_the_checkpoint_form_it_had() -> None:
    body = claim("u1", [result("chip-0-domain-0", NODE, "s0")])
    plan = plan_claim(body, "u1", NODE, CHIPS)
    assert plan.routes == ()
    assert "routes" not in plan.intent()


@pytest.mark.parametrize(
    ("devices", "route", "words"),
    [
        ([("s0", "chip-0-domain-0")], ("s0", "s1"),
         "its destination request 's1' has no device allocated on this node"),
        ([("s1", "chip-0-domain-0")], ("s0", "s1"),
         "its source request 's0' has no device allocated on this node"),
    ],
)  # fmt: skip
def test_a_route_the_claim_cannot_have_is_refused_by_name(
    devices: list[tuple[str, str]], route: tuple[str, str], words: str
) -> None:
    body = _claim(devices, RouteEntry(*route, "0:0:1", 4))
    with pytest.raises(ClaimError, match=f"ResourceClaim ns/c-u1: route {route[0]}->{route[1]}"):
        plan_claim(body, "u1", NODE, CHIPS)
    with pytest.raises(ClaimError, match=words):
        plan_claim(body, "u1", NODE, CHIPS)


def test_a_route_given_twice_is_refused() -> None:
    r = RouteEntry("s0", "s1", "0:0:1", 4)
    body = _claim([("s0", "chip-0-domain-0"), ("s1", "chip-0-domain-1")], r, r)
    with pytest.raises(ClaimError, match="route s0->s1: given twice"):
        plan_claim(body, "u1", NODE, CHIPS)


def test_a_devices_condition_tells_its_chips_router_from_the_fabric_link() -> None:
    # s0 and s1 on chip 0, s2 on chip 1 of the same fabric (a claim joined over a fabric).
    def prepared(request: str, chip: int) -> Prepared:
        device = f"chip-{chip}-domain-{len(request)}"
        intent = DeviceIntent(request, device, chip, (1,), False, 0, None, PartitionConfig())
        return Prepared(intent, 1, (4,))

    routes = (RouteEntry("s0", "s1", "0:0:4", 2), RouteEntry("s1", "s2", "0:0:4", 2))
    s1 = prepared("s1", 0)
    chip_of = {"s0": 0, "s1": 0, "s2": 1}
    data, cond = status_routes("u", routes, s1, chip_of)
    assert cond is not None
    assert cond["message"] == (
        "on chip 0's router: s0->s1 (4 pairs); over the fabric link: s1->s2 (4 pairs) to chip 1"
    )
    assert [d.get("peerChip") for d in data] == [None, 1]
    _, cond = status_routes("u", routes, prepared("s2", 1), chip_of)
    assert cond is not None
    assert cond["message"] == "over the fabric link: s1->s2 (4 pairs) from chip 0"
    # Without the claim's chips (a caller that does not know them) every route is the router's.
    _, cond = status_routes("u", routes[:1], s1)
    assert cond is not None
    assert cond["message"] == "on chip 0's router: s0->s1 (4 pairs)"
