"""The planner's view of a compiled model (pure): each layer tiled into groups of at most
`max_group_neurons` neurons (spatial tiles across all channels for convolutional layers, so a
receptive field's locality shows as few edges), and the spikes per second between groups from
given or default firing rates."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from darwin_dra.models.compile import CompiledModel, Layer
from darwin_dra.planner.graph import Edge, Group, ModelGraph

I64 = npt.NDArray[np.int64]
DEFAULT_RATE_HZ = 10.0


def _tiles(layer: Layer, cap: int) -> list[I64]:
    """Neuron indices (within the layer) of each tile."""
    n = layer.count
    shape = layer.shape
    if len(shape) == 2:
        shape = (shape[0], 1, shape[1])
    if len(shape) != 3 or n <= cap:
        return [np.arange(a, min(a + cap, n), dtype=np.int64) for a in range(0, n, cap)]
    c, h, w = shape
    idx = np.arange(n, dtype=np.int64).reshape(c, h, w)
    if c > cap:  # channels alone overflow a group: split them, one pixel at a time
        chunks = [idx[a : a + cap] for a in range(0, c, cap)]
        return [ch[:, y, x].ravel() for y in range(h) for x in range(w) for ch in chunks]
    area = cap // c
    th = max(1, min(h, math.isqrt(area)))
    tw = max(1, min(w, area // th))
    return [
        idx[:, y : y + th, x : x + tw].ravel() for y in range(0, h, th) for x in range(0, w, tw)
    ]


def model_graph_tiles(
    model: CompiledModel,
    *,
    max_group_neurons: int,
    rates_hz: Mapping[str, float] | None = None,
    default_rate_hz: float = DEFAULT_RATE_HZ,
    include_inputs: bool = False,
) -> tuple[ModelGraph, dict[str, I64]]:
    """The graph and, per group, the engine ids of its neurons (inputs: n_neurons + input id)."""
    if max_group_neurons < 1:
        raise ValueError("max_group_neurons must be >= 1")
    rates = dict(rates_hz or {})
    unknown = set(rates) - {x.name for x in model.layers}
    if unknown:
        raise ValueError(f"rates given for layers the model does not have: {sorted(unknown)}")
    if any(r < 0 or not math.isfinite(r) for r in rates.values()):
        raise ValueError("firing rates must be finite and >= 0")
    net = model.network
    n_src = net.n_neurons + net.n_inputs
    gid = np.full(n_src, -1, dtype=np.int64)
    names: list[str] = []
    members: dict[str, I64] = {}
    layer_of: list[Layer] = []
    for layer in model.layers:
        if layer.is_input and not include_inputs:
            continue
        base = layer.first + (net.n_neurons if layer.is_input else 0)
        tiles = _tiles(layer, max_group_neurons)
        for k, t in enumerate(tiles):
            name = layer.name if len(tiles) == 1 else f"{layer.name}[{k}]"
            gid[base + t] = len(names)
            members[name] = base + t
            names.append(name)
            layer_of.append(layer)
    g_count = len(names)
    src = net.src.astype(np.int64)
    dst = net.dst.astype(np.int64)
    gs, gd = gid[src], gid[dst]
    keep = (gs >= 0) & (gd >= 0)
    pair = gs[keep] * g_count + gd[keep]
    syn_per_pair = np.bincount(pair, minlength=g_count * g_count) if pair.size else np.zeros(0)
    held = np.bincount(gs[gs >= 0], minlength=g_count) if g_count else np.zeros(0, np.int64)
    # distinct source neurons per (source group, target group)
    uniq = np.unique(pair * n_src + src[keep]) if pair.size else np.zeros(0, np.int64)
    senders = np.bincount(uniq // n_src, minlength=g_count * g_count) if uniq.size else None

    def rate(layer: Layer) -> float:
        return float(rates.get(layer.name, default_rate_hz))

    groups = tuple(
        Group(
            names[i], layer_of[i].name, int(members[names[i]].size), int(held[i]), rate(layer_of[i])
        )
        for i in range(g_count)
    )
    edges = []
    if senders is not None:
        for p in np.nonzero(syn_per_pair)[0]:
            a, b = divmod(int(p), g_count)
            edges.append(
                Edge(
                    names[a], names[b], float(senders[p]) * rate(layer_of[a]), int(syn_per_pair[p])
                )
            )
    return ModelGraph(model.name, groups, tuple(edges)), members


def model_graph(
    model: CompiledModel,
    *,
    max_group_neurons: int,
    rates_hz: Mapping[str, float] | None = None,
    default_rate_hz: float = DEFAULT_RATE_HZ,
    include_inputs: bool = False,
) -> ModelGraph:
    """Groups of at most max_group_neurons neurons; edges with estimated spikes/s (a layer's
    rate from rates_hz, else default_rate_hz) and synapse counts. Inputs become groups only
    with include_inputs (they hold no engine neurons)."""
    graph, _ = model_graph_tiles(
        model,
        max_group_neurons=max_group_neurons,
        rates_hz=rates_hz,
        default_rate_hz=default_rate_hz,
        include_inputs=include_inputs,
    )
    return graph
