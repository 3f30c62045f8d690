"""The second defence knob at the cut: a firing-rate limit. Each cut neuron may send at most
``k`` spikes per sample (of the rate code's 16 steps); the edge keeps its first k and drops the
rest before they are sent, in training and in use. k = steps changes nothing; k = 1 sends at
most one spike per neuron and sample. Unlike the spike-count noise it only ever removes spikes,
so it also bounds the bytes on the wire. The gradient at the cut reaches only the cells whose
spike would pass: a spike or a silent cell after the neuron's k-th spike gets none."""

from __future__ import annotations

import numpy as np

from darwin_dra.splitlearn.snn import F32


def rate_limit(s: F32, k: int) -> tuple[F32, F32]:
    """(n, steps, neurons) spikes -> (the spikes that pass, the gradient mask)."""
    if k < 1:
        raise ValueError(f"the cut's rate limit must be >= 1 spike per neuron, got {k}")
    fired = (s > 0.5).astype(np.int64)
    before = np.cumsum(fired, axis=1) - fired  # spikes of the neuron earlier in the sample
    passes = np.asarray(before < k, np.float32)
    return (s * passes).astype(np.float32), passes
