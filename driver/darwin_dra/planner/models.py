"""Where `darwin-dra plan` gets its model graph: a generator, an engine network, or a NIR file.

A NIR file goes through the importer (darwin_dra.models): compiled as the engine would run it,
then tiled into groups (docs/models.md).
"""

from __future__ import annotations

from pathlib import Path

from darwin_dra.planner.generate import GENERATORS
from darwin_dra.planner.graph import ModelGraph


class ModelSourceError(ValueError):
    pass


def generated(name: str) -> ModelGraph:
    if name not in GENERATORS:
        raise ModelSourceError(f"--generate {name}: known models are {', '.join(GENERATORS)}")
    return GENERATORS[name]()


def from_nir(path: Path, tile: int) -> ModelGraph:
    """The graph of a .nir file: its layers in groups of at most ``tile`` neurons."""
    from darwin_dra.models import ModelError
    from darwin_dra.models.nirfile import load_model
    from darwin_dra.models.traffic import model_graph

    try:
        return model_graph(load_model(path), max_group_neurons=tile)
    except ModelError as exc:
        raise ModelSourceError(f"--model {exc}") from exc
