"""Calibration of a partition: its capacity in KEPS (engine/keps.py) and this host's speed.

The capacity is what the partition routes in real time, measured on the chip model
(`keps.partition_capacity`: uniform traffic among its cores at the rate where its busiest link
saturates, dk_saturation): deterministic, the same on any host, lower with failed cores, domains
or links. The plugin publishes it (kepsSource: measured). The host's speed is measured apart: a
synthetic random network spread over the partition's cores, driven hard enough that delivery
dominates, run on this host; it says how much slower (or faster) than real time this host
simulates such a load, and is reported as a metric, never as capacity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darwin_dra.engine import keps as kepsdef
from darwin_dra.engine.engine import Engine
from darwin_dra.engine.network import Network, NeuronGroup


@dataclass(frozen=True)
class Calibration:
    keps: int  # capacity: KEPS the partition routes in real time (model time)
    host_keps: float  # this host on the synthetic load: events per wall second / 1000
    load_keps: float  # the synthetic load itself, in KEPS of model time
    realtime_factor: float  # model seconds simulated per wall second on that load
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
    """The partition's capacity, and this host's speed on a synthetic load run on the idle
    partition (loaded, run, unloaded)."""
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
    model_s = steps * net.dt_ms * 1e-3
    return Calibration(
        keps=kepsdef.partition_capacity(engine, part),
        host_keps=events / wall_s / kepsdef.EVENTS_PER_KEPS if wall_s > 0 else 0.0,
        load_keps=kepsdef.keps_of(events, steps, net.dt_ms),
        realtime_factor=model_s / wall_s if wall_s > 0 else 0.0,
        events=events,
        wall_s=wall_s,
        steps=steps,
        threads=after.threads,
    )
