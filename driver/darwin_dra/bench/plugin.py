"""`darwin-dra bench plugin`: NodePrepareResources latency and slice publishing time.

Prepare: real gRPC over a unix socket, the real Driver, engine and checkpoint (fsync'd), N claims
in one call. With a kubeconfig the claims are real ResourceClaims on that API server (the bench
writes their allocation itself, so the scheduler is not in the measured path) and the driver
reads them and writes their status; without it they come from memory
(darwin_dra.testing.claims) and the table says so.
Publish: the time to reconcile the slices of a node with C chips against the real API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from darwin_dra import DRIVER_NAME, kubeapi
from darwin_dra.chiphost.app import default_socket
from darwin_dra.chiphost.client import ChipHostClient, RemotePorts
from darwin_dra.cluster.chiphost import start_chip_host
from darwin_dra.engine import Engine, FaultKind
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.health_service import HealthHub
from darwin_dra.kubelet.server import PluginServer, PluginServerConfig
from darwin_dra.kubetypes import Obj
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig
from darwin_dra.plugin.publisher import publish_once
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.slices import build_slices
from darwin_dra.runtime.spikeport import SpikePorts
from darwin_dra.testing.claims import MemoryClaims
from darwin_dra.unixsock import grpc_target


def _engine(chips: int) -> Engine:
    profile = load_profiles()["darwin3"]
    engine = Engine()
    for i in range(chips):
        engine.add_chip(profile, ChipEntry("darwin3", f"BENCH-{i}", "bench-fabric"))
    return engine


@contextlib.asynccontextmanager
async def _chips(where: str, root: Path) -> AsyncIterator[tuple[Any, Any]]:
    """The node's chips and spike ports: in this process (the engine and the ports, as the
    plugin held them before the chip host), or a chip host process serving them (as a node
    runs now)."""
    if where == "engine":
        with _engine(4) as engine:
            ports = SpikePorts(engine)
            try:
                yield engine, ports
            finally:
                await ports.close()
        return
    inventory = root / "inventory.yaml"
    chips = "\n".join(f"          - {{model: darwin3, serial: BENCH-{i}}}" for i in range(4))
    inventory.write_text(
        "apiVersion: darwin.snn.io/v1alpha1\nkind: Inventory\nnodes:\n"
        f"  - name: bench-node\n    fabrics:\n      - id: bench-fabric\n        chips:\n{chips}\n"
    )
    host = start_chip_host("bench-node", inventory, root / "state", root / "chip-host.log")
    try:
        with ChipHostClient(default_socket(root / "state")) as client:
            yield client, RemotePorts(client)
    finally:
        host.terminate()
        host.wait(timeout=30)


def _allocated(api: Any, namespace: str, node: str, devices: Sequence[str]) -> list[Obj]:
    """Claims with an allocation written directly (what the scheduler would write)."""
    out = []
    for device in devices:
        name = f"bench-{uuid.uuid4().hex[:10]}"
        body = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": name},
            "spec": {
                "devices": {
                    "requests": [{"name": "r", "exactly": {"deviceClassName": "bench.snn.io"}}]
                }
            },
        }
        created = api.create_claim(namespace, body)
        created["status"] = {
            "allocation": {
                "devices": {
                    "results": [
                        {"request": "r", "driver": DRIVER_NAME, "pool": node, "device": device}
                    ]
                },
                "nodeSelector": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                },
            }
        }
        out.append(api.replace_claim_status(created))
    return out


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _prepare_bench(
    api: Any, namespace: str, counts: Sequence[int], repeat: int, where: str = "engine"
) -> list[str]:
    rows: list[str] = []
    # a short prefix: socket paths with a claim UID stay below 107 bytes
    with tempfile.TemporaryDirectory(prefix="drab-") as tmp:
        root = Path(tmp)
        async with _chips(where, root) as (chips, ports):
            rows += await _prepare_calls(api, namespace, counts, repeat, root, chips, ports, where)
    return rows


async def _prepare_calls(
    api: Any,
    namespace: str,
    counts: Sequence[int],
    repeat: int,
    root: Path,
    chips: Any,
    ports: Any,
    where: str,
) -> list[str]:
    from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2 as v1
    from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2_grpc as v1_grpc

    node = "bench-node"
    rows = []
    driver = Driver(
        DriverConfig(node, root / "state", root / "cdi"),
        chips,
        load_profiles(),
        api,
        spike_ports=ports,
    )
    devices = [f"chip-{c}-domain-{d}" for c in range(4) for d in range(36)]
    server = PluginServer(
        PluginServerConfig(root / "reg", root / "plugins", probe_interval_s=3600),
        driver,
        HealthHub(),
    )
    await server.start()
    try:
        async with grpc_channel(server.paths.dra) as ch:
            stub = v1_grpc.DRAPluginStub(ch)
            for n in counts:
                times = []
                for _ in range(repeat):
                    claims = await asyncio.to_thread(_allocated, api, namespace, node, devices[:n])
                    refs = [
                        v1.Claim(
                            namespace=namespace,
                            uid=c["metadata"]["uid"],
                            name=c["metadata"]["name"],
                        )
                        for c in claims
                    ]
                    start = time.perf_counter()
                    resp = await stub.NodePrepareResources(
                        v1.NodePrepareResourcesRequest(claims=refs), timeout=45
                    )
                    times.append(time.perf_counter() - start)
                    errors = [r.error for r in resp.claims.values() if r.error]
                    if errors:
                        raise RuntimeError(f"prepare failed: {errors[0]}")
                    await stub.NodeUnprepareResources(
                        v1.NodeUnprepareResourcesRequest(claims=refs), timeout=45
                    )
                    for c in claims:
                        await asyncio.to_thread(api.delete_claim, namespace, c["metadata"]["name"])
                rows.append(
                    f"| prepare {n:>3} claims/call, {where} | {_pct(times, 0.5) * 1e3:8.1f} ms "
                    f"| {_pct(times, 0.99) * 1e3:8.1f} ms | {repeat} calls |"
                )
    finally:
        await server.stop()
    return rows


@contextlib.asynccontextmanager
async def grpc_channel(path: Path) -> AsyncIterator[Any]:
    """A channel to the unix socket at ``path``, however long (darwin_dra.unixsock)."""
    import grpc

    with grpc_target(path) as target:
        async with grpc.aio.insecure_channel(target) as channel:
            yield channel


def _publish_bench(kube: kubeapi.Kube, counts: Sequence[int]) -> list[str]:
    profile = load_profiles()["darwin3"]
    rows = []
    for chips in counts:
        node = f"bench-publish-{chips}"
        with _engine(chips) as engine:

            def desired(eng: Engine = engine, name: str = node) -> list[Obj]:
                views = [ChipView.from_info(c, profile) for c in eng.chips()]
                return build_slices(name, views)

            first = desired()
            start = time.perf_counter()
            done = publish_once(kube, DRIVER_NAME, node, first)
            created = time.perf_counter() - start
            engine.inject_fault(0, FaultKind.DOMAIN, 5)
            start = time.perf_counter()
            # as the plugin does on a health change: plan against what it last wrote
            result = publish_once(kube, DRIVER_NAME, node, desired(), known=done.stored)
            updated = time.perf_counter() - start
            start = time.perf_counter()
            publish_once(kube, DRIVER_NAME, node, desired())
            steady = time.perf_counter() - start
            for s in kube.list_slices(DRIVER_NAME, node):
                kube.delete_slice(s["metadata"]["name"])
        devices = sum(len(s["spec"].get("devices", [])) for s in first)
        rows.append(
            f"| publish {chips:>2} chips ({len(first)} slices, {devices} devices) "
            f"| {created * 1e3:8.1f} ms | {updated * 1e3:8.1f} ms (gen {result.generation}) "
            f"| {steady * 1e3:6.1f} ms |"
        )
    return rows


def run(
    kubeconfig: Path | None,
    namespace: str,
    counts: Sequence[int],
    chips: Sequence[int],
    repeat: int,
) -> int:
    """Prints the tables; 0 on success."""
    from darwin_dra import logs

    logs.configure("WARNING")  # per-claim info logs would drown the table
    kube = kubeapi.connect(kubeconfig) if kubeconfig else None
    source = f"API server {kube.server_version()}" if kube else "memory (no --kubeconfig)"
    api: Any = kube if kube else MemoryClaims()
    print(f"NodePrepareResources over a unix socket; claims served from {source}")
    print("| case | p50 | p99 | samples |\n| --- | --- | --- | --- |")
    for where in ("engine", "chip host"):
        for row in asyncio.run(_prepare_bench(api, namespace, counts, repeat, where)):
            print(row)
    if kube is None:
        print("\nslice publishing skipped: it needs a real API server (--kubeconfig)")
        return 0
    print("\nResourceSlice publishing against the real API server")
    print("| node | first publish (create) | after a fault (update all) | in sync (list only) |")
    print("| --- | --- | --- | --- |")
    for row in _publish_bench(kube, chips):
        print(row)
    kube.close()
    return 0
