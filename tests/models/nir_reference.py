"""A plain numpy reference of NIR graph semantics in model time, written from the NIR
definitions and nothing of the engine: every node computes in the same step, a Delay of d steps
outputs its input of d steps ago, neuron nodes integrate their ODE exactly (float64) for an input
held over the step, spiking nodes fire when v > v_threshold and reset to v_reset or by
subtraction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.signal

Array = np.ndarray


def _kind(node: Any) -> str:
    return type(node).__name__


def _conv(node: Any, x: Array) -> Array:
    w = np.asarray(node.weight, np.float64)
    nd = w.ndim - 2
    stride = np.broadcast_to(np.atleast_1d(node.stride), (nd,)).astype(int)
    pad = np.broadcast_to(np.atleast_1d(node.padding), (nd,)).astype(int)
    groups = int(node.groups)
    dil = np.broadcast_to(np.atleast_1d(node.dilation), (nd,)).astype(int)
    if np.any(dil > 1):  # a dilated kernel is the kernel with zeros between its taps
        wd = np.zeros(
            (*w.shape[:2], *((k - 1) * d + 1 for k, d in zip(w.shape[2:], dil, strict=True)))
        )
        wd[(slice(None), slice(None), *(slice(None, None, int(d)) for d in dil))] = w
        w = wd
    c_out, c_in_g = w.shape[:2]
    xp = np.pad(x, [(0, 0)] + [(int(p), int(p)) for p in pad])
    outs = []
    for co in range(c_out):
        gi = co // (c_out // groups)
        acc = 0.0
        for cl in range(c_in_g):
            acc = acc + scipy.signal.correlate(xp[gi * c_in_g + cl], w[co, cl], mode="valid")
        sl = tuple(slice(None, None, int(s)) for s in stride)
        outs.append(np.asarray(acc)[sl])
    y = np.stack(outs)
    b = np.asarray(node.bias, np.float64).ravel()
    if b.size:
        y = y + b.reshape((-1,) + (1,) * nd)
    return y


def _pool(node: Any, x: Array, avg: bool) -> Array:
    kh, kw = np.broadcast_to(np.atleast_1d(node.kernel_size), (2,)).astype(int)
    sh, sw = np.broadcast_to(np.atleast_1d(node.stride), (2,)).astype(int)
    c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, i, j] = x[:, i * sh : i * sh + kh, j * sw : j * sw + kw].sum(axis=(1, 2))
    return y / (kh * kw) if avg else y


class Reference:
    def __init__(self, graph: Any, dt: float, subtract: bool) -> None:
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self._inline(graph, "")
        self.dt, self.subtract = dt, subtract
        self.state: dict[str, dict[str, Array]] = {}
        self.delays = {
            n: round(float(np.asarray(v.delay).ravel()[0]) / dt)
            for n, v in self.nodes.items()
            if _kind(v) == "Delay"
        }
        self.history: dict[str, list[Array]] = {n: [] for n in self.delays}
        # evaluation order: edges out of a Delay of at least one step do not constrain it
        late = {n for n, d in self.delays.items() if d > 0}
        deps = {n: [a for a, b in self.edges if b == n and a not in late] for n in self.nodes}
        order: list[str] = []
        while len(order) < len(self.nodes):
            for n in self.nodes:
                if n not in order and all(p in order for p in deps[n]):
                    order.append(n)
        self.order = order

    def _inline(self, graph: Any, prefix: str) -> None:
        for name, node in graph.nodes.items():
            if _kind(node) == "NIRGraph":
                self._inline(node, prefix + name + ".")
            else:
                self.nodes[prefix + name] = node

        def end(name: str, src: bool) -> str:
            full = prefix + name
            if full in self.nodes:
                return full
            sub = graph.nodes[name]
            want = "Output" if src else "Input"
            return full + "." + next(k for k, v in sub.nodes.items() if _kind(v) == want)

        for a, b in graph.edges:
            self.edges.append((end(a, True), end(b, False)))

    def step(self, inputs: dict[str, Array]) -> dict[str, Array]:
        """One model step; returns every node's output (Output nodes included)."""
        val: dict[str, Array] = {}
        for name, d in self.delays.items():
            if d > 0:
                h = self.history[name]
                shape = np.asarray(self.nodes[name].delay).shape
                val[name] = h[-d] if len(h) >= d else np.zeros(shape)
        for name in self.order:
            node, kind = self.nodes[name], _kind(self.nodes[name])
            if name in val:
                continue
            if kind == "Input" and name in inputs:
                val[name] = inputs[name].astype(np.float64)
                continue
            x = sum(val[a] for a, b in self.edges if b == name)
            val[name] = x if kind == "Delay" else self._apply(name, node, kind, x)
        for name in self.delays:
            x = sum(val[a] for a, b in self.edges if b == name)
            self.history[name].append(np.asarray(x, np.float64))
        return val

    def _apply(self, name: str, node: Any, kind: str, x: Array) -> Array:
        if kind in ("Output", "Input"):
            return x
        if kind == "Affine":
            return np.asarray(node.weight) @ x.ravel() + np.asarray(node.bias)
        if kind == "Linear":
            return np.asarray(node.weight) @ x.ravel()
        if kind == "Scale":
            return np.asarray(node.scale) * x
        if kind == "Flatten":
            return x.ravel()
        if kind in ("Conv1d", "Conv2d"):
            return _conv(node, x)
        if kind in ("SumPool2d", "AvgPool2d"):
            return _pool(node, x, kind == "AvgPool2d")
        return self._neuron(name, node, kind, x.ravel()).reshape(np.shape(x))

    def _neuron(self, name: str, node: Any, kind: str, x: Array) -> Array:
        dt = self.dt
        st = self.state.setdefault(name, {"v": np.zeros_like(x), "i": np.zeros_like(x)})
        p = {
            k: np.broadcast_to(np.asarray(getattr(node, k), np.float64).ravel(), x.shape)
            for k in (
                "tau",
                "tau_mem",
                "tau_syn",
                "r",
                "v_leak",
                "v_threshold",
                "v_reset",
                "w_in",
                "threshold",
            )
            if getattr(node, k, None) is not None
        }
        v = st["v"]
        if kind == "Threshold":
            return (x > p["threshold"]).astype(np.float64)
        if kind in ("LIF", "LI"):
            a = np.exp(-dt / p["tau"])
            v = p["v_leak"] + a * (v - p["v_leak"]) + p["r"] * (1 - a) * x
        elif kind == "IF":
            v = v + p["r"] * dt * x
        else:  # CubaLIF, CubaLI
            tm, ts, w = p["tau_mem"], p["tau_syn"], p["w_in"]
            am, a_s = np.exp(-dt / tm), np.exp(-dt / ts)
            k = np.where(
                np.abs(ts - tm) <= 1e-9 * tm,
                dt / tm * am,
                ts / np.where(ts == tm, 1, ts - tm) * (a_s - am),
            )
            i = st["i"]
            v = (
                p["v_leak"]
                + am * (v - p["v_leak"])
                + p["r"] * k * i
                + p["r"] * w * (1 - am - k) * x
            )
            st["i"] = a_s * i + w * (1 - a_s) * x
        z = np.zeros_like(v)
        if kind in ("LIF", "IF", "CubaLIF"):
            z = (v > p["v_threshold"]).astype(np.float64)
            vr = p.get("v_reset", np.zeros_like(v))
            v = np.where(z > 0, v - (p["v_threshold"] - vr) if self.subtract else vr, v)
            st["v"] = v
            return z
        st["v"] = v
        return v


def simulate(graph: Any, dt: float, subtract: bool, inputs: dict[str, Array]) -> dict[str, Array]:
    """inputs: Input node -> (steps, *shape) array. Returns Output node -> (steps, n)."""
    ref = Reference(graph, dt, subtract)
    steps = next(iter(inputs.values())).shape[0]
    outs: dict[str, list[Array]] = {}
    for t in range(steps):
        val = ref.step({k: v[t] for k, v in inputs.items()})
        for name, node in ref.nodes.items():
            if _kind(node) == "Output" and "." not in name:
                outs.setdefault(name, []).append(np.asarray(val[name]).ravel())
    return {k: np.stack(v) for k, v in outs.items()}


__all__ = ["Reference", "math", "simulate"]
