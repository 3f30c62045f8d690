"""The inventory file: nodes, the fabrics (boards, wafers) their chips sit on, and the chips.

The fields' rules are the schema's (api/hardware/v1alpha1/inventory.schema.json); this module
checks what spans entries: unique node names and serials, and chip models with a profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.fields import load_yaml
from darwin_dra.hardware.model import ChipEntry, ChipProfile, Inventory, NodeEntry

SCHEMA_FILE = "inventory.schema.json"


def load_inventory(path: Path, profiles: Mapping[str, ChipProfile]) -> Inventory:
    """Parses and checks an inventory; every chip must name a known profile and a unique serial."""
    doc = load_yaml(path, SCHEMA_FILE)
    return Inventory(nodes=node_entries(str(path), doc["nodes"], profiles), source=str(path))


def node_entries(
    source: str, nodes: Sequence[Mapping[str, Any]], profiles: Mapping[str, ChipProfile]
) -> tuple[NodeEntry, ...]:
    """The nodes of a schema-checked inventory (or topology) file, chips in file order, with
    the rules across entries checked; errors name ``source`` and the field."""
    out: list[NodeEntry] = []
    serials: dict[str, str] = {}
    names: set[str] = set()
    for i, node in enumerate(nodes):
        if node["name"] in names:
            raise HardwareFileError(
                source, f"nodes[{i}].name", f"node {node['name']} is listed twice"
            )
        names.add(node["name"])
        chips: list[ChipEntry] = []
        for j, fabric in enumerate(node["fabrics"]):
            for k, chip in enumerate(fabric["chips"]):
                at = f"nodes[{i}].fabrics[{j}].chips[{k}]"
                if chip["model"] not in profiles:
                    raise HardwareFileError(
                        source,
                        f"{at}.model",
                        f"no chip profile for {chip['model']!r} "
                        f"(known: {', '.join(sorted(profiles)) or 'none'})",
                    )
                # `count: N` lists N identical chips; `serial` is then their prefix
                # (serials <serial>-0 .. <serial>-(N-1)), so large fleets stay short to write.
                count = chip.get("count", 1)
                for n in range(count):
                    serial = chip["serial"] if "count" not in chip else f"{chip['serial']}-{n}"
                    if serial in serials:
                        raise HardwareFileError(
                            source, f"{at}.serial", f"{serial} is already used at {serials[serial]}"
                        )
                    serials[serial] = at
                    chips.append(
                        ChipEntry(
                            model=chip["model"],
                            serial=serial,
                            fabric=fabric["id"],
                            numa_node=chip.get("numaNode", 0),
                            pcie_root=chip.get("pcieRoot", ""),
                            firmware=chip.get("firmware", ""),
                        )
                    )
        out.append(NodeEntry(name=node["name"], chips=tuple(chips)))
    return tuple(out)
