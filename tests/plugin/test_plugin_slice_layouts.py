"""The slice layouts a plugin can publish (--partitions): full (default) and light."""

from __future__ import annotations

import pytest
from darwin_dra.cli.kubelet_plugin import options
from darwin_dra.cli.main import build_parser
from darwin_dra.fleet.layout import FleetShape, chip_views, fleet_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.limits import check_limits
from darwin_dra.resources.partitions import LIGHT_PARTITIONS, PARTITION_KINDS, parse_partitions
from darwin_dra.resources.slices import SliceLayout, build_slices

INV = fleet_inventory(FleetShape(nodes=1))
VIEWS = chip_views(INV, load_profiles(), INV.nodes[0].name)


def kinds(slices: list[dict[str, object]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in slices:
        for d in s["spec"].get("devices", []):  # type: ignore[index, union-attr, attr-defined]
            k = d["attributes"]["partition"]["string"]
            out[k] = out.get(k, 0) + 1
    return out


def test_light_layout_publishes_no_single_domains() -> None:
    full = build_slices("n", VIEWS)
    light = build_slices("n", VIEWS, layout=SliceLayout(partitions=LIGHT_PARTITIONS))
    check_limits(light)
    # Two darwin3 (36 domains, 9 quads) and two darwin3-fastroute (16 domains, 4 quads).
    full_kinds = {"domain": 104, "quad": 26, "half": 8, "chip": 4, "shared": 8, "router": 16}
    assert kinds(full) == full_kinds
    assert kinds(light) == {"quad": 26, "half": 8, "chip": 4, "shared": 8, "router": 16}
    # Same counters, so quads and halves still exclude each other exactly as before.
    assert [s for s in light if "sharedCounters" in s["spec"]] == [
        s for s in full if "sharedCounters" in s["spec"]
    ]


def test_partitions_are_parsed_and_bad_kinds_named() -> None:
    assert parse_partitions("full") == PARTITION_KINDS
    assert parse_partitions("light") == LIGHT_PARTITIONS
    assert parse_partitions("chip, domain") == ("domain", "chip")
    with pytest.raises(ValueError, match=r"unknown kind\(s\) \['tile'\]"):
        parse_partitions("domain,tile")
    with pytest.raises(ValueError, match="unknown kind"):
        parse_partitions(" , ")


def test_plugin_flag_reaches_the_options() -> None:
    args = build_parser().parse_args(
        ["kubelet-plugin", "--node-name", "n", "--partitions", "light"]
    )
    assert options(args).partitions == LIGHT_PARTITIONS
    args = build_parser().parse_args(["kubelet-plugin", "--node-name", "n"])
    assert options(args).partitions == PARTITION_KINDS


def test_capacity_layout_publishes_one_counted_device_a_chip_in_one_slice() -> None:
    import dataclasses

    from darwin_dra.resources.chips import DomainView, Health
    from darwin_dra.resources.partitions import CAPACITY_PARTITIONS

    layout = SliceLayout(partitions=CAPACITY_PARTITIONS)
    [only] = build_slices("n", VIEWS, layout=layout)
    check_limits([only])
    devices = only["spec"]["devices"]
    assert [d["name"] for d in devices] == [f"chip-{c}-capacity" for c in range(4)]
    assert all(d["allowMultipleAllocations"] for d in devices)
    assert not any("consumesCounters" in d for d in devices)
    assert [d["capacity"]["domains"]["value"] for d in devices] == ["36", "36", "16", "16"]
    # A hurt domain shrinks the capacity and taints nothing; a degraded chip is tainted.
    hurt = dataclasses.replace(
        VIEWS[0],
        domains=tuple(
            DomainView(d.index, d.cores, Health.FAILED if d.index == 3 else Health.OK)
            for d in VIEWS[0].domains
        ),
    )
    sick = dataclasses.replace(VIEWS[1], health=Health.DEGRADED)
    [again] = build_slices("n", [hurt, sick, *VIEWS[2:]], layout=layout)
    by_name = {d["name"]: d for d in again["spec"]["devices"]}
    assert by_name["chip-0-capacity"]["capacity"]["domains"]["value"] == "35"
    assert "taints" not in by_name["chip-0-capacity"]
    assert by_name["chip-1-capacity"]["taints"][0]["effect"] == "NoSchedule"
    # Healthy chips first: the degraded one is published last.
    assert list(by_name)[-1] == "chip-1-capacity"
    args = build_parser().parse_args(
        ["kubelet-plugin", "--node-name", "n", "--partitions", "capacity"]
    )
    assert options(args).partitions == CAPACITY_PARTITIONS
