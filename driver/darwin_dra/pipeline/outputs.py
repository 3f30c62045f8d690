"""The model's output spikes, collected from the stages that hold its output neurons, in model
time, and a digest of them that an unsplit run gives too (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.run import RunResult

I64 = npt.NDArray[np.int64]
Outputs = Mapping[str, tuple[I64, I64]]  # Output node -> (model step, neuron index in layer)


def to_outputs(
    model: CompiledModel, steps: npt.ArrayLike, ids: npt.ArrayLike, model_steps: int | None
) -> dict[str, tuple[I64, I64]]:
    """Engine (step, global neuron id) spikes -> each spiking Output's (model step, index),
    sorted; steps before a layer's depth or from ``model_steps`` on are not outputs."""
    s = np.asarray(steps, np.int64)
    g = np.asarray(ids, np.int64)
    out: dict[str, tuple[I64, I64]] = {}
    for name, layer_name in sorted(model.outputs.items()):
        layer = model.layer(layer_name)
        group = model.network.groups[model.groups_of[layer.name][0]]
        if not group.model.spiking:
            continue
        sel = (g >= layer.first) & (g < layer.first + layer.count)
        t = s[sel] - layer.depth
        i = g[sel] - layer.first
        ok = t >= 0 if model_steps is None else (t >= 0) & (t < model_steps)
        t, i = t[ok], i[ok]
        order = np.lexsort((i, t))
        out[name] = (t[order], i[order])
    return out


def of_result(result: RunResult) -> dict[str, tuple[I64, I64]]:
    """The spiking outputs of an unsplit run (models.run.run_model), sorted alike."""
    out: dict[str, tuple[I64, I64]] = {}
    for name, o in sorted(result.outputs.items()):
        if not o.spiking:
            continue
        t, i = o.spike_steps.astype(np.int64), o.spike_ids.astype(np.int64)
        order = np.lexsort((i, t))
        out[name] = (t[order], i[order])
    return out


def output_digest(outputs: Outputs | RunResult) -> str:
    """sha256 (first 16 hex digits) of every spiking output's sorted (step, index) spikes."""
    if isinstance(outputs, RunResult):
        outputs = of_result(outputs)
    h = hashlib.sha256()
    for name in sorted(outputs):
        t, i = outputs[name]
        h.update(name.encode() + b"\0")
        h.update(np.asarray(t, "<i8").tobytes())
        h.update(np.asarray(i, "<i8").tobytes())
    return h.hexdigest()[:16]


def count(outputs: Outputs) -> int:
    return sum(int(t.size) for t, _ in outputs.values())
