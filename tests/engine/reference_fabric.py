"""A plain-Python model of a fabric link (docs/engine.md, "Chips on one fabric"), the reference
the engine's fabric links are tested against: a FIFO carrying at most `cap` spikes a step.
Spikes are taken in the order of their steps (a batch's order within a step); each goes at its
step or, that step being full, at the first later step with room, and one that would wait more
than `bound` steps is dropped and counted."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

DROPPED = -1


@dataclass
class FabricLinkModel:
    cap: int
    bound: int
    per_step: Counter[int] = field(default_factory=Counter)  # step -> spikes carried
    cursor: int = 0  # the latest step holding a spike
    dropped: int = 0
    deferred: int = 0

    def send(self, steps: list[int]) -> list[int]:
        """The step each spike crosses at (DROPPED where dropped), in the batch's order."""
        out = [DROPPED] * len(steps)
        for i in sorted(range(len(steps)), key=lambda i: (steps[i], i)):
            t = steps[i]
            at = max(t, self.cursor)
            if self.per_step[at] >= self.cap:
                at += 1
            if at - t > self.bound:
                self.dropped += 1
                continue
            self.per_step[at] += 1
            self.cursor = at
            self.deferred += at - t
            out[i] = at
        return out


@dataclass
class FabricGridModel:
    """The chips 0..n-1 of one fabric on a grid of `w` a row (0: every pair adjacent), a
    FabricLinkModel per directed link between neighbours: a spike crosses the hops of its path
    in turn (no step of its own per hop), the path dimension-ordered (along the row, then the
    column) while every hop of it works, else the first shortest path of a breadth-first search
    over the working hops (neighbours tried east, west, south, north; by id when w is 0); with
    none, every spike is lost at the first broken hop of the dimension-ordered path."""

    n: int
    w: int
    cap: int
    bound: int
    failed: set[tuple[int, int]] = field(default_factory=set)  # failed directed links
    down: set[int] = field(default_factory=set)  # failed chips
    links: dict[tuple[int, int], FabricLinkModel] = field(default_factory=dict)
    lost: Counter[tuple[int, int]] = field(default_factory=Counter)  # dropped_fault per link

    def neighbours(self, r: int) -> list[int]:
        if not self.w:
            return [q for q in range(self.n) if q != r]
        x, out = r % self.w, []
        if x + 1 < self.w and r + 1 < self.n:
            out.append(r + 1)
        if x > 0:
            out.append(r - 1)
        if r + self.w < self.n:
            out.append(r + self.w)
        if r >= self.w:
            out.append(r - self.w)
        return out

    def works(self, a: int, b: int) -> bool:
        return (a, b) not in self.failed and a not in self.down and b not in self.down

    def xy(self, a: int, b: int) -> list[int]:
        """Along the row, then the column; the column first where that would leave the grid
        (a short last row)."""
        if not self.w:
            return [a, b]
        for column_first in (False, True):
            path, r = [a], a
            for axis in (column_first, not column_first):
                coord = (lambda c: c // self.w) if axis else (lambda c: c % self.w)
                while coord(r) != coord(b):
                    if axis:
                        r += self.w if r < b else -self.w
                    else:
                        r += 1 if r % self.w < b % self.w else -1
                    path.append(r)
            if all(p < self.n for p in path):
                return path
        raise AssertionError("the column-first path stays on the grid")

    def route(self, a: int, b: int) -> list[int]:
        """The chips a spike from a to b crosses ([] when no working path)."""
        path = self.xy(a, b)
        if all(self.works(p, q) for p, q in itertools.pairwise(path)):
            return path
        parent, queue = {a: a}, [a]
        for r in queue:
            if b in parent:
                break
            for q in self.neighbours(r):
                if q not in parent and self.works(r, q):
                    parent[q] = r
                    queue.append(q)
        if b not in parent:
            return []
        back = [b]
        while back[-1] != a:
            back.append(parent[back[-1]])
        return back[::-1]

    def link(self, a: int, b: int) -> FabricLinkModel:
        return self.links.setdefault((a, b), FabricLinkModel(self.cap, self.bound))

    def send(self, a: int, b: int, steps: list[int]) -> list[int]:
        """The step each spike arrives at b (DROPPED where lost), in the batch's order."""
        path = self.route(a, b)
        if not path:
            xy = self.xy(a, b)
            broken = next(h for h in itertools.pairwise(xy) if not self.works(*h))
            self.lost[broken] += len(steps)
            return [DROPPED] * len(steps)
        # every hop takes the spikes in the order of their steps (the batch's within a step)
        order = sorted(range(len(steps)), key=lambda i: (steps[i], i))
        at = list(steps)
        for hop in itertools.pairwise(path):
            alive = [i for i in order if at[i] != DROPPED]
            carried = self.link(*hop).send([at[i] for i in alive])
            for i, t in zip(alive, carried, strict=True):
                at[i] = t
        return at
