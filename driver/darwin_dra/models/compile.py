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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from darwin_dra.engine.network import Kernel, Model, Network, NeuronGroup, Reset
from darwin_dra.models.errors import (
    LoopWithoutDelay,
    ModelError,
    ModelTooLarge,
    PrecisionError,
    ShapeMismatch,
    UnsupportedNode,
)

F64 = npt.NDArray[np.float64]

NEURONS: dict[str, Model] = {
    "LIF": Model.LIF,
    "IF": Model.IF,
    "LI": Model.LI,
    "CubaLIF": Model.CUBA_LIF,
    "CubaLI": Model.CUBA_LI,
    "Threshold": Model.THRESHOLD,
}
LINEAR = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d")
SUPPORTED = ("Input", "Output", *LINEAR, "Delay", *NEURONS, "NIRGraph")
PASS = "Identity"  # a nested graph's own Input and Output nodes: pass-through

DEFAULT_DT_S = 1e-4  # snnTorch's export assumes it (tau = dt / (1 - beta)); Norse uses 1e-3
DEFAULT_RESET = Reset.VALUE  # the NIR definition: v <- v_reset
DEFAULT_WEIGHT_TOLERANCE = 0.02
WEIGHT_LEVELS = 127  # weights on the grid k/127 of a layer's largest, |k| <= 127: 255 entries
MAX_GROUPS = 64  # DK_MAX_GROUPS
MAX_DELAY = 255  # DK_MAX_DELAY


@dataclass(frozen=True)
class Layer:
    """A population of the compiled model: an Input (engine input ids) or a neuron node."""

    name: str
    kind: str  # the NIR node type
    shape: tuple[int, ...]
    first: int  # first neuron id, or first input id for an Input
    count: int
    depth: int  # engine steps behind model time

    @property
    def is_input(self) -> bool:
        return self.kind == "Input"


@dataclass(frozen=True)
class Projection:
    """The synapses from one layer to another at one delay, and the node types they came from."""

    source: str
    target: str
    via: tuple[str, ...]
    synapses: int
    delay: int  # engine steps


@dataclass(frozen=True)
class CompiledModel:
    name: str
    network: Network
    layers: tuple[Layer, ...]
    projections: tuple[Projection, ...]
    outputs: Mapping[str, str]  # Output node -> the layer it reads
    dt_s: float
    reset: Reset
    weight_scale: Mapping[str, float]  # per layer: engine weights are the model's divided by it
    weight_error: float  # largest relative RMS weight quantisation error of a layer
    groups_of: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # layer -> groups

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def inputs(self) -> tuple[Layer, ...]:
        return tuple(x for x in self.layers if x.is_input)

    @property
    def neuron_layers(self) -> tuple[Layer, ...]:
        return tuple(x for x in self.layers if not x.is_input)

    @property
    def latency(self) -> int:
        """Engine steps from an input spike to the outputs' matching step."""
        return max((self.layer(v).depth for v in self.outputs.values()), default=0)


# ---- the graph, inlined ----


@dataclass
class _Graph:
    nodes: dict[str, Any]
    kinds: dict[str, str]
    edges: list[tuple[str, str]]

    def preds(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]


def _kind(node: Any) -> str:
    return type(node).__name__


def _inline(graph: Any, prefix: str, g: _Graph) -> None:
    for name, node in graph.nodes.items():
        full = prefix + name
        kind = _kind(node)
        if kind == "NIRGraph":
            _inline(node, full + ".", g)
            continue
        if kind not in SUPPORTED:
            raise UnsupportedNode(
                f"node {full!r} is of type {kind}, which the engine does not run; supported: "
                + ", ".join(SUPPORTED)
            )
        g.nodes[full] = node
        g.kinds[full] = PASS if prefix and kind in ("Input", "Output") else kind

    def end(name: str, as_source: bool) -> str:
        full = prefix + name
        if full in g.nodes:
            return full
        node = graph.nodes.get(name)
        if node is not None and _kind(node) == "NIRGraph":
            want = "Output" if as_source else "Input"
            ends = [k for k, v in node.nodes.items() if _kind(v) == want]
            if len(ends) != 1:
                raise ModelError(
                    f"subgraph {full!r}: an edge {'from' if as_source else 'into'} it needs "
                    f"exactly one {want} node, it has {len(ends)}"
                )
            return f"{full}.{ends[0]}"
        raise ModelError(
            f"an edge of graph {prefix[:-1] or '(top)'!r} names node {full!r}, which does not exist"
        )

    for a, b in graph.edges:
        g.edges.append((end(str(a), True), end(str(b), False)))


# ---- shapes ----


def _ints(value: Any, n: int, what: str, node: str) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise ShapeMismatch(f"node {node!r}: {what} has {arr.size} values, {n} expected")
    return tuple(int(x) for x in arr)


def _param_shape(node: Any, kind: str) -> tuple[int, ...]:
    key = {"Threshold": "threshold", "IF": "r", "LI": "tau", "LIF": "tau"}.get(kind, "tau_mem")
    return tuple(int(x) for x in np.shape(getattr(node, key)))


def _conv_geometry(
    name: str, node: Any, kind: str, shape: tuple[int, ...]
) -> tuple[tuple[int, ...], dict[str, Any]]:
    w = np.asarray(node.weight)
    nd = 1 if kind == "Conv1d" else 2
    if w.ndim != nd + 2:
        raise ShapeMismatch(
            f"node {name!r} ({kind}): weight has {w.ndim} dimensions, {nd + 2} expected"
        )
    if len(shape) != nd + 1:
        raise ShapeMismatch(
            f"node {name!r} ({kind}): input of shape {shape}, expected (channels, "
            + ("length)" if nd == 1 else "height, width)")
        )
    groups = int(np.asarray(node.groups))
    c_out, c_in_g = w.shape[0], w.shape[1]
    if groups < 1 or c_out % groups or shape[0] != c_in_g * groups:
        raise ShapeMismatch(
            f"node {name!r} ({kind}): {shape[0]} input channels do not fit a weight of shape "
            f"{w.shape} with {groups} groups"
        )
    stride = _ints(node.stride, nd, "stride", name)
    dil = _ints(node.dilation, nd, "dilation", name)
    kern = w.shape[2:]
    pad_arg = node.padding
    if isinstance(pad_arg, bytes):
        pad_arg = pad_arg.decode()
    if isinstance(pad_arg, str):
        if pad_arg == "valid":
            pad = (0,) * nd
        elif pad_arg == "same":
            if any(s != 1 for s in stride):
                raise ModelError(f"node {name!r} ({kind}): padding 'same' needs stride 1")
            pad = tuple(d * (k - 1) // 2 for d, k in zip(dil, kern, strict=True))
        else:
            raise ModelError(
                f"node {name!r} ({kind}): padding {pad_arg!r} is not same, valid or a number"
            )
    else:
        pad = _ints(pad_arg, nd, "padding", name)
    out = tuple(
        (shape[1 + i] + 2 * pad[i] - dil[i] * (kern[i] - 1) - 1) // stride[i] + 1 for i in range(nd)
    )
    if any(o < 1 for o in out) or any(s < 1 for s in stride) or any(d < 1 for d in dil):
        raise ShapeMismatch(
            f"node {name!r} ({kind}): input {shape} is too small for the kernel {kern}"
        )
    geo = {"stride": stride, "dil": dil, "pad": pad, "groups": groups, "out": out}
    return (c_out, *out), geo


def _pool_geometry(
    name: str, node: Any, shape: tuple[int, ...]
) -> tuple[tuple[int, ...], dict[str, Any]]:
    if len(shape) != 3:
        raise ShapeMismatch(
            f"node {name!r}: input of shape {shape}, expected (channels, height, width)"
        )
    kern = _ints(node.kernel_size, 2, "kernel_size", name)
    stride = _ints(node.stride if node.stride is not None else node.kernel_size, 2, "stride", name)
    pad = _ints(node.padding if node.padding is not None else 0, 2, "padding", name)
    out = tuple((shape[1 + i] + 2 * pad[i] - kern[i]) // stride[i] + 1 for i in range(2))
    if any(o < 1 for o in out) or any(k < 1 for k in kern) or any(s < 1 for s in stride):
        raise ShapeMismatch(f"node {name!r}: input {shape} is too small for the kernel {kern}")
    return (shape[0], *out), {"kern": kern, "stride": stride, "pad": pad, "out": out}


def _size(shape: Iterable[int]) -> int:
    return int(np.prod(tuple(shape), dtype=np.int64))


def _out_shape(
    g: _Graph, name: str, shape: tuple[int, ...], geo: dict[str, dict[str, Any]]
) -> tuple[int, ...]:
    node, kind = g.nodes[name], g.kinds[name]
    n = _size(shape)
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight)
        if w.ndim != 2 or w.shape[1] != n:
            raise ShapeMismatch(
                f"node {name!r} ({kind}): weight of shape {w.shape} cannot take an input of "
                f"{n} values (shape {shape})"
            )
        if kind == "Affine" and np.shape(node.bias) not in ((w.shape[0],), ()):
            raise ShapeMismatch(
                f"node {name!r} (Affine): bias of shape {np.shape(node.bias)}, "
                f"({w.shape[0]},) expected"
            )
        return (int(w.shape[0]),)
    if kind == "Scale":
        s = np.asarray(node.scale)
        if s.size not in (1, n):
            raise ShapeMismatch(f"node {name!r} (Scale): {s.size} factors for {n} inputs")
        return shape
    if kind in ("Conv1d", "Conv2d"):
        out, geo[name] = _conv_geometry(name, node, kind, shape)
        return out
    if kind in ("SumPool2d", "AvgPool2d"):
        out, geo[name] = _pool_geometry(name, node, shape)
        return out
    if kind == "Flatten":
        nd = len(shape)
        start, stop = int(node.start_dim), int(node.end_dim)
        start, stop = start + nd if start < 0 else start, stop + nd if stop < 0 else stop
        if not 0 <= start <= stop < max(nd, 1):
            return (n,)
        return (*shape[:start], _size(shape[start : stop + 1]), *shape[stop + 1 :])
    if kind == "Delay":
        d = np.asarray(node.delay)
        if d.size not in (1, n):
            raise ShapeMismatch(f"node {name!r} (Delay): {d.size} delays for {n} inputs")
        return shape
    if kind in NEURONS:
        p = _param_shape(node, kind)
        if _size(p) not in (1, n):
            raise ShapeMismatch(
                f"node {name!r} ({kind}): parameters of shape {p} for an input of shape {shape}"
            )
        return shape
    return shape  # Output, pass-through


def _shapes(g: _Graph) -> tuple[dict[str, tuple[int, ...]], dict[str, dict[str, Any]]]:
    """Every node's output shape, and the geometry of the convolutions and pools."""
    shapes: dict[str, tuple[int, ...]] = {}
    geo: dict[str, dict[str, Any]] = {}
    for name, kind in g.kinds.items():
        if kind == "Input":
            shapes[name] = tuple(int(x) for x in np.atleast_1d(node_shape(g.nodes[name])))
        elif kind in NEURONS and _size(_param_shape(g.nodes[name], kind)) > 1:
            shapes[name] = _param_shape(g.nodes[name], kind)
    inferred: set[str] = {n for n, k in g.kinds.items() if k == "Input"}
    for _ in range(len(g.nodes) + 1):
        progress = False
        for name in g.nodes:
            if name in inferred:
                continue
            preds = g.preds(name)
            known = [p for p in preds if p in shapes]
            if not preds:
                raise ModelError(f"node {name!r} ({g.kinds[name]}) has no input edge")
            if not known:
                continue
            first = shapes[known[0]]
            for p in known[1:]:
                if _size(shapes[p]) != _size(first):
                    raise ShapeMismatch(
                        f"node {name!r} ({g.kinds[name]}) sums inputs of different shapes: "
                        f"{known[0]!r} gives {first}, {p!r} gives {shapes[p]}"
                    )
            out = _out_shape(g, name, first, geo)
            if name in shapes and _size(shapes[name]) != _size(out):
                raise ShapeMismatch(
                    f"node {name!r} ({g.kinds[name]}) has shape {shapes[name]} but its input "
                    f"{known[0]!r} gives {first}"
                )
            shapes[name] = out
            if len(known) == len(preds):
                inferred.add(name)
            progress = True
        if not progress:
            break
    missing = [n for n in g.nodes if n not in shapes]
    if missing:
        raise ModelError(f"nodes {missing} are not reachable from an Input, so they have no shape")
    return shapes, geo


def node_shape(node: Any) -> Any:
    t = node.input_type
    if isinstance(t, dict):
        t = next(iter(t.values()))
    if t is None:
        raise ModelError("an Input node has no shape")
    return np.asarray(t)


# ---- linear maps ----


def _conv_matrix(node: Any, shape: tuple[int, ...], geo: dict[str, Any]) -> sp.csr_matrix:
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim == 3:  # Conv1d as a 2-D convolution of height 1
        w = w[:, :, None, :]
        shape = (shape[0], 1, shape[1])
        geo = {
            "stride": (1, geo["stride"][0]),
            "dil": (1, geo["dil"][0]),
            "pad": (0, geo["pad"][0]),
            "groups": geo["groups"],
            "out": (1, geo["out"][0]),
        }
    c_out, c_in_g = w.shape[:2]
    _, h, wd = shape
    ho, wo = geo["out"]
    (sh, sw), (dh, dw), (ph, pw) = geo["stride"], geo["dil"], geo["pad"]
    co, cil, ky, kx = np.nonzero(w)
    vals = w[co, cil, ky, kx]
    ci = co // (c_out // geo["groups"]) * c_in_g + cil
    oy, ox = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    oy, ox = oy.ravel(), ox.ravel()
    iy = oy[None, :] * sh - ph + (ky * dh)[:, None]
    ix = ox[None, :] * sw - pw + (kx * dw)[:, None]
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd)
    rows = (co[:, None] * ho * wo + oy[None, :] * wo + ox[None, :])[ok]
    cols = (ci[:, None] * h * wd + iy * wd + ix)[ok]
    data = np.broadcast_to(vals[:, None], ok.shape)[ok]
    return sp.csr_matrix((data, (rows, cols)), shape=(c_out * ho * wo, shape[0] * h * wd))


def _pool_matrix(shape: tuple[int, ...], geo: dict[str, Any], value: float) -> sp.csr_matrix:
    c, h, wd = shape
    (kh, kw), (sh, sw), (ph, pw) = geo["kern"], geo["stride"], geo["pad"]
    ho, wo = geo["out"]
    ch, oy, ox, ky, kx = np.meshgrid(
        np.arange(c), np.arange(ho), np.arange(wo), np.arange(kh), np.arange(kw), indexing="ij"
    )
    iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd)
    rows = (ch * ho * wo + oy * wo + ox)[ok]
    cols = (ch * h * wd + iy * wd + ix)[ok]
    return sp.csr_matrix((np.full(rows.size, value), (rows, cols)), shape=(c * ho * wo, c * h * wd))


def _node_map(
    g: _Graph, name: str, in_shape: tuple[int, ...], geo: Mapping[str, dict[str, Any]]
) -> tuple[sp.csr_matrix | None, F64 | None]:
    """The node's linear map (None for identity) and bias."""
    node, kind = g.nodes[name], g.kinds[name]
    n = _size(in_shape)
    if kind in ("Affine", "Linear"):
        w = sp.csr_matrix(np.asarray(node.weight, dtype=np.float64))
        bias = None
        if kind == "Affine":
            bias = np.broadcast_to(np.asarray(node.bias, dtype=np.float64), (w.shape[0],)).copy()
        return w, bias
    if kind == "Scale":
        s = np.broadcast_to(np.asarray(node.scale, dtype=np.float64).ravel(), (n,))
        return sp.diags(s, format="csr"), None
    if kind in ("Conv1d", "Conv2d"):
        m = _conv_matrix(node, in_shape, geo[name])
        b = np.asarray(node.bias, dtype=np.float64).ravel()
        bias = None
        if b.size and np.any(b != 0):
            c_out = np.asarray(node.weight).shape[0]
            if b.size != c_out:
                raise ShapeMismatch(f"node {name!r} ({kind}): {b.size} biases for {c_out} channels")
            bias = np.repeat(b, m.shape[0] // c_out)
        return m, bias
    if kind in ("SumPool2d", "AvgPool2d"):
        kh, kw = geo[name]["kern"]
        return _pool_matrix(
            in_shape, geo[name], 1.0 if kind == "SumPool2d" else 1.0 / (kh * kw)
        ), None
    return None, None


Terms = dict[tuple[str, int], tuple[sp.csr_matrix, frozenset[str]]]


def _add(into: Terms, more: Terms) -> None:
    for key, (m, via) in more.items():
        if key in into:
            m0, v0 = into[key]
            into[key] = ((m0 + m).tocsr(), v0 | via)
        else:
            into[key] = (m, via)


KERNEL_KINDS = ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")
# per projection term (source, delay): the one convolution or pooling node it passes through
# (then the engine keeps it once per kernel), "" while it is still the identity, None otherwise
Marks = dict[tuple[str, int], str | None]


def _kernel_marks(
    g: _Graph, order: list[str], is_source: set[str], dt: float
) -> Callable[[str], Marks]:
    """Which projection terms are a single Conv or pool (with Flatten or Delay around it), in
    the composition order of compile_graph; returns the marks of a node's incoming terms."""
    marks: dict[str, Marks] = {}

    def incoming(name: str) -> Marks:
        acc: Marks = {}
        for p in g.preds(name):
            items: Marks = {(p, 0): ""} if p in is_source else marks[p]
            for key, mark in items.items():
                acc[key] = None if key in acc else mark  # terms that add up are no kernel
        return acc

    for name in order:
        acc, kind = incoming(name), g.kinds[name]
        if kind == "Delay":
            steps = _delay_steps(name, g.nodes[name], dt)
            acc = {(s, d + steps): m for (s, d), m in acc.items()}
        elif kind in KERNEL_KINDS:
            acc = {k: name if m == "" else None for k, m in acc.items()}
        elif kind != "Flatten":
            acc = dict.fromkeys(acc)
        marks[name] = acc
    return incoming


def _kernel(
    g: _Graph,
    conv: str,
    shapes: Mapping[str, tuple[int, ...]],
    geo: Mapping[str, dict[str, Any]],
    weights: Callable[[F64], F64],
) -> dict[str, Any]:
    """The geometry and engine weights of a Conv or pool node as an engine Kernel's fields."""
    node, kind, in_shape = g.nodes[conv], g.kinds[conv], shapes[g.preds(conv)[0]]
    gm = geo[conv]
    if kind in ("Conv1d", "Conv2d"):
        w = np.asarray(node.weight, dtype=np.float64)
        stride, pad, dil, groups = gm["stride"], gm["pad"], gm["dil"], gm["groups"]
        if kind == "Conv1d":
            w, in_shape = w[:, :, None, :], (in_shape[0], 1, in_shape[1])
            stride, pad, dil = (1, stride[0]), (0, pad[0]), (1, dil[0])
    else:
        (kh, kw), c = gm["kern"], in_shape[0]
        w = np.full((c, 1, kh, kw), 1.0 if kind == "SumPool2d" else 1.0 / (kh * kw))
        stride, pad, dil, groups = gm["stride"], gm["pad"], (1, 1), c
    out = (w.shape[0], *((1, *gm["out"]) if len(gm["out"]) == 1 else gm["out"]))
    return {
        "in_shape": tuple(int(x) for x in in_shape),
        "out_shape": tuple(int(x) for x in out),
        "weight": weights(w).astype(np.float32),
        "stride": tuple(int(x) for x in stride),
        "padding": tuple(int(x) for x in pad),
        "dilation": tuple(int(x) for x in dil),
        "groups": int(groups),
    }


def _delay_steps(name: str, node: Any, dt: float) -> int:
    d = np.asarray(node.delay, dtype=np.float64).ravel()
    if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ModelError(f"node {name!r} (Delay): delays must be finite and >= 0 seconds")
    if np.any(d != d[0]):
        raise ModelError(
            f"node {name!r} (Delay): delays differ between elements ({d.min()} .. {d.max()} s); "
            "the engine takes one delay per projection"
        )
    return round(float(d[0]) / dt)


# ---- parameters ----


def _params(name: str, node: Any, kind: str, n: int) -> dict[str, F64]:
    keys = {
        "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
        "IF": ("r", "v_threshold", "v_reset"),
        "LI": ("tau", "r", "v_leak"),
        "CubaLIF": ("tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
        "CubaLI": ("tau_mem", "tau_syn", "r", "v_leak", "w_in"),
        "Threshold": ("threshold",),
    }[kind]
    if n == 0:
        raise ShapeMismatch(f"node {name!r} ({kind}) has no neurons: its shape has a zero")
    out: dict[str, F64] = {}
    for key in keys:
        raw = getattr(node, key, None)
        if raw is None:
            raw = 0.0 if key == "v_reset" else 1.0
        arr = np.asarray(raw, dtype=np.float64).ravel()
        if arr.size not in (1, n):
            raise ShapeMismatch(
                f"node {name!r} ({kind}): {key} has {arr.size} values for {n} neurons"
            )
        if not np.all(np.isfinite(arr)):
            raise ModelError(f"node {name!r} ({kind}): {key} has values that are not finite")
        if key.startswith("tau") and np.any(arr <= 0):
            raise ModelError(f"node {name!r} ({kind}): {key} must be > 0 seconds")
        out[key] = np.broadcast_to(arr, (n,))
    return out


def _groups(
    ms_per_s: float,
    name: str,
    kind: str,
    p: Mapping[str, F64],
    n: int,
    scale: float,
    reset: Reset,
    depth: int,
    dt: float,
) -> list[NeuronGroup]:
    model = NEURONS[kind]
    cols = np.stack([p[k] for k in sorted(p)], axis=1) if p else np.zeros((n, 0))
    starts = [0, *(np.nonzero(np.any(cols[1:] != cols[:-1], axis=1))[0] + 1).tolist()]
    groups = []
    for a, b in zip(starts, [*starts[1:], n], strict=True):

        def v(key: str, default: float = 0.0, a: int = a) -> float:
            return float(p[key][a]) if key in p else default

        if kind == "Threshold":
            groups.append(
                NeuronGroup.nir(model, b - a, v_th=v("threshold") / scale, bias_start=depth)
            )
            continue
        tau_m = ms_per_s * v("tau", v("tau_mem", 1.0))
        r = v("r", 1.0)
        w_in = v("w_in", 1.0)
        if model in (Model.CUBA_LIF, Model.CUBA_LI):
            w_in *= scale
        else:
            r *= scale
        if model is Model.IF:
            r /= ms_per_s  # per engine ms
        v_th = v("v_threshold", 1.0)
        v_reset = v("v_reset", 0.0)
        if model.spiking and not v_reset < v_th:
            raise ModelError(
                f"node {name!r} ({kind}): v_reset {v_reset} must lie below v_threshold {v_th}"
            )
        groups.append(
            NeuronGroup.nir(
                model,
                b - a,
                tau_m=tau_m if model is not Model.IF else 0.0,
                tau_syn=ms_per_s * v("tau_syn", 0.0),
                r=r,
                w_in=w_in if model in (Model.CUBA_LIF, Model.CUBA_LI) else 0.0,
                v_th=v_th,
                v_reset=v_reset,
                e_l=v("v_leak", 0.0),
                reset=reset if model.spiking else Reset.VALUE,
                bias_start=depth,
            )
        )
    return groups


def _check_f32(name: str, what: str, value: float) -> None:
    if not math.isfinite(value) or abs(value) > 3.0e38 or (value != 0 and abs(value) < 1.2e-38):
        raise PrecisionError(f"layer {name!r}: {what} {value:g} does not fit a float32")


# ---- the compiler ----


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
    if _kind(graph) != "NIRGraph":
        raise ModelError(f"the model is a {_kind(graph)}, not a NIRGraph")
    g = _Graph({}, {}, [])
    _inline(graph, "", g)
    inputs = [n for n, k in g.kinds.items() if k == "Input"]
    if not inputs:
        raise ModelError("the graph has no Input node")
    outputs = [n for n, k in g.kinds.items() if k == "Output"]
    if not outputs:
        raise ModelError("the graph has no Output node")
    shapes, geo = _shapes(g)
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
                n = _size(shapes[p])
                _add(acc, {(p, 0): (sp.identity(n, format="csr", dtype=np.float64), frozenset())})
            else:
                _add(acc, terms[p])
                pb = biases[p]
                if pb is not None:
                    bias = pb.copy() if bias is None else bias + pb
        return acc, bias

    for name in order:
        acc, bias = incoming(name)
        kind = g.kinds[name]
        if kind == "Delay":
            steps = _delay_steps(name, g.nodes[name], dt)
            acc = {(s, d + steps): (m, via | {kind}) for (s, d), (m, via) in acc.items()}
        else:
            m, nb = _node_map(g, name, shapes[g.preds(name)[0]], geo)
            if m is not None:
                acc = {k: ((m @ mm).tocsr(), via | {kind}) for k, (mm, via) in acc.items()}
                bias = None if bias is None else m @ bias
            elif kind in ("Flatten",):
                acc = {k: (mm, via | {kind}) for k, (mm, via) in acc.items()}
            if nb is not None:
                bias = nb if bias is None else bias + nb
        terms[name], biases[name] = acc, bias

    kernel_marks = _kernel_marks(g, order, is_source, dt)

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
        count = _size(shapes[n])
        first[n] = nid
        p = _params(n, g.nodes[n], g.kinds[n], count)
        gs = _groups(ms_per_s, n, g.kinds[n], p, count, scale[n], reset, depth[n], dt)
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
        count = _size(shapes[n])
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

                fields_ = _kernel(g, conv, shapes, geo, engine_weights)
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
                _check_f32(layer.name, what, value)
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
