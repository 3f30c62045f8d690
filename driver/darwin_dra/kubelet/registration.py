"""Kubelet plugin registration: who we are, where the DRA socket is, and the kubelet's verdict."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from darwin_dra.kubelet.proto_gen.pluginregistration_v1 import api_pb2 as pb
from darwin_dra.kubelet.proto_gen.pluginregistration_v1 import api_pb2_grpc as pb_grpc

log = structlog.get_logger(__name__)

PLUGIN_TYPE = "DRAPlugin"


@dataclass(frozen=True)
class RegistrationStatus:
    registered: bool
    error: str


class RegistrationServicer(pb_grpc.RegistrationServicer):
    """Answers GetInfo and records NotifyRegistrationStatus.

    The kubelet calls GetInfo, validates, then reports back; it re-registers whenever the socket
    reappears, so every report replaces the previous one.
    """

    def __init__(self, driver_name: str, endpoint: str, supported_versions: Sequence[str]) -> None:
        if not supported_versions:
            raise ValueError("a DRA plugin must advertise at least one service version")
        self._info = pb.PluginInfo(
            type=PLUGIN_TYPE,
            name=driver_name,
            endpoint=endpoint,
            supported_versions=list(supported_versions),
        )
        self._log = log.bind(driver=driver_name, endpoint=endpoint)
        self._status: RegistrationStatus | None = None
        self._changed = asyncio.Event()

    @property
    def status(self) -> RegistrationStatus | None:
        """The kubelet's last report, None until it made one."""
        return self._status

    async def wait_for_status(self, timeout: float | None = None) -> RegistrationStatus:
        """Wait for the next report if none came yet; raises TimeoutError after ``timeout``."""
        async with asyncio.timeout(timeout):
            while self._status is None:
                await self._changed.wait()
        return self._status

    async def GetInfo(  # noqa: N802 (gRPC method)
        self, request: pb.InfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.PluginInfo:
        self._log.debug("kubelet asked for plugin info")
        return self._info

    async def NotifyRegistrationStatus(  # noqa: N802 (gRPC method)
        self, request: pb.RegistrationStatus, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RegistrationStatusResponse:
        self._status = RegistrationStatus(registered=request.plugin_registered, error=request.error)
        self._changed.set()
        if request.plugin_registered:
            self._log.info("registered with the kubelet")
        else:
            self._log.error("kubelet refused the registration", error=request.error)
        return pb.RegistrationStatusResponse()
