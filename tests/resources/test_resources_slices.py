"""ResourceSlice bodies: golden files, counter arithmetic, taints, priority order, API limits.

Set DARWIN_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then review
the diff.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from darwin_dra.hardware.model import ChipInfo, ChipProfile, DomainInfo
from darwin_dra.resources.chips import ChipView, DomainView, Health
from darwin_dra.resources.limits import SliceLimitError, check_limits
from darwin_dra.resources.partitions import device_taints
from darwin_dra.resources.slices import build_slices, node_owner

GOLDEN = Path(__file__).parent / "golden"

PROFILE = ChipProfile(
    model="darwin3",
    mesh_w=24,
    mesh_h=24,
    domain_w=4,
    domain_h=4,
    controller_x=0,
    controller_y=0,
    neurons_per_core=4096,
    synapses_per_chip=100_000_000,
    core_queue_events=4096,
    router_events_per_s=1.0e9,
    energy_pj_per_op=4.9,
    fabric_events_per_s=1.0e10,
    max_fan_in=4096,
    max_fan_out=3072,
    on_chip_learning=True,
    sparse_routing=True,
)


def chip_info(
    chip: int,
    failed: dict[int, int] | None = None,
    dead: set[int] | None = None,
    healthy: bool = True,
    failed_links: int = 0,
) -> ChipInfo:
    failed = failed or {}
    dead = dead or set()
    domains = []
    for d in range(36):
        x0, y0 = (d % 6) * 4, (d // 6) * 4
        cores = 15 if d == 0 else 16  # the controller tile sits in domain 0
        domains.append(
            DomainInfo(d, x0, y0, x0 + 3, y0 + 3, cores, failed.get(d, 0), d not in dead)
        )
    return ChipInfo(
        id=chip,
        model="darwin3",
        serial=f"D3-{chip:04d}",
        fabric="board-0",
        numa_node=chip % 2,
        mesh_w=24,
        mesh_h=24,
        n_domains=36,
        n_cores=575,
        neurons_per_core=4096,
        synapses_per_chip=100_000_000,
        router_events_per_s=1.0e9,
        energy_pj_per_op=4.9,
        failed_cores=sum(failed.values()),
        failed_links=failed_links,
        healthy=healthy,
        domains=tuple(domains),
        pcie_root=f"pci0000:{chip:02x}",
        firmware="1.4.2",
    )


def view(info: ChipInfo) -> ChipView:
    return ChipView.from_info(info, PROFILE)


def check_golden(name: str, slices: list[dict[str, Any]]) -> None:
    path = GOLDEN / name
    text = json.dumps(slices, indent=1, sort_keys=True) + "\n"
    if os.environ.get("DARWIN_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with DARWIN_UPDATE_GOLDEN=1 and review"
    assert text == path.read_text(), f"{name} differs from the golden file"


def test_golden_one_chip() -> None:
    check_golden("one-chip.json", build_slices("node-a", [view(chip_info(0))]))


def test_slices_are_owned_by_their_node_when_its_uid_is_known() -> None:
    owner = node_owner("node-a", "6c1d")
    owned = build_slices("node-a", [view(chip_info(0)), view(chip_info(1))], owner=owner)
    assert [s["metadata"]["ownerReferences"] for s in owned] == [[owner]] * len(owned)
    assert owner == {
        "apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "6c1d", "controller": True
    }  # fmt: skip
    # Otherwise the same slices, and without an owner no reference at all.
    plain = build_slices("node-a", [view(chip_info(0)), view(chip_info(1))])
    assert all("ownerReferences" not in s["metadata"] for s in plain)
    for s in owned:
        del s["metadata"]["ownerReferences"]
    assert owned == plain


def test_golden_two_chips_one_degraded() -> None:
    chips = [view(chip_info(0, failed={7: 2}, dead={20})), view(chip_info(1))]
    slices = build_slices("node-b", chips, generation=3, measured_keps={1: 912_345})
    check_golden("two-chips.json", slices)


def devices_of(slices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for s in slices for d in s["spec"].get("devices", [])}


def counter_sets_of(slices: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {
        cs["name"]: {k: int(v["value"]) for k, v in cs["counters"].items()}
        for s in slices
        for cs in s["spec"].get("sharedCounters", [])
    }


def consumed(device: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {
        (c["counterSet"], k): int(v["value"])
        for c in device.get("consumesCounters", [])  # a router consumes none
        for k, v in c["counters"].items()
    }


def test_device_inventory_per_chip() -> None:
    slices = build_slices("n", [view(chip_info(0))])
    names = list(devices_of(slices))
    assert names == (
        ["chip-0-shared-0", "chip-0-shared-1"]
        + [f"chip-0-domain-{d}" for d in range(36)]
        + [f"chip-0-quad-{q}" for q in range(9)]
        + ["chip-0-half-0", "chip-0-half-1", "chip-0"]
        + [f"chip-0-router-{r}" for r in range(4)]  # for the shared devices' pipelines
    )


def test_counters_cover_every_partition_exactly() -> None:
    slices = build_slices("n", [view(chip_info(0))])
    sets = counter_sets_of(slices)
    assert set(sets) == {"chip-0-top", "chip-0-bottom"}
    top, bottom = sets["chip-0-top"], sets["chip-0-bottom"]
    assert [top[f"d{i}"] for i in range(18)] == [15] + [16] * 17
    assert [bottom[f"d{i}"] for i in range(18)] == [16] * 18
    assert top["neurons"] == 287 * 4096
    assert bottom["neurons"] == 288 * 4096
    devices = devices_of(slices)
    whole = consumed(devices["chip-0"])
    # The whole chip takes every counter of both halves: nothing can be allocated beside it.
    assert whole == {(name, k): v for name, cs in sets.items() for k, v in cs.items()}
    # The domains add up to the chip on every counter: budgets are split without loss.
    total: Counter[tuple[str, str]] = Counter()
    for d in range(36):
        total.update(consumed(devices[f"chip-0-domain-{d}"]))
    assert dict(total) == whole
    for q in range(9):
        quad = consumed(devices[f"chip-0-quad-{q}"])
        sets_used = {s for s, _ in quad}
        # Quads 3..5 sit on rows 2 and 3, across the halves.
        assert len(sets_used) == (2 if 3 <= q <= 5 else 1)
        assert sum(v for (s, k), v in quad.items() if re.fullmatch(r"d\d+", k)) == (
            63 if q == 0 else 64
        )
    assert consumed(devices["chip-0-half-1"]) == {
        ("chip-0-bottom", k): v for k, v in bottom.items()
    }
    assert consumed(devices["chip-0-shared-0"]) == {("chip-0-top", k): v for k, v in top.items()}


def test_quad_geometry() -> None:
    devices = devices_of(build_slices("n", [view(chip_info(0))]))
    q4 = devices["chip-0-quad-4"]
    assert (q4["attributes"]["meshX"], q4["attributes"]["meshY"]) == ({"int": 8}, {"int": 8})
    assert {k for _, k in consumed(q4) if k.startswith("d")} == {"d14", "d15", "d2", "d3"}


def test_shared_devices_use_consumable_capacity() -> None:
    devices = devices_of(build_slices("n", [view(chip_info(0))]))
    shared = devices["chip-0-shared-1"]
    assert shared["allowMultipleAllocations"] is True
    keps = shared["capacity"]["keps"]
    assert keps["requestPolicy"]["validRange"] == {"min": "10", "step": "10"}
    assert keps["value"] == str(1_000_000 - 1_000_000 * 287 // 575)
    neurons = shared["capacity"]["neurons"]["requestPolicy"]["validRange"]
    assert neurons == {"min": "4096", "step": "4096"}
    for name, dev in devices.items():
        if name.startswith("chip-0-router-"):
            # One routed claim each (not shared: see partitions.ROUTERS_PER_CHIP), nothing
            # to consume.
            assert "allowMultipleAllocations" not in dev
            assert "capacity" not in dev
            assert "consumesCounters" not in dev
            assert dev["bindingConditions"] == ["RoutesProgrammed"]
            assert dev["bindingFailureConditions"] == ["RoutesFailed"]
            assert dev["attributes"]["partition"] == {"string": "router"}
            assert dev["attributes"]["chip"] == {"int": 0}
        elif "shared" not in name:
            assert "allowMultipleAllocations" not in dev
            assert all("requestPolicy" not in c for c in dev["capacity"].values())


def test_measured_keps_replace_nominal() -> None:
    nominal = devices_of(build_slices("n", [view(chip_info(0))]))["chip-0"]
    measured = devices_of(build_slices("n", [view(chip_info(0))], measured_keps={0: 575_000}))[
        "chip-0"
    ]
    assert nominal["attributes"]["kepsSource"] == {"string": "nominal"}
    assert nominal["capacity"]["keps"] == {"value": "1000000"}
    assert measured["attributes"]["kepsSource"] == {"string": "measured"}
    assert measured["capacity"]["keps"] == {"value": "575000"}
    assert measured["attributes"]["maxMeps"] == {"int": 575}


def test_taints_pure_function() -> None:
    chip = view(chip_info(0, failed={7: 2}, dead={20}))
    assert device_taints(chip, [0, 1]) == []
    assert device_taints(chip, [7]) == [
        {"key": "darwin.snn.io/unhealthy", "value": "degraded", "effect": "NoSchedule"}
    ]
    assert device_taints(chip, [7, 20]) == [
        {"key": "darwin.snn.io/unhealthy", "value": "failed", "effect": "NoExecute"}
    ]
    dead_chip = view(chip_info(0, healthy=False))
    assert device_taints(dead_chip, [0])[0]["effect"] == "NoExecute"
    flaky_links = view(chip_info(0, failed_links=3))
    assert flaky_links.health is Health.DEGRADED
    assert device_taints(flaky_links, [0])[0]["effect"] == "NoSchedule"


def test_taints_land_on_every_overlapping_device() -> None:
    devices = devices_of(build_slices("n", [view(chip_info(0, dead={20}))]))
    tainted = {n for n, d in devices.items() if d.get("taints")}
    # Domain 20 is row 3, column 2: quad 4 (rows 2-3, cols 2-3), the bottom half, the chip.
    assert tainted == {
        "chip-0-domain-20",
        "chip-0-quad-4",
        "chip-0-half-1",
        "chip-0-shared-1",
        "chip-0",
    }
    assert devices["chip-0"]["attributes"]["healthy"] == {"bool": False}
    assert devices["chip-0-domain-19"]["attributes"]["healthy"] == {"bool": True}


def test_priority_order_puts_healthy_chips_first() -> None:
    chips = [
        view(chip_info(0, healthy=False)),
        view(chip_info(1, failed={3: 1})),
        view(chip_info(2)),
    ]
    slices = build_slices("n", chips)
    device_slices = [s for s in slices if "devices" in s["spec"]]
    firsts = [s["spec"]["devices"][0]["name"] for s in device_slices]
    assert firsts == ["chip-2-shared-0", "chip-1-shared-0", "chip-0-shared-0"]
    names = [s["metadata"]["name"] for s in slices]
    assert names == sorted(names)
    assert names[0] == "n-darwin-a-counters-00"


def test_sixteen_chips_stay_within_limits() -> None:
    chips = [view(chip_info(c, failed={c % 36: 1} if c % 3 == 0 else None)) for c in range(16)]
    slices = build_slices("big-node", chips, generation=7)
    check_limits(slices)
    counter_slices = [s for s in slices if "sharedCounters" in s["spec"]]
    device_slices = [s for s in slices if "devices" in s["spec"]]
    assert len(counter_slices) == 4
    assert len(device_slices) == 16
    for s in slices:
        pool = s["spec"]["pool"]
        assert pool == {"name": "big-node", "generation": 7, "resourceSliceCount": 20}
        assert s["spec"]["nodeName"] == "big-node"
        assert s["spec"]["driver"] == "darwin.snn.io"
        assert len(s["spec"].get("sharedCounters", [])) <= 8
        assert len(s["spec"].get("devices", [])) <= 64
    for dev in devices_of(slices).values():
        assert len(dev["attributes"]) + len(dev.get("capacity", {})) <= 32
        assert len(dev.get("consumesCounters", [])) <= 2
        for name in dev["attributes"]:
            assert re.fullmatch(r"([a-z0-9.-]+/)?[A-Za-z_][A-Za-z0-9_]*", name), name
    # Every counter a device consumes exists in a published set, with enough in it.
    sets = counter_sets_of(slices)
    for dev in devices_of(slices).values():
        for (set_name, key), value in consumed(dev).items():
            assert value <= sets[set_name][key]


def _mutated(change: Any) -> list[dict[str, Any]]:
    slices = copy.deepcopy(build_slices("n", [view(chip_info(0))]))
    change(slices)
    return slices


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s[1]["spec"].update(sharedCounters=[{"name": "x", "counters": {}}]),
            "both devices and sharedCounters",
        ),
        (
            lambda s: s[1]["spec"]["devices"].extend(copy.deepcopy(s[1]["spec"]["devices"][:15])),
            "devices > 64",
        ),
        (
            lambda s: s[1]["spec"]["devices"][0]["attributes"].update(
                {f"extra{i}": {"int": i} for i in range(11)}
            ),
            "attributes \\+ capacities > 32",
        ),
        (
            lambda s: s[0]["spec"]["sharedCounters"].extend(
                [{"name": f"x{i}", "counters": {}} for i in range(7)]
            ),
            "counter sets > 8",
        ),
        (
            lambda s: s[0]["spec"]["sharedCounters"][0]["counters"].update(
                {f"e{i}": {"value": "1"} for i in range(12)}
            ),
            "more than 32 counters",
        ),
        (lambda s: s[1]["spec"]["pool"].update(resourceSliceCount=3), "resourceSliceCount"),
        (
            lambda s: s[1]["spec"]["devices"][0]["attributes"].update(serial={"string": "x" * 65}),
            "over 64 chars",
        ),
        (
            lambda s: s[1]["spec"]["devices"][0].pop("allowMultipleAllocations"),
            "requestPolicy needs allowMultipleAllocations",
        ),
        (lambda s: s[1]["spec"]["devices"][0].update(name="Chip_0"), "not a DNS label"),
        (lambda s: s.reverse(), "priority order"),
    ],
)
def test_limit_checker_catches_each_violation(change: Any, message: str) -> None:
    with pytest.raises(SliceLimitError, match=message):
        check_limits(_mutated(change))


def test_duplicate_chip_ids_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        build_slices("n", [view(chip_info(0)), view(chip_info(0))])


def test_plain_chip_view_needs_no_engine() -> None:
    chip = ChipView(
        chip=5, model="darwin3", serial="S", fabric="f",
        domains=tuple(DomainView(d, 16) for d in range(36)),
        domains_x=6, domains_y=6, domain_w=4, domain_h=4,
        neurons_per_core=4096, synapses_per_chip=1000, keps=3600,
        max_fan_in=1, max_fan_out=1, sparse_routing=False, on_chip_learning=False,
        firmware="rev-b",
    )  # fmt: skip
    dev = devices_of(build_slices("n", [chip]))["chip-5-domain-0"]
    assert dev["capacity"]["keps"] == {"value": "100"}
    assert dev["attributes"]["firmware"] == {"string": "rev-b"}  # not semver: a string
    assert "resource.kubernetes.io/pcieRoot" not in dev["attributes"]
