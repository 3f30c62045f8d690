"""One stage's part of a split model (pure): its neurons (in global order, renumbered), their
synapses, and one engine input per remote neuron or model input that feeds it, with the delay
of the cut synapse (the engine treats an injected spike for step s as fired at s, so the delay
is kept exactly). Wire ids on an edge are indices into the edge's sorted list of global ids,
which both ends derive from the plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.engine.network import Network
from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.traffic import model_graph_tiles
from darwin_dra.pipeline.splitplan import INPUT, OUTPUT, SplitError, SplitPlan, model_digest

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]


def spiking_output_ids(model: CompiledModel) -> U32:
    """Global ids of the neurons the model's spiking Outputs read, ascending."""
    net = model.network
    ids: list[I64] = []
    for layer_name in sorted(set(model.outputs.values())):
        layer = model.layer(layer_name)
        group = net.groups[model.groups_of[layer.name][0]]
        if group.model.spiking:
            ids.append(np.arange(layer.first, layer.first + layer.count, dtype=np.int64))
    return np.unique(np.concatenate([np.zeros(0, np.int64), *ids])).astype(np.uint32)


def stage_of_neurons(model: CompiledModel, plan: SplitPlan) -> I64:
    """The engine stage index (into plan.engine_stages()) of every neuron."""
    net = model.network
    _, members = model_graph_tiles(model, max_group_neurons=plan.max_group_neurons)
    out = np.full(net.n_neurons, -1, np.int64)
    for j, s in enumerate(plan.engine_stages()):
        for g in s.groups:
            if g not in members:
                raise SplitError(f"plan: stage {s.name} names group {g!r} the model lacks")
            out[members[g]] = j
    if (out < 0).any():
        raise SplitError(f"plan: neuron {int(np.argmax(out < 0))} belongs to no stage")
    return out


@dataclass(frozen=True)
class StagePart:
    """One stage's share of the model. Ids on the wire are indices into ``sends[peer]`` (the
    sender) and ``receives[peer]`` (the receiver): the same sorted list of global ids (global
    neuron id, or n_neurons + input index for model inputs)."""

    name: str
    kind: str
    network: Network | None  # engine stages: neurons 0..L-1, inputs L..L+I-1
    neurons: U32  # global id of each local neuron, ascending
    inputs_from: U32  # global source id of each engine input, ascending
    sends: Mapping[str, U32]
    receives: Mapping[str, U32]


def check_plan(model: CompiledModel, plan: SplitPlan) -> None:
    net = model.network
    digest = model_digest(model)
    if plan.model.digest != digest:
        raise SplitError(
            f"plan is for model {plan.model.name!r} ({plan.model.neurons} neurons, digest "
            f"{plan.model.digest}), not for {model.name!r} ({net.n_neurons} neurons, digest "
            f"{digest})"
        )


def extract_stage(model: CompiledModel, plan: SplitPlan, name: str) -> StagePart:
    """The part of the model that stage ``name`` runs, sends and receives."""
    check_plan(model, plan)
    spec = plan.stage(name)
    net = model.network
    n = net.n_neurons
    engine = [s.name for s in plan.engine_stages()]
    stage_of = stage_of_neurons(model, plan)
    src = net.src.astype(np.int64)
    dst = net.dst.astype(np.int64)
    k = len(engine)
    src_stage = np.where(src < n, stage_of[np.minimum(src, max(n - 1, 0))], k)
    tgt = stage_of[dst]
    outs = spiking_output_ids(model).astype(np.int64)

    def feeds(a: int, b: int) -> U32:
        """Global ids that engine stage (or input, k) a sends to engine stage b."""
        sel = (src_stage == a) & (tgt == b)
        return np.unique(src[sel]).astype(np.uint32)

    def to_output(a: int) -> U32:
        mine: I64 = outs[stage_of[outs] == a]
        return mine.astype(np.uint32)

    def index(stage: str) -> int:
        return k if stage == INPUT else engine.index(stage)

    sends: dict[str, U32] = {}
    receives: dict[str, U32] = {}
    for peer in plan.downstream(name):
        out = peer == OUTPUT
        sends[peer] = to_output(index(name)) if out else feeds(index(name), index(peer))
    for peer in plan.upstream(name):
        out = name == OUTPUT
        receives[peer] = to_output(index(peer)) if out else feeds(index(peer), index(name))
    if spec.kind != "engine":
        empty = np.zeros(0, np.uint32)
        return StagePart(name, spec.kind, None, empty, empty, sends, receives)
    j = index(name)
    neurons = np.flatnonzero(stage_of == j).astype(np.uint32)
    sel = tgt == j
    s_src, s_dst = src[sel], dst[sel]
    local = (s_src < n) & (src_stage[sel] == j)
    inputs_from = np.unique(s_src[~local]).astype(np.uint32)
    nl = neurons.size
    new_src = np.where(
        local,
        np.searchsorted(neurons, s_src),
        nl + np.searchsorted(inputs_from, s_src),
    ).astype(np.uint32)
    new_dst = np.searchsorted(neurons, s_dst).astype(np.uint32)
    groups = []
    bounds = np.cumsum([0, *[g.count for g in net.groups]])
    for gi, g in enumerate(net.groups):
        c = int(((neurons >= bounds[gi]) & (neurons < bounds[gi + 1])).sum())
        if c:
            groups.append(dataclasses.replace(g, count=c))
    bias = None if net.bias is None else net.bias[neurons.astype(np.int64)].copy()
    part_net = Network(
        tuple(groups),
        new_src,
        new_dst,
        net.weight[sel].copy(),
        net.delay[sel].copy(),
        n_inputs=int(inputs_from.size),
        dt_ms=net.dt_ms,
        seed=net.seed,
        name=f"{model.name}-{name}",
        bias=bias,
    )
    return StagePart(name, "engine", part_net, neurons, inputs_from, sends, receives)


def route_map(model: CompiledModel, plan: SplitPlan, src: str, dst: str) -> tuple[U32, U32]:
    """The neuron map of the edge src -> dst as a chip's route carries it (ChipHost
    ProgramRoute): the source stage's local neuron and the destination stage's engine input of
    each id the edge carries, in the edge's order. Both must be engine stages."""
    a, b = extract_stage(model, plan, src), extract_stage(model, plan, dst)
    if a.kind != "engine" or b.kind != "engine":
        raise SplitError(f"a route joins two engine stages, not {a.kind} {src} and {b.kind} {dst}")
    if dst not in a.sends:
        raise SplitError(f"the plan has no edge {src} -> {dst}")
    space = a.sends[dst]
    neurons = np.searchsorted(a.neurons, space).astype(np.uint32)
    inputs = np.searchsorted(b.inputs_from, space).astype(np.uint32)
    return neurons, inputs
