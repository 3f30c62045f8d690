"""The linear nodes of a NIR graph as sparse maps composed into projection terms; the terms that
are a single convolution or pooling (the engine keeps those once per kernel); Delay nodes as
engine steps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from darwin_dra.models.errors import (
    ModelError,
    ShapeMismatch,
)
from darwin_dra.models.graph import Graph
from darwin_dra.models.shapes import size_of

F64 = npt.NDArray[np.float64]


def conv_matrix(node: Any, shape: tuple[int, ...], geo: dict[str, Any]) -> sp.csr_matrix:
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


def pool_matrix(shape: tuple[int, ...], geo: dict[str, Any], value: float) -> sp.csr_matrix:
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


def node_map(
    g: Graph, name: str, in_shape: tuple[int, ...], geo: Mapping[str, dict[str, Any]]
) -> tuple[sp.csr_matrix | None, F64 | None]:
    """The node's linear map (None for identity) and bias."""
    node, kind = g.nodes[name], g.kinds[name]
    n = size_of(in_shape)
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
        m = conv_matrix(node, in_shape, geo[name])
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
        return pool_matrix(
            in_shape, geo[name], 1.0 if kind == "SumPool2d" else 1.0 / (kh * kw)
        ), None
    return None, None


Terms = dict[tuple[str, int], tuple[sp.csr_matrix, frozenset[str]]]


def add_terms(into: Terms, more: Terms) -> None:
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


def kernel_marks_of(
    g: Graph, order: list[str], is_source: set[str], dt: float
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
            steps = delay_steps(name, g.nodes[name], dt)
            acc = {(s, d + steps): m for (s, d), m in acc.items()}
        elif kind in KERNEL_KINDS:
            acc = {k: name if m == "" else None for k, m in acc.items()}
        elif kind != "Flatten":
            acc = dict.fromkeys(acc)
        marks[name] = acc
    return incoming


def kernel_of(
    g: Graph,
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


def delay_steps(name: str, node: Any, dt: float) -> int:
    d = np.asarray(node.delay, dtype=np.float64).ravel()
    if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ModelError(f"node {name!r} (Delay): delays must be finite and >= 0 seconds")
    if np.any(d != d[0]):
        raise ModelError(
            f"node {name!r} (Delay): delays differ between elements ({d.min()} .. {d.max()} s); "
            "the engine takes one delay per projection"
        )
    return round(float(d[0]) / dt)
