"""Typed, immutable descriptions of the hardware: what profiles and inventories say, and what
the engine discovers. Pure data; parsing lives in profiles.py and inventory.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChipProfile:
    """Nominal figures of one chip model (from a profile file, never hard-coded)."""

    model: str
    mesh_w: int
    mesh_h: int
    domain_w: int
    domain_h: int
    controller_x: int
    controller_y: int
    neurons_per_core: int
    synapses_per_chip: int
    core_queue_events: int
    router_events_per_s: float
    energy_pj_per_op: float
    fabric_events_per_s: float  # spikes one direction of a chip-to-chip fabric link carries
    max_fan_in: int
    max_fan_out: int
    on_chip_learning: bool
    sparse_routing: bool
    sources: tuple[str, ...] = ()
    # chips per row of the grid the chips of a fabric sit on (0: a direct link for every pair)
    fabric_grid_w: int = 0

    @property
    def domains_x(self) -> int:
        return self.mesh_w // self.domain_w

    @property
    def domains_y(self) -> int:
        return self.mesh_h // self.domain_h

    @property
    def n_domains(self) -> int:
        return self.domains_x * self.domains_y

    @property
    def n_cores(self) -> int:
        return self.mesh_w * self.mesh_h - 1


@dataclass(frozen=True)
class ChipEntry:
    """One chip as the inventory file lists it."""

    model: str
    serial: str
    fabric: str
    numa_node: int = 0
    pcie_root: str = ""
    firmware: str = ""


@dataclass(frozen=True)
class NodeEntry:
    name: str
    chips: tuple[ChipEntry, ...]


@dataclass(frozen=True)
class Inventory:
    """Nodes, the fabrics (boards, wafers) their chips sit on, and the chips."""

    nodes: tuple[NodeEntry, ...]
    source: str = ""

    def node(self, name: str) -> NodeEntry:
        for entry in self.nodes:
            if entry.name == name:
                return entry
        raise KeyError(f"node {name!r} is not in the inventory {self.source or ''}".strip())


@dataclass(frozen=True)
class CoreInfo:
    core: int
    x: int
    y: int
    domain: int
    healthy: bool
    partition: int | None


@dataclass(frozen=True)
class DomainInfo:
    domain: int
    x0: int
    y0: int
    x1: int
    y1: int
    n_cores: int
    failed_cores: int
    healthy: bool


@dataclass(frozen=True)
class ChipInfo:
    """A chip as the engine reports it (discovery)."""

    id: int
    model: str
    serial: str
    fabric: str
    numa_node: int
    mesh_w: int
    mesh_h: int
    n_domains: int
    n_cores: int
    neurons_per_core: int
    synapses_per_chip: int
    router_events_per_s: float
    energy_pj_per_op: float
    failed_cores: int
    failed_links: int
    healthy: bool
    domains: tuple[DomainInfo, ...] = field(default=())
    pcie_root: str = ""
    firmware: str = ""
    failed_link_ids: tuple[int, ...] = ()  # the engine's link indices (dk_link_index)
    fabric_links: int = 0  # directed fabric links out of the chip to its fabric neighbours
    failed_fabric_links: int = 0  # of those, failed
