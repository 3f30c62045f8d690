"""Spike counts of an engine network from a run on a local engine (the edge to the C engine):
what the planner's rates are measured with, and what the traffic check counts."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from darwin_dra.engine import Engine, Network
from darwin_dra.hardware.model import ChipEntry, ChipProfile


def spike_counts(
    net: Network, profile: ChipProfile, steps: int, seed: int | None = None, warmup: int = 500
) -> npt.NDArray[np.uint64]:
    """Spikes per neuron over ``steps`` steps of ``net`` on a whole simulated chip, after
    ``warmup`` steps (the start from rest is not the rate the model runs at)."""
    if seed is not None:
        from dataclasses import replace

        net = replace(net, seed=seed)
    with Engine() as engine:
        chip = engine.add_chip(profile, ChipEntry(profile.model, "probe", "probe"))
        part = engine.create_partition(chip, domains=list(range(profile.n_domains)))
        engine.load(part, net)
        engine.run(part, warmup)
        before = engine.spike_counts(part, net.n_neurons)
        engine.run(part, steps)
        after: npt.NDArray[np.uint64] = engine.spike_counts(part, net.n_neurons) - before
        return after
