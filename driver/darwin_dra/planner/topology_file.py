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
from darwin_dra.hardware.fields import Fields, load_yaml
from darwin_dra.hardware.model import ChipEntry, ChipProfile, Inventory, NodeEntry
from darwin_dra.planner.topology import Topology, parse_slices, without_domains
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.fabric import FabricSettings, fabric_slices
from darwin_dra.resources.slices import build_slices


def chip_view(profile: ChipProfile, chip: int, entry: ChipEntry) -> ChipView:
    """A healthy chip with its profile's nominal figures (pure)."""
    return ChipView.nominal(chip, entry, profile)


def topology_from_inventory(
    inventory: Inventory,
    profiles: Mapping[str, ChipProfile],
    fabric_keps: int = FabricSettings().keps,
    source: str = "",
) -> Topology:
    """The topology of an idle cluster serving ``inventory`` (pure)."""
    slices = []
    for node in inventory.nodes:
        views = [chip_view(profiles[e.model], i, e) for i, e in enumerate(node.chips)]
        slices += build_slices(node.name, views)
    slices += fabric_slices(inventory, FabricSettings(keps=fabric_keps))
    return parse_slices(slices, source=source or inventory.source)


def load_topology(path: Path, profiles: Mapping[str, ChipProfile]) -> Topology:
    """Parses and checks a topology file; errors name the file and the field."""
    f = Fields(str(path), load_yaml(path, "Topology"))
    f.reject_unknown({"apiVersion", "kind", "nodes", "fabricKeps"})
    fabric_keps = f.integer("fabricKeps", 10, 10**15, default=FabricSettings().keps)
    nodes: list[NodeEntry] = []
    taken: dict[tuple[str, int], list[int]] = {}
    names: set[str] = set()
    serials: dict[str, str] = {}
    for node in f.items("nodes"):
        node.reject_unknown({"name", "fabrics"})
        name = node.string("name")
        if name in names:
            raise node.fail("name", f"node {name} is listed twice")
        names.add(name)
        chips: list[ChipEntry] = []
        for fabric in node.items("fabrics"):
            fabric.reject_unknown({"id", "chips"})
            fid = fabric.string("id")
            for chip in fabric.items("chips"):
                chip.reject_unknown({"model", "serial", "allocatedDomains"})
                model = chip.string("model")
                if model not in profiles:
                    raise chip.fail(
                        "model",
                        f"no chip profile for {model!r} (known: {', '.join(sorted(profiles))})",
                    )
                serial = chip.string("serial")
                if serial in serials:
                    raise chip.fail("serial", f"{serial} is already used at {serials[serial]}")
                serials[serial] = chip.prefix
                allocated = chip.data.get("allocatedDomains", [])
                n_domains = profiles[model].n_domains
                if not isinstance(allocated, list) or not all(
                    isinstance(d, int) and not isinstance(d, bool) and 0 <= d < n_domains
                    for d in allocated
                ):
                    raise chip.fail(
                        "allocatedDomains",
                        f"must be a list of domain indices 0..{n_domains - 1}, got {allocated!r}",
                    )
                taken[(name, len(chips))] = list(allocated)
                chips.append(ChipEntry(model=model, serial=serial, fabric=fid))
        nodes.append(NodeEntry(name, tuple(chips)))
    try:
        topo = topology_from_inventory(
            Inventory(tuple(nodes), str(path)), profiles, fabric_keps, str(path)
        )
    except ValueError as exc:  # a name the slice builders refuse (not a DNS label, ...)
        raise HardwareFileError(str(path), "nodes", str(exc)) from exc
    return without_domains(topo, taken)
