"""What a compiled model is: its layers and projections, and the NIR node kinds and defaults
the compiler (models/compile.py) works with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from darwin_dra.engine.network import Model, Network, Reset

NEURONS: dict[str, Model] = {
    "LIF": Model.LIF,
    "IF": Model.IF,
    "LI": Model.LI,
    "CubaLIF": Model.CUBA_LIF,
    "CubaLI": Model.CUBA_LI,
    "Threshold": Model.THRESHOLD,
}
LINEAR = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d")
SUPPORTED = ("Input", "Output", *LINEAR, "Delay", *NEURONS, "NIRGraph")
PASS = "Identity"  # a nested graph's own Input and Output nodes: pass-through

DEFAULT_DT_S = 1e-4  # snnTorch's export assumes it (tau = dt / (1 - beta)); Norse uses 1e-3
DEFAULT_RESET = Reset.VALUE  # the NIR definition: v <- v_reset
DEFAULT_WEIGHT_TOLERANCE = 0.02
WEIGHT_LEVELS = 127  # weights on the grid k/127 of a layer's largest, |k| <= 127: 255 entries


@dataclass(frozen=True)
class Layer:
    """A population of the compiled model: an Input (engine input ids) or a neuron node."""

    name: str
    kind: str  # the NIR node type
    shape: tuple[int, ...]
    first: int  # first neuron id, or first input id for an Input
    count: int
    depth: int  # engine steps behind model time

    @property
    def is_input(self) -> bool:
        return self.kind == "Input"


@dataclass(frozen=True)
class Projection:
    """The synapses from one layer to another at one delay, and the node types they came from."""

    source: str
    target: str
    via: tuple[str, ...]
    synapses: int
    delay: int  # engine steps


@dataclass(frozen=True)
class CompiledModel:
    name: str
    network: Network
    layers: tuple[Layer, ...]
    projections: tuple[Projection, ...]
    outputs: Mapping[str, str]  # Output node -> the layer it reads
    dt_s: float
    reset: Reset
    weight_scale: Mapping[str, float]  # per layer: engine weights are the model's divided by it
    weight_error: float  # largest relative RMS weight quantisation error of a layer
    groups_of: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # layer -> groups

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def inputs(self) -> tuple[Layer, ...]:
        return tuple(x for x in self.layers if x.is_input)

    @property
    def neuron_layers(self) -> tuple[Layer, ...]:
        return tuple(x for x in self.layers if not x.is_input)

    @property
    def latency(self) -> int:
        """Engine steps from an input spike to the outputs' matching step."""
        return max((self.layer(v).depth for v in self.outputs.values()), default=0)
