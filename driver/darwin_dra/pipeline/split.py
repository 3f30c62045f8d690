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
are placeable like the rest. ``extract_stage`` gives one stage's network: its neurons (in global
order, renumbered), their synapses, and one engine input per remote neuron or model input that
feeds it, with the delay of the cut synapse (the engine treats an injected spike for step s as
fired at s, so the delay is kept exactly). Wire ids on an edge are indices into the edge's
sorted list of global ids, which both ends derive from the plan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from darwin_dra.engine.network import Network
from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.traffic import DEFAULT_RATE_HZ, model_graph_tiles

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]

PLAN_VERSION = 1
INPUT = "input"
OUTPUT = "output"
# Default capacity of an engine stage: one darwin3 chip (profiles/darwin3.yaml: 575 cores of
# 4096 neurons, 1e8 synapses). The planner's topology decides the real partitions; this only
# bounds what one stage is asked to hold.
DEFAULT_STAGE_NEURONS = 575 * 4096
DEFAULT_STAGE_SYNAPSES = 100_000_000
# Planner groups the dynamic program orders: enough to cut a layer, few enough to stay fast.
TARGET_GROUPS = 512
# How far above an equal share a stage may be; relaxed step by step when nothing fits.
IMBALANCES = (0.25, 0.5, 1.0, 2.0, math.inf)


class SplitError(ValueError):
    """A model that cannot be split as asked, or a plan that does not fit the model."""


@dataclass(frozen=True)
class StageSpec:
    name: str
    kind: str  # "input", "engine" or "output"
    neurons: int
    synapses: int  # synapses onto the stage's neurons (the cut's are held at its inputs)
    keps: int  # estimated thousands of synaptic events per second at the plan's steps_per_s
    groups: tuple[str, ...] = ()  # the planner groups it holds (engine stages)


@dataclass(frozen=True)
class StageEdge:
    src: str
    dst: str
    spikes_per_step: float  # estimated
    spikes_per_s: float  # estimated, at the plan's steps_per_s
    neurons: int  # distinct global ids sent on this edge
    synapses: int  # synapses the edge feeds (0 into the output stage)


@dataclass(frozen=True)
class ModelRef:
    name: str
    neurons: int
    synapses: int
    inputs: int
    digest: str


def model_digest(model: CompiledModel) -> str:
    """A digest of the compiled network: a plan made for another model is refused."""
    net = model.network
    h = hashlib.sha256()
    h.update(f"{net.n_neurons}:{net.n_inputs}:{net.n_synapses}:{len(net.groups)}".encode())
    for col in (net.src, net.dst, net.delay, net.weight):
        h.update(np.ascontiguousarray(col).tobytes())
    for g in net.groups:
        h.update(repr(dataclasses.astuple(g)).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class SplitPlan:
    model: ModelRef
    steps_per_s: float
    max_group_neurons: int
    stages: tuple[StageSpec, ...]
    edges: tuple[StageEdge, ...]
    version: int = PLAN_VERSION

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise SplitError(f"the plan has no stage {name!r} (stages: {self.names()})")

    def names(self) -> str:
        return ", ".join(s.name for s in self.stages)

    def engine_stages(self) -> tuple[StageSpec, ...]:
        return tuple(s for s in self.stages if s.kind == "engine")

    def downstream(self, name: str) -> list[str]:
        return [e.dst for e in self.edges if e.src == name]

    def upstream(self, name: str) -> list[str]:
        return [e.src for e in self.edges if e.dst == name]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> SplitPlan:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SplitError(f"the plan is not JSON: {exc}") from exc
        return _plan_from(raw)


def _field(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if not isinstance(raw, Mapping) or key not in raw:
        raise SplitError(f"plan: {where} lacks {key!r}")
    value = raw[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise SplitError(f"plan: {where}.{key} must be {kind.__name__}, got {value!r}")
    return value


def _plan_from(raw: Any) -> SplitPlan:
    if not isinstance(raw, Mapping):
        raise SplitError("plan: the top level must be an object")
    version = _field(raw, "version", int, "plan")
    if version != PLAN_VERSION:
        raise SplitError(f"plan: version {version} is not {PLAN_VERSION}")
    m = _field(raw, "model", dict, "plan")
    model = ModelRef(
        _field(m, "name", str, "model"),
        _field(m, "neurons", int, "model"),
        _field(m, "synapses", int, "model"),
        _field(m, "inputs", int, "model"),
        _field(m, "digest", str, "model"),
    )
    stages = []
    for i, s in enumerate(_field(raw, "stages", list, "plan")):
        w = f"stages[{i}]"
        groups = _field(s, "groups", list, w)
        if not all(isinstance(g, str) for g in groups):
            raise SplitError(f"plan: {w}.groups must be strings")
        kind = _field(s, "kind", str, w)
        if kind not in ("input", "engine", "output"):
            raise SplitError(f"plan: {w}.kind {kind!r} is not input, engine or output")
        stages.append(
            StageSpec(
                _field(s, "name", str, w),
                kind,
                _field(s, "neurons", int, w),
                _field(s, "synapses", int, w),
                _field(s, "keps", int, w),
                tuple(groups),
            )
        )
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise SplitError(f"plan: stage names repeat: {names}")
    edges = []
    for i, e in enumerate(_field(raw, "edges", list, "plan")):
        w = f"edges[{i}]"
        edge = StageEdge(
            _field(e, "src", str, w),
            _field(e, "dst", str, w),
            _field(e, "spikes_per_step", float, w),
            _field(e, "spikes_per_s", float, w),
            _field(e, "neurons", int, w),
            _field(e, "synapses", int, w),
        )
        for end in (edge.src, edge.dst):
            if end not in names:
                raise SplitError(f"plan: {w} names unknown stage {end!r}")
        edges.append(edge)
    return SplitPlan(
        model,
        _field(raw, "steps_per_s", float, "plan"),
        _field(raw, "max_group_neurons", int, "plan"),
        tuple(stages),
        tuple(edges),
        version,
    )


# ---- the split ----


def _topological_units(n: int, src: I64, dst: I64) -> tuple[I64, int]:
    """Unit (strongly connected part, in a topological order) of each of n groups: the order
    puts the lowest group index first among the parts that are ready, so layer order wins."""
    if n == 0:
        return np.zeros(0, np.int64), 0
    adj = coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n)).tocsr()
    k, label = connected_components(adj, directed=True, connection="strong")
    lab = label.astype(np.int64)
    cs, cd = lab[src], lab[dst]
    keep = cs != cd
    pairs = np.unique(cs[keep] * k + cd[keep]) if keep.any() else np.zeros(0, np.int64)
    succ: list[list[int]] = [[] for _ in range(k)]
    indeg = np.zeros(k, np.int64)
    for p in pairs.tolist():
        a, b = divmod(p, k)
        succ[a].append(b)
        indeg[b] += 1
    first = np.full(k, n, np.int64)
    np.minimum.at(first, lab, np.arange(n, dtype=np.int64))
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
    return rank[lab], k


def _cuts(
    traffic: F64, neurons: I64, synapses: I64, k: int, cap_n: int, cap_s: int
) -> list[int] | None:
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
            return bounds[::-1]
    return None


def _rate_per_source(model: CompiledModel, rates: Mapping[str, float], default: float) -> F64:
    """Estimated spikes per second of each global source id (neurons, then model inputs)."""
    net = model.network
    out = np.full(net.n_neurons + net.n_inputs, default, np.float64)
    for layer in model.layers:
        base = layer.first + (net.n_neurons if layer.is_input else 0)
        out[base : base + layer.count] = rates.get(layer.name, default)
    return out


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
    unit_of, m = _topological_units(n_groups, esrc, edst)
    neurons = np.bincount(unit_of, weights=[g.neurons for g in graph.groups], minlength=m)
    dst_group = gid_of[net.dst.astype(np.int64)]
    in_syn = np.bincount(unit_of[dst_group], minlength=m) if dst_group.size else np.zeros(m)
    traffic = np.zeros((m, m))
    us, ud = unit_of[esrc], unit_of[edst]
    cross = us != ud
    np.add.at(traffic, (us[cross], ud[cross]), espk[cross])
    n_units = neurons.astype(np.int64)
    s_units = in_syn.astype(np.int64)
    if n_units.max(initial=0) > cap_n or s_units.max(initial=0) > cap_s:
        worst = int(np.argmax(n_units / cap_n + s_units / cap_s))
        raise SplitError(
            f"model {model.name!r}: an unsplittable part (a loop, or a group of "
            f"{tile} neurons) holds {n_units[worst]} neurons and {s_units[worst]} synapses, "
            f"more than a stage's {cap_n} neurons and {cap_s} synapses"
        )
    if stages is None:
        least = max(1, math.ceil(n_units.sum() / cap_n), math.ceil(s_units.sum() / max(cap_s, 1)))
        candidates = range(least, m + 1)
    else:
        if stages > m:
            raise SplitError(
                f"model {model.name!r}: {stages} stages asked, but it has only {m} parts "
                f"to cut along (groups of {tile} neurons; loops are never cut)"
            )
        candidates = range(stages, stages + 1)
    bounds = None
    for k in candidates:
        bounds = _cuts(traffic, n_units, s_units, k, cap_n, cap_s)
        if bounds is not None:
            break
    if bounds is None:
        raise SplitError(
            f"model {model.name!r}: no split into {stages or 'any number of'} stages fits "
            f"{cap_n} neurons and {cap_s} synapses per stage"
        )
    stage_of_unit = np.zeros(m, np.int64)
    for j in range(len(bounds) - 1):
        stage_of_unit[bounds[j] : bounds[j + 1]] = j
    stage_of_group = stage_of_unit[unit_of]
    return _plan(
        model, graph.groups, members, stage_of_group, tile, steps_per_s, rates, default_rate_hz
    )


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


# ---- one stage's part ----


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
