"""Where `darwin-dra plan` gets its model graph: a generator, an engine network, or a NIR file.

NIR_IMPORTER is the single hook for NIR: a module exposing ``model_graph(path) -> ModelGraph``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from darwin_dra.planner.generate import GENERATORS
from darwin_dra.planner.graph import ModelGraph

NIR_IMPORTER = "darwin_dra.models"


class ModelSourceError(ValueError):
    pass


def generated(name: str) -> ModelGraph:
    if name not in GENERATORS:
        raise ModelSourceError(f"--generate {name}: known models are {', '.join(GENERATORS)}")
    return GENERATORS[name]()


def from_nir(path: Path) -> ModelGraph:
    """The NIR importer's graph of a .nir file (imported lazily: it is an optional module)."""
    try:
        module: Any = importlib.import_module(NIR_IMPORTER)
    except ImportError as exc:
        raise ModelSourceError(
            f"--model {path}: the NIR importer ({NIR_IMPORTER}) is not installed in this build"
        ) from exc
    graph = module.model_graph(path)
    if not isinstance(graph, ModelGraph):
        raise ModelSourceError(f"{NIR_IMPORTER}.model_graph did not return a ModelGraph")
    return graph
