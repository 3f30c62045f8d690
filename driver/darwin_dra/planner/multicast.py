"""Refinement on the exact multicast objective of cost.py (ours; after the library partitioner).

The libraries see edges or nets; what a placement costs is, for each source group s and each
unit u (node or chip) other than its own, ``out_s * (1 - exp(L[s, u]))`` with
``L[s, u] = sum over s's targets t in u of log(1 - p_st)``. Moving group i from unit A to unit B
changes i's own term and, for every source s with an edge into i, the two entries L[s, A] and
L[s, B]: both are computed exactly, for all candidate moves at once (numpy), and moves that
lower the cost and keep every unit within its capacity are applied one by one, each re-checked
against the current state first.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from darwin_dra.planner.bins import Groups

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B_ = npt.NDArray[np.bool_]


def _logs(groups: Groups) -> tuple[I64, I64, F64]:
    """(source, target, log of the fraction of the source's spikes missing the target), one
    entry per distinct pair (repeated edges combine as in cost.py)."""
    keep = groups.src != groups.dst
    src, dst = groups.src[keep], groups.dst[keep]
    out = groups.out[src]
    p = np.where(out > 0, groups.spikes[keep] / np.where(out > 0, out, 1.0), 0.0)
    logs = np.log1p(-np.clip(p, 0.0, 1.0 - 1e-12))
    n = max(groups.size, 1)
    key, inv = np.unique(src * n + dst, return_inverse=True)
    return key // n, key % n, np.bincount(inv, weights=logs).astype(np.float64)


def cost(groups: Groups, unit: I64, k: int) -> float:
    src, dst, logs = _logs(groups)
    big_l = np.zeros((groups.size, k))
    np.add.at(big_l, (src, unit[dst]), logs)
    reach = -np.expm1(big_l)
    reach[np.arange(groups.size), unit] = 0.0
    return float((groups.out[:, None] * reach).sum())


def refine_multicast(
    groups: Groups,
    unit: I64,
    allowed: B_,
    caps: I64,
    passes: int = 4,
) -> I64:
    """Units for the groups (n) among k units, moving group i only to units with
    ``allowed[i, u]`` and never over ``caps`` (k x 3); returns a copy."""
    n, k = allowed.shape
    unit = unit.copy()
    src, dst, logs = _logs(groups)
    big_l = np.zeros((n, k))
    np.add.at(big_l, (src, unit[dst]), logs)
    load = np.zeros((k, 3), dtype=np.int64)
    np.add.at(load, unit, groups.demand)
    out = groups.out
    # In-edges of each group, for the exact re-check of one move.
    order = np.argsort(dst, kind="stable")
    in_src, in_log = src[order], logs[order]
    in_ptr = np.searchsorted(dst[order], np.arange(n + 1))

    def delta_one(i: int) -> F64:
        a = int(unit[i])
        e = np.exp(big_l[i])
        d: F64 = out[i] * (e - e[a])
        lo, hi = int(in_ptr[i]), int(in_ptr[i + 1])
        s, lg = in_src[lo:hi], in_log[lo:hi]
        if s.size:
            us = unit[s]
            ea = np.exp(big_l[s, a])
            part_a = np.where(us != a, ea - np.exp(big_l[s, a] - lg), 0.0)
            eb = np.exp(big_l[s])  # (m, k)
            part_b = np.where(
                us[:, None] != np.arange(k)[None, :], eb - eb * np.exp(lg)[:, None], 0
            )
            d = d + np.asarray(out[s] @ (part_a[:, None] + part_b), dtype=np.float64)
        d[a] = 0.0
        return d

    for _ in range(passes):
        e = np.exp(big_l)  # (n, k)
        a_of = unit
        delta = out[:, None] * (e - e[np.arange(n), a_of][:, None])
        ua, us = unit[dst], unit[src]
        ea = np.exp(big_l[src, ua])
        part_a = np.where(us != ua, ea - np.exp(big_l[src, ua] - logs), 0.0) * out[src]
        delta += np.stack([np.bincount(dst, weights=part_a, minlength=n)] * k, axis=1)
        for b in range(k):
            eb = np.exp(big_l[src, b])
            part_b = np.where(us != b, eb - eb * np.exp(logs), 0.0) * out[src]
            np.add.at(delta[:, b], dst, part_b)
        delta[np.arange(n), a_of] = 0.0
        delta[~allowed] = np.inf
        best = delta.min(axis=1)
        scale = max(float(out.sum()), 1e-300) * 1e-12
        candidates = np.flatnonzero(best < -scale)
        moved = 0
        for i in candidates[np.argsort(best[candidates])]:
            i = int(i)
            d = delta_one(i)
            room = np.all(load + groups.demand[i] <= caps, axis=1) & allowed[i]
            room[unit[i]] = False
            d = np.where(room, d, np.inf)
            b = int(np.argmin(d))
            if not d[b] < -scale:
                continue
            a = int(unit[i])
            lo, hi = int(in_ptr[i]), int(in_ptr[i + 1])
            np.add.at(big_l[:, a], in_src[lo:hi], -in_log[lo:hi])
            np.add.at(big_l[:, b], in_src[lo:hi], in_log[lo:hi])
            load[a] -= groups.demand[i]
            load[b] += groups.demand[i]
            unit[i] = b
            moved += 1
        if not moved:
            break
    return unit
