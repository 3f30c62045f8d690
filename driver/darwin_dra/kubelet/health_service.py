"""Device health towards the kubelet (DRAResourceHealth, v1alpha1 and v1).

The plugin publishes device states into a :class:`HealthHub`; every open NodeWatchResources
stream first gets the full picture, then each change. The kubelet may hold one stream per API
version and reconnects at will, hence one queue per subscriber.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc
import structlog

from darwin_dra.kubelet.proto_gen.dra_health_v1 import api_pb2 as h_v1
from darwin_dra.kubelet.proto_gen.dra_health_v1 import api_pb2_grpc as h_v1_grpc
from darwin_dra.kubelet.proto_gen.dra_health_v1alpha1 import api_pb2 as h_v1alpha1
from darwin_dra.kubelet.proto_gen.dra_health_v1alpha1 import api_pb2_grpc as h_v1alpha1_grpc

log = structlog.get_logger(__name__)

V1ALPHA1_SERVICE = "v1alpha1.DRAResourceHealth"
V1_SERVICE = "v1.DRAResourceHealth"

# The kubelet truncates longer messages; doing it here keeps what it shows predictable.
MAX_MESSAGE = 1024


class Health(enum.IntEnum):
    # Same numbers as the proto enum in both versions.
    UNKNOWN = 0
    HEALTHY = 1
    UNHEALTHY = 2


@dataclass(frozen=True)
class DeviceHealthState:
    pool: str
    device: str
    health: Health
    last_updated: int  # unix seconds of the check
    timeout_seconds: int = 0  # 0: the kubelet's default
    message: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.pool, self.device)


class _Resync:
    """Queue marker: the subscriber fell behind and must be sent the whole snapshot."""


_RESYNC = _Resync()
_CLOSED = None

_Item = list[DeviceHealthState] | _Resync | None


class HealthHub:
    """Current health of every device plus fan-out of changes to subscribers."""

    def __init__(self, max_pending: int = 256) -> None:
        self._state: dict[tuple[str, str], DeviceHealthState] = {}
        self._subscribers: set[asyncio.Queue[_Item]] = set()
        self._max_pending = max_pending
        self._closed = False

    def snapshot(self) -> list[DeviceHealthState]:
        return [self._state[k] for k in sorted(self._state)]

    def publish(self, states: Iterable[DeviceHealthState]) -> list[DeviceHealthState]:
        """Record states; returns (and sends to subscribers) those that changed anything.

        A re-check with a newer timestamp counts as a change: the kubelet needs it to keep the
        device from timing out to UNKNOWN.
        """
        changed = [s for s in states if self._state.get(s.key) != s]
        for state in changed:
            self._state[state.key] = state
        if changed:
            for queue in self._subscribers:
                self._offer(queue, changed)
        return changed

    def forget(self, keys: Iterable[tuple[str, str]]) -> None:
        """Drop devices no longer published; the kubelet stops tracking them on its own."""
        for key in keys:
            self._state.pop(key, None)

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self._closed = True
        for queue in self._subscribers:
            self._offer(queue, _CLOSED)

    def _offer(self, queue: asyncio.Queue[_Item], item: _Item) -> None:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            # A stalled reader gets one full snapshot later instead of an unbounded backlog.
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_CLOSED if item is _CLOSED else _RESYNC)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[_Item]]:
        """A queue that starts with the snapshot, then receives every change."""
        queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=self._max_pending)
        queue.put_nowait(_CLOSED if self._closed else self.snapshot())
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    async def watch(self) -> AsyncIterator[list[DeviceHealthState]]:
        """Batches of states: the snapshot first, then changes, until the hub closes."""
        async with self.subscribe() as queue:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield self.snapshot() if isinstance(item, _Resync) else item


def _to_pb(module: ModuleType, states: Sequence[DeviceHealthState]) -> Any:
    response = module.NodeWatchResourcesResponse()
    for s in states:
        response.devices.add(
            device=module.DeviceIdentifier(pool_name=s.pool, device_name=s.device),
            health=int(s.health),
            last_updated_time=s.last_updated,
            health_check_timeout_seconds=s.timeout_seconds,
            message=s.message[:MAX_MESSAGE],
        )
    return response


class HealthService:
    """DRAResourceHealth of one API version: ``pb`` is that version's generated messages,
    ``service`` its name as the kubelet sees it. The versions' messages are the same shape."""

    def __init__(self, hub: HealthHub, pb: ModuleType, service: str) -> None:
        self._hub = hub
        self._pb = pb
        self._service = service

    async def NodeWatchResources(  # noqa: N802 (gRPC method)
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        log.info("kubelet watches device health", api=self._service)
        async for batch in self._hub.watch():
            yield _to_pb(self._pb, batch)


def add_health_services(server: grpc.aio.Server, hub: HealthHub) -> list[str]:
    versions: tuple[tuple[ModuleType, ModuleType, str], ...] = (
        (h_v1alpha1, h_v1alpha1_grpc, V1ALPHA1_SERVICE),
        (h_v1, h_v1_grpc, V1_SERVICE),
    )
    for pb, pb_grpc, service in versions:
        pb_grpc.add_DRAResourceHealthServicer_to_server(HealthService(hub, pb, service), server)
    return [service for _, _, service in versions]
