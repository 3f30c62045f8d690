"""A compiled model split into stages along its graph, so that the cuts carry few spikes (pure).

The planner's view of the model (``models.traffic.model_graph_tiles``: layers tiled into groups,
the estimated spikes per second between groups) is condensed into its strongly connected parts
(a loop is never cut) and ordered topologically. A split is then a cut of that order into
contiguous runs, one per engine stage, and a dynamic program finds the runs whose cuts carry the
fewest estimated spikes, each run within the stage capacity and the balance. Cutting a
topological order keeps the stage graph a DAG (fan-out where a layer feeds several stages,
fan-in where a stage reads several), which the stage runtime needs: a stage runs a step once
every upstream has finished it.

Besides the engine stages ``s0``, ``s1``..., a plan has an ``input`` stage (it sends the
model's input spikes to the stages that read them) and an ``output`` stage (it collects the
spikes of the model's spiking outputs), so where the input comes from and where the outputs go
are placeable like the rest. The plan's types and JSON are pipeline/splitplan.py's; one stage's
network (``extract_stage``) is pipeline/stagepart.py's; both are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.traffic import DEFAULT_RATE_HZ, model_graph_tiles
from darwin_dra.pipeline.cutorder import breadth_order, condense, cuts, depth_order
from darwin_dra.pipeline.splitplan import (
    INPUT,
    OUTPUT,
    PLAN_VERSION,
    ModelRef,
    SplitError,
    SplitPlan,
    StageEdge,
    StageSpec,
    model_digest,
)
from darwin_dra.pipeline.stagepart import (
    StagePart,
    check_plan,
    extract_stage,
    spiking_output_ids,
    stage_of_neurons,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# Default capacity of an engine stage: one darwin3 chip (profiles/darwin3.yaml: 575 cores of
# 4096 neurons, 1e8 synapses). The planner's topology decides the real partitions; this only
# bounds what one stage is asked to hold.
DEFAULT_STAGE_NEURONS = 575 * 4096
DEFAULT_STAGE_SYNAPSES = 100_000_000
# Planner groups the dynamic program orders: enough to cut a layer, few enough to stay fast.
TARGET_GROUPS = 512


def _rate_per_source(model: CompiledModel, rates: Mapping[str, float], default: float) -> F64:
    """Estimated spikes per second of each global source id (neurons, then model inputs)."""
    net = model.network
    out = np.full(net.n_neurons + net.n_inputs, default, np.float64)
    for layer in model.layers:
        base = layer.first + (net.n_neurons if layer.is_input else 0)
        out[base : base + layer.count] = rates.get(layer.name, default)
    return out


def plan_split(
    model: CompiledModel,
    stages: int | None = None,
    *,
    steps_per_s: float = 1000.0,
    rates_hz: Mapping[str, float] | None = None,
    default_rate_hz: float = DEFAULT_RATE_HZ,
    max_stage_neurons: int | None = None,
    max_stage_synapses: int | None = None,
    max_group_neurons: int | None = None,
) -> SplitPlan:
    """Splits the model into ``stages`` engine stages (None: the fewest that fit) whose cuts
    carry the fewest estimated spikes (rates from ``rates_hz`` per layer, else
    ``default_rate_hz``); KEPS are estimated at ``steps_per_s`` timesteps per second."""
    net = model.network
    if stages is not None and stages < 1:
        raise SplitError(f"stages must be >= 1, got {stages}")
    if not steps_per_s > 0 or not math.isfinite(steps_per_s):
        raise SplitError(f"steps_per_s must be a positive number, got {steps_per_s}")
    if net.n_neurons == 0:
        raise SplitError(f"model {model.name!r} has no neurons to split")
    for i, g in enumerate(net.groups):
        if g.poisson_rate_hz > 0:
            raise SplitError(
                f"group {i}: the engine's Poisson drive is drawn per neuron id, which the split "
                "renumbers; give the drive as the input stage's Poisson input instead"
            )
    cap_n = max_stage_neurons or DEFAULT_STAGE_NEURONS
    cap_s = max_stage_synapses or DEFAULT_STAGE_SYNAPSES
    rates = dict(rates_hz or {})
    tile = max_group_neurons or max(1, math.ceil(net.n_neurons / TARGET_GROUPS))
    graph, members = model_graph_tiles(
        model, max_group_neurons=tile, rates_hz=rates, default_rate_hz=default_rate_hz
    )
    names = [g.name for g in graph.groups]
    index = {n: i for i, n in enumerate(names)}
    n_groups = len(names)
    gid_of = np.full(net.n_neurons, -1, np.int64)
    for i, n in enumerate(names):
        gid_of[members[n]] = i
    esrc = np.array([index[e.source] for e in graph.edges], np.int64)
    edst = np.array([index[e.target] for e in graph.edges], np.int64)
    espk = np.array([e.spikes_per_s for e in graph.edges], np.float64)
    lab, m, succ, first = condense(n_groups, esrc, edst)
    neurons = np.bincount(lab, weights=[g.neurons for g in graph.groups], minlength=m)
    dst_group = gid_of[net.dst.astype(np.int64)]
    in_syn = np.bincount(lab[dst_group], minlength=m) if dst_group.size else np.zeros(m)
    n_parts = neurons.astype(np.int64)
    s_parts = in_syn.astype(np.int64)
    if n_parts.max(initial=0) > cap_n or s_parts.max(initial=0) > cap_s:
        worst = int(np.argmax(n_parts / cap_n + s_parts / cap_s))
        raise SplitError(
            f"model {model.name!r}: an unsplittable part (a loop, or a group of "
            f"{tile} neurons) holds {n_parts[worst]} neurons and {s_parts[worst]} synapses, "
            f"more than a stage's {cap_n} neurons and {cap_s} synapses"
        )
    if stages is None:
        least = max(1, math.ceil(n_parts.sum() / cap_n), math.ceil(s_parts.sum() / max(cap_s, 1)))
        candidates = range(least, m + 1)
    else:
        if stages > m:
            raise SplitError(
                f"model {model.name!r}: {stages} stages asked, but it has only {m} parts "
                f"to cut along (groups of {tile} neurons; loops are never cut)"
            )
        candidates = range(stages, stages + 1)
    # Cut two topological orders (layers in order; branches one after the other) and keep the
    # cheaper: any cut of a topological order is a DAG of stages.
    views = []
    for rank in (breadth_order(m, succ, first), depth_order(m, succ, first)):
        traffic = np.zeros((m, m))
        us, ud = rank[lab[esrc]], rank[lab[edst]]
        cross = us != ud
        np.add.at(traffic, (us[cross], ud[cross]), espk[cross])
        inv = np.argsort(rank)
        views.append((rank, traffic, n_parts[inv], s_parts[inv]))
    best: tuple[float, I64, list[int]] | None = None
    for k in candidates:
        for rank, traffic, n_ord, s_ord in views:
            got = cuts(traffic, n_ord, s_ord, k, cap_n, cap_s)
            if got is not None and (best is None or got[1] < best[0]):
                best = (got[1], rank, got[0])
        if best is not None:
            break
    if best is None:
        raise SplitError(
            f"model {model.name!r}: no split into {stages or 'any number of'} stages fits "
            f"{cap_n} neurons and {cap_s} synapses per stage"
        )
    _, rank, bounds = best
    stage_of_pos = np.zeros(m, np.int64)
    for j in range(len(bounds) - 1):
        stage_of_pos[bounds[j] : bounds[j + 1]] = j
    stage_of_group = stage_of_pos[rank[lab]]
    return _plan(
        model, graph.groups, members, stage_of_group, tile, steps_per_s, rates, default_rate_hz
    )


def split_at_layers(
    model: CompiledModel,
    layers: Sequence[Sequence[str]],
    *,
    steps_per_s: float = 1000.0,
    rates_hz: Mapping[str, float] | None = None,
    default_rate_hz: float = DEFAULT_RATE_HZ,
) -> SplitPlan:
    """A split the user gives: engine stage j holds the model layers ``layers[j]`` (every
    neuron layer named once), e.g. a split-learning model deployed with its training cut.
    Refused when a projection goes back a stage (the runtime needs a DAG)."""
    net = model.network
    names = [x.name for x in model.neuron_layers]
    stage_of_layer: dict[str, int] = {}
    for j, held in enumerate(layers):
        if not held:
            raise SplitError(f"split at layers: stage s{j} holds no layer")
        for name in held:
            if name not in names:
                raise SplitError(f"split at layers: no neuron layer {name!r} ({', '.join(names)})")
            if name in stage_of_layer:
                raise SplitError(f"split at layers: layer {name!r} named twice")
            stage_of_layer[name] = j
    if missing := [n for n in names if n not in stage_of_layer]:
        raise SplitError(f"split at layers: no stage holds layer(s) {', '.join(missing)}")
    tile = max(1, math.ceil(net.n_neurons / TARGET_GROUPS))
    graph, members = model_graph_tiles(model, max_group_neurons=tile)
    layer_of = np.zeros(net.n_neurons, np.int64)
    for x in model.neuron_layers:
        layer_of[x.first : x.first + x.count] = stage_of_layer[x.name]
    stage_of_group = np.array([layer_of[members[g.name][0]] for g in graph.groups], np.int64)
    src, dst = net.src.astype(np.int64), net.dst.astype(np.int64)
    inner = src < net.n_neurons
    back = layer_of[src[inner]] > layer_of[dst[inner]]
    if back.any():
        i = int(np.flatnonzero(back)[0])
        raise SplitError(
            f"split at layers: neuron {int(src[inner][i])} feeds neuron {int(dst[inner][i])} "
            "of an earlier stage"
        )
    rates = dict(rates_hz or {})
    return _plan(
        model, graph.groups, members, stage_of_group, tile, steps_per_s, rates, default_rate_hz
    )


def naive_split(
    model: CompiledModel,
    stages: int,
    *,
    steps_per_s: float = 1000.0,
    rates_hz: Mapping[str, float] | None = None,
    default_rate_hz: float = DEFAULT_RATE_HZ,
    max_group_neurons: int | None = None,
) -> SplitPlan:
    """The baseline a user of a black-box device plugin would write: the model's groups in
    neuron id order (layers in order) cut into ``stages`` runs of about equal neurons, blind
    to traffic. Refused when that order has a projection going back (the runtime needs a DAG)."""
    net = model.network
    tile = max_group_neurons or max(1, math.ceil(net.n_neurons / TARGET_GROUPS))
    graph, members = model_graph_tiles(model, max_group_neurons=tile)
    if stages < 1 or stages > len(graph.groups):
        raise SplitError(f"naive split: {stages} stages for {len(graph.groups)} groups")
    first = np.array([int(members[g.name].min()) for g in graph.groups])
    order = np.argsort(first, kind="stable")
    sizes = np.array([g.neurons for g in graph.groups])[order]
    cum = np.cumsum(sizes) - sizes / 2  # each group's middle neuron
    stage_in_order = np.minimum((cum * stages / sizes.sum()).astype(np.int64), stages - 1)
    stage_of_group = np.zeros(len(graph.groups), np.int64)
    stage_of_group[order] = stage_in_order
    index = {g.name: i for i, g in enumerate(graph.groups)}
    for e in graph.edges:
        if stage_of_group[index[e.source]] > stage_of_group[index[e.target]]:
            raise SplitError(f"naive split: {e.source} -> {e.target} goes back a stage")
    rates = dict(rates_hz or {})
    return _plan(
        model, graph.groups, members, stage_of_group, tile, steps_per_s, rates, default_rate_hz
    )


def _plan(
    model: CompiledModel,
    groups: Any,
    members: Mapping[str, I64],
    stage_of_group: I64,
    tile: int,
    steps_per_s: float,
    rates: Mapping[str, float],
    default_rate_hz: float,
) -> SplitPlan:
    net = model.network
    n = net.n_neurons
    k = int(stage_of_group.max()) + 1
    stage_of = np.full(n, -1, np.int64)
    for i, g in enumerate(groups):
        stage_of[members[g.name]] = stage_of_group[i]
    dt = model.dt_s
    rate = _rate_per_source(model, rates, default_rate_hz)
    src = net.src.astype(np.int64)
    dst = net.dst.astype(np.int64)
    tgt = stage_of[dst]
    # the input stage is index k, so a model input's "stage" is k
    src_stage = np.where(src < n, stage_of[np.minimum(src, max(n - 1, 0))], k)
    events = np.bincount(tgt, weights=rate[src] * dt, minlength=k)  # events per step
    names = [f"s{j}" for j in range(k)]
    specs = [StageSpec(INPUT, "input", 0, 0, 0)] if net.n_inputs else []
    for j in range(k):
        held = tuple(g.name for i, g in enumerate(groups) if stage_of_group[i] == j)
        specs.append(
            StageSpec(
                names[j],
                "engine",
                int((stage_of == j).sum()),
                int((tgt == j).sum()),
                math.ceil(events[j] * steps_per_s / 1000.0),
                held,
            )
        )
    outs = spiking_output_ids(model)
    if outs.size:
        specs.append(StageSpec(OUTPUT, "output", 0, 0, 0))
    edges: list[StageEdge] = []
    cut = src_stage != tgt
    pair = src_stage[cut] * (k + 1) + tgt[cut]
    for p in np.unique(pair).tolist():
        a, b = divmod(int(p), k + 1)
        sel = cut.copy()
        sel[cut] = pair == p
        senders = np.unique(src[sel])
        per_step = float(rate[senders].sum() * dt)
        edges.append(
            StageEdge(
                INPUT if a == k else names[a],
                names[b],
                per_step,
                per_step * steps_per_s,
                int(senders.size),
                int(sel.sum()),
            )
        )
    for j in range(k):
        mine = outs[stage_of[outs.astype(np.int64)] == j]
        if mine.size:
            per_step = float(rate[mine.astype(np.int64)].sum() * dt)
            edges.append(
                StageEdge(names[j], OUTPUT, per_step, per_step * steps_per_s, int(mine.size), 0)
            )
    ref = ModelRef(model.name, n, net.n_synapses, net.n_inputs, model_digest(model))
    return SplitPlan(ref, float(steps_per_s), tile, tuple(specs), tuple(edges))


__all__ = [
    "INPUT",
    "OUTPUT",
    "PLAN_VERSION",
    "ModelRef",
    "SplitError",
    "SplitPlan",
    "StageEdge",
    "StagePart",
    "StageSpec",
    "check_plan",
    "extract_stage",
    "model_digest",
    "naive_split",
    "plan_split",
    "spiking_output_ids",
    "split_at_layers",
    "stage_of_neurons",
]
