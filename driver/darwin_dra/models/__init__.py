"""Spiking models in and out of the engine: NIR graphs (the Neuromorphic Intermediate
Representation) compiled to engine networks, written back, inspected, run and described for the
planner. See docs/models.md."""

from darwin_dra.models.compile import (
    SUPPORTED,
    CompiledModel,
    Layer,
    Projection,
    compile_graph,
)
from darwin_dra.models.errors import (
    LoopWithoutDelay,
    MalformedFile,
    ModelError,
    ModelTooLarge,
    PrecisionError,
    ShapeMismatch,
    UnsupportedNode,
)

__all__ = [
    "SUPPORTED",
    "CompiledModel",
    "Layer",
    "LoopWithoutDelay",
    "MalformedFile",
    "ModelError",
    "ModelTooLarge",
    "PrecisionError",
    "Projection",
    "ShapeMismatch",
    "UnsupportedNode",
    "compile_graph",
]
