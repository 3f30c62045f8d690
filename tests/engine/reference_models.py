"""A plain numpy reference of the NIR neuron models as the engine integrates them: the exact
one-step solution of each model's ODE for an input held constant over the step (see
docs/models.md), rounded once to float32, and the engine's delivery order. Written for clarity,
not speed; the engine must agree with it spike for spike and bit for bit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from darwin_dra.engine import Model, Network, Reset

f32 = np.float32


@dataclass(frozen=True)
class Coefficients:
    a_m: np.float32  # membrane decay over one step
    g_x: np.float32  # input to membrane
    a_s: np.float32  # synaptic current decay
    g_s: np.float32  # input to synaptic current
    p_vi: np.float32  # synaptic current to membrane


def coefficients(
    model: Model, tau_m: float, tau_syn: float, r: float, w_in: float, dt: float
) -> Coefficients:
    """Closed forms (float64) of: tau_m v' = e_l - v + r x (LIF, LI); v' = r x (IF);
    tau_syn i' = -i + w_in x, tau_m v' = e_l - v + r i (CubaLIF, CubaLI); v = x (Threshold)."""
    tm, ts, r, w = float(f32(tau_m)), float(f32(tau_syn)), float(f32(r)), float(f32(w_in))
    am = a_s = g_s = p_vi = 0.0
    if model in (Model.LIF, Model.LI):
        am = math.exp(-dt / tm)
        gx = r * (1 - am)
    elif model is Model.IF:
        am, gx = 1.0, r * dt
    elif model in (Model.CUBA_LIF, Model.CUBA_LI):
        am, a_s = math.exp(-dt / tm), math.exp(-dt / ts)
        # v(dt) for i(0) = 1, v(0) = 0: r ts / (ts - tm) (e^-dt/ts - e^-dt/tm)
        k = dt / tm * am if abs(ts - tm) <= 1e-9 * tm else ts / (ts - tm) * (a_s - am)
        p_vi = r * k
        gx = r * w * (1 - am - k)  # v(dt) for a constant x from rest
        g_s = w * (1 - a_s)
    else:
        gx = 1.0
    return Coefficients(f32(am), f32(gx), f32(a_s), f32(g_s), f32(p_vi))


@dataclass
class ModelResult:
    spikes: list[tuple[int, int]]  # (step, neuron)
    v: np.ndarray
    i_syn: np.ndarray
    trace: np.ndarray  # steps x neurons: v after each step


def simulate_models(net: Network, steps: int, inputs: list[tuple[int, int]]) -> ModelResult:
    n = net.n_neurons
    dt = float(f32(net.dt_ms))
    kind: list[Model] = []
    co: list[Coefficients] = []
    el, th, vr, sub, reset, bias_start = [], [], [], [], [], []
    v = np.zeros(n, dtype=np.float32)
    for g in net.groups:
        c = coefficients(g.model, g.tau_m, g.tau_syn, g.r, g.w_in, dt)
        for _ in range(g.count):
            kind.append(g.model)
            co.append(c)
            el.append(f32(g.e_l))
            th.append(f32(g.v_th))
            vr.append(f32(g.v_reset))
            sub.append(f32(g.v_th) - f32(g.v_reset))
            reset.append(g.reset)
            bias_start.append(g.bias_start)
            v[len(kind) - 1] = f32(g.v_init)
    bias = np.zeros(n, np.float32) if net.bias is None else np.asarray(net.bias, np.float32)
    has_bias = net.bias is not None
    cur = np.zeros(n, dtype=np.float32)
    order = np.lexsort((np.arange(net.n_synapses), net.dst, net.delay, net.src))
    by_src: dict[int, list[tuple[int, int, np.float32]]] = {}
    for j in order:
        by_src.setdefault(int(net.src[j]), []).append(
            (int(net.delay[j]), int(net.dst[j]), f32(net.weight[j]))
        )
    max_delay = int(net.delay.max()) if net.n_synapses else 1
    n_slots = 2
    while n_slots <= max_delay:
        n_slots *= 2
    ring = np.zeros((n_slots, n), dtype=np.float32)
    spikes: list[tuple[int, int]] = []
    trace = np.zeros((steps, n), dtype=np.float32)
    pending = sorted(inputs, key=lambda s: s[0])
    for step in range(steps):
        slot = ring[step % n_slots]
        fired = []
        for k in range(n):
            x = f32(slot[k] + bias[k]) if has_bias and step >= bias_start[k] else slot[k]
            slot[k] = f32(0)
            c, m = co[k], kind[k]
            if m is Model.THRESHOLD:
                v[k] = x
                if x > th[k]:
                    fired.append(k)
                continue
            if m is Model.IF:
                v[k] = v[k] + c.g_x * x
            elif m in (Model.CUBA_LIF, Model.CUBA_LI):
                i_old = cur[k]
                v[k] = el[k] + c.a_m * (v[k] - el[k]) + c.p_vi * i_old + c.g_x * x
                cur[k] = c.a_s * i_old + c.g_s * x
            else:
                v[k] = el[k] + c.a_m * (v[k] - el[k]) + c.g_x * x
            if m.spiking and v[k] > th[k]:
                v[k] = v[k] - sub[k] if reset[k] is Reset.SUBTRACT else vr[k]
                fired.append(k)
        trace[step] = v
        spikes.extend((step, k) for k in fired)
        for src in fired + [n + i for (s, i) in pending if s == step]:
            for delay, dst, w in by_src.get(src, []):
                cell = ring[(step + delay) % n_slots]
                cell[dst] = f32(cell[dst] + w)
    return ModelResult(spikes=spikes, v=v, i_syn=cur, trace=trace)
