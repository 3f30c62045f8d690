"""The split's search (pure): the planner groups' graph condensed into its strongly connected
parts (a loop is never cut), two topological orders of the parts (layers in order; branches one
after the other), and the dynamic program that cuts an order into contiguous runs whose cuts
carry the fewest estimated spikes, each run within the stage capacity and the balance."""

from __future__ import annotations

import heapq
import math

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# How far above an equal share a stage may be; relaxed step by step when nothing fits.
IMBALANCES = (0.25, 0.5, 1.0, 2.0, math.inf)


def condense(n: int, src: I64, dst: I64) -> tuple[I64, int, list[list[int]], I64]:
    """Strongly connected parts of the group graph (a loop is never cut): each group's part,
    their count, the parts' successors, and each part's lowest group index."""
    if n == 0:
        return np.zeros(0, np.int64), 0, [], np.zeros(0, np.int64)
    adj = coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n)).tocsr()
    k, label = connected_components(adj, directed=True, connection="strong")
    lab = label.astype(np.int64)
    cs, cd = lab[src], lab[dst]
    keep = cs != cd
    pairs = np.unique(cs[keep] * k + cd[keep]) if keep.any() else np.zeros(0, np.int64)
    succ: list[list[int]] = [[] for _ in range(k)]
    for p in pairs.tolist():
        a, b = divmod(p, k)
        succ[a].append(b)
    first = np.full(k, n, np.int64)
    np.minimum.at(first, lab, np.arange(n, dtype=np.int64))
    for lst in succ:
        lst.sort(key=lambda c: int(first[c]))
    return lab, k, succ, first


def breadth_order(k: int, succ: list[list[int]], first: I64) -> I64:
    """A topological rank of each part: among the ready parts, the lowest group index first,
    so layers come in the model's order (a layer's tiles together)."""
    indeg = np.zeros(k, np.int64)
    for lst in succ:
        for b in lst:
            indeg[b] += 1
    ready = [(int(first[c]), c) for c in range(k) if indeg[c] == 0]
    heapq.heapify(ready)
    rank = np.zeros(k, np.int64)
    at = 0
    while ready:
        _, c = heapq.heappop(ready)
        rank[c] = at
        at += 1
        for b in succ[c]:
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(ready, (int(first[b]), b))
    return rank


def depth_order(k: int, succ: list[list[int]], first: I64) -> I64:
    """A topological rank in reverse DFS postorder: a branch is followed to its end before
    the next starts, so parallel pathways come one after the other."""
    indeg = np.zeros(k, np.int64)
    for lst in succ:
        for b in lst:
            indeg[b] += 1
    seen = np.zeros(k, bool)
    post: list[int] = []
    roots = sorted((c for c in range(k) if indeg[c] == 0), key=lambda c: -int(first[c]))
    for r in roots:
        if seen[r]:
            continue
        stack: list[tuple[int, int]] = [(r, 0)]
        seen[r] = True
        while stack:
            c, i = stack[-1]
            kids = succ[c]
            # children in reverse index order, so the reversed postorder visits low ones first
            j = len(kids) - 1 - i
            if i < len(kids):
                stack[-1] = (c, i + 1)
                b = kids[j]
                if not seen[b]:
                    seen[b] = True
                    stack.append((b, 0))
                continue
            stack.pop()
            post.append(c)
    rank = np.zeros(k, np.int64)
    rank[np.array(post[::-1], np.int64)] = np.arange(k)
    return rank


def cuts(
    traffic: F64, neurons: I64, synapses: I64, k: int, cap_n: int, cap_s: int
) -> tuple[list[int], float] | None:
    """Boundaries 0 = b0 < b1 < ... < bk = m of k contiguous runs of m units minimising the
    traffic between runs (traffic[a, b]: a -> b, a < b), each run within the capacities and the
    first imbalance of IMBALANCES that admits a split; None if none does."""
    m = neurons.size
    if k > m:
        return None
    # X[s, e]: traffic into units [s, e) from units before s.
    above = np.cumsum(traffic, axis=0)  # above[s-1, b] = sum_{a < s} traffic[a, b]
    p = np.vstack([np.zeros((1, m)), above[:-1]])  # p[s, b] = sum_{a<s} traffic[a, b]
    q = np.hstack([np.zeros((m, 1)), np.cumsum(p, axis=1)])  # q[s, e] = sum_{b<e} p[s, b]
    x = q - np.diag(q)[:, None]  # sum_{s<=b<e} p[s, b]; row s, column e
    x = np.vstack([x, np.zeros((1, m + 1))])
    cn = np.concatenate([[0], np.cumsum(neurons)])
    cs = np.concatenate([[0], np.cumsum(synapses)])
    load_n = cn[None, :] - cn[:, None]
    load_s = cs[None, :] - cs[:, None]
    order = np.arange(m + 1)
    nonempty = order[None, :] > order[:, None]
    for imb in IMBALANCES:
        lim_n = min(cap_n, (1 + imb) * cn[-1] / k) if math.isfinite(imb) else cap_n
        lim_s = min(cap_s, (1 + imb) * cs[-1] / k) if math.isfinite(imb) else cap_s
        # a single unit always fits its own run if it fits the capacity
        ok = nonempty & (
            ((load_n <= lim_n) & (load_s <= lim_s))
            | ((order[None, :] == order[:, None] + 1) & (load_n <= cap_n) & (load_s <= cap_s))
        )
        cost = np.where(ok, x, np.inf)
        f = np.full(m + 1, np.inf)
        f[0] = 0.0
        back = np.zeros((k + 1, m + 1), np.int64)
        for j in range(1, k + 1):
            tot = f[:, None] + cost
            back[j] = np.argmin(tot, axis=0)
            f = tot[back[j], order]
        if math.isfinite(f[m]):
            bounds = [m]
            for j in range(k, 0, -1):
                bounds.append(int(back[j][bounds[-1]]))
            return bounds[::-1], float(f[m])
    return None
