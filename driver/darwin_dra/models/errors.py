"""Errors of model import: each names the file, node or layer at fault and what would fit."""

from __future__ import annotations


class ModelError(ValueError):
    """A model that cannot become an engine network; nothing of it was loaded."""


class MalformedFile(ModelError):
    """The file is not a readable NIR graph (truncated, not HDF5, missing or bad fields)."""


class UnsupportedNode(ModelError):
    """A node type the engine does not run."""


class ShapeMismatch(ModelError):
    """A node's input does not have the shape the node expects."""


class LoopWithoutDelay(ModelError):
    """A recurrent loop that would need to act within the same timestep."""


class PrecisionError(ModelError):
    """Weights or parameters that do not fit the chip's precision."""


class ModelTooLarge(ModelError):
    """More neurons, synapses or groups than the target holds."""
