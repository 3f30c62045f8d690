"""Small networks whose spikes are known in advance."""

from __future__ import annotations

import numpy as np
from darwin_dra.engine import Network, NeuronGroup, synapses

# No leak to speak of within a step, threshold 20 mV: one 30 mV event fires a neuron.
RELAY = NeuronGroup(count=0, tau_m=20.0, v_th=20.0, v_reset=0.0, t_ref=0.0)


def relay(n: int, delay: int, seed: int = 1) -> Network:
    """Input i drives neuron i above threshold with ``delay``; neuron i only relays."""
    ids = np.arange(n)
    src, dst, w, d = synapses(n + ids, ids, np.full(n, 30.0), np.full(n, delay))
    group = NeuronGroup(count=n, tau_m=20.0, v_th=20.0, v_reset=0.0, t_ref=0.0)
    return Network((group,), src, dst, w, d, n_inputs=n, seed=seed, name="relay")


def chain(n: int, delay: int, hop: int) -> Network:
    """Two relay layers: input i -> neuron i (delay) -> neuron n + i (hop)."""
    ids = np.arange(n)
    src, dst, w, d = synapses(
        np.concatenate([2 * n + ids, ids]),
        np.concatenate([ids, n + ids]),
        np.full(2 * n, 30.0),
        np.concatenate([np.full(n, delay), np.full(n, hop)]),
    )
    group = NeuronGroup(count=2 * n, tau_m=20.0, v_th=20.0, v_reset=0.0, t_ref=0.0)
    return Network((group,), src, dst, w, d, n_inputs=n, name="chain")


def sort_aer(steps: np.ndarray, ids: np.ndarray) -> list[tuple[int, int]]:
    return sorted(zip(steps.tolist(), ids.tolist(), strict=True))
