"""Our refinement after the library partitioner: make every block fit its real capacities
(neurons, synapses and KEPS at once, which the libraries balance only as one weight), then move
vertices greedily while that lowers the cost (FM-style passes of positive-gain moves).

The cost of vertex i in block c is ``sum_b conn[i, b] * dist[c, b]``, where conn[i, b] is the
weight of i's edges into block b: with ``dist = 1 - I`` that is the edge cut (nodes, chips),
with the mesh's hop distances it is spikes x hops (domains of one chip).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from darwin_dra.planner.partitioners import WeightedGraph

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class Infeasible(Exception):
    """No move makes the blocks fit: ``block`` stays over by ``excess`` of ``resource``."""

    def __init__(self, block: int, resource: int, excess: int) -> None:
        super().__init__(f"block {block} over capacity by {excess} of resource {resource}")
        self.block, self.resource, self.excess = block, resource, excess


def cut_distance(k: int) -> F64:
    return 1.0 - np.eye(k)


def _conn(g: WeightedGraph, part: I64, k: int) -> F64:
    rows = np.repeat(np.arange(g.n), np.diff(g.indptr))
    conn = np.zeros((g.n, k))
    np.add.at(conn, (rows, part[g.indices]), g.data)
    return conn


def _move(g: WeightedGraph, conn: F64, part: I64, load: I64, demand: I64, i: int, c: int) -> None:
    b = int(part[i])
    lo, hi = int(g.indptr[i]), int(g.indptr[i + 1])
    nbrs, w = g.indices[lo:hi], g.data[lo:hi]
    np.subtract.at(conn[:, b], nbrs, w)
    np.add.at(conn[:, c], nbrs, w)
    load[b] -= demand[i]
    load[c] += demand[i]
    part[i] = c


def refine(
    g: WeightedGraph,
    part: I64,
    demand: I64,
    cap: I64,
    dist: F64 | None = None,
    passes: int = 6,
) -> I64:
    """A partition within ``cap`` (blocks x resources) with a cost no worse than greedy moves
    can reach from ``part``; raises Infeasible when the repair finds no move."""
    k = cap.shape[0]
    dist = cut_distance(k) if dist is None else dist
    part = part.copy()
    if g.n == 0:
        return part
    conn = _conn(g, part, k)
    load = np.zeros_like(cap)
    np.add.at(load, part, demand)
    scale = np.maximum(cap.max(axis=0), 1).astype(np.float64)

    # Repair: move the cheapest vertices out of overloaded blocks into blocks with room.
    while True:
        over = (load - cap) / scale
        if over.max() <= 0:
            break
        b, r = np.unravel_index(int(np.argmax(over)), over.shape)
        members = np.flatnonzero(part == b)
        room = cap - load  # (k, 3)
        fits = np.all(demand[members][:, None, :] <= room[None, :, :], axis=2)  # (m, k)
        fits[:, b] = False
        if not fits.any():
            raise Infeasible(int(b), int(r), int(load[b, r] - cap[b, r]))
        cost = conn[members] @ dist  # (m, k): cost of each member in each block
        delta = cost - cost[:, [b]]
        # Prefer cheap moves that relieve the overloaded resource most.
        relief = np.maximum(demand[members, r], 1).astype(np.float64)
        score = np.where(fits, delta / relief[:, None], np.inf)
        mi, target = np.unravel_index(int(np.argmin(score)), score.shape)
        _move(g, conn, part, load, demand, int(members[mi]), int(target))

    # Greedy passes: positive-gain moves that keep every block within capacity.
    if not np.any(g.data > 0):
        return part
    for _ in range(passes):
        cost = conn @ dist
        gain = cost[np.arange(g.n), part][:, None] - cost
        best = gain.max(axis=1)
        candidates = np.flatnonzero(best > 1e-9 * max(float(best.max()), 1e-300))
        moved = 0
        for i in candidates[np.argsort(-best[candidates])]:
            row = conn[i] @ dist
            gi = row[part[i]] - row
            room = np.all(load + demand[i] <= cap, axis=1)
            gi[~room] = -np.inf
            c = int(np.argmax(gi))
            if gi[c] > 1e-12 * max(abs(float(row[part[i]])), 1e-300) and c != part[i]:
                _move(g, conn, part, load, demand, int(i), c)
                moved += 1
        if not moved:
            break
    return part
