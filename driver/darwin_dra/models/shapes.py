"""The shapes of a NIR graph's nodes and the geometry of its convolutions and poolings."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from darwin_dra.models.compiled import NEURONS
from darwin_dra.models.errors import (
    ModelError,
    ShapeMismatch,
)
from darwin_dra.models.graph import Graph


def ints_of(value: Any, n: int, what: str, node: str) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise ShapeMismatch(f"node {node!r}: {what} has {arr.size} values, {n} expected")
    return tuple(int(x) for x in arr)


def param_shape(node: Any, kind: str) -> tuple[int, ...]:
    key = {"Threshold": "threshold", "IF": "r", "LI": "tau", "LIF": "tau"}.get(kind, "tau_mem")
    return tuple(int(x) for x in np.shape(getattr(node, key)))


def conv_geometry(
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
    stride = ints_of(node.stride, nd, "stride", name)
    dil = ints_of(node.dilation, nd, "dilation", name)
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
        pad = ints_of(pad_arg, nd, "padding", name)
    out = tuple(
        (shape[1 + i] + 2 * pad[i] - dil[i] * (kern[i] - 1) - 1) // stride[i] + 1 for i in range(nd)
    )
    if any(o < 1 for o in out) or any(s < 1 for s in stride) or any(d < 1 for d in dil):
        raise ShapeMismatch(
            f"node {name!r} ({kind}): input {shape} is too small for the kernel {kern}"
        )
    geo = {"stride": stride, "dil": dil, "pad": pad, "groups": groups, "out": out}
    return (c_out, *out), geo


def pool_geometry(
    name: str, node: Any, shape: tuple[int, ...]
) -> tuple[tuple[int, ...], dict[str, Any]]:
    if len(shape) != 3:
        raise ShapeMismatch(
            f"node {name!r}: input of shape {shape}, expected (channels, height, width)"
        )
    kern = ints_of(node.kernel_size, 2, "kernel_size", name)
    stride = ints_of(
        node.stride if node.stride is not None else node.kernel_size, 2, "stride", name
    )
    pad = ints_of(node.padding if node.padding is not None else 0, 2, "padding", name)
    out = tuple((shape[1 + i] + 2 * pad[i] - kern[i]) // stride[i] + 1 for i in range(2))
    if any(o < 1 for o in out) or any(k < 1 for k in kern) or any(s < 1 for s in stride):
        raise ShapeMismatch(f"node {name!r}: input {shape} is too small for the kernel {kern}")
    return (shape[0], *out), {"kern": kern, "stride": stride, "pad": pad, "out": out}


# Neuron ids are u32: no layer holds more elements than that.
MAX_SIZE = (1 << 32) - 1


def size_of(shape: Iterable[int]) -> int:
    """The element count of ``shape``, exact: numpy's int64 product wrapped (2^32, 2^32) to 0,
    and such a layer compiled as an empty one. A count past MAX_SIZE is refused."""
    dims = tuple(int(d) for d in shape)
    n = math.prod(dims)
    if abs(n) > MAX_SIZE:
        raise ShapeMismatch(
            f"shape {dims} holds {n} elements: a layer holds at most {MAX_SIZE} (u32 neuron ids)"
        )
    return n


def out_shape_of(
    g: Graph, name: str, shape: tuple[int, ...], geo: dict[str, dict[str, Any]]
) -> tuple[int, ...]:
    node, kind = g.nodes[name], g.kinds[name]
    n = size_of(shape)
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
        out, geo[name] = conv_geometry(name, node, kind, shape)
        return out
    if kind in ("SumPool2d", "AvgPool2d"):
        out, geo[name] = pool_geometry(name, node, shape)
        return out
    if kind == "Flatten":
        nd = len(shape)
        start, stop = int(node.start_dim), int(node.end_dim)
        start, stop = start + nd if start < 0 else start, stop + nd if stop < 0 else stop
        if not 0 <= start <= stop < max(nd, 1):
            return (n,)
        return (*shape[:start], size_of(shape[start : stop + 1]), *shape[stop + 1 :])
    if kind == "Delay":
        d = np.asarray(node.delay)
        if d.size not in (1, n):
            raise ShapeMismatch(f"node {name!r} (Delay): {d.size} delays for {n} inputs")
        return shape
    if kind in NEURONS:
        p = param_shape(node, kind)
        if size_of(p) not in (1, n):
            raise ShapeMismatch(
                f"node {name!r} ({kind}): parameters of shape {p} for an input of shape {shape}"
            )
        return shape
    return shape  # Output, pass-through


def node_shapes(g: Graph) -> tuple[dict[str, tuple[int, ...]], dict[str, dict[str, Any]]]:
    """Every node's output shape, and the geometry of the convolutions and pools."""
    shapes: dict[str, tuple[int, ...]] = {}
    geo: dict[str, dict[str, Any]] = {}
    for name, kind in g.kinds.items():
        if kind == "Input":
            shapes[name] = tuple(int(x) for x in np.atleast_1d(node_shape(g.nodes[name])))
        elif kind in NEURONS and size_of(param_shape(g.nodes[name], kind)) > 1:
            shapes[name] = param_shape(g.nodes[name], kind)
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
                if size_of(shapes[p]) != size_of(first):
                    raise ShapeMismatch(
                        f"node {name!r} ({g.kinds[name]}) sums inputs of different shapes: "
                        f"{known[0]!r} gives {first}, {p!r} gives {shapes[p]}"
                    )
            out = out_shape_of(g, name, first, geo)
            if name in shapes and size_of(shapes[name]) != size_of(out):
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
