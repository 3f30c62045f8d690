"""scikit-learn's digits (8 x 8 images, 0..16) as spike trains, and the accuracy of a compiled
model on them (the held-out split the exporters report on; see digits_export.py).

The code is a deterministic rate code: pixel value k gives k spikes in `steps` = 16 steps, as
evenly spread as a regular spike train: a spike at step t when floor((t + 1) k / 16) exceeds
floor(t k / 16). Deterministic, so the frameworks and the engine see the very same spikes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.run import LocalRunner, dense_to_aer

STEPS = 16
LEVELS = 16  # digits' pixels are 0..16


def rate_code(pixels: npt.ArrayLike, steps: int = STEPS) -> npt.NDArray[np.int8]:
    """(samples, 64) pixels -> (samples, steps, 64) spikes."""
    k = np.asarray(pixels, dtype=np.int64)
    if k.size and (k.min() < 0 or k.max() > LEVELS):
        raise ValueError(f"pixels must lie in 0..{LEVELS}")
    t = np.arange(steps + 1, dtype=np.int64)[None, :, None]
    edges = (t * k[:, None, :] * steps // LEVELS) // steps
    return np.diff(edges, axis=1).astype(np.int8)


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    predictions: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]  # samples x classes: output spikes


def evaluate(model: CompiledModel, pixels: npt.ArrayLike, labels: npt.ArrayLike) -> Evaluation:
    """Runs every sample on a local engine (from rest) and predicts the class of the output
    neuron with the most spikes (the first of equals, as torch.argmax does)."""
    x = rate_code(pixels)
    y = np.asarray(labels, dtype=np.int64)
    if len(model.outputs) != 1:
        raise ValueError("the model must have one Output")
    (out,) = model.outputs
    counts = []
    with LocalRunner(model) as runner:
        for sample in x:
            steps, ids = dense_to_aer(sample)
            result = runner.run(STEPS, steps, ids).outputs[out]
            if not result.spiking:
                raise ValueError("the digits models read out spike counts")
            counts.append(result.counts)
    c = np.stack(counts)
    pred = np.argmax(c, axis=1)
    return Evaluation(float(np.mean(pred == y)), pred, c)
