"""The planner's flat view of a topology and a model: arrays of domains (bins) and of groups.

A placement is one bin index per group, in the graph's group order. Bins are ordered as the
topology lists them: node by node, chip by chip, domain by domain, which is also the order a
user of a black-box device plugin gets devices in (the naive baseline uses it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.planner.graph import ModelGraph
from darwin_dra.planner.topology import Topology

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

RESOURCES = ("neurons", "synapses", "keps")


@dataclass(frozen=True)
class Bins:
    """Every usable domain: node and chip indices, tile origin and free (neurons, synapses,
    keps); ``chip_names[c]`` is ``node/chip-N``."""

    node: I64
    chip: I64
    domain: I64
    x: I64
    y: I64
    cap: I64  # (bins, 3)
    node_names: tuple[str, ...]
    chip_names: tuple[str, ...]

    @property
    def size(self) -> int:
        return int(self.node.size)


def bins_of(topology: Topology) -> Bins:
    nodes = list(topology.nodes)
    rows: list[tuple[int, int, int, int, int, int, int, int]] = []
    chip_names = []
    for ci, c in enumerate(topology.chips):
        chip_names.append(c.name)
        for d in c.domains:
            rows.append((nodes.index(c.node), ci, d.index, d.x, d.y, d.neurons, d.synapses, d.keps))
    a = np.array(rows, dtype=np.int64).reshape(-1, 8)
    return Bins(
        node=a[:, 0].copy(),
        chip=a[:, 1].copy(),
        domain=a[:, 2].copy(),
        x=a[:, 3].copy(),
        y=a[:, 4].copy(),
        cap=a[:, 5:8].copy(),
        node_names=tuple(nodes),
        chip_names=tuple(chip_names),
    )


@dataclass(frozen=True)
class Groups:
    """A model graph as arrays: demand (neurons, synapses, keps) per group, spikes/s each
    group fires, and the directed edges (spikes/s, capped at what the source fires)."""

    demand: I64  # (groups, 3)
    out: F64
    src: I64
    dst: I64
    spikes: F64

    @property
    def size(self) -> int:
        return int(self.out.size)


def keps_of(rate_hz: float, synapses: int) -> int:
    """KEPS a group needs: the engine stores synapses at their source and delivers one event
    per synapse per spike, so a group's events/s are its rate times its synapses."""
    return int(np.ceil(rate_hz * synapses / 1000.0))


def groups_of(graph: ModelGraph) -> Groups:
    index = {g.name: i for i, g in enumerate(graph.groups)}
    demand = np.array(
        [(g.neurons, g.synapses, keps_of(g.rate_hz, g.synapses)) for g in graph.groups],
        dtype=np.int64,
    ).reshape(-1, 3)
    out = np.array([g.neurons * g.rate_hz for g in graph.groups], dtype=np.float64)
    src = np.array([index[e.source] for e in graph.edges], dtype=np.int64)
    dst = np.array([index[e.target] for e in graph.edges], dtype=np.int64)
    spikes = np.array([e.spikes_per_s for e in graph.edges], dtype=np.float64)
    if src.size:
        spikes = np.minimum(spikes, out[src])
    return Groups(demand, out, src, dst, spikes)
