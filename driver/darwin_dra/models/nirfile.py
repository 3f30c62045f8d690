"""Reading and writing .nir files (HDF5) with the `nir` package: the file edge of model import.
A file that cannot be read is refused with the file and the reason, and a node type the engine
does not run is named (with its path in nested graphs) before any of the file is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import nir

from darwin_dra.models.compile import SUPPORTED
from darwin_dra.models.errors import MalformedFile, ModelError, UnsupportedNode


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _scan(group: Any, path: str, where: Path) -> None:
    """Checks the node types of an HDF5 node group, recursively, before nir builds anything."""
    if "type" not in group:
        raise MalformedFile(f"{where}: node {path or '(top)'!r} has no type")
    kind = _text(group["type"][()])
    if kind not in SUPPORTED:
        raise UnsupportedNode(
            f"{where}: node {path or '(top)'!r} is of type {kind}, which the engine does not "
            "run; supported: " + ", ".join(SUPPORTED)
        )
    if kind == "NIRGraph":
        if "nodes" not in group or "edges" not in group:
            raise MalformedFile(f"{where}: graph {path or '(top)'!r} lacks nodes or edges")
        for name, child in group["nodes"].items():
            if not isinstance(child, h5py.Group):
                raise MalformedFile(f"{where}: node {path + name!r} is not an HDF5 group")
            _scan(child, f"{path}{name}.", where)


def read_graph(path: Path | str) -> Any:
    """The nir.NIRGraph of a .nir file."""
    where = Path(path)
    if not where.is_file():
        raise MalformedFile(f"{where}: no such file")
    try:
        with h5py.File(where, "r") as f:
            if "node" not in f:
                raise MalformedFile(f"{where}: not a NIR file (no 'node' group)")
            _scan(f["node"], "", where)
        graph = nir.read(where)
    except ModelError:
        raise
    except Exception as exc:  # h5py and nir raise OSError, KeyError, ValueError, AssertionError...
        reason = str(exc) or type(exc).__name__
        raise MalformedFile(f"{where}: not a readable NIR graph: {reason}") from exc
    return graph


def write_graph(path: Path | str, graph: Any) -> None:
    """Writes a NIR graph (gzip-compressed datasets)."""
    nir.write(Path(path), graph)
