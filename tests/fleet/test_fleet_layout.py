"""The generated fleet: inventory round trip, mixed models, chips the builder accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.engine import Engine
from darwin_dra.fleet.catalogue import darwin_catalogue, plain_catalogue
from darwin_dra.fleet.layout import (
    FleetShape,
    chip_views,
    fleet_inventory,
    inventory_yaml,
    plain_slices,
)
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.limits import check_limits
from darwin_dra.resources.slices import build_slices

PROFILES = load_profiles()


def test_inventory_mixes_models_and_fabrics_and_reads_back(tmp_path: Path) -> None:
    inv = fleet_inventory(FleetShape(nodes=6))
    models = {n.name: [c.model for c in n.chips] for n in inv.nodes}
    assert models["fleet-node-0"] == ["darwin3", "darwin3"] + ["darwin3-fastroute"] * 2
    assert models["fleet-node-1"] == ["darwin3"] * 4
    fabrics = {c.fabric for n in inv.nodes for c in n.chips}
    assert {"wafer-0", "wafer-2", "board-0", "board-5"} <= fabrics
    # Nodes 0 and 1 share a wafer: a fabric that spans nodes.
    assert inv.nodes[0].chips[0].fabric == inv.nodes[1].chips[0].fabric == "wafer-0"
    path = tmp_path / "fleet.yaml"
    path.write_text(inventory_yaml(inv))
    assert load_inventory(path, PROFILES).nodes == inv.nodes


@pytest.mark.parametrize("model", ["darwin3", "darwin3-fastroute"])
def test_simulated_chip_equals_what_the_engine_discovers(model: str) -> None:
    inv = fleet_inventory(FleetShape(nodes=1, fast_chips=2))
    node = inv.nodes[0].name
    views = chip_views(inv, PROFILES, node)
    with Engine.for_node(inv, PROFILES, node) as engine:
        discovered = [ChipView.from_info(i, PROFILES[i.model]) for i in engine.chips()]
    pairs = [(v, d) for v, d in zip(views, discovered, strict=True) if v.model == model]
    assert pairs
    for view, found in pairs:
        assert view == found


def test_fastroute_has_fewer_cores_and_a_stronger_router() -> None:
    fast, base = PROFILES["darwin3-fastroute"], PROFILES["darwin3"]
    assert fast.n_cores < base.n_cores
    assert fast.router_events_per_s > base.router_events_per_s
    assert any("ASSUMED" in s for s in fast.sources)


def test_every_node_of_the_fleet_builds_valid_slices() -> None:
    inv = fleet_inventory(FleetShape(nodes=4))
    for node in inv.nodes:
        views = chip_views(inv, PROFILES, node.name)
        slices = build_slices(node.name, views)
        check_limits(slices)
        fast = [
            d
            for s in slices
            for d in s["spec"].get("devices", [])
            if d["attributes"]["model"]["string"] == "darwin3-fastroute"
            and d["attributes"]["partition"]["string"] == "chip"
        ]
        assert all(d["attributes"]["maxMeps"]["int"] == 2_000_000 for d in fast)
        plain = plain_slices(node.name, views)
        assert [d["name"] for d in plain[0]["spec"]["devices"]] == [f"chip-{i}" for i in range(4)]
        assert all("consumesCounters" not in d and "capacity" not in d
                   for d in plain[0]["spec"]["devices"])  # fmt: skip


def test_catalogues_describe_every_published_device() -> None:
    inv = fleet_inventory(FleetShape(nodes=2))
    fleet = {n.name: chip_views(inv, PROFILES, n.name) for n in inv.nodes}
    dar, plain = darwin_catalogue(fleet), plain_catalogue(fleet)
    assert dar.total_cores == plain.total_cores == (2 * 575 + 2 * 255) + 4 * 575
    assert dar.total_cores == sum(c.n_cores for v in fleet.values() for c in v)
    assert dar.device("fleet-node-0", "chip-3").model == "darwin3-fastroute"
    assert dar.device("fleet-node-0", "chip-0-quad-4").cores == 64
    assert plain.device("fleet-node-1", "chip-2").cores == 575
    with pytest.raises(KeyError, match="fleet-node-9/chip-0"):
        dar.device("fleet-node-9", "chip-0")
