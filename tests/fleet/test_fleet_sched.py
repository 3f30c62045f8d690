"""The scheduler bench's pure parts: claims, layouts, percentiles, the table."""

from __future__ import annotations

import os

import pytest
from darwin_dra.fleet.layout import FleetShape, chip_views, fleet_inventory
from darwin_dra.fleet.schedbench import (
    GATE,
    LayoutResult,
    cpu_seconds,
    gated_pod,
    layout_slices,
    per_pod_ms,
    percentile,
    table,
)
from darwin_dra.fleet.schedclaims import capacity_claim, darwin_claim
from darwin_dra.hardware.profiles import load_profiles

INV = fleet_inventory(FleetShape(nodes=1))
VIEWS = chip_views(INV, load_profiles(), INV.nodes[0].name)


def devices(layout: str) -> int:
    return sum(len(s["spec"].get("devices", [])) for s in layout_slices(layout, "n", VIEWS))


def test_layouts_cost_different_device_counts() -> None:
    assert (devices("darwin"), devices("light"), devices("capacity"), devices("plain")) == (
        166,  # the partitions and 4 routers a chip (16 in all)
        62,
        4,
        4,
    )


def test_capacity_claims_ask_domains_and_keps_of_one_device() -> None:
    quad = capacity_claim("quad")["devices"]["requests"][0]["exactly"]
    assert quad["deviceClassName"] == "darwin-capacity.snn.io"
    assert quad["capacity"]["requests"] == {"domains": "4", "keps": "100000000"}
    assert "maxMeps >= 100000" in quad["selectors"][0]["cel"]["expression"]
    assert "selectors" not in capacity_claim("domains")["devices"]["requests"][0]["exactly"]
    with pytest.raises(ValueError, match="unknown claim kind"):
        capacity_claim("gpu")


def test_claims_and_gated_pods() -> None:
    two = darwin_claim("domains")["devices"]
    assert two["constraints"] == [{"requests": ["domains"], "matchAttribute": "darwin.snn.io/chip"}]
    assert darwin_claim("quad")["devices"]["requests"][0]["exactly"]["deviceClassName"] == (
        "darwin.snn.io"
    )
    share = darwin_claim("share")["devices"]["requests"][0]["exactly"]
    assert share["capacity"]["requests"]["keps"] == "10000000"
    with pytest.raises(ValueError, match="unknown claim kind"):
        darwin_claim("gpu")
    pod = gated_pod("p-1", "t")
    assert pod["spec"]["schedulingGates"] == [{"name": GATE}]
    assert pod["spec"]["resourceClaims"] == [{"name": "devices", "resourceClaimTemplateName": "t"}]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([3.0], 99) == 3.0


def test_table_divides_by_the_plain_rate_of_the_same_node_count() -> None:
    def r(layout: str, rate: float) -> LayoutResult:
        return LayoutResult(layout, 500, 1, 1, 10, 10, rate, 0.1, 0.2, 100.0, 1.0)

    text = table([r("darwin", 30.0), r("plain", 60.0)])
    darwin_row = next(line for line in text.splitlines() if "darwin" in line)
    assert "0.50" in darwin_row


def test_cpu_seconds_reads_user_and_system_time_past_a_spaced_command_name() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    rest = " ".join(["0"] * 10 + [str(3 * ticks), str(ticks)] + ["0"] * 30)
    assert cpu_seconds(f"42 (kube scheduler) S {rest}") == 4.0


def test_plane_cpu_is_split_by_process_per_bound_pod_and_printed_before_the_scheduler() -> None:
    before = {
        "kube-apiserver": 10.0,
        "etcd": 2.0,
        "kube-controller-manager": 1.0,
        "kube-scheduler": 5.0,
    }
    after = {
        "kube-apiserver": 13.0,
        "etcd": 3.0,
        "kube-controller-manager": 1.5,
        "kube-scheduler": 5.5,
    }
    split = per_pod_ms(before, after, 100)
    assert split == pytest.approx(
        {
            "kube-apiserver": 30.0,
            "etcd": 10.0,
            "kube-controller-manager": 5.0,
            "kube-scheduler": 5.0,
        }
    )
    assert all(v != v for v in per_pod_ms(before, after, 0).values())  # NaN: nothing bound
    r = LayoutResult(
        "capacity",
        500,
        1,
        1,
        100,
        100,
        10.0,
        0.1,
        0.2,
        100.0,
        1.0,
        cpu_ms_per_pod=5.0,
        plane_cpu_ms_per_pod=50.0,
        plane_split=split,
    )
    head, _, row = table([r]).splitlines()
    assert head.endswith(
        "api CPU ms/pod  etcd CPU ms/pod  kcm CPU ms/pod  sched CPU ms/pod  plane CPU ms/pod"
    )
    assert row.split()[-5:] == ["30", "10", "5", "5", "50"]
