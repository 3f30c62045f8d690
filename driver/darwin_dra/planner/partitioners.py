"""k-way graph partitioners behind one signature: pymetis, Mt-KaHyPar, KaHyPar, and our own
greedy graph growing (used when no library is installed, and as a peer in the benchmark).

``partition(graph, weights, limits, seed)`` splits vertices 0..n-1 into ``len(limits)`` blocks,
trying to keep block b's total weight at or under ``limits[b]`` and minimising the weight of
cut edges. Libraries treat the limits as balance targets; the caller's refinement enforces the
real (multi-resource) capacities afterwards.
"""

from __future__ import annotations

import heapq
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_INT_BUDGET = 2**30  # libraries use 32-bit weights: keep every sum below this


@dataclass(frozen=True)
class WeightedGraph:
    """Undirected, CSR with both directions stored, no self loops."""

    indptr: I64
    indices: I64
    data: F64

    @property
    def n(self) -> int:
        return int(self.indptr.size - 1)


def csr(n: int, u: I64, v: I64, w: F64) -> WeightedGraph:
    """Symmetric CSR of the edges (u, v, w), duplicates summed, self loops dropped."""
    keep = (u != v) & (w > 0)
    u, v, w = u[keep], v[keep], w[keep]
    a = np.concatenate([u, v])
    b = np.concatenate([v, u])
    ww = np.concatenate([w, w])
    key = a * n + b
    uniq, inv = np.unique(key, return_inverse=True)
    sums = np.bincount(inv, weights=ww) if uniq.size else np.zeros(0)
    rows = uniq // n if uniq.size else np.zeros(0, dtype=np.int64)
    cols = uniq % n if uniq.size else np.zeros(0, dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return WeightedGraph(np.cumsum(indptr), cols.astype(np.int64), sums.astype(np.float64))


def subgraph(g: WeightedGraph, members: I64) -> WeightedGraph:
    """The graph induced by ``members`` (renumbered 0..len-1 in that order)."""
    local = np.full(g.n, -1, dtype=np.int64)
    local[members] = np.arange(members.size)
    starts, ends = g.indptr[members], g.indptr[members + 1]
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    idx = (
        np.arange(int(lengths.sum()), dtype=np.int64)
        - np.repeat(offsets, lengths)
        + np.repeat(starts, lengths)
    )
    rows = np.repeat(np.arange(members.size), lengths)
    cols = local[g.indices[idx]]
    keep = cols >= 0
    indptr = np.zeros(members.size + 1, dtype=np.int64)
    np.add.at(indptr, rows[keep] + 1, 1)
    return WeightedGraph(np.cumsum(indptr), cols[keep], g.data[idx][keep])


@dataclass(frozen=True)
class Nets:
    """Hyperedges for the hypergraph partitioners: net e joins pins[ptr[e]:ptr[e + 1]] and
    costs w[e] once for every block it reaches beyond the first (the km1 metric). A source
    group's spikes are multicast once per destination partition, so one net per source with
    the targets its spikes reach in full models the traffic exactly; edges that carry only a
    part of the source's spikes (halos, long-range axons of a few cells) stay 2-pin nets."""

    ptr: I64
    pins: I64
    w: F64

    @property
    def m(self) -> int:
        return int(self.ptr.size - 1)


def multicast_nets(n: int, src: I64, dst: I64, spikes: F64, out: F64) -> Nets:
    keep = (src != dst) & (spikes > 0)
    src, dst, spikes = src[keep], dst[keep], spikes[keep]
    full = spikes >= 0.5 * out[src]
    ptr = [0]
    pins: list[int] = []
    w: list[float] = []
    order = np.argsort(src[full], kind="stable")
    fs, fd = src[full][order], dst[full][order]
    bounds = np.flatnonzero(np.diff(fs)) + 1
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, fs.size], strict=True):
        if b > a:
            members = np.unique(fd[a:b])
            pins += [int(fs[a]), *members.tolist()]
            ptr.append(len(pins))
            w.append(float(out[fs[a]]))
    for u, v, x in zip(
        src[~full].tolist(), dst[~full].tolist(), spikes[~full].tolist(), strict=True
    ):
        pins += [u, v]
        ptr.append(len(pins))
        w.append(x)
    return Nets(np.array(ptr, dtype=np.int64), np.array(pins, dtype=np.int64), np.array(w))


def subnets(nets: Nets, members: I64, n: int) -> Nets:
    """The nets restricted to ``members`` (renumbered), nets left with one pin dropped."""
    local = np.full(n, -1, dtype=np.int64)
    local[members] = np.arange(members.size)
    pins = local[nets.pins]
    net_of = np.repeat(np.arange(nets.m), np.diff(nets.ptr))
    keep = pins >= 0
    pins, net_of = pins[keep], net_of[keep]
    sizes = np.bincount(net_of, minlength=nets.m)
    alive = sizes >= 2
    sel = alive[net_of]
    ptr = np.concatenate([[0], np.cumsum(sizes[alive])]).astype(np.int64)
    return Nets(ptr, pins[sel], nets.w[alive])


def _int_weights(x: F64, budget: int = _INT_BUDGET) -> I64:
    """Positive integer weights proportional to x, with a sum under budget."""
    total = float(x.sum())
    if total <= 0:
        return np.ones(x.size, dtype=np.int64)
    scale = min(budget / total, 1e6 / max(float(x.max()), 1e-300))
    out: I64 = np.maximum(np.rint(x * scale), 1).astype(np.int64)
    return out


def _scaled_limits(weights: F64, limits: F64) -> tuple[I64, I64]:
    total = float(weights.sum() + limits.sum())
    scale = _INT_BUDGET / 2 / max(total, 1e-300)
    w = np.maximum(np.rint(weights * scale), 1).astype(np.int64)
    lim = np.maximum(np.floor(limits * scale), 1).astype(np.int64)
    return w, lim


Partitioner = Callable[[WeightedGraph, Nets | None, F64, F64, int], I64]


def _pymetis(g: WeightedGraph, nets: Nets | None, weights: F64, limits: F64, seed: int) -> I64:
    pymetis: Any = importlib.import_module("pymetis")
    k = limits.size
    opts = pymetis.Options(seed=seed)
    w, _ = _scaled_limits(weights, limits)
    result = pymetis.part_graph(
        k,
        pymetis.CSRAdjacency(g.indptr.tolist(), g.indices.tolist()),
        vweights=w.tolist(),
        eweights=_int_weights(g.data).tolist(),
        tpwgts=(limits / limits.sum()).tolist(),
        options=opts,
    )
    return np.asarray(result[1], dtype=np.int64)


_MT: dict[str, Any] = {}


def _mtkahypar(g: WeightedGraph, nets: Nets | None, weights: F64, limits: F64, seed: int) -> I64:
    mt: Any = importlib.import_module("mtkahypar")
    if "init" not in _MT:
        _MT["init"] = mt.initialize(1, False)  # one thread: the benchmark's budget is one core
    init = _MT["init"]
    k = limits.size
    ctx = init.context_from_preset(mt.PresetType.DEFAULT)
    objective = mt.Objective.KM1 if nets is not None else mt.Objective.CUT
    ctx.set_partitioning_parameters(k, 0.03, objective)
    w, lim = _scaled_limits(weights, limits)
    ctx.set_individual_target_block_weights(lim.tolist())
    ctx.logging = False
    mt.set_seed(seed)
    if nets is not None:
        hyper = [nets.pins[a:b].tolist() for a, b in zip(nets.ptr[:-1], nets.ptr[1:], strict=True)]
        graph = init.create_hypergraph(
            ctx, g.n, nets.m, hyper, w.tolist(), _int_weights(nets.w).tolist()
        )
    else:
        upper = g.indices > np.repeat(np.arange(g.n), np.diff(g.indptr))
        rows = np.repeat(np.arange(g.n), np.diff(g.indptr))[upper]
        edges = list(zip(rows.tolist(), g.indices[upper].tolist(), strict=True))
        graph = init.create_graph(
            ctx, g.n, len(edges), edges, w.tolist(), _int_weights(g.data[upper]).tolist()
        )
    part = graph.partition(ctx)
    return np.asarray(part.get_partition(), dtype=np.int64)


KAHYPAR_INI = """\
# KaHyPar settings for direct k-way partitioning of a graph's 2-pin nets (cut objective)
mode=direct
objective=km1
seed=-1
cmaxnet=-1
vcycles=0
p-use-sparsifier=false
p-detect-communities=true
p-detect-communities-in-ip=true
p-reuse-communities=false
p-max-louvain-pass-iterations=100
p-min-eps-improvement=0.0001
p-louvain-edge-weight=hybrid
c-type=ml_style
c-s=1
c-t=160
c-rating-score=heavy_edge
c-rating-use-communities=true
c-rating-heavy_node_penalty=no_penalty
c-rating-acceptance-criterion=best_prefer_unmatched
c-fixed-vertex-acceptance-criterion=fixed_vertex_allowed
i-mode=recursive
i-technique=multi
i-c-type=ml_style
i-c-s=1
i-c-t=150
i-c-rating-score=heavy_edge
i-c-rating-use-communities=true
i-c-rating-heavy_node_penalty=no_penalty
i-c-rating-acceptance-criterion=best_prefer_unmatched
i-c-fixed-vertex-acceptance-criterion=fixed_vertex_allowed
i-algo=pool
i-runs=20
i-bp-algorithm=worst_fit
i-bp-heuristic-prepacking=false
i-bp-early-restart=true
i-bp-late-restart=true
i-r-type=twoway_fm
i-r-runs=-1
i-r-fm-stop=simple
i-r-fm-stop-i=50
r-type=kway_fm_hyperflow_cutter_km1
r-runs=-1
r-fm-stop=adaptive_opt
r-fm-stop-alpha=1
r-fm-stop-i=350
r-flow-algorithm=ibfs
r-flow-alpha=16
r-flow-beta=128
r-flow-network=hybrid
r-flow-execution-policy=exponential
r-flow-use-most-balanced-minimum-cut=true
r-flow-use-adaptive-alpha-stopping-rule=true
r-flow-ignore-small-hyperedge-cut=true
r-flow-use-improvement-history=true
r-hfc-size-constraint=mf-style
r-hfc-scaling=16
r-hfc-distance-based-piercing=true
r-hfc-mbc=true
"""


def _kahypar(g: WeightedGraph, nets: Nets | None, weights: F64, limits: F64, seed: int) -> I64:
    import os
    import tempfile

    kahypar: Any = importlib.import_module("kahypar")
    k = limits.size
    if nets is None:
        upper = g.indices > np.repeat(np.arange(g.n), np.diff(g.indptr))
        rows = np.repeat(np.arange(g.n), np.diff(g.indptr))[upper]
        m = int(upper.sum())
        nets = Nets(
            np.arange(0, 2 * m + 1, 2, dtype=np.int64),
            np.stack([rows, g.indices[upper]], axis=1).reshape(-1),
            g.data[upper],
        )
    w, lim = _scaled_limits(weights, limits)
    hg = kahypar.Hypergraph(
        g.n,
        nets.m,
        nets.ptr.tolist(),
        nets.pins.tolist(),
        k,
        _int_weights(nets.w).tolist(),
        w.tolist(),
    )
    ctx = kahypar.Context()
    fd, path = tempfile.mkstemp(suffix=".ini", prefix="darwin-kahypar-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(KAHYPAR_INI)
        ctx.loadINIconfiguration(path)
    finally:
        os.unlink(path)
    ctx.setK(k)
    ctx.setEpsilon(0.03)
    ctx.setCustomTargetBlockWeights(lim.tolist())
    ctx.setSeed(seed)
    ctx.suppressOutput(True)
    kahypar.partition(hg, ctx)
    return np.array([hg.blockID(i) for i in range(g.n)], dtype=np.int64)


def _greedy(g: WeightedGraph, nets: Nets | None, weights: F64, limits: F64, seed: int) -> I64:
    """Graph growing: fill block after block from a seed vertex, always taking the unassigned
    vertex most strongly connected to the block being filled (ties: lowest index)."""
    n, k = g.n, limits.size
    part = np.full(n, -1, dtype=np.int64)
    # The block order is the limits' order; the last block takes whatever is left.
    # Seeds: the vertices of highest degree first; ``seed`` is unused (the method is exact).
    order = np.argsort(-np.diff(g.indptr), kind="stable")
    target = limits / limits.sum() * weights.sum()
    for b in range(k):
        free = np.flatnonzero(part < 0)
        if free.size == 0:
            break
        if b == k - 1:
            part[free] = b
            break
        load = 0.0
        conn: dict[int, float] = {}
        heap: list[tuple[float, int]] = []
        start = next(int(v) for v in order if part[v] < 0)
        heapq.heappush(heap, (0.0, start))
        while load < target[b]:
            while heap and (part[heap[0][1]] >= 0 or -heap[0][0] != conn.get(heap[0][1], 0.0)):
                heapq.heappop(heap)
            if not heap:
                rest = np.flatnonzero(part < 0)
                if rest.size == 0:
                    break
                v0 = int(rest[0])
                conn[v0] = 0.0
                heapq.heappush(heap, (0.0, v0))
                continue
            _, v = heapq.heappop(heap)
            if load + weights[v] > limits[b] and load > 0:
                break
            part[v] = b
            load += float(weights[v])
            for j in range(int(g.indptr[v]), int(g.indptr[v + 1])):
                u = int(g.indices[j])
                if part[u] < 0:
                    conn[u] = conn.get(u, 0.0) + float(g.data[j])
                    heapq.heappush(heap, (-conn[u], u))
    return part


PARTITIONERS: dict[str, tuple[str, Partitioner]] = {
    "mtkahypar": ("mtkahypar", _mtkahypar),
    "pymetis": ("pymetis", _pymetis),
    "kahypar": ("kahypar", _kahypar),
    "greedy": ("", _greedy),
}


def available(name: str) -> bool:
    module, _ = PARTITIONERS[name]
    if not module:
        return True
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def default_partitioner() -> str:
    return next(n for n in PARTITIONERS if available(n))


def run(
    name: str, g: WeightedGraph, weights: F64, limits: F64, seed: int, nets: Nets | None = None
) -> I64:
    """Blocks for the vertices; k = 1 and tiny graphs need no library."""
    if name not in PARTITIONERS:
        raise ValueError(f"unknown partitioner {name!r} (known: {', '.join(PARTITIONERS)})")
    k = limits.size
    if k == 1 or g.n == 0:
        return np.zeros(g.n, dtype=np.int64)
    if g.n <= k:
        part = np.zeros(g.n, dtype=np.int64)
        part[np.argsort(-weights)] = np.argsort(-limits)[: g.n]
        return part
    if weights.sum() > limits.sum():
        # Blocks that cannot hold everything: balance in proportion (the caller repairs).
        limits = limits * (weights.sum() / limits.sum())
    limits = limits * 1.001 + weights.max()
    _, fn = PARTITIONERS[name]
    part = fn(g, nets, weights, limits, seed)
    if part.shape != (g.n,) or part.min() < 0 or part.max() >= k:
        raise RuntimeError(f"partitioner {name} returned an invalid partition")
    return part
