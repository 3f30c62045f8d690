from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.model import ChipEntry, Inventory, NodeEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.fabric import (
    Fabric,
    FabricError,
    FabricSettings,
    fabric_slice,
    fabric_slices,
    fabrics,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "inventory.yaml"


def _inventory(*nodes: tuple[str, list[str]]) -> Inventory:
    return Inventory(
        nodes=tuple(
            NodeEntry(name, tuple(ChipEntry("darwin3", f"{name}-{i}", f) for i, f in enumerate(fs)))
            for name, fs in nodes
        )
    )


def test_example_inventory_gives_one_fabric_per_board_with_its_nodes() -> None:
    inv = load_inventory(EXAMPLE, load_profiles())
    assert fabrics(inv) == [
        Fabric("board-7", ("node-b",), 1),
        Fabric("wafer-0", ("node-a", "node-b"), 3),
    ]


def test_the_bandwidth_is_the_slowest_link_of_the_profiles_unless_set() -> None:
    profiles = load_profiles()
    inv = Inventory(
        nodes=(
            NodeEntry("n1", (ChipEntry("darwin3", "a-0", "mixed"),
                             ChipEntry("darwin3-fastroute", "a-1", "mixed"),
                             ChipEntry("darwin3-fastroute", "a-2", "fast"))),
        )
    )  # fmt: skip
    slow = int(profiles["darwin3"].fabric_events_per_s // 1000)
    fast = int(profiles["darwin3-fastroute"].fabric_events_per_s // 1000)
    assert fast > slow  # the engine holds each link to its chips' figure: the slower one
    caps = {
        s["spec"]["devices"][0]["name"]: s["spec"]["devices"][0]["capacity"]["keps"]["value"]
        for s in fabric_slices(inv, FabricSettings(), profiles)
    }
    assert caps == {"fabric-fast": str(fast), "fabric-mixed": str(slow)}
    set_by_hand = fabric_slices(inv, FabricSettings(keps=5000, keps_for={"fast": 70}), profiles)
    assert [s["spec"]["devices"][0]["capacity"]["keps"]["value"] for s in set_by_hand] == [
        "70",
        "5000",
    ]
    with pytest.raises(FabricError, match="fabric fast: no bandwidth: neither set"):
        fabric_slices(inv, FabricSettings())  # no profiles, no figure


def test_fabric_slice_shape() -> None:
    s = fabric_slice(Fabric("wafer-0", ("node-a", "node-b"), 3), FabricSettings(keps=5000))
    assert s["metadata"]["name"] == "darwin-fabric-wafer-0"
    spec = s["spec"]
    assert spec["driver"] == "darwin.snn.io"
    assert spec["pool"] == {"name": "fabric-wafer-0", "generation": 1, "resourceSliceCount": 1}
    assert "nodeName" not in spec
    [term] = spec["nodeSelector"]["nodeSelectorTerms"]
    assert term == {
        "matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a", "node-b"]}
        ]
    }
    [dev] = spec["devices"]
    assert dev["name"] == "fabric-wafer-0"
    assert dev["allowMultipleAllocations"] is True
    assert dev["attributes"]["fabric"] == {"string": "wafer-0"}
    assert dev["attributes"]["partition"] == {"string": "fabric"}
    assert dev["capacity"]["keps"] == {
        "value": "5000",
        "requestPolicy": {"default": "10", "validRange": {"min": "10", "step": "10"}},
    }
    # Nothing is set up for a bandwidth grant: no binding conditions hold its pods.
    assert "bindingConditions" not in dev
    assert "bindingFailureConditions" not in dev


def test_per_fabric_bandwidth_overrides_the_default() -> None:
    inv = _inventory(("n1", ["a", "b"]), ("n2", ["b"]))
    out = fabric_slices(inv, FabricSettings(keps=1000, keps_for={"b": 300}))
    caps = {
        s["spec"]["pool"]["name"]: s["spec"]["devices"][0]["capacity"]["keps"]["value"] for s in out
    }
    assert caps == {"fabric-a": "1000", "fabric-b": "300"}


def test_bandwidth_for_an_unknown_fabric_is_refused() -> None:
    with pytest.raises(FabricError, match="unknown fabrics: nope"):
        fabric_slices(_inventory(("n1", ["a"])), FabricSettings(keps_for={"nope": 10}))


@pytest.mark.parametrize("fabric_id", ["Wafer_0", "x" * 60, "a-", "a.b"])
def test_fabric_ids_that_cannot_name_a_device_are_refused(fabric_id: str) -> None:
    with pytest.raises(FabricError, match="DNS label"):
        fabric_slices(_inventory(("n1", [fabric_id])), FabricSettings())


def test_bandwidth_below_the_smallest_request_is_refused() -> None:
    with pytest.raises(FabricError, match="below the minimum"):
        fabric_slices(_inventory(("n1", ["a"])), FabricSettings(keps=5, keps_min=10))
