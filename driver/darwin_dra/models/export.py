"""Engine networks back to NIR graphs: a compiled model (its layers, projections, scales and
timing) or a plain engine network (each group a LIF layer). Every projection becomes a Linear
(an Affine where the target has a bias) and, where the model-time delay is positive, a Delay;
the time step and reset mode travel in the graph's metadata (NIR has neither)."""

from __future__ import annotations

import math
from typing import Any

import nir
import numpy as np

from darwin_dra.engine.network import Model, Network, NeuronGroup, Reset
from darwin_dra.models.compile import CompiledModel, Layer, Projection
from darwin_dra.models.errors import ModelError

KIND = {
    Model.LIF: "LIF",
    Model.IF: "IF",
    Model.LI: "LI",
    Model.CUBA_LIF: "CubaLIF",
    Model.CUBA_LI: "CubaLI",
    Model.THRESHOLD: "Threshold",
}
RESETTING = (Model.LIF, Model.IF, Model.CUBA_LIF)  # Threshold fires but keeps v = x
META_DT = "darwin_dra_dt_s"
META_RESET = "darwin_dra_reset"


def _per_neuron(groups: list[NeuronGroup], fn: Any) -> np.ndarray:
    return np.concatenate([np.full(g.count, fn(g), dtype=np.float64) for g in groups])


def _neuron_node(layer: Layer, groups: list[NeuronGroup], scale: float, ms_per_s: float) -> Any:
    model = groups[0].model
    if any(g.model is not model for g in groups):
        raise ModelError(f"layer {layer.name!r} mixes neuron models")
    cuba = model in (Model.CUBA_LIF, Model.CUBA_LI)

    def col(fn: Any) -> np.ndarray:
        return _per_neuron(groups, fn)

    tau = col(lambda g: g.tau_m / ms_per_s)
    if model is Model.THRESHOLD:
        return nir.Threshold(threshold=col(lambda g: g.v_th * scale))
    r = col(lambda g: g.r / scale if not cuba else g.r)
    v_leak, v_th, v_reset = col(lambda g: g.e_l), col(lambda g: g.v_th), col(lambda g: g.v_reset)
    if model is Model.LIF:
        return nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=v_th, v_reset=v_reset)
    if model is Model.LI:
        return nir.LI(tau=tau, r=r, v_leak=v_leak)
    if model is Model.IF:
        return nir.IF(r=r * ms_per_s, v_threshold=v_th, v_reset=v_reset)
    tau_syn = col(lambda g: g.tau_syn / ms_per_s)
    w_in = col(lambda g: g.w_in / scale)
    if model is Model.CUBA_LIF:
        return nir.CubaLIF(
            tau_mem=tau,
            tau_syn=tau_syn,
            r=r,
            v_leak=v_leak,
            v_threshold=v_th,
            v_reset=v_reset,
            w_in=w_in,
        )
    return nir.CubaLI(tau_mem=tau, tau_syn=tau_syn, r=r, v_leak=v_leak, w_in=w_in)


def to_nir(model: CompiledModel) -> Any:
    """The NIR graph of a compiled model; reading it back compiles to the same network."""
    net = model.network
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    resets = {g.reset for g in net.groups if g.model in RESETTING}
    if len(resets) > 1:
        raise ModelError("NIR carries one reset mode per graph; the network mixes both")
    ends: dict[str, str] = {}  # layer -> the node its spikes (or inputs) leave from
    for layer in model.inputs:
        name = layer.name
        nodes[name] = nir.Input(input_type={"input": np.array(layer.shape)})
        ends[name] = name
        if len(layer.shape) > 1:
            nodes[f"{name}.flat"] = nir.Flatten(
                input_type={"input": np.array(layer.shape)}, start_dim=0, end_dim=-1
            )
            edges.append((name, f"{name}.flat"))
            ends[name] = f"{name}.flat"
    for layer in model.neuron_layers:
        groups = [net.groups[i] for i in model.groups_of[layer.name]]
        ms_per_s = net.dt_ms / model.dt_s
        nodes[layer.name] = _neuron_node(layer, groups, model.weight_scale[layer.name], ms_per_s)
        ends[layer.name] = layer.name
    bias = net.bias
    biased: set[str] = set()
    by_layer = {x.name: x for x in model.layers}
    src_layer = _owner(model, net.src, sources=True)
    dst_layer = _owner(model, net.dst, sources=False)
    for k, p in enumerate(model.projections):
        s, t = by_layer[p.source], by_layer[p.target]
        sel = (src_layer == s.name) & (dst_layer == t.name) & (net.delay == p.delay)
        w = np.zeros((t.count, s.count))
        src0 = s.first + (net.n_neurons if s.is_input else 0)
        np.add.at(w, (net.dst[sel] - t.first, net.src[sel] - src0), net.weight[sel])
        w *= model.weight_scale[t.name]
        name = f"proj{k}.{s.name}->{t.name}"
        if bias is not None and t.name not in biased:
            b = bias[t.first : t.first + t.count].astype(np.float64) * model.weight_scale[t.name]
            nodes[name] = nir.Affine(weight=w, bias=b)
            biased.add(t.name)
        else:
            nodes[name] = nir.Linear(weight=w)
        edges.append((ends[s.name], name))
        delay = p.delay - t.depth + s.depth
        if delay > 0:
            nodes[f"{name}.delay"] = nir.Delay(delay=np.full(t.count, delay * model.dt_s))
            edges.append((name, f"{name}.delay"))
            name = f"{name}.delay"
        edges.append((name, t.name))
    for out, layer_name in model.outputs.items():
        nodes[out] = nir.Output(output_type={"output": np.array([by_layer[layer_name].count])})
        edges.append((layer_name, out))
    meta = {META_DT: model.dt_s, META_RESET: (resets.pop() if resets else model.reset).name}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


def _owner(model: CompiledModel, ids: np.ndarray, *, sources: bool) -> np.ndarray:
    owner = np.empty(ids.shape, dtype=object)
    n = model.network.n_neurons
    for layer in model.layers:
        if layer.is_input and not sources:
            continue
        lo = layer.first + (n if layer.is_input else 0)
        owner[(ids >= lo) & (ids < lo + layer.count)] = layer.name
    return owner


def _sel(src: np.ndarray, dst: np.ndarray, net: Network, a: str, b: str, d: int) -> np.ndarray:
    return (src == a) & (dst == b) & (net.delay == d)  # type: ignore[no-any-return]


def from_network(net: Network) -> CompiledModel:
    """A plain engine network as a compiled model: each iaf_psc_delta group a LIF layer with
    r = 1 / (1 - exp(-dt / tau_m)), so a weight w moves v by w as iaf_psc_delta does. What NIR
    cannot say (i_e, refractoriness, the Poisson drive) is refused."""
    groups: list[NeuronGroup] = []
    layers: list[Layer] = []
    groups_of: dict[str, tuple[int, ...]] = {}
    first = 0
    for i, g in enumerate(net.groups):
        name = f"group{i}"
        if g.model is Model.IAF_PSC_DELTA:
            if g.i_e or g.t_ref or g.poisson_rate_hz or g.poisson_weight:
                raise ModelError(
                    f"group {i}: i_e, t_ref and the Poisson drive of iaf_psc_delta have no NIR "
                    "node; set them to 0 to export"
                )
            a = math.exp(-net.dt_ms / g.tau_m)
            g = NeuronGroup.nir(
                Model.LIF,
                g.count,
                tau_m=g.tau_m,
                r=1.0 / (1.0 - a),
                v_th=g.v_th,
                v_reset=g.v_reset,
                e_l=g.e_l,
                v_init=g.v_init,
            )
        groups.append(g)
        groups_of[name] = (i,)
        layers.append(Layer(name, KIND[g.model], (g.count,), first, g.count, 0))
        first += g.count
    if net.n_inputs:
        layers.append(Layer("input", "Input", (net.n_inputs,), 0, net.n_inputs, 0))
    tmp = CompiledModel(
        name=net.name,
        network=net,
        layers=tuple(layers),
        projections=(),
        outputs={},
        dt_s=net.dt_ms / 1000.0,
        reset=Reset.VALUE,
        weight_scale={x.name: 1.0 for x in layers},
        weight_error=0.0,
        groups_of=groups_of,
    )
    src_layer, dst_layer = _owner(tmp, net.src, sources=True), _owner(tmp, net.dst, sources=False)
    keys = sorted(
        {(str(a), str(b), int(d)) for a, b, d in zip(src_layer, dst_layer, net.delay, strict=True)}
    )
    projections = tuple(
        Projection(
            a,
            b,
            ("Linear",),
            int(np.sum((src_layer == a) & (dst_layer == b) & (net.delay == d))),
            d,
        )
        for a, b, d in keys
    )
    feeding = {a for a, _, _ in keys}
    neurons = [x for x in layers if not x.is_input]
    sinks = [x for x in neurons if x.name not in feeding] or neurons  # every group, if all feed
    outputs = {f"output.{x.name}": x.name for x in sinks}
    plain = Network(
        groups=tuple(groups),
        src=net.src,
        dst=net.dst,
        weight=net.weight,
        delay=net.delay,
        n_inputs=net.n_inputs,
        dt_ms=net.dt_ms,
        seed=net.seed,
        name=net.name,
        bias=net.bias,
    )
    return CompiledModel(
        name=net.name,
        network=plain,
        layers=tuple(layers),
        projections=projections,
        outputs=outputs,
        dt_s=net.dt_ms / 1000.0,
        reset=Reset.VALUE,
        weight_scale={x.name: 1.0 for x in layers},
        weight_error=0.0,
        groups_of=groups_of,
    )
