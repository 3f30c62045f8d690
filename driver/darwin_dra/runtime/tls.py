"""Mutual TLS between pipeline stages (the ssl edge): certificates from files, one CA per
pipeline. The server requires a client certificate from the CA; the client checks the server's
certificate against the CA and its name (the downstream stage's name). A stage then accepts
only peers whose certificate names one of its upstream stages (``peer_name``)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def check(self) -> None:
        for what, path in (
            ("--tls-ca", self.ca),
            ("--tls-cert", self.cert),
            ("--tls-key", self.key),
        ):
            if not path.is_file():
                raise ValueError(f"{what} {path}: no such file")


def _load(ctx: ssl.SSLContext, files: TlsFiles) -> ssl.SSLContext:
    files.check()
    try:
        ctx.load_verify_locations(cafile=str(files.ca))
        ctx.load_cert_chain(str(files.cert), str(files.key))
    except ssl.SSLError as exc:
        raise ValueError(f"TLS files {files.cert}, {files.key}, {files.ca}: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return _load(ctx, files)


def client_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    return _load(ctx, files)


def peer_name(cert: Any) -> str | None:
    """The common name of a peer certificate as ssl's getpeercert() gives it."""
    if not isinstance(cert, dict):
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class TlsAccept(asyncio.Protocol):
    """Accepts a connection and makes it TLS before a byte is read (so none of the handshake
    is lost to a plain reader); a peer that fails the handshake (no certificate, another CA)
    is refused and counted, then the stream goes to ``accept`` as asyncio streams."""

    def __init__(self, tls: ssl.SSLContext, accept: Any, refuse: Any) -> None:
        self.tls = tls
        self.accept = accept
        self.refuse = refuse

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._upgrade(transport))

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        where = transport.get_extra_info("peername") or "a unix peer"
        reader = asyncio.StreamReader()
        proto = asyncio.StreamReaderProtocol(reader)
        try:
            tls_transport = await loop.start_tls(
                transport, proto, self.tls, server_side=True, ssl_handshake_timeout=30
            )
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            self.refuse(where, exc)
            transport.close()
            return
        if tls_transport is None:
            transport.close()
            return
        writer = asyncio.StreamWriter(tls_transport, proto, reader, loop)
        await self.accept(reader, writer)
