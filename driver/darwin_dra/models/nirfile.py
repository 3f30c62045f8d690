"""Reading and writing .nir files (HDF5) with the `nir` package: the file edge of model import.
A file that cannot be read is refused with the file and the reason, and a node type the engine
does not run is named (with its path in nested graphs) before any of the file is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import nir

from darwin_dra.engine.network import Reset
from darwin_dra.models.compile import (
    DEFAULT_DT_S,
    DEFAULT_RESET,
    DEFAULT_WEIGHT_TOLERANCE,
    SUPPORTED,
    CompiledModel,
    compile_graph,
)
from darwin_dra.models.errors import MalformedFile, ModelError, UnsupportedNode
from darwin_dra.models.export import META_DT, META_RESET, to_nir
from darwin_dra.models.hdf5heap import check_global_heaps


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
    check_global_heaps(where)  # before libhdf5 may loop forever on a corrupt one
    try:
        with h5py.File(where, "r") as f:
            if "node" not in f:
                raise MalformedFile(f"{where}: not a NIR file (no 'node' group)")
            _scan(f["node"], "", where)
        # the compiler checks shapes itself, naming the node; nir's type inference refuses
        # graphs it cannot infer (pooling without input types, loops)
        graph = nir.read(where, type_check=False)
    except ModelError:
        raise
    except Exception as exc:  # h5py and nir raise OSError, KeyError, ValueError, AssertionError...
        reason = str(exc) or type(exc).__name__
        raise MalformedFile(f"{where}: not a readable NIR graph: {reason}") from exc
    return graph


def write_graph(path: Path | str, graph: Any) -> None:
    """Writes a NIR graph (gzip-compressed datasets)."""
    nir.write(Path(path), graph)


def _meta(graph: Any, key: str) -> Any:
    meta = getattr(graph, "metadata", None)
    if not isinstance(meta, dict) or key not in meta:
        return None
    value = meta[key]
    return value.decode() if isinstance(value, bytes) else value


def load_model(
    path: Path | str,
    *,
    dt: float | None = None,
    reset: Reset | None = None,
    weight_tolerance: float = DEFAULT_WEIGHT_TOLERANCE,
) -> CompiledModel:
    """A .nir file compiled for the engine. dt (s) and reset default to what the file's metadata
    says (graphs this package writes carry both), else to DEFAULT_DT_S and DEFAULT_RESET."""
    where = Path(path)
    graph = read_graph(where)
    if dt is None:
        raw = _meta(graph, META_DT)
        dt = float(raw) if raw is not None else DEFAULT_DT_S
    if reset is None:
        raw = _meta(graph, META_RESET)
        try:
            reset = Reset[str(raw)] if raw is not None else DEFAULT_RESET
        except KeyError as exc:
            raise MalformedFile(f"{where}: metadata {META_RESET} {raw!r} is not a reset") from exc
    try:
        return compile_graph(
            graph, dt=dt, reset=reset, weight_tolerance=weight_tolerance, name=where.stem
        )
    except ModelError as exc:
        raise type(exc)(f"{where}: {exc}") from exc


def save_model(path: Path | str, model: CompiledModel) -> None:
    write_graph(path, to_nir(model))
