"""Fuzz target for the DRA node service as the kubelet calls it: NodePrepareResources and then
NodeUnprepareResources (v1 or v1beta1) through the servicer's own code, on a real driver (real
engine, checkpoint, CDI directory), with the claims the requests name served by an in-memory
API store that holds fuzzed claim documents, or nothing at all.

What must hold for every input: the service answers instead of raising; each claim uid of the
request gets exactly one answer; a claim that got devices is on the node until it is
unprepared, and after the unprepare of every claim of the request nothing is left: no
partition, no checkpoint entry, no CDI spec, no spike socket directory. A leak or a missing
answer is a finding, like an uncaught exception.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["darwin_dra"]):
    from darwin_dra import DRIVER_NAME
    from darwin_dra.engine import Engine
    from darwin_dra.hardware.model import ChipEntry
    from darwin_dra.hardware.profiles import load_profiles
    from darwin_dra.kubelet.dra_service import DRAPlugin
    from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2 as v1
    from darwin_dra.kubelet.proto_gen.dra_v1beta1 import api_pb2 as v1beta1
    from darwin_dra.plugin.driver import Driver
    from darwin_dra.plugin.node import DriverConfig
    from darwin_dra.testing.claims import MemoryClaims
    from google.protobuf.message import DecodeError

from tests.fuzz import loop
from tests.plugin.invariant import assert_nothing_held

NODE = "node-a"
UIDS = ("u-0", "u-1", "u-2", "")
DEVICES = (
    "chip-0-domain-0", "chip-0-domain-1", "chip-0-quad-0", "chip-0-half-0", "chip-0-shared-0",
    "chip-0", "chip-1-domain-0", "chip-1-domain-35", "chip-1", "chip-9-domain-0", "nope",
)  # fmt: skip
PARAMS = (
    {}, {"timestepUs": 1000}, {"timestepUs": 7}, {"routingMode": "xy"}, {"learning": True},
    {"routingMode": 3}, {"nope": 1}, [], None, "x",
)  # fmt: skip


def _scratch() -> Path:
    """A memory file system when the machine has one: the driver's checkpoint writes its file,
    fsyncs it, renames it and fsyncs the directory on every prepare and unprepare, as on a node;
    on a disk shared with other jobs those fsyncs were a fifth of the samples, on tmpfs
    they return at once. Same calls, same files, same checks."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def _state_root() -> Path:
    """This run's state and CDI directory, one per process (two runs at once must not share
    it). libFuzzer ends the process from C, past any Python clean-up, so each run removes the
    directories of runs whose process is gone instead of leaving one more behind."""
    tmp = _scratch()
    for old in tmp.glob("darwin-fuzz-dra-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    root = tmp / f"darwin-fuzz-dra-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    return root


class _Node:
    """One plugin's state, made once: every input must leave it as it found it."""

    def __init__(self) -> None:
        profiles = load_profiles()
        self.engine = Engine()
        for i in range(2):
            entry = ChipEntry(model="darwin3", serial=f"D-{i}", fabric="f0")
            self.engine.add_chip(profiles["darwin3"], entry)
        root = _state_root()
        self.cfg = DriverConfig(NODE, root / "state", root / "cdi", lock_timeout_s=5)
        self.store = MemoryClaims()
        self.driver = Driver(self.cfg, self.engine, profiles, self.store, boot_id=lambda: "b")
        self.services = (DRAPlugin(self.driver, v1, True), DRAPlugin(self.driver, v1beta1, False))


_NODE: _Node | None = None


def _node() -> _Node:
    global _NODE
    if _NODE is None:
        _NODE = _Node()
    return _NODE


def _text(fdp: atheris.FuzzedDataProvider, n: int) -> str:
    return fdp.ConsumeUnicodeNoSurrogates(n)  # protobuf strings are UTF-8: no lone surrogates


def _claim_doc(fdp: atheris.FuzzedDataProvider, uid: str, name: str) -> Any:
    results = []
    for r in range(fdp.ConsumeIntInRange(0, 3)):
        results.append({
            "request": f"r{r}" if fdp.ConsumeIntInRange(0, 7) else _text(fdp, 4),
            "driver": DRIVER_NAME if fdp.ConsumeIntInRange(0, 7) else "other.io",
            "pool": NODE if fdp.ConsumeIntInRange(0, 7) else "node-b",
            "device": fdp.PickValueInList(list(DEVICES)),
        })  # fmt: skip
        if fdp.ConsumeIntInRange(0, 3) == 0:
            results[-1]["consumedCapacity"] = {"keps": fdp.PickValueInList(["1k", "50", -1, "x"])}
            results[-1]["shareID"] = fdp.PickValueInList(["s-1", "", 7])
    config = [
        {"source": fdp.PickValueInList(["FromClaim", "FromClass", "x"]),
         "opaque": {"driver": DRIVER_NAME, "parameters": fdp.PickValueInList(list(PARAMS))}}
        for _ in range(fdp.ConsumeIntInRange(0, 2))
    ]  # fmt: skip
    doc: Any = {
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1"},
        "status": {"allocation": {"devices": {"results": results, "config": config}}},
    }
    if fdp.ConsumeIntInRange(0, 15) == 0:  # a document of the wrong shape at some level
        doc["status"] = fdp.PickValueInList([None, [], "x", {"allocation": 3}])
    return doc


def _request(fdp: atheris.FuzzedDataProvider, pb: Any, store: MemoryClaims) -> Any:
    if fdp.ConsumeIntInRange(0, 7) == 0:  # raw bytes: whatever protobuf's parser accepts
        try:
            return pb.NodePrepareResourcesRequest.FromString(fdp.ConsumeBytes(256))
        except DecodeError:
            return None
    req = pb.NodePrepareResourcesRequest()
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        uid = fdp.PickValueInList(list(UIDS))
        name = f"c-{uid}" if fdp.ConsumeIntInRange(0, 7) else _text(fdp, 6)
        req.claims.add(namespace="ns", uid=uid, name=name)
        if fdp.ConsumeIntInRange(0, 7):  # else: the API server has no such claim
            store.add(_claim_doc(fdp, uid, name))
    return req


def dra(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    node = _node()
    node.store.claims.clear()
    version = fdp.ConsumeIntInRange(0, 1)
    service, pb = node.services[version], (v1, v1beta1)[version]
    req = _request(fdp, pb, node.store)
    if req is None:
        return
    uids = {c.uid for c in req.claims}
    names: dict[str, set[tuple[str, str]]] = {}
    for c in req.claims:
        names.setdefault(c.uid, set()).add((c.namespace, c.name))
    twice = {uid for uid, n in names.items() if len(n) > 1}  # refused, in both calls
    prepared = loop.run(service.NodePrepareResources(req, None))
    assert set(prepared.claims) == uids, (set(prepared.claims), uids)
    for uid, answer in prepared.claims.items():
        assert not (answer.error and answer.devices), (uid, answer)
        assert uid not in twice or "named twice" in answer.error, (uid, answer)
    undo = pb.NodeUnprepareResourcesRequest()
    undo.claims.extend(req.claims)
    unprepared = loop.run(service.NodeUnprepareResources(undo, None))
    assert set(unprepared.claims) == uids
    for uid, answer in unprepared.claims.items():
        assert (answer.error != "") == (uid in twice), (uid, answer)
    assert_nothing_held(node.driver, node.engine, node.cfg)
