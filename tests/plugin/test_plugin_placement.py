"""plugin/placement.py: which domains a capacity grant gets, against simple reference models."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from darwin_dra.plugin.config import PartitionConfig
from darwin_dra.plugin.placement import (
    NoRoom,
    choose_domains,
    connected,
    held_domains,
    place_claim,
)
from darwin_dra.plugin.records import ClaimPlan, DeviceIntent
from darwin_dra.resources.chips import DomainView, Health
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fleet.test_fleet_sched import VIEWS

DARWIN3 = VIEWS[0]  # 6 x 6 domains


def _components(grid: tuple[int, int], cells: set[int]) -> list[set[int]]:
    """Reference: connected regions by repeated union of adjacent pairs (no search order)."""
    dx, _ = grid
    parent = {c: c for c in cells}

    def root(c: int) -> int:
        while parent[c] != c:
            c = parent[c]
        return c

    for a, b in itertools.combinations(sorted(cells), 2):
        ax, ay, bx, by = a % dx, a // dx, b % dx, b // dx
        if abs(ax - bx) + abs(ay - by) == 1:
            parent[root(a)] = root(b)
    out: dict[int, set[int]] = {}
    for c in cells:
        out.setdefault(root(c), set()).add(c)
    return list(out.values())


grids = st.tuples(st.integers(1, 6), st.integers(1, 6))


@st.composite
def cases(draw: st.DrawFn) -> tuple[tuple[int, int], set[int], int]:
    grid = draw(grids)
    n = grid[0] * grid[1]
    free = draw(st.sets(st.integers(0, n - 1)))
    return grid, free, draw(st.integers(1, n))


@given(cases())
@settings(max_examples=300, deadline=None)
def test_the_choice_is_free_domains_and_fails_only_when_too_few_are_free(
    case: tuple[tuple[int, int], set[int], int],
) -> None:
    grid, free, count = case
    picked = choose_domains(grid, frozenset(free), count)
    if len(free) < count:
        assert picked is None
        return
    assert picked is not None
    assert len(picked) == count == len(set(picked))
    assert set(picked) <= free
    assert list(picked) == sorted(picked)
    # A connected block whenever one fits: some free region holds the request.
    if any(len(c) >= count for c in _components(grid, free)):
        assert len(_components(grid, set(picked))) == 1


@given(
    grids,
    st.lists(st.tuples(st.booleans(), st.integers(1, 9), st.integers(0, 99)), max_size=40),
)
@settings(max_examples=150, deadline=None)
def test_grants_and_releases_never_overlap_and_fail_only_when_the_chip_is_full(
    grid: tuple[int, int], ops: list[tuple[bool, int, int]]
) -> None:
    """Reference model: a chip is its set of free domains; a grant takes ``count`` of them."""
    n = grid[0] * grid[1]
    held: dict[int, tuple[int, ...]] = {}
    for i, (grant, count, pick) in enumerate(ops):
        if not grant and held:
            held.pop(sorted(held)[pick % len(held)])
            continue
        free = set(range(n)) - {d for got in held.values() for d in got}
        picked = choose_domains(grid, frozenset(free), count)
        assert (picked is None) == (count > len(free))
        if picked is not None:
            assert set(picked) <= free
            held[i] = picked
    every = [d for got in held.values() for d in got]
    assert len(every) == len(set(every))


def test_blocks_are_compact_and_best_fit_keeps_large_regions_whole() -> None:
    grid = (6, 6)
    everything = frozenset(range(36))
    assert choose_domains(grid, everything, 4) == (0, 1, 6, 7)  # a 2 x 2 quad
    assert choose_domains(grid, everything, 9) == (0, 1, 2, 6, 7, 8, 12, 13, 14)
    assert choose_domains(grid, everything, 36) == tuple(range(36))
    # A free pair at the far corner and a large free rest: a pair goes to the pair.
    corner = frozenset({34, 35})
    rest = frozenset(range(0, 24))
    assert choose_domains(grid, corner | rest, 2) == (34, 35)
    # Fragmented: no region holds 3, so the largest regions give what they have.
    scattered = frozenset({0, 1, 10, 35})
    picked = choose_domains(grid, scattered, 3)
    assert picked is not None
    assert {0, 1} <= set(picked)
    assert not connected(grid, picked)
    assert choose_domains(grid, scattered, 5) is None
    with pytest.raises(ValueError, match="at least one domain"):
        choose_domains(grid, everything, 0)


def _grant(count: int, chip: int = 0, request: str = "r") -> DeviceIntent:
    return DeviceIntent(
        request, f"chip-{chip}-capacity", chip, (), False, 100, None, PartitionConfig(), 0, 0,
        wanted_domains=count,
    )  # fmt: skip


def _plan(uid: str, *devices: DeviceIntent) -> ClaimPlan:
    return ClaimPlan(uid, "ns", f"c-{uid}", "node-a", devices)


def test_a_claim_is_placed_around_what_others_hold_and_hurt_domains() -> None:
    chips = {0: DARWIN3}
    other = _plan("o", DeviceIntent("r", "chip-0-quad-0", 0, (0, 1, 6, 7), False, 1, None,
                                    PartitionConfig()))  # fmt: skip
    placed = place_claim(
        _plan("u", _grant(4), _grant(2, request="s")), chips, held_domains([other])
    )
    a, b = (d.domains for d in placed.devices)
    assert len(a) == 4
    assert len(b) == 2
    assert not set(a) & set(b)
    assert not (set(a) | set(b)) & {0, 1, 6, 7}
    assert all(d.picked for d in placed.devices)
    # Hurt domains are never picked; too few left is a clear error naming chip and node.
    hurt = [DomainView(d.index, d.cores, Health.DEGRADED if d.index >= 2 else Health.OK)
            for d in DARWIN3.domains]  # fmt: skip
    sick = {0: dataclasses.replace(DARWIN3, domains=tuple(hurt))}
    assert place_claim(_plan("u", _grant(2)), sick, {}).devices[0].domains == (0, 1)
    with pytest.raises(NoRoom, match=r"grants 3 domains of chip 0 .* only 2 are free .* node-a"):
        place_claim(_plan("u", _grant(3)), sick, {})
