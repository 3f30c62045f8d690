"""A pipeline stage's connections: it listens for its upstreams (and a producer), admits each
by its hello and certificate (pipeline_config.admit) and connects to its downstreams, each
greeted with a hello naming the plan, the sender, the receiver and the id space."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Any

import structlog

from darwin_dra.pipeline.split import INPUT, SplitPlan, StagePart
from darwin_dra.runtime import framing, links
from darwin_dra.runtime.address import parse_address
from darwin_dra.runtime.framing import FrameError
from darwin_dra.runtime.pipeline_config import (
    PRODUCER,
    PeerRefused,
    PipelineStageConfig,
    admit,
    check_stage,
    plan_digest,
)
from darwin_dra.runtime.pipeline_report import PipelineReport
from darwin_dra.runtime.tls import TlsAccept, client_context, peer_name, server_context
from darwin_dra.unixsock import remove_stale_socket

log = structlog.get_logger(__name__)


class StageConnections:
    """The listening, admitting and connecting half of a PipelineStage."""

    def __init__(
        self,
        config: PipelineStageConfig,
        plan: SplitPlan,
        part: StagePart,
        report: PipelineReport,
        n_inputs: int,
    ) -> None:
        self.config = config
        self.plan = plan
        self.part = part
        self.report = report
        self.name = config.stage
        self.digest = plan_digest(plan)
        self._servers: list[asyncio.Server] = []
        self._unix: list[Path] = []
        loop = asyncio.get_running_loop()
        drawn = part.kind == "engine" and config.input is not None  # it draws the input
        ups = [
            u
            for u in plan.upstream(self.name)
            if u not in config.on_chip and not (drawn and u == INPUT)
        ]
        # upstream -> the id space it sends (what the plan says it must)
        self._wanted: dict[str, int] = {u: int(part.receives[u].size) for u in ups}
        if part.kind == "input" and config.input is not None and config.input.kind == "socket":
            self._wanted[PRODUCER] = n_inputs
        self._inbound: dict[str, asyncio.Future[links.Inbound]] = {
            u: loop.create_future() for u in self._wanted
        }
        check_stage(
            config,
            part.kind,
            plan.downstream(self.name),
            plan.upstream(self.name),
        )

    async def _serve(self, address: str, tls: ssl.SSLContext | None) -> str:
        kind, where, port = parse_address(address)
        loop = asyncio.get_running_loop()
        accept = self._accept_cb(tls)

        def factory() -> asyncio.Protocol:
            if tls is None:
                return asyncio.StreamReaderProtocol(asyncio.StreamReader(), accept)
            return TlsAccept(tls, accept, self._refuse)

        if kind == "unix":
            remove_stale_socket(Path(where))
            self._servers.append(await loop.create_unix_server(factory, where))
            self._unix.append(Path(where))
            return address
        server = await loop.create_server(factory, where, port)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        return f"tcp://{where}:{bound[1]}"

    def _refuse(self, where: object, exc: BaseException) -> None:
        self.report.refused += 1
        reason = str(exc) or type(exc).__name__
        log.warning("refused a peer", stage=self.name, peer=str(where), reason=reason)

    async def start(self) -> str | None:
        """Binds --listen (and --input-listen); returns the bound --listen address."""
        cfg = self.config
        tls = server_context(cfg.tls) if cfg.tls else None
        bound = await self._serve(cfg.listen, tls) if cfg.listen else None
        if cfg.input is not None and cfg.input.kind == "socket" and cfg.input.listen:
            await self._serve(cfg.input.listen, tls)
        return bound

    def _accept_cb(self, tls: ssl.SSLContext | None) -> Any:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            where = writer.get_extra_info("peername") or "a unix peer"
            try:
                cn = peer_name(writer.get_extra_info("peercert")) if tls is not None else None
                hello = await asyncio.wait_for(links.read_hello(reader), 30)
                connected = [u for u, f in self._inbound.items() if f.done()]
                admit(
                    hello,
                    cn,
                    stage=self.name,
                    digest=self.digest,
                    wanted=self._wanted,
                    connected=connected,
                    tls=self.config.tls is not None,
                )
            except (ssl.SSLError, FrameError, TimeoutError, OSError, PeerRefused) as exc:
                self._refuse(where, exc)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                return
            ib = links.Inbound(hello.sender, hello.space, reader, writer, self.config.credit_steps)
            self._inbound[hello.sender].set_result(ib)
            log.info("upstream connected", stage=self.name, peer=hello.sender)

        return accept

    async def _connect(self) -> dict[str, links.Outbound]:
        cfg = self.config
        tls = client_context(cfg.tls) if cfg.tls else None
        out: dict[str, links.Outbound] = {}
        for peer in self.plan.downstream(self.name):
            if peer in cfg.on_chip:
                continue  # the chip host moves its spikes
            reader, writer = await links.connect(
                cfg.downstream[peer], cfg.connect_timeout_s, tls, peer
            )
            ob = links.Outbound(peer, int(self.part.sends[peer].size), reader, writer)
            await ob.hello(framing.Hello(self.digest, self.name, peer, ob.space))
            out[peer] = ob
        return out
