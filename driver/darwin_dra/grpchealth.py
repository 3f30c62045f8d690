"""The grpc.health.v1 servicer of our asyncio gRPC servers (the plugin's sockets, the chip host)."""

from __future__ import annotations

from typing import Protocol

from grpc_health.v1 import health_pb2


class AioHealth(Protocol):
    async def set(
        self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus
    ) -> None: ...

    async def enter_graceful_shutdown(self) -> None: ...


def async_health_servicer() -> AioHealth:
    # grpcio-health-checking ships the asyncio servicer, but grpc-stubs does not describe it.
    from grpc_health.v1 import _async

    servicer: AioHealth = _async.HealthServicer()
    return servicer
