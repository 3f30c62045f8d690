"""Fuzz targets for the Python edges that take input from outside: the claims and opaque config
the kubelet hands the plugin, the inventory, profile and fault files, the plugin's checkpoint as
a crash may leave it, NIR graphs, and the SpikePort's Load and Step messages as a workload
sends them to its partition; the streams between pipeline stages (wire_target.py).

Each target takes the fuzzer's bytes and either succeeds or raises the one error type its edge
documents (a clear message, nothing else); any other exception is a finding. `tests/fuzz/run.py`
drives them with atheris (coverage-guided); `make fuzz` runs a million inputs each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris
import numpy as np

with atheris.instrument_imports(include=["darwin_dra"]):
    from darwin_dra.chiphost import faults
    from darwin_dra.engine import Engine, NeuronGroup
    from darwin_dra.engine import errors as engine_errors
    from darwin_dra.hardware.errors import HardwareFileError
    from darwin_dra.hardware.inventory import load_inventory
    from darwin_dra.hardware.model import ChipEntry
    from darwin_dra.hardware.profiles import load_profile, load_profiles
    from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2 as spb
    from darwin_dra.models.compile import compile_graph
    from darwin_dra.models.errors import ModelError
    from darwin_dra.plugin import checkpoint, config, plan
    from darwin_dra.resources.chips import ChipView
    from darwin_dra.runtime.spikeport import SpikePortServicer
    from google.protobuf.message import DecodeError

from tests.fuzz.dra_target import dra
from tests.fuzz.wire_target import stage_wire

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
    "FaultList", "faults", "index", "core", "domain", "link", "chip",
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


def fault_file(data: bytes) -> None:
    """The fault file the chip host polls, as an operator or a chaos script may write it: the
    bytes as the file, and the document built from them as its content."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faults.yaml"
        path.write_bytes(data)
        with contextlib.suppress(faults.FaultFileError):
            faults.load(path)
    with contextlib.suppress(faults.FaultFileError):
        faults.parse(document(data), "faults.yaml")


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


_ENGINE: Engine | None = None


def _engine() -> Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine()
        _ENGINE.add_chip(DARWIN3, ChipEntry(model="darwin3", serial="F-0", fabric="f0"))
    return _ENGINE


def _column(fdp: atheris.FuzzedDataProvider, width: int, count: int) -> bytes:
    """Mostly whole elements, sometimes a ragged tail: the wire's columns as a client may
    get them wrong."""
    extra = fdp.ConsumeIntInRange(0, width - 1) if fdp.ConsumeIntInRange(0, 7) == 0 else 0
    return fdp.ConsumeBytes(count * width + extra)


def _param(fdp: atheris.FuzzedDataProvider, low: float, high: float) -> float:
    """Mostly a value a model might have, sometimes any float at all (NaN, inf, huge)."""
    if fdp.ConsumeIntInRange(0, 7) == 7:  # (an exhausted provider gives 0: the sane path)
        return fdp.ConsumeFloat()
    return fdp.ConsumeFloatInRange(low, high)


def _ids(fdp: atheris.FuzzedDataProvider, count: int, bound: int) -> bytes:
    """u32 ids mostly below ``bound`` (valid), sometimes anything, sometimes ragged."""
    if fdp.ConsumeIntInRange(0, 7) == 7:
        return _column(fdp, 4, count)
    values = [fdp.ConsumeIntInRange(0, max(bound - 1, 0)) for _ in range(count)]
    return np.asarray(values, dtype="<u4").tobytes()


def _load_request(fdp: atheris.FuzzedDataProvider) -> Any:
    if fdp.ConsumeIntInRange(0, 3) == 3:  # raw protobuf: whatever parses
        try:
            return spb.LoadRequest.FromString(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512)))
        except DecodeError:
            return None
    req = spb.LoadRequest(
        name=fdp.ConsumeUnicodeNoSurrogates(8), n_inputs=fdp.ConsumeIntInRange(0, 16)
    )
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        # A valid group (the engine's defaults, NEST's iaf_psc_delta) with some fields changed:
        # random values everywhere would never get past the first check.
        fields = {f.name: f.default for f in dataclasses.fields(NeuronGroup)}
        fields["count"] = fdp.ConsumeIntInRange(1, 40)
        for name, value in list(fields.items()):
            if isinstance(value, float) and fdp.ConsumeIntInRange(0, 7) == 7:
                fields[name] = _param(fdp, -10, 50)
        fields["model"] = fdp.ConsumeIntInRange(0, 5) if fdp.ConsumeIntInRange(0, 3) == 3 else 0
        fields["reset"] = fdp.ConsumeIntInRange(0, 2) if fdp.ConsumeIntInRange(0, 7) == 7 else 0
        if fdp.ConsumeIntInRange(0, 15) == 15:
            fields["model"] = -1
        req.groups.add(**{k: int(v) if k in ("model", "reset") else v for k, v in fields.items()})
    neurons = sum(g.count for g in req.groups)
    n = fdp.ConsumeIntInRange(0, 64)
    req.src = _ids(fdp, n, neurons + req.n_inputs)
    req.dst = _ids(fdp, n, neurons)
    with np.errstate(over="ignore"):  # a huge double becomes inf as f32: also an input
        req.weight = np.asarray([_param(fdp, -40, 40) for _ in range(n)], "<f4").tobytes()
    req.delay = np.asarray([fdp.ConsumeIntInRange(0, 300) for _ in range(n)], "<u2").tobytes()
    if fdp.ConsumeIntInRange(0, 7) == 7:  # one column of another length
        req.delay = _column(fdp, 2, fdp.ConsumeIntInRange(0, 64))
    req.export_neurons = _ids(fdp, fdp.ConsumeIntInRange(0, 16), neurons)
    req.export_capacity = fdp.ConsumeIntInRange(0, 1 << 12)
    req.input_capacity = fdp.ConsumeIntInRange(0, 1 << 12)
    req.dt_ms = _param(fdp, 0.01, 2) if fdp.ConsumeBool() else 0.0
    req.seed = fdp.ConsumeInt(8) & ((1 << 64) - 1)
    if fdp.ConsumeBool():
        req.bias = _column(fdp, 4, neurons if fdp.ConsumeBool() else fdp.ConsumeIntInRange(0, 99))
    return req


def spikeport(data: bytes) -> None:
    """A Load message, then a few Step messages, through the servicer's own code on a fresh
    partition of a real engine (gRPC's transport and protobuf's parser are theirs)."""
    fdp = atheris.FuzzedDataProvider(data)
    engine = _engine()
    part = engine.create_partition(0, domains=[0])
    port = SpikePortServicer(engine, part)
    refused = (engine_errors.EngineError, ValueError)
    try:
        req = _load_request(fdp)
        if req is None:
            return
        try:
            port._load(req)
        except refused:
            return
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            n = fdp.ConsumeIntInRange(0, 32)
            steps = [fdp.ConsumeIntInRange(0, 60) for _ in range(n)]
            raw = fdp.ConsumeIntInRange(0, 7) == 7
            inputs = spb.Spikes(
                steps=_column(fdp, 8, n) if raw else np.asarray(steps, "<u8").tobytes(),
                ids=_ids(fdp, n, req.n_inputs),
            )
            with contextlib.suppress(*refused):
                port._step(spb.StepRequest(inputs=inputs, steps=fdp.ConsumeIntInRange(0, 40)))
    finally:
        engine.destroy_partition(part)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "claim": claim,
    "opaque-config": opaque_config,
    "inventory": inventory,
    "profile": profile,
    "fault-file": fault_file,
    "checkpoint": checkpoint_file,
    "nir-graph": nir_graph,
    "spikeport": spikeport,
    "dra": dra,
    "stage-wire": stage_wire,
}
