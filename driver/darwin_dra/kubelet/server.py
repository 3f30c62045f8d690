"""The two gRPC servers a DRA kubelet plugin runs, on unix sockets.

- the DRA socket (DRA v1, v1beta1, health streams) under ``<plugins>/<driver>/``;
- the registration socket under ``<plugins_registry>/``, created last: its appearance is what
  makes the kubelet call us, so everything it points at must already answer.

Both also serve grpc.health.v1, SERVING only while a real call over each socket succeeds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from darwin_dra import DRIVER_NAME
from darwin_dra.grpchealth import async_health_servicer
from darwin_dra.kubelet.dra_service import add_dra_services
from darwin_dra.kubelet.health_service import HealthHub, add_health_services
from darwin_dra.kubelet.preparer import Preparer
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2 as dra_v1
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2_grpc as dra_v1_grpc
from darwin_dra.kubelet.proto_gen.pluginregistration_v1 import api_pb2 as reg_pb
from darwin_dra.kubelet.proto_gen.pluginregistration_v1 import api_pb2_grpc as reg_grpc
from darwin_dra.kubelet.registration import RegistrationServicer
from darwin_dra.unixsock import fitting_path, grpc_target, remove_stale_socket

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SocketPaths:
    registration: Path
    dra: Path


def socket_paths(
    plugins_registry: Path, plugins_dir: Path, driver: str = DRIVER_NAME, pod_uid: str | None = None
) -> SocketPaths:
    """Socket locations; with a pod UID every instance gets names of its own (rolling update).

    The kubelet ignores registry entries starting with "." and the driver name never does.
    When the UID makes a path too long for a unix socket, a hash of the UID replaces it.
    """
    if not pod_uid:
        return SocketPaths(
            plugins_registry / f"{driver}-reg.sock", plugins_dir / driver / "dra.sock"
        )
    digest = hashlib.sha256(pod_uid.encode()).digest()[:8]
    short = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    reg = fitting_path(
        plugins_registry, f"{driver}-{pod_uid}-reg.sock", f"{driver}-{short}-reg.sock"
    )
    dra = fitting_path(plugins_dir / driver, f"dra-{pod_uid}.sock", f"dra-{short}.sock")
    return SocketPaths(reg, dra)


@dataclass
class PluginServerConfig:
    plugins_registry: Path = Path("/var/lib/kubelet/plugins_registry")
    plugins_dir: Path = Path("/var/lib/kubelet/plugins")
    driver_name: str = DRIVER_NAME
    pod_uid: str | None = None
    probe_interval_s: float = 10.0
    probe_timeout_s: float = 5.0
    grace_s: float = 5.0
    # After the registration socket is gone, how long the DRA socket still takes calls: the
    # kubelet may have routed some here before it saw the instance go (a rolling update).
    drain_s: float = 0.0
    # grpc.health.v1 on TCP as well, for the kubelet's liveness probe (None: off)
    health_port: int | None = None
    paths: SocketPaths = field(init=False)

    def __post_init__(self) -> None:
        self.paths = socket_paths(
            self.plugins_registry, self.plugins_dir, self.driver_name, self.pod_uid
        )


class PluginServer:
    """Runs both servers; ``start`` returns once both answer, ``stop`` is graceful."""

    def __init__(self, config: PluginServerConfig, preparer: Preparer, hub: HealthHub) -> None:
        self.config = config
        self.paths = config.paths
        self.hub = hub
        self._log = log.bind(driver=config.driver_name, pod_uid=config.pod_uid)
        self._dra = grpc.aio.server()
        self._reg = grpc.aio.server()
        self._health = async_health_servicer()
        versions = add_dra_services(self._dra, preparer) + add_health_services(self._dra, hub)
        self.registration = RegistrationServicer(
            config.driver_name, os.fspath(self.paths.dra), versions
        )
        reg_grpc.add_RegistrationServicer_to_server(self.registration, self._reg)
        self._tcp = grpc.aio.server() if config.health_port is not None else None
        for server in (self._dra, self._reg, self._tcp):
            if server is not None:
                health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self._probe_task: asyncio.Task[None] | None = None
        self._serving = False
        self.health_port: int | None = None  # the TCP port bound (0 in the config: any)

    @property
    def serving(self) -> bool:
        return self._serving

    async def start(self) -> None:
        for path in (self.paths.dra, self.paths.registration):
            path.parent.mkdir(parents=True, exist_ok=True)
            if remove_stale_socket(path):
                self._log.info("removed stale socket", path=os.fspath(path))
        await self._set_status(False)
        # socket_paths fitted both paths, so their targets need no directory fd after binding.
        # Only the kubelet (root) may call: prepare hands out hardware. gRPC binds with the
        # process umask, so each socket is narrowed before the kubelet can find it.
        with grpc_target(self.paths.dra) as target:
            self._dra.add_insecure_port(target)
        await self._dra.start()
        os.chmod(self.paths.dra, 0o600)
        with grpc_target(self.paths.registration) as target:
            self._reg.add_insecure_port(target)
        await self._reg.start()
        os.chmod(self.paths.registration, 0o600)
        if self._tcp is not None:
            # The same verdict as on the sockets: SERVING only while both really answer.
            self.health_port = self._tcp.add_insecure_port(f"[::]:{self.config.health_port}")
            await self._tcp.start()
        if not await self.probe():
            await self.stop()
            raise RuntimeError("the plugin sockets do not answer right after start")
        self._probe_task = asyncio.create_task(self._probe_loop(), name="kubelet-socket-probe")
        self._log.info(
            "kubelet plugin serving",
            registration=os.fspath(self.paths.registration),
            dra=os.fspath(self.paths.dra),
        )

    async def probe(self) -> bool:
        """Call each socket for real; publishes the result through grpc.health.v1."""
        ok = True
        timeout = self.config.probe_timeout_s
        try:
            with grpc_target(self.paths.registration) as target:
                async with grpc.aio.insecure_channel(target) as ch:
                    await reg_grpc.RegistrationStub(ch).GetInfo(
                        reg_pb.InfoRequest(), timeout=timeout
                    )
            with grpc_target(self.paths.dra) as target:
                async with grpc.aio.insecure_channel(target) as ch:
                    # An empty request reaches the servicer without touching any claim.
                    await dra_v1_grpc.DRAPluginStub(ch).NodePrepareResources(
                        dra_v1.NodePrepareResourcesRequest(), timeout=timeout
                    )
        except grpc.aio.AioRpcError as exc:
            self._log.warning("socket probe failed", code=str(exc.code()), details=exc.details())
            ok = False
        await self._set_status(ok)
        return ok

    async def _set_status(self, ok: bool) -> None:
        self._serving = ok
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ok
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", self.config.driver_name):
            await self._health.set(service, status)

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.probe_interval_s)
            await self.probe()

    async def stop(self) -> None:
        """Stop taking calls, let running ones finish within the grace, remove our sockets."""
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
            self._probe_task = None
        await self._health.enter_graceful_shutdown()
        self._serving = False
        self.hub.close()
        # Registration first, file and all: the kubelet's plugin watcher sees the file go,
        # drops this instance and calls the driver's other instance (the new pod of a rolling
        # update). Calls it routed here before that are still served for the drain.
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.paths.registration.lstat().st_mode):
                self.paths.registration.unlink()
        await self._reg.stop(self.config.grace_s)
        if self.config.drain_s > 0:
            self._log.info("draining: registration removed", drain_s=self.config.drain_s)
            await asyncio.sleep(self.config.drain_s)
        await self._dra.stop(self.config.grace_s)
        if self._tcp is not None:
            await self._tcp.stop(self.config.grace_s)
        for path in (self.paths.registration, self.paths.dra):
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
        self._log.info("kubelet plugin stopped")
