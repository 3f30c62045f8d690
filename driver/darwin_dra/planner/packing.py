"""Packing groups' resource demands into blocks' capacities (nodes, chips or domains): best
fit decreasing, and an exact search for the small cases it misses (pure)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def pack(demand: I64, caps: I64) -> I64 | None:
    """Best-fit decreasing: each group, largest share of a resource first, into the block
    with the least room left that takes it; None if some group fits nowhere."""
    scale = np.maximum(caps.sum(axis=0), 1).astype(np.float64)
    size = (demand / scale).max(axis=1)
    room = caps.copy()
    out = np.full(demand.shape[0], -1, dtype=np.int64)
    order = np.argsort(-size, kind="stable")
    for i in order:
        fits = np.flatnonzero(np.all(room >= demand[i], axis=1))
        if fits.size == 0:
            return pack_exactly(demand, caps, order)
        slack = ((room[fits] - demand[i]) / scale).max(axis=1)
        b = int(fits[np.argmin(slack)])
        out[i] = b
        room[b] -= demand[i]
    return out


def pack_exactly(demand: I64, caps: I64, order: I64, budget: int = 50_000) -> I64 | None:
    """Depth-first search for a packing, largest first, for the small cases best fit misses
    (gives up after ``budget`` steps and returns None)."""
    room = caps.copy()
    out = np.full(demand.shape[0], -1, dtype=np.int64)
    steps = 0

    def place_from(j: int) -> bool:
        nonlocal steps
        if j == order.size:
            return True
        i = int(order[j])
        tried: set[tuple[int, ...]] = set()
        for b in range(room.shape[0]):
            steps += 1
            key = tuple(room[b].tolist())
            if steps > budget or key in tried or np.any(room[b] < demand[i]):
                continue
            tried.add(key)  # blocks with the same room left are interchangeable
            room[b] -= demand[i]
            out[i] = b
            if place_from(j + 1):
                return True
            room[b] += demand[i]
        return False

    return out if place_from(0) else None
