"""Baselines measured in the same run as the planner (pure).

naive: layers in order onto devices in order, what a user of a black-box device plugin does:
the groups in the graph's order (layer by layer) fill the domains in the order the cluster
lists them (node by node, chip by chip, domain by domain), moving on when the next group does
not fit and never going back.

random: each group, in random order, onto a domain drawn uniformly among those it fits.
"""

from __future__ import annotations

import time

import numpy as np

from darwin_dra.planner.bins import bins_of, groups_of
from darwin_dra.planner.graph import ModelGraph
from darwin_dra.planner.place import CapacityError, Plan, check_fits
from darwin_dra.planner.topology import Topology


def naive(graph: ModelGraph, topology: Topology) -> Plan:
    t0, c0 = time.perf_counter(), time.process_time()
    groups = groups_of(graph)
    bins = bins_of(topology)
    check_fits(graph, groups, bins)
    assign = np.empty(groups.size, dtype=np.int64)
    room = bins.cap.copy()
    b = 0
    for i in range(groups.size):
        while b < bins.size and np.any(groups.demand[i] > room[b]):
            b += 1
        if b == bins.size:
            raise CapacityError(
                f"naive placement of {graph.name!r} ran out of domains at group "
                f"{graph.groups[i].name!r} ({i} of {groups.size} placed)"
            )
        assign[i] = b
        room[b] -= groups.demand[i]
    return Plan("naive", assign, time.perf_counter() - t0, time.process_time() - c0)


def random_placement(graph: ModelGraph, topology: Topology, seed: int = 1) -> Plan:
    t0, c0 = time.perf_counter(), time.process_time()
    groups = groups_of(graph)
    bins = bins_of(topology)
    check_fits(graph, groups, bins)
    rng = np.random.default_rng(seed)
    assign = np.empty(groups.size, dtype=np.int64)
    room = bins.cap.copy()
    for i in rng.permutation(groups.size):
        fits = np.flatnonzero(np.all(room >= groups.demand[i], axis=1))
        if fits.size == 0:
            raise CapacityError(
                f"random placement of {graph.name!r}: no domain left for group "
                f"{graph.groups[i].name!r}"
            )
        b = int(rng.choice(fits))
        assign[i] = b
        room[b] -= groups.demand[i]
    return Plan("random", assign, time.perf_counter() - t0, time.process_time() - c0)
