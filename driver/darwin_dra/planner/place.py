"""The planner: every group of a model graph onto one free domain, nodes first (pure).

Hierarchical, following the lexicographic objective (spikes across nodes, then across chips,
then spikes x hops on a chip's mesh):

1. nodes: take the fewest nodes whose free capacity holds the model with ``fill`` headroom
   (fewer nodes never force more cross-node traffic), split the groups among them with the
   library partitioner, then repair and refine with the real capacities (refine.py);
2. chips: the same inside each node, with the node's chips;
3. domains: inside each chip, recursive bisection of the chip's free domains along the mesh
   (the longer side first), so groups that talk end up in nearby domains; then a refinement
   whose cost is spikes x hops between the domains' origins.

A level never changes what the levels above decided, so cross-node traffic is fixed before
chips are considered, and so on. When a level cannot be made to fit (the blocks' capacities
add up but the groups do not pack), it takes one more node or chip and tries again.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.planner import partitioners
from darwin_dra.planner.bins import RESOURCES, Bins, Groups, bins_of, groups_of
from darwin_dra.planner.graph import ModelGraph
from darwin_dra.planner.multicast import refine_multicast
from darwin_dra.planner.packing import pack
from darwin_dra.planner.partitioners import (
    Nets,
    WeightedGraph,
    csr,
    multicast_nets,
    subgraph,
    subnets,
)
from darwin_dra.planner.refine import Infeasible, refine
from darwin_dra.planner.topology import Topology

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


HYPERGRAPH = frozenset({"mtkahypar", "kahypar"})  # given the multicast nets, km1 objective


class CapacityError(ValueError):
    """The model does not fit the free cluster; the message says what is missing where."""


@dataclass(frozen=True)
class Plan:
    method: str
    assign: I64  # bin index per group (graph order)
    seconds: float  # wall
    cpu_seconds: float = float("nan")  # of this process: above ``seconds`` means >1 core


def _fmt(x: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.0f}"


def check_fits(graph: ModelGraph, groups: Groups, bins: Bins) -> None:
    """Raise CapacityError unless the totals fit and every group fits some domain."""
    need = groups.demand.sum(axis=0)
    have = bins.cap.sum(axis=0)
    lines = []
    for r, name in enumerate(RESOURCES):
        if need[r] > have[r]:
            per_node = ", ".join(
                f"{n}: {_fmt(float(bins.cap[bins.node == i, r].sum()))}"
                for i, n in enumerate(bins.node_names)
            )
            lines.append(
                f"{name}: needs {_fmt(float(need[r]))}, the free cluster has "
                f"{_fmt(float(have[r]))}, {_fmt(float(need[r] - have[r]))} missing"
                f" ({per_node or 'no free domains'})"
            )
    if lines:
        raise CapacityError(
            f"model {graph.name!r} ({groups.size} groups) does not fit the free cluster:\n  "
            + "\n  ".join(lines)
        )
    biggest = bins.cap.max(axis=0) if bins.size else np.zeros(3, dtype=np.int64)
    for i, g in enumerate(graph.groups):
        for r, name in enumerate(RESOURCES):
            if groups.demand[i, r] > biggest[r]:
                raise CapacityError(
                    f"model {graph.name!r}: group {g.name!r} needs "
                    f"{_fmt(float(groups.demand[i, r]))} {name}, more than the largest free"
                    f" domain holds ({_fmt(float(biggest[r]))}); split its layer into smaller"
                    f" groups ({_fmt(float(groups.demand[i, r] - biggest[r]))} too many)"
                )


def _dominant(demand: I64, cap: I64) -> int:
    return int(np.argmax(demand.sum(axis=0) / np.maximum(cap.sum(axis=0), 1)))


def _choose(caps: I64, need: I64, fill: float) -> list[int]:
    """The fewest units (largest first) whose capacity holds ``need`` with headroom."""
    r = _dominant(need[None, :], caps)
    order = [int(i) for i in np.argsort(-caps[:, r], kind="stable")]
    chosen: list[int] = []
    total = np.zeros(caps.shape[1], dtype=np.float64)
    for i in order:
        chosen.append(i)
        total += caps[i]
        if np.all(total * fill >= need):
            break
    return sorted(chosen)


def _split(
    g: WeightedGraph, nets: Nets | None, demand: I64, caps: I64, partitioner: str, seed: int
) -> I64:
    """Blocks for the vertices of g within caps (partitioner, then our repair and refine).

    After a hypergraph partitioner our refinement only repairs capacities: its moves follow
    the graph's edge cut, which the km1 objective the library optimised already improves on.
    """
    r = _dominant(demand, caps)
    start = partitioners.run(
        partitioner, g, demand[:, r].astype(np.float64), caps[:, r].astype(np.float64), seed, nets
    )
    return refine(g, start, demand, caps, passes=0 if nets is not None else 6)


def _level(
    g: WeightedGraph,
    nets: Nets | None,
    members: I64,
    demand: I64,
    unit_caps: I64,
    partitioner: str,
    seed: int,
    fill: float,
    leaf_caps: list[I64],
) -> tuple[list[int], I64]:
    """Choose units and split members among them, adding a unit when the split cannot fit.

    The fewest units without headroom are taken instead of the ``fill`` choice when the
    members provably pack into those units' domains (best fit decreasing finds a packing)."""
    need = demand[members].sum(axis=0)
    chosen = _choose(unit_caps, need, fill)
    tight = _choose(unit_caps, need, 1.0)
    if (
        len(tight) < len(chosen)
        and pack(demand[members], np.concatenate([leaf_caps[i] for i in tight])) is not None
    ):
        chosen = tight
    sub = subgraph(g, members)
    sub_nets = subnets(nets, members, g.n) if nets is not None else None
    while True:
        try:
            return chosen, _split(
                sub, sub_nets, demand[members], unit_caps[chosen], partitioner, seed
            )
        except Infeasible:
            rest = [i for i in range(unit_caps.shape[0]) if i not in chosen]
            if not rest:
                raise
            chosen = sorted([*chosen, max(rest, key=lambda i: int(unit_caps[i].sum()))])


def _hops(bins: Bins, idx: I64) -> F64:
    x, y = bins.x[idx], bins.y[idx]
    out: F64 = (np.abs(x[:, None] - x[None, :]) + np.abs(y[:, None] - y[None, :])).astype(
        np.float64
    )
    return out


def _bisect(
    g: WeightedGraph,
    members: I64,
    demand: I64,
    bins: Bins,
    domains: I64,
    partitioner: str,
    seed: int,
    out: I64,
) -> None:
    """Recursive bisection of a chip's domains along the mesh; members are indices into g."""
    if domains.size == 1 or members.size == 0:
        out[members] = domains[0]
        return
    x, y = bins.x[domains], bins.y[domains]
    axis = x if np.ptp(x) >= np.ptp(y) else y
    order = np.argsort(axis, kind="stable")
    half = domains.size // 2
    parts = (domains[order[:half]], domains[order[half:]])
    caps = np.stack([bins.cap[p].sum(axis=0) for p in parts])
    sub = subgraph(g, members)
    r = _dominant(demand[members], caps)
    side = partitioners.run(
        partitioner,
        sub,
        demand[members, r].astype(np.float64),
        caps[:, r].astype(np.float64),
        seed,
    )
    with contextlib.suppress(Infeasible):  # if not, the chip-wide repair makes them fit
        side = refine(sub, side, demand[members], caps)
    for s in (0, 1):
        _bisect(g, members[side == s], demand, bins, parts[s], partitioner, seed, out)


def _compact_domains(bins: Bins, domains: I64, demand: I64, fill: float) -> I64:
    """The fewest of a chip's free domains that hold ``demand`` with headroom, as a compact
    block around the mesh corner nearest the free domains (fewer, closer domains: fewer
    hops); all of them when even all are tight."""
    x, y = bins.x[domains], bins.y[domains]
    order = np.lexsort((x, y, (x - x.min()) + (y - y.min())))
    total = np.cumsum(bins.cap[domains[order]], axis=0) * fill
    need = demand.sum(axis=0)
    enough = np.flatnonzero(np.all(total >= need, axis=1))
    k = int(enough[0]) + 1 if enough.size else domains.size
    picked: I64 = np.sort(domains[order[:k]])
    return picked


def _leaf_distance(bins: Bins, idx: I64) -> F64:
    """Hops on one chip; a chip or node boundary costs more than any path on a mesh."""
    hops = _hops(bins, idx)
    big = float(hops.max() + 1) * 1e3
    same_chip = bins.chip[idx][:, None] == bins.chip[idx][None, :]
    same_node = bins.node[idx][:, None] == bins.node[idx][None, :]
    return np.where(same_chip, hops, np.where(same_node, big, big * 1e3))


def place(
    graph: ModelGraph,
    topology: Topology,
    partitioner: str | None = None,
    seed: int = 1,
    fill: float = 0.9,
) -> Plan:
    """The planner's placement of ``graph`` on the free domains of ``topology``."""
    t0, c0 = time.perf_counter(), time.process_time()
    name = partitioner or partitioners.default_partitioner()
    groups = groups_of(graph)
    bins = bins_of(topology)
    check_fits(graph, groups, bins)
    n = groups.size
    g = csr(n, groups.src, groups.dst, groups.spikes)
    nets = (
        multicast_nets(n, groups.src, groups.dst, groups.spikes, groups.out)
        if name in HYPERGRAPH
        else None
    )
    # Inside a chip every partitioner's result is bisected the same way, by the fastest one.
    inner = "pymetis" if partitioners.available("pymetis") else "greedy"
    assign = np.full(n, -1, dtype=np.int64)
    node_ids = np.unique(bins.node)
    node_caps = np.stack([bins.cap[bins.node == i].sum(axis=0) for i in node_ids])
    everyone = np.arange(n, dtype=np.int64)
    node_leaves = [bins.cap[bins.node == i] for i in node_ids]
    chosen_nodes, node_part = _level(
        g, nets, everyone, groups.demand, node_caps, name, seed, fill, node_leaves
    )
    node_part = refine_multicast(
        groups, node_part, np.ones((n, len(chosen_nodes)), dtype=bool), node_caps[chosen_nodes]
    )
    # Chips: each node's groups split among its chips, then one multicast refinement over all
    # chosen chips, each group staying on its node.
    chip_of_unit: list[int] = []
    chip_part = np.full(n, -1, dtype=np.int64)
    for j, node_i in enumerate(chosen_nodes):
        on_node = everyone[node_part == j]
        chip_ids = np.unique(bins.chip[bins.node == node_ids[node_i]])
        chip_caps = np.stack([bins.cap[bins.chip == c].sum(axis=0) for c in chip_ids])
        chip_leaves = [bins.cap[bins.chip == c] for c in chip_ids]
        chosen_chips, local = _level(
            g, nets, on_node, groups.demand, chip_caps, name, seed, 1.0, chip_leaves
        )
        chip_part[on_node] = len(chip_of_unit) + local
        chip_of_unit += [int(chip_ids[c]) for c in chosen_chips]
    units = np.array(chip_of_unit, dtype=np.int64)
    unit_node = bins.node[np.searchsorted(bins.chip, units)]
    allowed = unit_node[None, :] == node_ids[np.array(chosen_nodes)][node_part][:, None]
    unit_caps = np.stack([bins.cap[bins.chip == c].sum(axis=0) for c in units])
    chip_part = refine_multicast(groups, chip_part, allowed, unit_caps)
    for u, chip in enumerate(units.tolist()):
        on_chip = everyone[chip_part == u]
        if on_chip.size == 0:
            continue
        domains = _compact_domains(
            bins, np.flatnonzero(bins.chip == chip), groups.demand[on_chip], fill
        )
        _bisect(g, on_chip, groups.demand, bins, domains, inner, seed, assign)
        local_of = {int(b): k for k, b in enumerate(domains)}
        start = np.array([local_of[int(b)] for b in assign[on_chip]], dtype=np.int64)
        sub = subgraph(g, on_chip)
        caps = bins.cap[domains]
        hops = _hops(bins, domains)
        try:
            best = refine(sub, start, groups.demand[on_chip], caps, hops)
        except Infeasible:
            # The bisection left a domain over and no single move fixes it: pack the chip's
            # groups afresh (best fit, largest first), then refine that.
            packed = pack(groups.demand[on_chip], caps)
            best = (
                start if packed is None else refine(sub, packed, groups.demand[on_chip], caps, hops)
            )
        assign[on_chip] = domains[best]
    _repair_globally(g, groups, bins, assign)
    return Plan(name, assign, time.perf_counter() - t0, time.process_time() - c0)


def _repair_globally(g: WeightedGraph, groups: Groups, bins: Bins, assign: I64) -> None:
    """Last resort when a chip's groups did not pack into its domains: move groups to other
    domains of the node, then of the cluster, at the least cost; CapacityError if none fits."""
    load = np.zeros_like(bins.cap)
    np.add.at(load, assign, groups.demand)
    if np.all(load <= bins.cap):
        return
    for node in np.unique(bins.node[assign]):
        # First within the node (cross-node traffic stays as planned): a move, else a repack.
        doms = np.flatnonzero(bins.node == node)
        members = np.flatnonzero(bins.node[assign] == node)
        mload = np.zeros((doms.size, 3), dtype=np.int64)
        local = np.searchsorted(doms, assign[members])
        np.add.at(mload, local, groups.demand[members])
        if np.all(mload <= bins.cap[doms]):
            continue
        sub = subgraph(g, members)
        dist = _leaf_distance(bins, doms)
        try:
            fixed = refine(sub, local, groups.demand[members], bins.cap[doms], dist, passes=1)
        except Infeasible:
            packed = pack(groups.demand[members], bins.cap[doms])
            if packed is None:
                continue
            fixed = refine(sub, packed, groups.demand[members], bins.cap[doms], dist, passes=1)
        assign[members] = doms[fixed]
    load = np.zeros_like(bins.cap)
    np.add.at(load, assign, groups.demand)
    if np.all(load <= bins.cap):
        return
    idx = np.arange(bins.size, dtype=np.int64)
    try:
        best = refine(g, assign, groups.demand, bins.cap, _leaf_distance(bins, idx), passes=1)
    except Infeasible as exc:
        b = exc.block
        raise CapacityError(
            f"the groups do not pack into the free domains: {bins.chip_names[bins.chip[b]]}"
            f" domain {bins.domain[b]} stays {_fmt(exc.excess)} {RESOURCES[exc.resource]} over"
            " with no domain left that takes a group; free more domains or make groups smaller"
        ) from None
    assign[:] = best
