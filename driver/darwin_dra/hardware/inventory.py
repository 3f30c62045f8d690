"""The inventory file: nodes, the fabrics (boards, wafers) their chips sit on, and the chips."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.fields import Fields, load_yaml
from darwin_dra.hardware.model import ChipEntry, ChipProfile, Inventory, NodeEntry


def load_inventory(path: Path, profiles: Mapping[str, ChipProfile]) -> Inventory:
    """Parses and checks an inventory; every chip must name a known profile and a unique serial."""
    f = Fields(str(path), load_yaml(path, "Inventory"))
    f.reject_unknown({"apiVersion", "kind", "nodes"})
    nodes: list[NodeEntry] = []
    serials: dict[str, str] = {}
    names: set[str] = set()
    for node in f.items("nodes"):
        node.reject_unknown({"name", "fabrics"})
        name = node.string("name")
        if name in names:
            raise node.fail("name", f"node {name} is listed twice")
        names.add(name)
        chips: list[ChipEntry] = []
        for fabric in node.items("fabrics"):
            fabric.reject_unknown({"id", "chips"})
            fabric_id = fabric.string("id")
            for chip in fabric.items("chips"):
                chip.reject_unknown(
                    {"model", "serial", "numaNode", "pcieRoot", "firmware", "count"}
                )
                model = chip.string("model")
                if model not in profiles:
                    raise chip.fail(
                        "model",
                        f"no chip profile for {model!r} "
                        f"(known: {', '.join(sorted(profiles)) or 'none'})",
                    )
                # `count: N` lists N identical chips; `serial` is then their prefix
                # (serials <serial>-0 .. <serial>-(N-1)), so large fleets stay short to write.
                count = chip.integer("count", 1, 64, default=1)
                base = chip.string("serial")
                for k in range(count):
                    serial = base if "count" not in chip.data else f"{base}-{k}"
                    if serial in serials:
                        raise chip.fail("serial", f"{serial} is already used at {serials[serial]}")
                    serials[serial] = chip.prefix
                    chips.append(_entry(chip, model, serial, fabric_id))
        nodes.append(NodeEntry(name=name, chips=tuple(chips)))
    if not nodes:
        raise HardwareFileError(str(path), "nodes", "must list at least one node")
    return Inventory(nodes=tuple(nodes), source=str(path))


def _entry(chip: Fields, model: str, serial: str, fabric_id: str) -> ChipEntry:
    return ChipEntry(
        model=model,
        serial=serial,
        fabric=fabric_id,
        numa_node=chip.integer("numaNode", 0, 1023, default=0),
        pcie_root=chip.string("pcieRoot", default="-") if "pcieRoot" in chip.data else "",
        firmware=chip.string("firmware", default="-") if "firmware" in chip.data else "",
    )
