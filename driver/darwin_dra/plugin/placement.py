"""Which domains of a chip a capacity allocation gets (pure).

With the capacity layout (``--partitions capacity``) the scheduler allocates a number of
domains of a chip's one device, not named domains; the plugin, which owns the chip, picks
them at prepare time from the domains that are usable and held by no other claim:

- never a domain another claim holds, never one that is hurt;
- a connected block (4-neighbour adjacency on the chip's domain grid) whenever one fits:
  from the smallest free region that holds the request (best fit, so large regions stay
  whole for large requests), the most compact block grown there from any of its domains
  (smallest bounding box, then most square);
- when no free region is large enough, the domains from the largest regions first: a
  scattered partition still runs (its spikes cross other domains' links), it is said so
  in the claim's status, and nothing fails that could fit;
- ``None`` only when fewer free domains remain than asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import replace

from darwin_dra.plugin.records import ClaimPlan, DeviceIntent
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.partitions import usable_domains

Grid = tuple[int, int]  # domains across, domains down


class NoRoom(ValueError):
    """A capacity grant that does not fit on its chip; the message is what the user sees."""


def neighbours(grid: Grid, domain: int) -> list[int]:
    dx, dy = grid
    x, y = domain % dx, domain // dx
    out = []
    for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
        if 0 <= nx < dx and 0 <= ny < dy:
            out.append(ny * dx + nx)
    return out


def regions(grid: Grid, free: Set[int]) -> list[list[int]]:
    """The connected regions of ``free``, each in breadth-first order from its lowest domain,
    ordered by their lowest domain."""
    seen: set[int] = set()
    out = []
    for start in sorted(free):
        if start in seen:
            continue
        seen.add(start)
        order, i = [start], 0
        while i < len(order):
            for n in neighbours(grid, order[i]):
                if n in free and n not in seen:
                    seen.add(n)
                    order.append(n)
            i += 1
        out.append(order)
    return out


def connected(grid: Grid, domains: Iterable[int]) -> bool:
    cells = set(domains)
    return len(regions(grid, cells)) <= 1


def _box(grid: Grid, cells: Iterable[int]) -> tuple[int, int]:
    """A block's bounding box: (area, longest side), smaller is more compact."""
    dx = grid[0]
    xs = [c % dx for c in cells]
    ys = [c // dx for c in cells]
    w, h = max(xs) - min(xs) + 1, max(ys) - min(ys) + 1
    return (w * h, max(w, h))


def _rank(
    grid: Grid, box: tuple[int, int, int, int], taken: Set[int], n: int
) -> tuple[int, int, int, int]:
    """How good adding domain ``n`` to a block with bounding box ``box`` (x0, x1, y0, y1) is:
    the longest side (blocks grow square), the area, fewer chosen neighbours, the index."""
    x, y = n % grid[0], n // grid[0]
    x0, x1, y0, y1 = box
    w, h = max(x1, x) - min(x0, x) + 1, max(y1, y) - min(y0, y) + 1
    return (max(w, h), w * h, -sum(1 for m in neighbours(grid, n) if m in taken), n)


def _grow(grid: Grid, region: Set[int], seed: int, count: int) -> list[int]:
    """A connected block of ``count`` domains of ``region`` grown from ``seed``, adding the
    best-ranked frontier domain (``_rank``) each step."""
    dx = grid[0]
    chosen = [seed]
    taken = {seed}
    box = (seed % dx, seed % dx, seed // dx, seed // dx)
    frontier = {n for n in neighbours(grid, seed) if n in region}
    while len(chosen) < count:
        best = min(frontier, key=lambda n: _rank(grid, box, taken, n))
        chosen.append(best)
        taken.add(best)
        x, y = best % dx, best // dx
        box = (min(box[0], x), max(box[1], x), min(box[2], y), max(box[3], y))
        frontier.discard(best)
        frontier |= {n for n in neighbours(grid, best) if n in region and n not in taken}
    return chosen


def choose_domains(grid: Grid, free: Set[int], count: int) -> tuple[int, ...] | None:
    """``count`` domains out of ``free`` (sorted), or None when fewer are free."""
    if count < 1:
        raise ValueError(f"a placement needs at least one domain, not {count}")
    if len(free) < count:
        return None
    parts = regions(grid, free)
    fitting = [r for r in parts if len(r) >= count]
    if fitting:
        region = min(fitting, key=lambda r: (len(r), r[0]))
        if len(region) == count:
            return tuple(sorted(region))
        cells = set(region)
        blocks = (_grow(grid, cells, seed, count) for seed in sorted(region))
        best = min(blocks, key=lambda b: (*_box(grid, b), sorted(b)))
        return tuple(sorted(best))
    picked: list[int] = []
    for region in sorted(parts, key=lambda r: (-len(r), r[0])):
        picked += region[: count - len(picked)]
        if len(picked) == count:
            break
    return tuple(sorted(picked))


def held_domains(plans: Iterable[ClaimPlan]) -> dict[int, set[int]]:
    """chip -> the domains the claims of ``plans`` hold (every partition, shared ones too: an
    exclusive partition may not overlap them either)."""
    out: dict[int, set[int]] = {}
    for plan in plans:
        for intent in plan.devices:
            out.setdefault(intent.chip, set()).update(intent.domains)
    return out


def with_grants(
    views: Mapping[int, ChipView], intents: Iterable[DeviceIntent]
) -> dict[int, ChipView]:
    """The chips with the domains of each placed capacity grant of ``intents`` (the prepared
    claims' devices) in ``ChipView.grants``: what makes a fault under a grant taint the
    chip's device (partitions.health_of). Other chips and layouts are left as they are."""
    grants: dict[int, list[tuple[int, ...]]] = {}
    for intent in intents:
        if intent.picked:
            grants.setdefault(intent.chip, []).append(tuple(sorted(intent.domains)))
    return {
        c: replace(v, grants=tuple(sorted(grants[c]))) if c in grants else v
        for c, v in views.items()
    }


def place_claim(
    claim: ClaimPlan, chips: Mapping[int, ChipView], held: Mapping[int, Set[int]]
) -> ClaimPlan:
    """The claim with the domains of each capacity grant picked (the others unchanged), none
    held by another claim (``held``) nor by an earlier grant of the same claim, all usable.
    NoRoom when a chip has fewer free usable domains than a grant asks: the scheduler's
    count and the node's disagree (the chip was hurt since, or claims of another layout
    still hold domains)."""
    taken = {chip: set(domains) for chip, domains in held.items()}
    out: list[DeviceIntent] = []
    for intent in claim.devices:
        if not intent.wanted_domains or intent.picked:
            out.append(intent)
            taken.setdefault(intent.chip, set()).update(intent.domains)
            continue
        chip = chips[intent.chip]
        usable = set(usable_domains(chip))
        mine = taken.setdefault(intent.chip, set())
        free = usable - mine
        picked = choose_domains((chip.domains_x, chip.domains_y), free, intent.wanted_domains)
        if picked is None:
            hurt = sorted(d.index for d in chip.domains if d.index not in usable)
            raise NoRoom(
                f"ResourceClaim {claim.namespace}/{claim.name}: {intent.device} grants "
                f"{intent.wanted_domains} domains of chip {chip.chip} ({chip.serial}) but only "
                f"{len(free)} are free and usable on node {claim.pool} ({len(mine & usable)} "
                f"held by prepared claims, unusable: {hurt or 'none'}); delete the claim so "
                "the scheduler allocates it again from the node's current slices"
            )
        mine.update(picked)
        out.append(replace(intent, domains=picked))
    return replace(claim, devices=tuple(out))
