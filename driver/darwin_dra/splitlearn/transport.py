"""The authenticated stream across the cut (the socket and ssl edge): mutual TLS with the
pipeline runtime's contexts (runtime/tls.py), one CA per run, the edge's certificate named
"edge" and the server's "server". The server accepts only a client whose certificate names
the edge; the edge checks the server's name. Messages are wire.py's; both ends count the bytes
they send and receive by message type."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections import Counter
from dataclasses import dataclass, field

from darwin_dra.runtime.framing import FrameError
from darwin_dra.runtime.tls import TlsFiles, client_context, peer_name, server_context
from darwin_dra.splitlearn import wire
from darwin_dra.splitlearn.snn import F32

EDGE, SERVER = "edge", "server"


@dataclass
class Stream:
    sock: ssl.SSLSocket
    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)

    def send(self, message: bytes) -> None:
        self.sock.sendall(message)
        self.sent[message[:1].decode()] += len(message)

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ConnectionError(f"the peer closed the stream ({len(buf)} of {n} bytes)")
            buf += chunk
        return bytes(buf)

    def receive(self) -> tuple[bytes, bytes]:
        head = self._exact(5)
        kind = head[:1]
        (n,) = struct.unpack_from("<I", head, 1)
        if kind not in (wire.BATCH, wire.GRAD, wire.PRED, wire.END):
            raise FrameError(f"unknown message type {kind!r}")
        if n > wire.MAX_BODY:
            raise FrameError(f"a {kind!r} message of {n} bytes exceeds {wire.MAX_BODY}")
        body = self._exact(n)
        self.received[kind.decode()] += 5 + n
        return kind, body

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def listen(host: str, port: int) -> socket.socket:
    srv = socket.create_server((host, port))
    srv.settimeout(None)
    return srv


def accept_edge(srv: socket.socket, tls: TlsFiles, timeout_s: float) -> Stream:
    """Waits for the edge; a client whose certificate does not name the edge is refused."""
    ctx = server_context(tls)
    srv.settimeout(timeout_s)
    raw, addr = srv.accept()
    raw.settimeout(timeout_s)
    sock = ctx.wrap_socket(raw, server_side=True)
    name = peer_name(sock.getpeercert())
    if name != EDGE:
        sock.close()
        raise PermissionError(f"refused the peer at {addr}: its certificate names {name!r}")
    sock.settimeout(None)
    return Stream(sock)


def connect_server(host: str, port: int, tls: TlsFiles, timeout_s: float) -> Stream:
    ctx = client_context(tls)
    raw = socket.create_connection((host, port), timeout=timeout_s)
    sock = ctx.wrap_socket(raw, server_hostname=SERVER)
    sock.settimeout(None)
    return Stream(sock)


@dataclass
class StreamLink:
    """The edge's ServerLink over the stream."""

    stream: Stream

    def train(self, cut: F32, labels: wire.I64) -> tuple[float, F32]:
        self.stream.send(wire.encode_batch(cut, labels))
        kind, body = self.stream.receive()
        if kind != wire.GRAD:
            raise FrameError(f"expected a GRAD message, got {kind!r}")
        shape = (cut.shape[0], cut.shape[1], cut.shape[2])
        return wire.decode_grad(body, shape)

    def predict(self, cut: F32) -> wire.I64:
        self.stream.send(wire.encode_batch(cut, None))
        kind, body = self.stream.receive()
        if kind != wire.PRED:
            raise FrameError(f"expected a PRED message, got {kind!r}")
        return wire.decode_pred(body, cut.shape[0])
