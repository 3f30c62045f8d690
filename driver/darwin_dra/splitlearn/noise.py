"""The defence knob at the cut: spike-count noise. Each spike the edge would send is dropped
with probability p, and spurious spikes are added to silent (step, neuron) cells with the
probability that keeps the expected spike count (so the knob does not change the bytes on the
wire much). p = 0 sends the spikes as they are; p = 1 sends spikes that carry nothing of the
input (the same count, at random places). The edge applies it in training and in use; the
gradient at the cut passes straight through to the edge's spikes."""

from __future__ import annotations

import numpy as np

from darwin_dra.splitlearn.snn import F32


def spike_noise(s: F32, p: float, rng: np.random.Generator) -> F32:
    if not 0 <= p <= 1:
        raise ValueError(f"cut noise p must lie in [0, 1], got {p}")
    if p == 0:
        return s
    spikes = s > 0.5
    rate = float(spikes.mean())
    keep = spikes & (rng.random(s.shape) >= p)
    q = p * rate / (1 - rate) if rate < 1 else 0.0
    add = ~spikes & (rng.random(s.shape) < q)
    return (keep | add).astype(np.float32)
