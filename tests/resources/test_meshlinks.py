"""Which links a partition's spikes may cross, against a reference that walks every XY route
the engine can take (core to core inside the partition, and the controller to each of its
tiles); and a failed link taints exactly the partitions that route over it."""

from __future__ import annotations

import dataclasses

from darwin_dra.engine import Direction, Engine, FaultKind
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.resources.chips import ChipView, Health
from darwin_dra.resources.meshlinks import crosses
from darwin_dra.resources.partitions import device_taints, partition_health, partitions
from hypothesis import given, settings
from hypothesis import strategies as st

STEP = {Direction.EAST: (1, 0), Direction.WEST: (-1, 0), Direction.NORTH: (0, -1),
        Direction.SOUTH: (0, 1)}  # fmt: skip


def xy_links(w: int, a: tuple[int, int], b: tuple[int, int]) -> set[int]:
    """The links of the XY route from tile a to tile b (the reference: a plain walk)."""
    (x, y), out = a, set()
    while x != b[0]:
        d = Direction.EAST if x < b[0] else Direction.WEST
        out.add((y * w + x) * 4 + d)
        x += STEP[d][0]
    while y != b[1]:
        d = Direction.SOUTH if y < b[1] else Direction.NORTH
        out.add((y * w + x) * 4 + d)
        y += STEP[d][1]
    return out


@st.composite
def geometries(draw: st.DrawFn) -> tuple[ChipView, tuple[int, ...]]:
    dx, dy = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dw, dh = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # a rectangle of domains, as every published partition is
    x0, y0 = draw(st.integers(0, dx - 1)), draw(st.integers(0, dy - 1))
    x1, y1 = draw(st.integers(x0, dx - 1)), draw(st.integers(y0, dy - 1))
    domains = tuple(y * dx + x for y in range(y0, y1 + 1) for x in range(x0, x1 + 1))
    ctrl = (draw(st.integers(0, dx * dw - 1)), draw(st.integers(0, dy * dh - 1)))
    chip = ChipView(
        chip=0, model="m", serial="s", fabric="f", domains=(), domains_x=dx, domains_y=dy,
        domain_w=dw, domain_h=dh, neurons_per_core=1, synapses_per_chip=1, keps=1,
        max_fan_in=1, max_fan_out=1, sparse_routing=True, on_chip_learning=False,
        controller=ctrl,
    )  # fmt: skip
    return chip, domains


@settings(max_examples=300, deadline=None)
@given(case=geometries())
def test_a_partition_crosses_exactly_the_links_of_its_xy_routes(
    case: tuple[ChipView, tuple[int, ...]],
) -> None:
    chip, domains = case
    w, h = chip.domains_x * chip.domain_w, chip.domains_y * chip.domain_h
    tiles = [
        (x, y)
        for x in range(w)
        for y in range(h)
        if (y // chip.domain_h) * chip.domains_x + x // chip.domain_w in domains
    ]
    want: set[int] = set()
    for a in tiles:
        want |= xy_links(w, chip.controller, a)
        for b in tiles:
            want |= xy_links(w, a, b)
    for link in range(w * h * 4):
        (x, y), d = divmod(link // 4, w)[::-1], Direction(link % 4)
        nx, ny = x + STEP[d][0], y + STEP[d][1]
        if not (0 <= nx < w and 0 <= ny < h):
            continue  # no such link (off the mesh)
        assert crosses(chip, domains, link) == (link in want), (link, (x, y), d)


def test_a_failed_link_fails_the_partitions_over_it_and_no_other(darwin3: ChipProfile) -> None:
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="L-0", fabric="f0"))
        # inside domain 7 (tiles x 4..7, y 4..7), on no route from the controller (0, 0)
        link = eng.link_index(0, 5, 5, Direction.EAST)
        assert link is not None
        eng.inject_fault(0, FaultKind.LINK, link)
        chip = ChipView.from_info(eng.chip(0), darwin3)
        assert chip.failed_links == {link}
        assert chip.health is Health.OK
        tainted = {p.name for p in partitions(chip) if device_taints(chip, p.domains)}
        over = {p.name for p in partitions(chip) if 7 in p.domains}
        assert tainted == over  # domain 7, its quad, its half, its shared half, the chip
        assert all(
            device_taints(chip, p.domains)[0]["effect"] == "NoExecute"
            for p in partitions(chip)
            if p.name in over
        )
        # a link on the controller's row carries every injected spike east of it
        row = eng.link_index(0, 1, 0, Direction.EAST)
        assert row is not None
        eng.inject_fault(0, FaultKind.LINK, row)
        chip = ChipView.from_info(eng.chip(0), darwin3)
        assert partition_health(chip, [8]) is Health.FAILED  # tiles x 8..11: east of it
        eng.clear_fault(0, FaultKind.LINK, link)
        eng.clear_fault(0, FaultKind.LINK, row)
        chip = ChipView.from_info(eng.chip(0), darwin3)
        assert not any(device_taints(chip, p.domains) for p in partitions(chip))


def test_links_failed_but_not_named_degrade_the_whole_chip(darwin3: ChipProfile) -> None:
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="L-1", fabric="f0"))
        info = dataclasses.replace(eng.chip(0), failed_links=1)  # an engine that says no more
        assert ChipView.from_info(info, darwin3).health is Health.DEGRADED
