"""An engine network as a model graph (pure), and the traffic its recorded spikes put across
a placement's boundaries.

Groups are tiles of ``tile`` consecutive neurons of one engine NeuronGroup (the layer). Virtual
inputs are fed from outside and not placed. An edge's spikes/s are the summed rates of the
source neurons having at least one synapse onto the target tile; each group's rate is its
neurons' mean. Rates come from spike counts of a run (``counts`` over ``seconds``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from darwin_dra.engine.network import Network
from darwin_dra.planner.graph import Edge, Group, ModelGraph

I64 = npt.NDArray[np.int64]


def tiles_of(net: Network, tile: int) -> I64:
    """The group index of every neuron (tiles never straddle two engine groups)."""
    if tile < 1:
        raise ValueError("tile must be at least 1 neuron")
    out = np.empty(net.n_neurons, dtype=np.int64)
    start = first = 0
    for g in net.groups:
        k = np.arange(g.count) // tile
        out[start : start + g.count] = first + k
        start += g.count
        first += int(k.max()) + 1 if g.count else 0
    return out


def model_graph_of(
    net: Network, counts: npt.ArrayLike, seconds: float, tile: int = 256
) -> ModelGraph:
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    rate = np.asarray(counts, dtype=np.float64)[: net.n_neurons] / seconds
    if rate.size != net.n_neurons:
        raise ValueError(f"{net.name}: need a spike count for each of {net.n_neurons} neurons")
    group = tiles_of(net, tile)
    n_groups = int(group.max()) + 1 if group.size else 0
    layer = np.repeat(np.arange(len(net.groups)), [g.count for g in net.groups])
    src = net.src.astype(np.int64)
    dst = net.dst.astype(np.int64)
    internal = (src < net.n_neurons) & (dst < net.n_neurons)
    src, dst = src[internal], dst[internal]
    syn_per_group = np.bincount(group[src], minlength=n_groups)
    # One spike stream per (source neuron, target group) pair.
    pair = np.unique(src * n_groups + group[dst])
    ps, pg = pair // n_groups, pair % n_groups
    key = group[ps] * n_groups + pg
    uk, inv = np.unique(key, return_inverse=True)
    spikes = np.bincount(inv, weights=rate[ps])
    count_syn = np.unique(group[src] * n_groups + group[dst], return_counts=True)
    syn_of = dict(zip(count_syn[0].tolist(), count_syn[1].tolist(), strict=True))
    _, first = np.unique(group, return_index=True)  # tiles are consecutive: one per group
    layer_of = layer[first]
    names = [f"{net.name}/g{layer_of[i]}/t{i}" for i in range(n_groups)]
    sizes = np.bincount(group, minlength=n_groups)
    rates = np.bincount(group, weights=rate, minlength=n_groups) / np.maximum(sizes, 1)
    groups = tuple(
        Group(
            names[i],
            f"g{layer_of[i]}",
            int(sizes[i]),
            int(syn_per_group[i]),
            float(rates[i]),
        )
        for i in range(n_groups)
    )
    edges = tuple(
        Edge(names[int(k // n_groups)], names[int(k % n_groups)], float(s), int(syn_of[int(k)]))
        for k, s in zip(uk.tolist(), spikes.tolist(), strict=True)
        if k // n_groups != k % n_groups
    )
    return ModelGraph(net.name, groups, edges)


def crossing_spikes(net: Network, counts: npt.ArrayLike, unit_of_neuron: I64) -> int:
    """Spikes that crossed into another unit (node, chip or domain): every recorded spike of a
    neuron counts once for each distinct unit other than its own that it has a synapse into."""
    c = np.asarray(counts, dtype=np.int64)[: net.n_neurons]
    src = net.src.astype(np.int64)
    dst = net.dst.astype(np.int64)
    internal = (src < net.n_neurons) & (dst < net.n_neurons)
    src, dst = src[internal], dst[internal]
    n_units = int(unit_of_neuron.max()) + 1
    pair = np.unique(src * n_units + unit_of_neuron[dst])
    ps, pu = pair // n_units, pair % n_units
    remote = pu != unit_of_neuron[ps]
    return int(c[ps[remote]].sum())
