"""Fuzz targets for the Python edges that take input from outside: the claims and opaque config
the kubelet hands the plugin, the inventory and profile files, the plugin's checkpoint as a
crash may leave it, and NIR graphs.

Each target takes the fuzzer's bytes and either succeeds or raises the one error type its edge
documents (a clear message, nothing else); any other exception is a finding. `tests/fuzz/run.py`
drives them with atheris (coverage-guided); `make fuzz` runs a million inputs each.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris
import numpy as np

with atheris.instrument_imports(include=["darwin_dra"]):
    from darwin_dra.hardware.errors import HardwareFileError
    from darwin_dra.hardware.inventory import load_inventory
    from darwin_dra.hardware.profiles import load_profile, load_profiles
    from darwin_dra.models.compile import compile_graph
    from darwin_dra.models.errors import ModelError
    from darwin_dra.plugin import checkpoint, config, plan
    from darwin_dra.resources.chips import ChipView

PROFILES = load_profiles()
DARWIN3 = PROFILES["darwin3"]
NODE = "node-a"
UID = "5f0c2a1e-9d5b-4c1e-8a77-0d9c6b1f2e3a"

# Words the generated documents are made of: a fuzzer that only ever sees random keys never gets
# past the first field check.
KEYS = (
    "apiVersion", "kind", "metadata", "uid", "name", "namespace", "status", "allocation",
    "devices", "results", "config", "driver", "pool", "device", "request", "requests", "opaque",
    "parameters", "source", "FromClaim", "FromClass", "consumedCapacity", "keps", "shareID",
    "adminAccess", "timestepUs", "routingMode", "learning", "precision", "nodes", "fabrics",
    "chips", "id", "model", "serial", "pcieRoot", "firmware", "count", "mesh", "cores",
    "domains", "darwin.snn.io", "darwin.snn.io/v1alpha1", "PartitionConfig", "Inventory",
    "darwin3", "chip-0", "chip-1-domain-3", "chip-0-quad-4", "chip-0-shared-0", NODE, UID,
)  # fmt: skip


def _value(fdp: atheris.FuzzedDataProvider, depth: int) -> Any:
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 5 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(8)
    if kind == 3:
        return fdp.ConsumeFloat()
    if kind in (4, 5):
        return fdp.PickValueInList(list(KEYS))
    if kind == 6:
        return fdp.ConsumeUnicodeNoSurrogates(12)
    if kind == 7:
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    return {
        fdp.PickValueInList(list(KEYS)): _value(fdp, depth + 1)
        for _ in range(fdp.ConsumeIntInRange(0, 6))
    }


def document(data: bytes) -> Any:
    """Bytes as a JSON document: taken as JSON text when they parse, else built from them."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _value(atheris.FuzzedDataProvider(data), 0)


def claim(data: bytes) -> None:
    """A ResourceClaim as the kubelet's prepare reads it from the API server."""
    doc = document(data)
    if isinstance(doc, dict):
        doc.setdefault("metadata", {"uid": UID, "namespace": "ns", "name": "c"})
    chips = {i: ChipView.nominal(i, _entry(i), DARWIN3) for i in range(2)}
    with contextlib.suppress(plan.ClaimError):
        plan.plan_claim(doc if isinstance(doc, dict) else {"status": doc}, UID, NODE, chips)


def opaque_config(data: bytes) -> None:
    """The parameters of one opaque config entry (PartitionConfig)."""
    with contextlib.suppress(config.ConfigError):
        config.parse_partition_config(document(data))


def _file_target(loader: Callable[[Path], object]) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "input.yaml"
            path.write_bytes(data)
            with contextlib.suppress(HardwareFileError):
                loader(path)

    return target


inventory = _file_target(lambda p: load_inventory(p, PROFILES))
profile = _file_target(load_profile)


def checkpoint_file(data: bytes) -> None:
    """The checkpoint as a crash or a full disk may have left it."""
    with contextlib.suppress(checkpoint.CheckpointError):
        checkpoint.decode(data, "checkpoint.json")


def nir_graph(data: bytes) -> None:
    """A NIR graph of a few nodes with fuzzed types, shapes, parameters and edges."""
    import nir

    fdp = atheris.FuzzedDataProvider(data)
    n = fdp.ConsumeIntInRange(1, 4)

    def array(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
        size = int(np.prod(shape)) if shape else 1
        raw = [fdp.ConsumeFloat() for _ in range(min(size, 64))]
        values = np.resize(np.array(raw or [0.0], dtype=np.float64), size)
        return values.reshape(shape)

    def shape() -> tuple[int, ...]:
        return tuple(fdp.ConsumeIntInRange(0, 5) for _ in range(fdp.ConsumeIntInRange(0, 3)))

    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(shape() or (3,)))}
    for i in range(n):
        s = shape() or (3,)
        kind = fdp.ConsumeIntInRange(0, 6)
        try:
            if kind == 0:
                node = nir.Affine(weight=array((s[0], s[-1])), bias=array((s[0],)))
            elif kind == 1:
                node = nir.Linear(weight=array((s[0], s[-1])))
            elif kind == 2:
                node = nir.LIF(tau=array(s), r=array(s), v_leak=array(s), v_threshold=array(s))
            elif kind == 3:
                node = nir.IF(r=array(s), v_threshold=array(s))
            elif kind == 4:
                node = nir.LI(tau=array(s), r=array(s), v_leak=array(s))
            elif kind == 5:
                node = nir.Scale(scale=array(s))
            else:
                node = nir.Threshold(threshold=array(s))
        except (ValueError, TypeError, AttributeError, IndexError):
            return  # the nir package refused to make the node: not ours to test
        nodes[f"n{i}"] = node
    nodes["output"] = nir.Output(output_type=np.array(shape() or (3,)))
    names = list(nodes)
    edges = [
        (fdp.PickValueInList(names), fdp.PickValueInList(names))
        for _ in range(fdp.ConsumeIntInRange(0, 8))
    ]
    try:
        graph = nir.NIRGraph(nodes=nodes, edges=edges)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return
    with contextlib.suppress(ModelError):
        compile_graph(graph, dt=1e-3, name="fuzz")


def _entry(chip: int) -> Any:
    from darwin_dra.hardware.model import ChipEntry

    return ChipEntry(model="darwin3", serial=f"F-{chip}", fabric="wafer-f", firmware="1.4.2")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "claim": claim,
    "opaque-config": opaque_config,
    "inventory": inventory,
    "profile": profile,
    "checkpoint": checkpoint_file,
    "nir-graph": nir_graph,
}
