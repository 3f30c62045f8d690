"""A minimal DRA kubelet plugin for the integration tests: registers through the kubelet's
plugins_registry, answers NodePrepareResources / NodeUnprepareResources recording each call, and
streams device health reports pushed by the test.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import dra_wire
import grpc

REGISTRATION = "pluginregistration.Registration"
DRA_V1 = "k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin"
HEALTH_V1 = "v1.DRAResourceHealth"

# Claim -> the devices the plugin reports as prepared for it.
Allocator = Callable[[dra_wire.Claim], list[dra_wire.Device]]


def _identity(data: bytes) -> bytes:
    return data


def _service(
    name: str, methods: dict[str, Callable[[bytes, grpc.ServicerContext], bytes]]
) -> grpc.GenericRpcHandler:
    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=_identity, response_serializer=_identity
        )
        for method, fn in methods.items()
    }
    return grpc.method_handlers_generic_handler(name, handlers)


def _serve(path: Path, handlers: list[grpc.GenericRpcHandler]) -> grpc.Server:
    path.unlink(missing_ok=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(handlers)
    server.add_insecure_port(f"unix:{path}")
    server.start()
    return server


@dataclass
class Calls:
    prepared: list[dra_wire.Claim] = field(default_factory=list)
    unprepared: list[dra_wire.Claim] = field(default_factory=list)
    registered: list[tuple[bool, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


class MinimalDRAPlugin:
    """Serves both sockets of one driver on one node until `stop`."""

    def __init__(
        self, driver: str, registry_dir: Path, plugins_dir: Path, devices: Allocator
    ) -> None:
        self.driver = driver
        self.reg_socket = registry_dir / f"{driver}-reg.sock"
        self.dra_socket = plugins_dir / driver / "dra.sock"
        self.devices = devices
        self.calls = Calls()
        self._servers: list[grpc.Server] = []
        self._health: queue.Queue[list[dra_wire.DeviceHealth] | None] = queue.Queue()

    def start(self) -> MinimalDRAPlugin:
        self.dra_socket.parent.mkdir(parents=True, exist_ok=True)
        # The DRA service must be up before registration makes the kubelet connect to it.
        dra = _service(
            DRA_V1,
            {"NodePrepareResources": self._prepare, "NodeUnprepareResources": self._unprepare},
        )
        health = grpc.method_handlers_generic_handler(
            HEALTH_V1,
            {
                "NodeWatchResources": grpc.unary_stream_rpc_method_handler(
                    self._watch, request_deserializer=_identity, response_serializer=_identity
                )
            },
        )
        self._servers.append(_serve(self.dra_socket, [dra, health]))
        registration = _service(
            REGISTRATION,
            {"GetInfo": self._get_info, "NotifyRegistrationStatus": self._notify},
        )
        self._servers.append(_serve(self.reg_socket, [registration]))
        return self

    def report_health(self, devices: list[dra_wire.DeviceHealth]) -> None:
        """Send one NodeWatchResourcesResponse on the kubelet's health stream."""
        self._health.put(devices)

    def stop(self) -> None:
        self._health.put(None)
        for server in self._servers:
            server.stop(grace=1).wait()
        for sock in (self.reg_socket, self.dra_socket):
            sock.unlink(missing_ok=True)

    def _record(self, into: list[dra_wire.Claim], claims: list[dra_wire.Claim]) -> None:
        with self.calls.changed:
            into.extend(claims)
            self.calls.changed.notify_all()

    def _get_info(self, _request: bytes, _ctx: grpc.ServicerContext) -> bytes:
        return dra_wire.plugin_info(
            "DRAPlugin", self.driver, str(self.dra_socket), ["v1.DRAPlugin", HEALTH_V1]
        )

    def _notify(self, request: bytes, _ctx: grpc.ServicerContext) -> bytes:
        with self.calls.changed:
            self.calls.registered.append(dra_wire.registration_status(request))
            self.calls.changed.notify_all()
        return b""

    def _prepare(self, request: bytes, _ctx: grpc.ServicerContext) -> bytes:
        claims = dra_wire.claims_request(request)
        self._record(self.calls.prepared, claims)
        return dra_wire.prepare_response({c.uid: (self.devices(c), "") for c in claims})

    def _unprepare(self, request: bytes, _ctx: grpc.ServicerContext) -> bytes:
        claims = dra_wire.claims_request(request)
        self._record(self.calls.unprepared, claims)
        return dra_wire.unprepare_response({c.uid: "" for c in claims})

    def _watch(self, _request: bytes, ctx: grpc.ServicerContext) -> Iterator[bytes]:
        while ctx.is_active():
            try:
                devices = self._health.get(timeout=0.5)
            except queue.Empty:
                continue
            if devices is None:
                return
            yield dra_wire.watch_response(devices)
