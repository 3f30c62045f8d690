"""A plain reference of the engine's dynamics, written for clarity, not speed: float32 exact
integration of iaf_psc_delta, the engine's per-neuron xorshift32 Poisson drive, delay rings and
delivery in the engine's order. Used to check the C engine spike for spike."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from darwin_dra.engine import Network

MASK64 = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def xorshift32(x: int) -> int:
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x


def poisson_thresholds(lam: float) -> list[int]:
    if lam <= 0:
        return []
    out: list[int] = []
    p = math.exp(-lam)
    cdf = p
    for k in range(64):
        t = math.ldexp(cdf, 32)
        if t >= 4294967295.0:
            return out
        out.append(int(t))
        p *= lam / (k + 1)
        cdf += p
    raise ValueError("drive too strong for the table")


@dataclass
class RefResult:
    spikes: list[tuple[int, int]]  # (step, neuron)
    v: np.ndarray


def simulate(
    net: Network, steps: int, inputs: list[tuple[int, int]], v0: np.ndarray | None = None
) -> RefResult:
    f32 = np.float32
    n = net.n_neurons
    dt = float(f32(net.dt_ms))
    # per-neuron parameters from the groups
    p22, p20ie, el, th, reset, wext, ref_steps, thr = [], [], [], [], [], [], [], []
    v = np.empty(n, dtype=np.float32)
    i = 0
    for g in net.groups:
        tau = float(f32(g.tau_m))
        p22d = math.exp(-dt / tau)
        lam = float(f32(g.poisson_rate_hz)) * dt * 1e-3
        table = poisson_thresholds(lam)
        for _ in range(g.count):
            p22.append(f32(p22d))
            p20ie.append(f32(tau * (1.0 - p22d) * float(f32(g.i_e))))
            el.append(f32(g.e_l))
            th.append(f32(g.v_th))
            reset.append(f32(g.v_reset))
            wext.append(f32(g.poisson_weight))
            ref_steps.append(math.floor(float(f32(g.t_ref)) / dt + 0.5))
            thr.append(table)
            v[i] = f32(g.v_init)
            i += 1
    if v0 is not None:
        v = np.asarray(v0, dtype=np.float32).copy()
    seed = net.seed
    rng = []
    for _ in range(n):
        seed, z = splitmix64(seed)
        x = z & 0xFFFFFFFF
        rng.append(x if x else 0x9E3779B9)
    # synapses grouped by source in the engine's order: (delay, target), ties by index
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
    refr = [0] * n
    pending = sorted(inputs, key=lambda s: s[0])  # stable: injection order within a step
    spikes: list[tuple[int, int]] = []
    for step in range(steps):
        slot = ring[step % n_slots]
        fired = []
        for k in range(n):
            inp = slot[k]
            slot[k] = f32(0)
            drive = 0
            if thr[k]:
                rng[k] = xorshift32(rng[k])
                drive = sum(1 for t in thr[k] if t <= rng[k])
            old = v[k]
            vn = el[k] + p22[k] * (old - el[k]) + p20ie[k] + inp + wext[k] * f32(drive)
            if refr[k] == 0:
                v[k] = vn
            else:
                refr[k] -= 1
            if v[k] >= th[k]:
                v[k] = reset[k]
                refr[k] = ref_steps[k]
                fired.append(k)
        spikes.extend((step, k) for k in fired)
        sources = fired + [n + inp for (s, inp) in pending if s == step]
        for src in sources:
            for delay, dst, w in by_src.get(src, []):
                cell = ring[(step + delay) % n_slots]
                cell[dst] = f32(cell[dst] + w)
    return RefResult(spikes=spikes, v=v)
