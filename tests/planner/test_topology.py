"""Topologies from ResourceSlices (as the plugin and controller publish them) and from files."""

from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.model import ChipEntry, ChipProfile, Inventory, NodeEntry
from darwin_dra.planner.topology import TopologyError, parse_slices
from darwin_dra.planner.topology_file import chip_view, load_topology
from darwin_dra.resources.chips import DomainView, Health
from darwin_dra.resources.fabric import FabricSettings, fabric_slices
from darwin_dra.resources.slices import build_slices


def _slices(darwin3: ChipProfile, chips: int = 2, node: str = "node-a") -> list[dict]:
    views = [chip_view(darwin3, i, ChipEntry("darwin3", f"S{i}", "wafer-0")) for i in range(chips)]
    return build_slices(node, views)


def test_idle_chip_publishes_every_domain_with_the_profile_figures(darwin3: ChipProfile) -> None:
    topo = parse_slices(_slices(darwin3))
    assert topo.nodes == ("node-a",)
    chip = topo.chips[0]
    assert len(chip.domains) == 36
    assert chip.domains[0].cores == 15
    assert chip.domains[1].cores == 16
    assert sum(d.neurons for d in chip.domains) == 575 * 4096
    assert sum(d.synapses for d in chip.domains) == darwin3.synapses_per_chip
    assert sum(d.keps for d in chip.domains) == int(darwin3.router_events_per_s // 1000)
    assert (chip.domains[7].x, chip.domains[7].y) == (4, 4)  # domain grid 6 x 6 of 4 x 4 tiles


def test_allocated_quad_and_tainted_domain_are_not_free(darwin3: ChipProfile) -> None:
    views = [chip_view(darwin3, 0, ChipEntry("darwin3", "S0", "wafer-0"))]
    doms = list(views[0].domains)
    doms[35] = DomainView(35, 16, Health.FAILED)
    slices = build_slices(
        "node-a", [views[0].__class__(**{**views[0].__dict__, "domains": tuple(doms)})]
    )
    claim = {
        "metadata": {"name": "c"},
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {"driver": "darwin.snn.io", "pool": "node-a", "device": "chip-0-quad-0"}
                    ]
                }
            }
        },
    }
    chip = parse_slices(slices, [claim]).chips[0]
    free = {d.index for d in chip.domains}
    assert free.isdisjoint({0, 1, 6, 7, 35})
    assert len(free) == 31
    assert chip.unusable == 5


def test_shared_claims_take_their_capacity_from_the_half(darwin3: ChipProfile) -> None:
    claim = {
        "metadata": {"name": "c"},
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {
                            "driver": "darwin.snn.io",
                            "pool": "node-a",
                            "device": "chip-0-shared-0",
                            "consumedCapacity": {"keps": "250k", "neurons": "4096"},
                        }
                    ]
                }
            }
        },
    }
    before = parse_slices(_slices(darwin3, 1)).chips[0]
    after = parse_slices(_slices(darwin3, 1), [claim]).chips[0]
    top = range(18)
    lost_keps = sum(before.domains[i].keps - after.domains[i].keps for i in top)
    assert 250_000 <= lost_keps < 250_000 + 18
    assert sum(before.domains[i].neurons - after.domains[i].neurons for i in top) >= 4096
    assert all(before.domains[i] == after.domains[i] for i in range(18, 36))


def test_fabric_slices_give_fabric_bandwidth_and_nodes(darwin3: ChipProfile) -> None:
    inv = Inventory(
        (
            NodeEntry("node-a", (ChipEntry("darwin3", "S0", "wafer-0"),)),
            NodeEntry("node-b", (ChipEntry("darwin3", "S1", "wafer-0"),)),
        )
    )
    slices = _slices(darwin3, 1, "node-a") + _slices(darwin3, 1, "node-b")
    slices += fabric_slices(inv, FabricSettings(keps=5000))
    topo = parse_slices(slices)
    assert [(f.id, f.nodes, f.keps) for f in topo.fabrics] == [
        ("wafer-0", ("node-a", "node-b"), 5000)
    ]


def test_no_darwin_slices_is_an_error_naming_the_source() -> None:
    with pytest.raises(TopologyError, match=r"kube: no darwin\.snn\.io domain devices"):
        parse_slices([{"spec": {"driver": "other.io"}}], source="kube")


def test_a_device_without_its_attributes_is_named(darwin3: ChipProfile) -> None:
    slices = _slices(darwin3, 1)
    devices = next(s for s in slices if "devices" in s["spec"])["spec"]["devices"]
    dev = next(d for d in devices if d["name"] == "chip-0-domain-0")
    del dev["attributes"]["meshX"]
    with pytest.raises(TopologyError, match="chip-0-domain-0: attribute 'meshX' is missing"):
        parse_slices(slices)


TOPO = """\
apiVersion: darwin.snn.io/v1alpha1
kind: Topology
nodes:
  - name: node-0
    fabrics:
      - id: board-0
        chips:
          - {model: darwin3, serial: A}
          - {model: darwin3, serial: B, allocatedDomains: [0, 5]}
"""


def test_topology_file_round_trips_through_slices(tmp_path: Path, darwin3: ChipProfile) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(TOPO)
    topo = load_topology(path, {"darwin3": darwin3})
    assert [c.name for c in topo.chips] == ["node-0/chip-0", "node-0/chip-1"]
    assert len(topo.chips[1].domains) == 34
    assert topo.chips[1].unusable == 2
    assert topo.fabrics[0].id == "board-0"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("serial: A}", "serial: A, colour: red}"),
            r"nodes\[0\]\.fabrics\[0\]\.chips\[0\]\.colour: unknown field \(known: alloc",
        ),
        (
            ("[0, 5]", "[0, 36]"),
            r"chips\[1\]\.allocatedDomains: must be a list of domain indices 0\.\.35",
        ),
        (
            ("model: darwin3, serial: A", "model: darwin9, serial: A"),
            r"chips\[0\]\.model: no chip profile for 'darwin9'",
        ),
        (("kind: Topology", "kind: Inventory"), "kind: must be 'Topology', got 'Inventory'"),
        (("[0, 5]", "[0, -1]"), r"allocatedDomains\[1\]: must be an integer >= 0, got -1"),
        (("serial: B", "serial: A"), r"chips\[1\]\.serial: A is already used"),
    ],
)
def test_topology_file_errors_name_the_field(
    tmp_path: Path, darwin3: ChipProfile, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(TOPO.replace(*edit))
    with pytest.raises(HardwareFileError, match=message) as info:
        load_topology(path, {"darwin3": darwin3})
    assert str(path) in str(info.value)
