"""A NIR graph compiled into an engine network (pure: no files, no engine).

Neuron nodes (LIF, IF, LI, CubaLIF, CubaLI, Threshold) become neuron groups; the linear nodes
between them (Affine, Linear, Scale, Conv1d, Conv2d, Flatten, SumPool2d, AvgPool2d, Delay) are
composed into one sparse projection per (source layer, target layer, delay) and become
synapses. Nested graphs are inlined. Timing: NIR has no time step, so `dt` (seconds) is a
parameter; a neuron layer at model step t runs at engine step t + depth (its latency: the engine
spends one step per zero-delay hop, and a Delay of d steps is d steps on the synapse). NIR is
ambiguous about reset, so `reset` is a parameter too. See docs/models.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from darwin_dra.engine.native import MAX_DELAY, MAX_GROUPS, MAX_NEURONS
from darwin_dra.engine.network import Kernel, Network, NeuronGroup, Reset
from darwin_dra.models.compiled import (
    DEFAULT_DT_S,
    DEFAULT_RESET,
    DEFAULT_WEIGHT_TOLERANCE,
    NEURONS,
    SUPPORTED,
    WEIGHT_LEVELS,
    CompiledModel,
    Layer,
    Projection,
)
from darwin_dra.models.errors import (
    LoopWithoutDelay,
    ModelError,
    ModelTooLarge,
    PrecisionError,
)
from darwin_dra.models.graph import Graph, inline_graph, node_kind
from darwin_dra.models.groups import check_f32, neuron_groups, neuron_params
from darwin_dra.models.linear import (
    Terms,
    add_terms,
    delay_steps,
    kernel_marks_of,
    kernel_of,
    node_map,
)
from darwin_dra.models.shapes import node_shapes, size_of

# The compiler's face; what a compiled model is lives in models/compiled.py.
__all__ = [
    "DEFAULT_DT_S",
    "DEFAULT_RESET",
    "DEFAULT_WEIGHT_TOLERANCE",
    "SUPPORTED",
    "CompiledModel",
    "Layer",
    "Projection",
    "compile_graph",
]

F64 = npt.NDArray[np.float64]


def compile_graph(
    graph: Any,
    *,
    dt: float = DEFAULT_DT_S,
    reset: Reset = DEFAULT_RESET,
    weight_tolerance: float = DEFAULT_WEIGHT_TOLERANCE,
    name: str = "model",
    seed: int = 1,
) -> CompiledModel:
    """Compiles a nir.NIRGraph. `dt` is the engine's time step in seconds, `reset` what a spike
    does to a spiking node's potential, `weight_tolerance` the largest RMS quantisation error
    of a layer's weights relative to their RMS (the engine holds 256 weights per network)."""
    model_name = name
    if not (isinstance(dt, float | int) and 0 < dt < math.inf):
        raise ModelError(f"dt {dt!r} s must be a positive number of seconds")
    # Only dt / tau (and r dt for IF) matter: a step longer than the engine's longest (10 ms),
    # such as the 1 "second" of a framework whose time unit is the step, runs as 1 ms engine
    # steps with every time constant scaled alike.
    engine_dt_ms = dt * 1000.0 if dt <= 0.01 else 1.0
    ms_per_s = engine_dt_ms / dt
    if node_kind(graph) != "NIRGraph":
        raise ModelError(f"the model is a {node_kind(graph)}, not a NIRGraph")
    g = Graph({}, {}, [])
    inline_graph(graph, "", g)
    inputs = [n for n, k in g.kinds.items() if k == "Input"]
    if not inputs:
        raise ModelError("the graph has no Input node")
    outputs = [n for n, k in g.kinds.items() if k == "Output"]
    if not outputs:
        raise ModelError("the graph has no Output node")
    shapes, geo = node_shapes(g)
    check_counts(g, shapes)
    sources = [n for n, k in g.kinds.items() if k == "Input" or k in NEURONS]
    is_source = set(sources)

    # compose the linear nodes in topological order
    linear = [n for n in g.nodes if n not in is_source]
    indeg = {n: sum(1 for p in g.preds(n) if p not in is_source) for n in linear}
    order: list[str] = []
    ready = [n for n in linear if indeg[n] == 0]
    while ready:
        cur = ready.pop(0)
        order.append(cur)
        for e_src, e_dst in g.edges:
            if e_src == cur and e_dst in indeg:
                indeg[e_dst] -= 1
                if indeg[e_dst] == 0:
                    ready.append(e_dst)
    if len(order) != len(linear):
        loop = sorted(n for n in linear if n not in order)
        raise LoopWithoutDelay(
            f"nodes {loop} form a loop without a neuron in it: the engine needs every loop to "
            "pass through a neuron layer and a Delay"
        )
    terms: dict[str, Terms] = {}
    biases: dict[str, F64 | None] = {}

    def incoming(name: str) -> tuple[Terms, F64 | None]:
        acc: Terms = {}
        bias: F64 | None = None
        for p in g.preds(name):
            if p in is_source:
                n = size_of(shapes[p])
                add_terms(
                    acc, {(p, 0): (sp.identity(n, format="csr", dtype=np.float64), frozenset())}
                )
            else:
                add_terms(acc, terms[p])
                pb = biases[p]
                if pb is not None:
                    bias = pb.copy() if bias is None else bias + pb
        return acc, bias

    for name in order:
        acc, bias = incoming(name)
        kind = g.kinds[name]
        if kind == "Delay":
            steps = delay_steps(name, g.nodes[name], dt)
            acc = {(s, d + steps): (m, via | {kind}) for (s, d), (m, via) in acc.items()}
        else:
            m, nb = node_map(g, name, shapes[g.preds(name)[0]], geo)
            if m is not None:
                acc = {k: ((m @ mm).tocsr(), via | {kind}) for k, (mm, via) in acc.items()}
                bias = None if bias is None else m @ bias
            elif kind in ("Flatten",):
                acc = {k: (mm, via | {kind}) for k, (mm, via) in acc.items()}
            if nb is not None:
                bias = nb if bias is None else bias + nb
        terms[name], biases[name] = acc, bias

    kernel_marks = kernel_marks_of(g, order, is_source, dt)

    # the layers: inputs and neuron nodes
    neuron_names = [n for n in sources if g.kinds[n] in NEURONS]
    layer_in: dict[str, tuple[Terms, F64 | None]] = {n: incoming(n) for n in neuron_names}
    for n in neuron_names:
        if not layer_in[n][0] and layer_in[n][1] is None:
            raise ModelError(f"node {n!r} ({g.kinds[n]}) receives nothing")

    # depths: depth(N) >= depth(S) + 1 - d for every term (S, d) of N; infeasible = a loop
    depth = dict.fromkeys(sources, 0)
    for _ in range(len(sources) + 1):
        changed = False
        for n in neuron_names:
            for s, d in layer_in[n][0]:
                want = depth[s] + 1 - d
                if want > depth[n]:
                    depth[n] = want
                    changed = True
        if not changed:
            break
    else:
        raise LoopWithoutDelay(_loop_message(layer_in))

    # per-layer weight scale and the engine's weight grid
    scale: dict[str, float] = {}
    for n in neuron_names:
        mx = max(
            (float(abs(m).max()) if m.nnz else 0.0 for m, _ in layer_in[n][0].values()), default=0.0
        )
        scale[n] = mx if mx > 0 else 1.0
    normalised = [
        m.data / scale[n] for n in neuron_names for m, _ in layer_in[n][0].values() if m.nnz
    ]
    all_w = np.concatenate(normalised) if normalised else np.zeros(0)
    exact = np.unique(all_w.astype(np.float32)).size <= 256

    def grid(w: F64) -> F64:
        return (
            w.astype(np.float32).astype(np.float64)
            if exact
            else np.round(w * WEIGHT_LEVELS) / WEIGHT_LEVELS
        )

    worst = 0.0
    for n in neuron_names:
        ws = [m.data / scale[n] for m, _ in layer_in[n][0].values() if m.nnz]
        if not ws:
            continue
        w = np.concatenate(ws)
        err = float(np.sqrt(np.mean((grid(w) - w) ** 2)) / max(np.sqrt(np.mean(w**2)), 1e-300))
        worst = max(worst, err)
        if err > weight_tolerance:
            nz = np.abs(w[w != 0])
            raise PrecisionError(
                f"layer {n!r}: its weights lose {100 * err:.1f}% (RMS) on the engine's grid of "
                f"{2 * WEIGHT_LEVELS + 1} levels (256 weights per network, scaled to each layer's "
                f"largest); the layer's weights span {nz.max() / nz.min():.3g}:1; the tolerance "
                f"is {100 * weight_tolerance:.1f}%"
            )

    # neuron ids, groups, synapses; layers in order of depth, then name (a file's node order,
    # alphabetical in HDF5, does not matter)
    neuron_names.sort(key=lambda n: (depth[n], n))
    inputs.sort()
    layers: list[Layer] = []
    groups: list[NeuronGroup] = []
    groups_of: dict[str, tuple[int, ...]] = {}
    first: dict[str, int] = {}
    nid = 0
    for n in neuron_names:
        count = size_of(shapes[n])
        first[n] = nid
        p = neuron_params(n, g.nodes[n], g.kinds[n], count)
        gs = neuron_groups(ms_per_s, n, g.kinds[n], p, count, scale[n], reset, depth[n], dt)
        groups_of[n] = tuple(range(len(groups), len(groups) + len(gs)))
        groups.extend(gs)
        layers.append(Layer(n, g.kinds[n], shapes[n], nid, count, depth[n]))
        nid += count
    if len(groups) > MAX_GROUPS:
        raise ModelTooLarge(
            f"the model needs {len(groups)} neuron groups (layers, split where parameters vary "
            f"along a layer); the engine holds {MAX_GROUPS}"
        )
    n_neurons = nid
    iid = 0
    for n in inputs:
        count = size_of(shapes[n])
        first[n] = n_neurons + iid
        layers.append(Layer(n, "Input", shapes[n], iid, count, 0))
        iid += count
    src_l, dst_l, w_l, d_l = [], [], [], []
    projections: list[Projection] = []
    bias = np.zeros(n_neurons, dtype=np.float64)
    kernels: list[Kernel] = []
    n_syn = 0
    for n in neuron_names:
        t, lb = layer_in[n]
        marks = kernel_marks(n)
        if lb is not None:
            bias[first[n] : first[n] + lb.size] = lb / scale[n]
        for (s, d), (m, via) in sorted(t.items()):
            coo = m.tocoo()
            w = grid(coo.data / scale[n])
            keep = w != 0
            delay = d + depth[n] - depth[s]
            if delay > MAX_DELAY:
                raise ModelError(
                    f"the projection {s!r} -> {n!r} needs a delay of {delay} steps; the engine "
                    f"holds at most {MAX_DELAY} (dt {dt} s)"
                )
            src_l.append(first[s] + coo.col[keep].astype(np.int64))
            dst_l.append(first[n] + coo.row[keep].astype(np.int64))
            w_l.append(w[keep])
            d_l.append(np.full(int(keep.sum()), delay, dtype=np.int64))
            projections.append(Projection(s, n, tuple(sorted(via)), int(keep.sum()), delay))
            conv = marks.get((s, d))
            if conv:  # the engine keeps these synapses once per kernel (it checks the count)
                layer_scale = scale[n]

                def engine_weights(kw: F64, sc: float = layer_scale) -> F64:
                    return grid(kw / sc)

                fields_ = kernel_of(g, conv, shapes, geo, engine_weights)
                kernels.append(
                    Kernel(
                        src_first=first[s],
                        dst_first=first[n],
                        delay=delay,
                        synapses=(n_syn, n_syn + int(keep.sum())),
                        **fields_,
                    )
                )
            n_syn += int(keep.sum())
    for layer in layers:
        for gi in groups_of.get(layer.name, ()):
            gr = groups[gi]
            for what, value in (("r", gr.r), ("w_in", gr.w_in), ("v_th", gr.v_th)):
                check_f32(layer.name, what, value)
    out_map: dict[str, str] = {}
    for o in outputs:
        t, ob = incoming(o)
        keys = list(t)
        if len(keys) != 1 or keys[0][1] != 0 or ob is not None or not _is_identity(t[keys[0]][0]):
            raise ModelError(
                f"Output {o!r} is not fed by a single neuron layer (through Flatten at most): "
                "the engine reads out neurons, so end the graph with a neuron node (LI or CubaLI "
                "for a linear readout)"
            )
        out_map[o] = keys[0][0]
    cat = np.concatenate
    net = Network(
        groups=tuple(groups),
        src=cat(src_l).astype(np.uint32) if src_l else np.zeros(0, np.uint32),
        dst=cat(dst_l).astype(np.uint32) if dst_l else np.zeros(0, np.uint32),
        weight=cat(w_l).astype(np.float32) if w_l else np.zeros(0, np.float32),
        delay=cat(d_l).astype(np.uint16) if d_l else np.zeros(0, np.uint16),
        n_inputs=iid,
        dt_ms=engine_dt_ms,
        seed=seed,
        name=model_name,
        bias=bias.astype(np.float32) if np.any(bias != 0) else None,
        kernels=tuple(kernels),
    )
    return CompiledModel(
        name=model_name,
        network=net,
        layers=tuple(layers),
        projections=tuple(projections),
        outputs=out_map,
        dt_s=float(dt),
        reset=reset,
        weight_scale=scale,
        weight_error=worst,
        groups_of=groups_of,
    )


def check_counts(g: Graph, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a model whose neurons or input lines outnumber what one engine network holds,
    before any matrix is built: an Input of shape (2^31,) would otherwise become a 2^31 x 2^31
    identity projection (tens of GB) on its way to the engine's refusal."""
    neurons = sorted(n for n, k in g.kinds.items() if k in NEURONS)
    inputs = sorted(n for n, k in g.kinds.items() if k == "Input")
    for what, names in (("neurons", neurons), ("input lines", inputs)):
        total = sum(size_of(shapes[n]) for n in names)
        if total > MAX_NEURONS:
            largest = max(names, key=lambda n: size_of(shapes[n]))
            raise ModelTooLarge(
                f"the model has {total} {what} (the largest layer, {largest!r}, has shape "
                f"{shapes[largest]}); one engine network holds at most {MAX_NEURONS}"
            )


def _is_identity(m: sp.csr_matrix) -> bool:
    if m.shape[0] != m.shape[1] or m.nnz != m.shape[0]:
        return False
    coo = m.tocoo()
    return bool(np.all(coo.row == coo.col) and np.all(coo.data == 1.0))


def _loop_message(layer_in: Mapping[str, tuple[Terms, Any]]) -> str:
    loops = sorted({f"{s!r} -> {n!r} (delay {d})" for n, (t, _) in layer_in.items() for s, d in t})
    return (
        "a recurrent loop has fewer steps of delay than neuron hops: the engine spends one step "
        "per hop, so every loop needs a Delay of at least one step per layer in it; projections: "
        + ", ".join(loops)
    )
