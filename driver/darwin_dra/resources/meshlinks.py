"""Which links of a chip's mesh a partition's spikes may cross (pure), so that a failed link
fails exactly the partitions that route over it and no other.

A link is the engine's (``dk_link_index``): ``(y * mesh_w + x) * 4 + direction``, the link out
of tile (x, y) towards its neighbour. The engine routes dimension-ordered (XY: along x, then
along y), from the tile of a spiking neuron's core to the tiles of its targets, and a spike
injected from the host from the controller tile to its targets' tiles. A partition's cores
fill a rectangle of tiles (its domains), and an XY route between two tiles of a rectangle stays
inside it; so a partition's spikes may cross every link between two of its tiles, and the links
of the XY routes from the controller tile to each of its tiles, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

from darwin_dra.engine import Direction
from darwin_dra.resources.chips import ChipView

STEP = {
    Direction.EAST: (1, 0),
    Direction.WEST: (-1, 0),
    Direction.NORTH: (0, -1),
    Direction.SOUTH: (0, 1),
}


def link_ends(chip: ChipView, link: int) -> tuple[tuple[int, int], tuple[int, int], Direction]:
    """The tile a link leaves, the tile it enters, and its direction."""
    mesh_w = chip.domains_x * chip.domain_w
    tile, d = divmod(link, 4)
    direction = Direction(d)
    x, y = tile % mesh_w, tile // mesh_w
    dx, dy = STEP[direction]
    return (x, y), (x + dx, y + dy), direction


def _rectangles(chip: ChipView, domains: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Each domain's tiles as (x0, y0, x1, y1), inclusive."""
    out = []
    for d in domains:
        x0, y0 = (d % chip.domains_x) * chip.domain_w, (d // chip.domains_x) * chip.domain_h
        out.append((x0, y0, x0 + chip.domain_w - 1, y0 + chip.domain_h - 1))
    return out


def crosses(chip: ChipView, domains: Sequence[int], link: int) -> bool:
    """Whether spikes of a partition over ``domains`` may cross ``link``."""
    (ax, ay), (bx, by), direction = link_ends(chip, link)
    rects = _rectangles(chip, domains)

    def inside(x: int, y: int) -> bool:
        return any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in rects)

    if inside(ax, ay) and inside(bx, by):
        return True
    # the XY routes of injected spikes: along the controller's row to the target's column,
    # then along that column
    cx, cy = chip.controller
    if direction is Direction.EAST:
        return ay == cy and cx <= ax and any(x1 > ax for _, _, x1, _ in rects)
    if direction is Direction.WEST:
        return ay == cy and ax <= cx and any(x0 < ax for x0, _, _, _ in rects)
    column = [(y0, y1) for x0, y0, x1, y1 in rects if x0 <= ax <= x1]
    if direction is Direction.SOUTH:
        return cy <= ay and any(y1 > ay for _, y1 in column)
    return ay <= cy and any(y0 < ay for y0, _ in column)


def links_crossed(chip: ChipView, domains: Sequence[int], links: frozenset[int]) -> list[int]:
    """The links of ``links`` (failed ones) that spikes of the partition may cross, sorted."""
    return sorted(link for link in links if crosses(chip, domains, link))


def touches(chip: ChipView, domain: int, link: int) -> bool:
    """Whether either end of ``link`` is a tile of ``domain``."""
    ((x0, y0, x1, y1),) = _rectangles(chip, (domain,))
    return any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in link_ends(chip, link)[:2])


def link_free(chip: ChipView, domain: int) -> bool:
    """No failed link touches the domain or lies on the route of the host's spikes to it:
    a grant placed on it alone, or beside any neighbour, crosses no failed link."""
    return not any(
        touches(chip, domain, link) or crosses(chip, (domain,), link) for link in chip.failed_links
    )
