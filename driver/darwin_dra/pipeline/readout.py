"""The readout of a model whose Output is an LI or CubaLI layer (pure): it fires no spikes, so
the stage that holds the layer reads its potentials from the engine after every step (the
SpikePort's readout) and keeps them at each sample's last model step; the class of a sample
is its largest potential there, as the unsplit evaluation decides (splitlearn/nirexport.py,
models.run's readout trace)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.models.compile import CompiledModel
from darwin_dra.pipeline.samples import SampleLayout

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ReadoutLayer:
    output: str  # the Output node
    layer: str
    first: int  # global id of its first neuron
    count: int
    depth: int  # engine steps from model input to this layer (model step m = engine m + depth)


def readout_layers(model: CompiledModel) -> list[ReadoutLayer]:
    """The model's non-spiking Outputs, in Output name order."""
    out = []
    for name, layer_name in sorted(model.outputs.items()):
        layer = model.layer(layer_name)
        group = model.network.groups[model.groups_of[layer.name][0]]
        if not group.model.spiking:
            out.append(ReadoutLayer(name, layer.name, layer.first, layer.count, layer.depth))
    return out


def held_readout(model: CompiledModel, stage: str, neurons: U32) -> ReadoutLayer | None:
    """The readout layer a stage (its global neurons, ascending) holds, or None; ValueError
    when it holds part of one, or two (a stage reports one readout)."""
    held = []
    for r in readout_layers(model):
        ids = np.arange(r.first, r.first + r.count)
        n = int(np.isin(ids, neurons).sum())
        if n and n != r.count:
            raise ValueError(
                f"stage {stage} holds {n} of readout layer {r.layer!r}'s {r.count} neurons: "
                "a readout must sit whole in one stage (split at layers)"
            )
        if n:
            held.append(r)
    if len(held) > 1:
        names = ", ".join(r.layer for r in held)
        raise ValueError(f"stage {stage} holds readout layers {names}: one per stage")
    return held[0] if held else None


@dataclass
class Readout:
    """Collects a readout's potentials, window by window, at the samples' last model steps
    (with no layout, the whole run is one sample: its last model step)."""

    layer: ReadoutLayer
    samples: SampleLayout | None
    model_steps: int | None = None  # when known in advance
    latency: int = 0  # the model's: a run may go this many steps past its last model step
    _at: dict[int, F32] = field(default_factory=dict)
    _recent: deque[tuple[int, F32]] = field(init=False)

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.latency + 1)

    def wanted(self, m: int) -> bool:
        if m < 0 or (self.model_steps is not None and m >= self.model_steps):
            return False
        if self.samples is None:
            return True
        return (m % self.samples.period) == self.samples.steps - 1

    def add(self, engine_start: int, rows: F32) -> None:
        """Potentials after engine steps engine_start, engine_start + 1, ... (one row each)."""
        for k in range(rows.shape[0]):
            m = engine_start + k - self.layer.depth
            if not self.wanted(m):
                continue
            if self.samples is None:
                self._recent.append((m, rows[k].copy()))
            else:
                self._at[m] = rows[k].copy()

    def result(self, model_steps: int) -> tuple[I64, F32]:
        """(model step, potentials) of every sample a run of ``model_steps`` completed."""
        if self.samples is None:
            last = [(m, v) for m, v in self._recent if m == model_steps - 1]
            steps = np.array([m for m, _ in last], np.int64)
            rows = [v for _, v in last]
        else:
            steps = self.samples.last_steps(model_steps)
            missing = [int(m) for m in steps if int(m) not in self._at]
            if missing:
                raise ValueError(
                    f"readout {self.layer.layer!r}: no potentials at model step {missing[0]}"
                )
            rows = [self._at[int(m)] for m in steps]
        v = np.stack(rows) if rows else np.zeros((0, self.layer.count), np.float32)
        return steps, v.astype(np.float32)

    def finish(self, model_steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The report's summary and the arrays of the --output file (``<output>.steps``,
        ``.potentials``, ``.classes``)."""
        at, v = self.result(model_steps)
        s = summary(self.layer, at, v)
        o = self.layer.output
        classes = np.asarray(s["classes"], np.int64)
        return s, {f"{o}.steps": at, f"{o}.potentials": v, f"{o}.classes": classes}


def summary(layer: ReadoutLayer, steps: I64, potentials: F32) -> dict[str, Any]:
    """What the stage's report says of its readout: the class (argmax) of every sample."""
    classes = np.argmax(potentials, axis=1) if potentials.size else np.zeros(0, np.int64)
    return {
        "output": layer.output,
        "layer": layer.layer,
        "samples": int(steps.size),
        "classes": [int(c) for c in classes],
    }
