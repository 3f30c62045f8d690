"""What a placement costs: spikes per second crossing nodes, chips and domains, and hops (pure).

Multicast: a spike leaves its group once for each distinct destination unit at a level (node,
chip or domain) other than its own, however many target groups sit in that unit. The graph's
edges say which fraction p_t of the source's spikes reach each target group t; the spikes
reaching a unit U are estimated as ``out * (1 - prod_{t in U} (1 - p_t))``: exact when every
p_t is 0 or 1 and when a neuron's synapses onto different groups are drawn independently (random
connectivity); between the largest p_t (nested reach, as a convolution's halo) and the capped
sum (disjoint reach) otherwise. Hops: Manhattan distance in tiles between the domains' origins
on the chip's mesh, for traffic that stays on a chip; spikes staying in their own domain
travel 0 hops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.planner.bins import Bins, Groups

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Traffic:
    cross_node: float  # spikes/s
    cross_chip: float
    cross_domain: float
    hop_spikes: float  # spikes/s x hops, on-chip traffic
    on_chip: float  # spikes/s delivered on a chip (own domain included)

    @property
    def mean_hops(self) -> float:
        return self.hop_spikes / self.on_chip if self.on_chip > 0 else 0.0

    def key(self) -> tuple[float, float, float]:
        """The lexicographic objective."""
        return (self.cross_node, self.cross_chip, self.hop_spikes)


def _per_unit(groups: Groups, unit_of_group: I64) -> tuple[I64, I64, npt.NDArray[np.float64]]:
    """(source group, destination unit, capped spikes/s) for every pair an edge connects."""
    if groups.src.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    n_units = int(unit_of_group.max()) + 1
    key = groups.src * n_units + unit_of_group[groups.dst]
    uniq, inv = np.unique(key, return_inverse=True)
    out = groups.out[groups.src]
    p = np.where(out > 0, groups.spikes / np.where(out > 0, out, 1.0), 0.0)
    miss = np.bincount(inv, weights=np.log1p(-np.clip(p, 0.0, 1.0 - 1e-12)))
    src = uniq // n_units
    unit = uniq % n_units
    return src, unit, groups.out[src] * -np.expm1(miss)


def traffic(groups: Groups, bins: Bins, assign: I64) -> Traffic:
    node = bins.node[assign]
    chip = bins.chip[assign]
    s, u, v = _per_unit(groups, node)
    cross_node = float(v[u != node[s]].sum())
    s, u, v = _per_unit(groups, chip)
    cross_chip = float(v[u != chip[s]].sum())
    s, u, v = _per_unit(groups, assign)
    remote = u != assign[s]
    cross_domain = float(v[remote].sum())
    same_chip = bins.chip[u] == chip[s]
    hops = np.abs(bins.x[u] - bins.x[assign[s]]) + np.abs(bins.y[u] - bins.y[assign[s]])
    return Traffic(
        cross_node=cross_node,
        cross_chip=cross_chip,
        cross_domain=cross_domain,
        hop_spikes=float((v * hops)[same_chip].sum()),
        on_chip=float(v[same_chip].sum()),
    )


def overloaded(groups: Groups, bins: Bins, assign: I64) -> list[tuple[int, int]]:
    """(bin, resource) pairs whose demand exceeds the free capacity."""
    load = np.zeros_like(bins.cap)
    np.add.at(load, assign, groups.demand)
    where = np.argwhere(load > bins.cap)
    return [(int(b), int(r)) for b, r in where]
