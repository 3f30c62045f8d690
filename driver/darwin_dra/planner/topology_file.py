"""A topology file: the cluster to plan for, without a cluster.

```yaml
apiVersion: darwin.snn.io/v1alpha1
kind: Topology
fabricKeps: 1000000          # optional: inter-chip bandwidth of each fabric (thousands/s)
nodes:
  - name: node-0
    fabrics:
      - id: board-0
        chips:
          - {model: darwin3, serial: N0-C0}
          - {model: darwin3, serial: N0-C1, allocatedDomains: [0, 1, 2]}
```

Chips are numbered per node in file order, as the plugin numbers them. The file is turned into
the ResourceSlices the plugin and the controller would publish (the same pure builders) and
read back with parse_slices, so a file and a live cluster give the same kind of topology.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.fields import load_yaml
from darwin_dra.hardware.inventory import node_entries
from darwin_dra.hardware.model import ChipEntry, ChipProfile, Inventory
from darwin_dra.planner.topology import Topology, parse_slices, without_domains
from darwin_dra.resources.chips import ChipView, nominal_views
from darwin_dra.resources.fabric import FabricSettings, fabric_slices
from darwin_dra.resources.slices import build_slices

SCHEMA_FILE = "topology.schema.json"


def chip_view(profile: ChipProfile, chip: int, entry: ChipEntry) -> ChipView:
    """A healthy chip with its profile's nominal figures (pure)."""
    return ChipView.nominal(chip, entry, profile)


def topology_from_inventory(
    inventory: Inventory,
    profiles: Mapping[str, ChipProfile],
    fabric_keps: int | None = None,
    source: str = "",
) -> Topology:
    """The topology of an idle cluster serving ``inventory`` (pure)."""
    slices = []
    for node in inventory.nodes:
        views = nominal_views(node.chips, profiles)
        slices += build_slices(node.name, views)
    slices += fabric_slices(inventory, FabricSettings(keps=fabric_keps), profiles)
    return parse_slices(slices, source=source or inventory.source)


def load_topology(path: Path, profiles: Mapping[str, ChipProfile]) -> Topology:
    """Parses and checks a topology file (api/planner/v1alpha1/topology.schema.json, then the
    inventory's rules across entries); errors name the file and the field."""
    doc = load_yaml(path, SCHEMA_FILE)
    nodes = node_entries(str(path), doc["nodes"], profiles)
    taken: dict[tuple[str, int], list[int]] = {}
    for i, (node, entry) in enumerate(zip(doc["nodes"], nodes, strict=True)):
        chips = [
            (j, k, chip) for j, f in enumerate(node["fabrics"]) for k, chip in enumerate(f["chips"])
        ]
        for index, (j, k, chip) in enumerate(chips):
            allocated = chip.get("allocatedDomains", [])
            n_domains = profiles[chip["model"]].n_domains
            if any(d >= n_domains for d in allocated):
                raise HardwareFileError(
                    str(path),
                    f"nodes[{i}].fabrics[{j}].chips[{k}].allocatedDomains",
                    f"must be a list of domain indices 0..{n_domains - 1}, got {allocated!r}",
                )
            taken[(entry.name, index)] = list(allocated)
    try:
        topo = topology_from_inventory(
            Inventory(nodes, str(path)),
            profiles,
            doc.get("fabricKeps"),
            str(path),
        )
    except ValueError as exc:  # a name the slice builders refuse (not a DNS label, ...)
        raise HardwareFileError(str(path), "nodes", str(exc)) from exc
    return without_domains(topo, taken)
