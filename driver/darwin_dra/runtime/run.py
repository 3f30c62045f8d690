"""A workload on its partition: load a network through the SpikePort, run it, measure it.

This is what `darwin-dra run` does inside a pod. The partition's SpikePort is at
DARWIN_SPIKE_ENDPOINT, which the driver's CDI spec injected with DARWIN_PARTITION, DARWIN_CORES
and DARWIN_KEPS. The network file is loaded by ``load_network`` (one step of its own, so other
model formats can come in beside it); the run steps the partition a window at a time and
counts what the engine reports.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from darwin_dra.runtime.client import SpikePortClient
from darwin_dra.runtime.stage import StageNetwork, load_stage

# What CDI puts into the container besides the endpoint (plugin/cdi.py).
PARTITION_ENV = ("DARWIN_PARTITION", "DARWIN_CORES", "DARWIN_KEPS")


def load_network(path: Path) -> StageNetwork:
    """The network to run, from an engine network file (.npz, docs/runtime.md)."""
    try:
        return load_stage(path)
    except (KeyError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not an engine network file: {exc}") from exc


@dataclass(frozen=True)
class RunConfig:
    endpoint: str
    steps: int | None = None  # run exactly this many steps...
    seconds: float | None = None  # ...or windows until this much wall time has passed
    window: int = 1000  # steps per Step call
    warmup_steps: int = 0  # run first, not measured

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.seconds is None):
            raise ValueError("give exactly one of steps and seconds")
        if self.window < 1 or (self.steps is not None and self.steps < 1):
            raise ValueError("steps and window must be >= 1")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError("seconds must be > 0")
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must be >= 0")


@dataclass(frozen=True)
class RunReport:
    network: str
    neurons: int
    synapses: int
    partition: str  # as CDI gave them (empty outside a pod)
    cores: str
    keps_granted: str
    steps: int
    simulated_ms: float
    wall_s: float
    spikes: int
    events: int
    rate_hz: float  # spikes per neuron per simulated second
    events_per_s: float  # synaptic events per wall second, through the spike port
    engine_keps: float  # the engine's own figure (its run time only)
    dropped: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        where = f"partition {self.partition} (cores {self.cores}, {self.keps_granted} KEPS)"
        return (
            f"run: {self.network}, {self.neurons} neurons, {self.synapses} synapses on "
            f"{where if self.partition else 'the spike port'}: {self.steps} steps "
            f"({self.simulated_ms:g} ms simulated) in {self.wall_s:.3f} s; "
            f"rate {self.rate_hz:.2f} Hz; {self.events_per_s / 1e6:.2f} M events/s "
            f"(engine {self.engine_keps / 1e3:.2f} M); dropped {self.dropped}"
        )


async def run_network(
    cfg: RunConfig, net: StageNetwork, env: Mapping[str, str] | None = None
) -> RunReport:
    env = os.environ if env is None else env
    network = net.network
    async with SpikePortClient(cfg.endpoint) as port:
        await port.load(network, export=net.export.tolist())
        if cfg.warmup_steps:
            await port.step(cfg.warmup_steps)
        first = (await port.step(0)).counters
        done = 0
        started = time.perf_counter()
        last = first
        while True:
            if cfg.steps is not None:
                if done >= cfg.steps:
                    break
                n = min(cfg.window, cfg.steps - done)
            else:
                assert cfg.seconds is not None
                if time.perf_counter() - started >= cfg.seconds:
                    break
                n = cfg.window
            last = (await port.step(n)).counters
            done += n
        wall = time.perf_counter() - started
    spikes = last.spikes - first.spikes
    events = last.events - first.events
    sim_ms = done * network.dt_ms
    dropped = sum(
        getattr(last, f) - getattr(first, f)
        for f in ("dropped_queue", "dropped_fault", "dropped_budget", "dropped_input")
    )
    return RunReport(
        network=network.name,
        neurons=network.n_neurons,
        synapses=network.n_synapses,
        partition=env.get("DARWIN_PARTITION", ""),
        cores=env.get("DARWIN_CORES", ""),
        keps_granted=env.get("DARWIN_KEPS", ""),
        steps=done,
        simulated_ms=sim_ms,
        wall_s=wall,
        spikes=spikes,
        events=events,
        rate_hz=spikes / max(network.n_neurons, 1) / (sim_ms / 1e3) if sim_ms else 0.0,
        events_per_s=events / wall if wall > 0 else 0.0,
        engine_keps=last.keps,
        dropped=dropped,
    )
