"""What the slice builders know of a chip: plain data, no engine (pure).

A ``ChipView`` is made from a chip's profile (``nominal``: planning, benchmarks, topology files)
or from what the engine reports (``from_info``: the plugin, with the chip's health and measured
throughput).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from darwin_dra.engine import keps as kepsdef
from darwin_dra.hardware.model import ChipEntry, ChipInfo, ChipProfile


def fabric_neighbours(rank: int, chips: int, grid_w: int) -> int:
    """The fabric links out of the chip of ``rank`` among ``chips`` chips of one fabric on a
    grid of ``grid_w`` chips a row (0: a link to every other chip): the engine's topology
    (dk_chip_info's fabric_links; tests/resources/test_fabric_links.py ties the two)."""
    if grid_w == 0:
        return chips - 1
    x = rank % grid_w
    east = x + 1 < grid_w and rank + 1 < chips
    return int(east) + int(x > 0) + int(rank + grid_w < chips) + int(rank >= grid_w)


def nominal_views(
    entries: Sequence[ChipEntry], profiles: Mapping[str, ChipProfile]
) -> list[ChipView]:
    """A node's chips (ids 0.., in inventory order, as the engine numbers them) as their
    profiles describe them, with the fabric links the engine's grid gives each (pure)."""
    views = []
    for i, e in enumerate(entries):
        view = ChipView.nominal(i, e, profiles[e.model])
        if e.fabric:
            mates = [j for j, o in enumerate(entries) if o.fabric == e.fabric]
            grid_w = profiles[entries[mates[0]].model].fabric_grid_w
            links = fabric_neighbours(mates.index(i), len(mates), grid_w)
            view = replace(
                view,
                fabric_links=links,
                fabric_events_per_s=links * profiles[e.model].fabric_events_per_s,
            )
        views.append(view)
    return views


class Health(enum.IntEnum):
    # Ordered: the worse state wins when parts combine.
    OK = 0
    DEGRADED = 1  # still works, with fewer cores or links: no new pods
    FAILED = 2  # unusable: running pods must leave


@dataclass(frozen=True)
class DomainView:
    index: int
    cores: int
    health: Health = Health.OK


@dataclass(frozen=True)
class ChipView:
    """What the slice builder needs to know about one chip; plain data, no engine."""

    chip: int
    model: str
    serial: str
    fabric: str
    domains: tuple[DomainView, ...]
    domains_x: int
    domains_y: int
    domain_w: int  # tiles per domain, x
    domain_h: int
    neurons_per_core: int
    synapses_per_chip: int
    keps: int  # KEPS (engine/keps.py): thousands of events per second of model time
    max_fan_in: int
    max_fan_out: int
    sparse_routing: bool
    on_chip_learning: bool
    numa_node: int = 0
    pcie_root: str = ""
    firmware: str = ""
    health: Health = Health.OK
    keps_measured: bool = False
    controller: tuple[int, int] = (0, 0)  # the tile where the host's spikes enter the mesh
    failed_links: frozenset[int] = frozenset()  # link indices (resources/meshlinks.py)
    # Working fabric links out of the chip to its fabric neighbours (the engine's grid), and
    # the spikes a second they carry together (profile fabricEventsPerSecond each); 0 when
    # the chip is on no fabric (nominal_views gives a node's chips theirs).
    fabric_links: int = 0
    fabric_events_per_s: float = 0.0
    # The capacity layout: the domains of each grant prepared on this chip (the plugin's
    # records, placement.py), so a fault under a grant taints the chip's device
    # (partitions.health_of). Empty for every other layout and for planning.
    grants: tuple[tuple[int, ...], ...] = ()

    @property
    def n_cores(self) -> int:
        return sum(d.cores for d in self.domains)

    @classmethod
    def nominal(cls, chip: int, entry: ChipEntry, profile: ChipProfile) -> ChipView:
        """A healthy chip as its profile describes it, with the nominal router throughput: for
        planning and benchmarks that need no engine (pure)."""
        if entry.model != profile.model:
            raise ValueError(f"chip {entry.serial} is a {entry.model}, not a {profile.model}")
        ctrl = (profile.controller_y // profile.domain_h) * profile.domains_x + (
            profile.controller_x // profile.domain_w
        )
        tiles = profile.domain_w * profile.domain_h
        return cls(
            chip=chip,
            model=profile.model,
            serial=entry.serial,
            fabric=entry.fabric,
            # A domain's cores are its tiles, less the controller tile where it sits.
            domains=tuple(
                DomainView(d, tiles - (1 if d == ctrl else 0)) for d in range(profile.n_domains)
            ),
            domains_x=profile.domains_x,
            domains_y=profile.domains_y,
            domain_w=profile.domain_w,
            domain_h=profile.domain_h,
            neurons_per_core=profile.neurons_per_core,
            synapses_per_chip=profile.synapses_per_chip,
            keps=kepsdef.chip_keps(profile.router_events_per_s),
            max_fan_in=profile.max_fan_in,
            max_fan_out=profile.max_fan_out,
            sparse_routing=profile.sparse_routing,
            on_chip_learning=profile.on_chip_learning,
            numa_node=entry.numa_node,
            pcie_root=entry.pcie_root,
            firmware=entry.firmware,
            controller=(profile.controller_x, profile.controller_y),
        )

    @classmethod
    def from_info(
        cls, info: ChipInfo, profile: ChipProfile, measured_keps: int | None = None
    ) -> ChipView:
        def domain_health(ok: bool, failed_cores: int, n_cores: int) -> Health:
            # The engine reports a domain unhealthy as soon as one core fails; the domain still
            # runs on the rest, so it is failed only with no working core (a domain fault fails
            # all of them) or when unhealthy for a reason other than its cores.
            if failed_cores >= n_cores or (not ok and not failed_cores):
                return Health.FAILED
            return Health.DEGRADED if failed_cores else Health.OK

        domains = tuple(
            DomainView(d.domain, d.n_cores, domain_health(d.healthy, d.failed_cores, d.n_cores))
            for d in sorted(info.domains, key=lambda d: d.domain)
        )
        # Failed cores are a domain's business (its devices get tainted), failed links that of
        # the partitions whose spikes cross them (partitions.partition_health); links failed
        # but not named (an engine that does not say which) degrade the chip as a whole.
        failed_links = frozenset(info.failed_link_ids)
        if not info.healthy:
            health = Health.FAILED
        elif info.failed_links > len(failed_links):
            health = Health.DEGRADED
        else:
            health = Health.OK
        nominal = kepsdef.chip_keps(info.router_events_per_s)
        return cls(
            chip=info.id,
            model=info.model,
            serial=info.serial,
            fabric=info.fabric,
            domains=domains,
            domains_x=profile.domains_x,
            domains_y=profile.domains_y,
            domain_w=profile.domain_w,
            domain_h=profile.domain_h,
            neurons_per_core=info.neurons_per_core,
            synapses_per_chip=info.synapses_per_chip,
            keps=nominal if measured_keps is None else measured_keps,
            max_fan_in=profile.max_fan_in,
            max_fan_out=profile.max_fan_out,
            sparse_routing=profile.sparse_routing,
            on_chip_learning=profile.on_chip_learning,
            numa_node=info.numa_node,
            pcie_root=info.pcie_root,
            firmware=info.firmware,
            health=health,
            keps_measured=measured_keps is not None,
            controller=(profile.controller_x, profile.controller_y),
            failed_links=failed_links,
            fabric_links=info.fabric_links - info.failed_fabric_links,
            fabric_events_per_s=(info.fabric_links - info.failed_fabric_links)
            * profile.fabric_events_per_s,
        )
