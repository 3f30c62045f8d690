"""`darwin-dra status` arithmetic on the builder's own slices and hand-made allocations."""

from __future__ import annotations

from typing import Any

from darwin_dra.fleet.layout import FleetShape, chip_views, fleet_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import Health
from darwin_dra.resources.slices import build_slices
from darwin_dra.status.usage import human, node_usage

INV = fleet_inventory(FleetShape(nodes=1))
NODE = INV.nodes[0].name
VIEWS = chip_views(INV, load_profiles(), NODE)


def claim(*results: dict[str, Any]) -> dict[str, Any]:
    full = [{"driver": "darwin.snn.io", "pool": NODE, "request": "r", **r} for r in results]
    return {"status": {"allocation": {"devices": {"results": full}}}}


def node(ready: str = "True", taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": NODE},
        "spec": {"taints": taints or []},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def test_free_and_taken_partitions_and_keps() -> None:
    slices = build_slices(NODE, VIEWS)
    claims = [
        claim({"device": "chip-0-domain-0"}),  # in quad 0 and half 0
        claim({"device": "chip-0-quad-8"}),  # domains 28, 29, 34, 35: half 1
        claim(
            {"device": "chip-1-shared-1", "shareID": "a", "consumedCapacity": {"keps": "20M"}},
            {"device": "chip-1-shared-1", "shareID": "b", "consumedCapacity": {"keps": "5M"}},
        ),
        claim({"device": "chip-3"}),
    ]
    (usage,) = node_usage([node()], slices, claims)
    assert usage.ready == "True"
    c0, c1, c2, c3 = usage.chips
    assert (c0.model, c3.model) == ("darwin3", "darwin3-fastroute")
    assert c0.taken == {"domain": 1, "quad": 1, "half": 0, "chip": 0}
    assert c0.free["domain"] == 36 - 1 - 4
    assert c0.free["quad"] == 9 - 2  # quad 0 has domain 0; quad 8 is taken
    assert (c0.free["half"], c0.free["chip"]) == (0, 0)
    assert c0.keps_total == 10**9
    # Exclusive partitions use their router share: 15 + 64 of the chip's 575 cores.
    assert c0.keps_used == 10**9 * 15 // 575 + (10**9 * 575 // 575 - 10**9 * 511 // 575)
    # Shares: counted, their keps used; the half they sit on has no free exclusive partition.
    assert (c1.shares, c1.keps_used) == (2, 25_000_000)
    assert (c1.free["half"], c1.free["domain"]) == (1, 18)
    assert c2.free == {"domain": 16, "quad": 4, "half": 2, "chip": 1}  # a fastroute chip
    assert c3.taken["chip"] == 1
    assert c3.free == {"domain": 0, "quad": 0, "half": 0, "chip": 0}
    assert c3.keps_used == c3.keps_total == 2 * 10**9
    assert c3.keps_free == 0


def test_health_and_node_taints() -> None:
    views = list(VIEWS)
    from dataclasses import replace

    views[1] = replace(views[1], health=Health.DEGRADED)
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}
    (usage,) = node_usage([node("Unknown", [taint])], build_slices(NODE, views), [])
    assert usage.ready == "Unknown"
    assert usage.taints == ["node.kubernetes.io/unreachable:NoSchedule"]
    assert usage.chips[1].health == "50 degraded"
    assert usage.chips[0].health == "healthy"


def test_human_units() -> None:
    assert (human(10**9), human(27_826_000), human(250_000), human(12)) == (
        "1 G",
        "27.8 M",
        "250 k",
        "12",
    )


def test_capacity_layout_counts_domains_grants_and_keps() -> None:
    from darwin_dra.resources.partitions import CAPACITY_PARTITIONS
    from darwin_dra.resources.slices import SliceLayout
    from darwin_dra.status.view import render
    from rich.console import Console

    layout = SliceLayout(partitions=CAPACITY_PARTITIONS)
    grant = lambda domains, keps: {  # noqa: E731
        "device": "chip-0-capacity",
        "shareID": f"g{domains}",
        "consumedCapacity": {"domains": str(domains), "keps": keps},
    }
    claims = [claim(grant(2, "50M")), claim(grant(4, "100M"))]
    (usage,) = node_usage([node()], build_slices(NODE, VIEWS, layout=layout), claims)
    c0, c1, _, c3 = usage.chips
    assert (c0.layout, c0.shares) == ("capacity", 2)
    assert (c0.free["domain"], c0.taken["domain"], c0.total["domain"]) == (30, 6, 36)
    assert (c0.keps_used, c0.keps_total) == (150_000_000, 10**9)
    assert (c0.free["chip"], c1.free["chip"]) == (0, 1)
    assert (c3.total["domain"], c3.keps_free) == (16, 2 * 10**9)
    console = Console(width=250, record=True)
    console.print(render([usage]))
    row = next(line for line in console.export_text().splitlines() if "30/6/36" in line)
    assert "(capacity)" in row
    assert "150 M" in row
