"""A plain-Python model of the router's bandwidth (docs/engine.md, "Router bandwidth"), the
reference the engine's router is tested against.

Every step: the waiting spikes first (oldest first), then the step's new ones in delivery
order. A spike enters the mesh if each of its links (a multiset: unicast routes may cross a link
more than once) has room for its packets within `cap` this step; else it waits, whole, at the
lowest-indexed link it would overfill, or is dropped there when that link already holds
`backlog_cap` waiting spikes.

A link that k partitions route over (`shares`: link -> (k, how many of them have a lower
partition id)) gives each a share of `cap` per step: cap // k, plus one for the cap % k ranks
whose turn it is ((rank + step) % k < cap % k); its backlog holds `backlog_steps` of the larger
share (docs/engine.md, "Shared links")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RouterModel:
    links_of: dict[int, list[int]]  # source -> the links its packets cross, with repeats
    n_links: int
    cap: int
    backlog_cap: int
    carried: list[int] = field(init=False)
    dropped: list[int] = field(init=False)
    backlog: list[int] = field(init=False)
    waiting: list[tuple[int, int]] = field(default_factory=list)  # (source, link)
    entered: list[tuple[int, int]] = field(default_factory=list)  # (source, step it entered)
    lost: list[int] = field(default_factory=list)  # sources of dropped spikes
    deferred: int = 0
    shares: dict[int, tuple[int, int]] = field(default_factory=dict)
    backlog_steps: int = 4

    def limit(self, step: int, link: int) -> int:
        """This partition's packets on `link` in `step`."""
        k, rank = self.shares.get(link, (1, 0))
        return self.cap // k + int((rank + step) % k < self.cap % k)

    def backlog_limit(self, link: int) -> int:
        k = self.shares.get(link, (1, 0))[0]
        return self.backlog_cap if k == 1 else -(-self.cap // k) * self.backlog_steps

    def __post_init__(self) -> None:
        self.carried = [0] * self.n_links
        self.dropped = [0] * self.n_links
        self.backlog = [0] * self.n_links

    def step(self, step: int, new: list[int]) -> list[int]:
        """Routes one step; returns the per-link packets carried in it."""
        load: Counter[int] = Counter()
        old, self.waiting = self.waiting, []
        for src, link in old:
            self.backlog[link] -= 1
            self._offer(step, src, load)
        for src in new:
            self._offer(step, src, load)
        for link, n in load.items():
            self.carried[link] += n
        return [load[i] for i in range(self.n_links)]

    def _offer(self, step: int, src: int, load: Counter[int]) -> None:
        need = Counter(self.links_of[src])
        over = [link for link, n in need.items() if load[link] + n > self.limit(step, link)]
        if not over:
            load.update(need)
            self.entered.append((src, step))
            return
        link = min(over)
        if self.backlog[link] >= self.backlog_limit(link):
            self.dropped[link] += 1
            self.lost.append(src)
            return
        self.backlog[link] += 1
        self.waiting.append((src, link))
        self.deferred += 1
