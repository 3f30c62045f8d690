"""The capacity layout under faults: a failed domain or link under a prepared grant taints
the chip's device NoExecute (so the real taint eviction controller evicts its pods); one
under no grant only shrinks the capacity; a failed link makes the domains it touches, or
whose host route it lies on, unusable for placement."""

from __future__ import annotations

import dataclasses
from typing import Any

from darwin_dra.engine import Direction
from darwin_dra.fleet.layout import FleetShape, chip_views, fleet_inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.health_service import Health as KubeletHealth
from darwin_dra.plugin.config import PartitionConfig
from darwin_dra.plugin.health import device_states
from darwin_dra.plugin.placement import choose_domains, with_grants
from darwin_dra.plugin.records import DeviceIntent
from darwin_dra.resources.chips import ChipView, DomainView, Health
from darwin_dra.resources.meshlinks import link_ends, links_crossed
from darwin_dra.resources.partitions import CAPACITY_PARTITIONS, usable_domains
from darwin_dra.resources.slices import SliceLayout, build_slices

INV = fleet_inventory(FleetShape(nodes=1))
VIEWS = chip_views(INV, load_profiles(), INV.nodes[0].name)
LAYOUT = SliceLayout(partitions=CAPACITY_PARTITIONS)


def failed(chip: ChipView, *domains: int) -> ChipView:
    return dataclasses.replace(
        chip,
        domains=tuple(
            DomainView(d.index, d.cores, Health.FAILED if d.index in domains else d.health)
            for d in chip.domains
        ),
    )


def devices(views: list[ChipView]) -> dict[str, Any]:
    [only] = build_slices("n", views, layout=LAYOUT)
    return {d["name"]: d for d in only["spec"]["devices"]}


def domains_of(views: list[ChipView], chip: int = 0) -> str:
    return str(devices(views)[f"chip-{chip}-capacity"]["capacity"]["domains"]["value"])


def intent(chip: int, domains: tuple[int, ...]) -> DeviceIntent:
    return DeviceIntent(
        request="r", device=f"chip-{chip}-capacity", chip=chip, domains=domains, shared=False,
        keps=1000, share_id=None, config=PartitionConfig(), wanted_domains=len(domains),
    )  # fmt: skip


def test_a_failed_domain_under_a_grant_taints_the_device_no_execute() -> None:
    views = with_grants(dict(enumerate(VIEWS)), [intent(0, (7, 8)), intent(1, (0,))])
    assert views[0].grants == ((7, 8),)
    assert views[2].grants == ()
    # Domain 8 fails under chip 0's grant; domain 3 of chip 1 fails under none.
    hurt = [failed(views[0], 8), failed(views[1], 3), *list(views.values())[2:]]
    by_name = devices(hurt)
    assert by_name["chip-0-capacity"]["taints"] == [
        {"key": "darwin.snn.io/unhealthy", "value": "failed", "effect": "NoExecute"}
    ]
    assert by_name["chip-0-capacity"]["capacity"]["domains"]["value"] == "35"
    assert "taints" not in by_name["chip-1-capacity"]
    assert by_name["chip-1-capacity"]["capacity"]["domains"]["value"] == "35"
    # The kubelet hears the same: chip 0's device unhealthy, chip 1's healthy.
    states = {s.device: s.health for s in device_states("n", dict(enumerate(hurt)), 0,
                                                        kinds=CAPACITY_PARTITIONS)}  # fmt: skip
    assert states["chip-0-capacity"] is KubeletHealth.UNHEALTHY
    assert states["chip-1-capacity"] is KubeletHealth.HEALTHY
    # Once the grant is unprepared (the pod evicted), the taint goes; the capacity stays shrunk.
    after = devices([dataclasses.replace(hurt[0], grants=()), *hurt[1:]])
    assert "taints" not in after["chip-0-capacity"]
    assert after["chip-0-capacity"]["capacity"]["domains"]["value"] == "35"


def link_between(chip: ChipView, a: int, b: int) -> int:
    """The link from the tile of domain ``a`` east into domain ``b`` (its east neighbour)."""
    mesh_w = chip.domains_x * chip.domain_w
    x = (a % chip.domains_x) * chip.domain_w + chip.domain_w - 1
    y = (a // chip.domains_x) * chip.domain_h
    link = (y * mesh_w + x) * 4 + int(Direction.EAST)
    (ax, _), (bx, _), _ = link_ends(chip, link)
    assert ax // chip.domain_w == a % chip.domains_x
    assert bx // chip.domain_w == b % chip.domains_x
    return link


def test_failed_links_make_domains_unusable_and_fail_a_grant_over_them() -> None:
    chip = VIEWS[0]  # darwin3: 6 x 6 domains, the controller in domain 0
    # A link between domains 20 and 21 (row 3): it touches both, and lies on no host route
    # (the controller's row is row 0), so exactly those two become unusable.
    link = link_between(chip, 20, 21)
    cut = dataclasses.replace(chip, failed_links=frozenset({link}))
    assert set(range(36)) - set(usable_domains(cut)) == {20, 21}
    grid = (chip.domains_x, chip.domains_y)
    picked = choose_domains(grid, set(usable_domains(cut)), 36 - 2)
    assert picked is not None
    assert not {20, 21} & set(picked)
    # A grant over both domains crosses it: the device is tainted; one elsewhere is not.
    assert links_crossed(cut, (20, 21), cut.failed_links) == [link]
    over = dataclasses.replace(cut, grants=((20, 21),))
    elsewhere = dataclasses.replace(cut, grants=((0, 1),))
    assert devices([over, *VIEWS[1:]])["chip-0-capacity"]["taints"][0]["effect"] == "NoExecute"
    assert "taints" not in devices([elsewhere, *VIEWS[1:]])["chip-0-capacity"]
    assert domains_of([elsewhere, *VIEWS[1:]]) == "34"
    # A link on the controller's row carries the host's spikes to every domain east of it.
    row_link = link_between(chip, 1, 2)
    route = dataclasses.replace(chip, failed_links=frozenset({row_link}))
    assert {1, 2, 3, 4, 5} <= set(range(36)) - set(usable_domains(route))
    assert 0 in usable_domains(route)
    assert 6 in usable_domains(route)
