"""Calibration: the sustainable event throughput of a partition, measured on this host.

The plugin publishes this figure as measured KEPS (kepsSource: measured). The load is a
synthetic random network spread over the partition's cores, driven hard enough that delivery
dominates; the figure is delivered events per wall second of the engine's run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darwin_dra.engine.native import Engine
from darwin_dra.engine.network import Network, NeuronGroup


@dataclass(frozen=True)
class Calibration:
    keps: float
    events: int
    wall_s: float
    steps: int
    threads: int


def synthetic_load(
    n_cores: int, seed: int, neurons_per_core: int = 256, fan_out: int = 200
) -> Network:
    """Excitatory/inhibitory random network of 80/20 neurons with a Poisson drive."""
    n = max(8, n_cores * neurons_per_core)
    n = min(n, 1 << 14)  # bounded: calibration must stay well under a second a chip
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n, dtype=np.uint32), fan_out)
    dst = rng.integers(0, n, src.size, dtype=np.uint32)
    weight = np.where(src < int(n * 0.8), np.float32(0.1), np.float32(-0.5)).astype(np.float32)
    delay = rng.integers(1, 16, src.size).astype(np.uint16)
    group = NeuronGroup(count=n, poisson_rate_hz=20000.0, poisson_weight=0.1)
    return Network(
        groups=(group,), src=src, dst=dst, weight=weight, delay=delay, seed=seed, name="calibration"
    )


def calibrate(
    engine: Engine, part: int, *, steps: int = 1000, threads: int = 1, seed: int = 7
) -> Calibration:
    """Loads the synthetic load on an idle partition, runs it, unloads it."""
    info = engine.partition(part)
    net = synthetic_load(len(info.cores), seed)
    engine.load(part, net)
    try:
        engine.run(part, 200, threads)  # warm caches and the delay rings
        before = engine.telemetry(part)
        engine.run(part, steps, threads)
        after = engine.telemetry(part)
    finally:
        engine.unload(part)
    events = after.events - before.events
    wall_s = (after.wall_ns - before.wall_ns) * 1e-9
    keps = events / wall_s / 1e3 if wall_s > 0 else 0.0
    return Calibration(keps=keps, events=events, wall_s=wall_s, steps=steps, threads=after.threads)
