"""The streams between pipeline stages (the socket edge of runtime/framing.py).

An edge of the plan is one stream: the upstream stage connects to the downstream one, says
HELLO, then sends DATA frames and END; the downstream acknowledges the steps it has run (ACK).
A sender never runs more than its lookahead ahead of what its receiver has acknowledged
(``Outbound.wait_credit``), so what is in flight on an edge is bounded: backpressure, not
buffers that grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from darwin_dra.runtime import framing
from darwin_dra.runtime.address import parse_address
from darwin_dra.runtime.framing import FrameError


async def _exactly(reader: asyncio.StreamReader, n: int, what: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"the stream ended inside {what}") from exc


async def _varint(reader: asyncio.StreamReader, what: str) -> bytes:
    out = bytearray()
    for _ in range(9):
        b = (await _exactly(reader, 1, what))[0]
        out.append(b)
        if not b & 0x80:
            return bytes(out)
    raise FrameError(f"{what}: a varint longer than 9 bytes")


async def read_hello(reader: asyncio.StreamReader) -> framing.Hello:
    kind = await _exactly(reader, 1, "the hello")
    if kind != framing.HELLO:
        raise FrameError(f"expected a hello, got message type {kind!r}")
    body = bytearray(await _exactly(reader, 1, "the hello"))
    for what in ("plan", "sender", "receiver"):
        raw = await _exactly(reader, 2, f"the hello's {what}")
        (n,) = struct.unpack("<H", raw)
        body += raw + await _exactly(reader, n, f"the hello's {what}")
    body += await _exactly(reader, 4, "the hello's space")
    return framing.decode_hello(bytes(body))


async def read_data(
    reader: asyncio.StreamReader,
    space: int,
    start: int,
    check: Callable[[framing.DataHead], None] | None = None,
) -> tuple[framing.Data | None, int]:
    """The next frame (None after END) and the bytes it took on the wire. ``check`` sees the
    frame's header once it is in (Inbound's credit); a frame it refuses, or one whose header
    claims more than its steps x ids can need, is refused before its payload is read."""
    try:
        kind = await reader.readexactly(1)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"the upstream closed at step {start} without END") from exc
    if kind == framing.END:
        return None, 1
    if kind != framing.DATA:
        raise FrameError(f"unknown message type {kind!r} after step {start}")
    head = await _varint(reader, "a frame header")
    head += await _varint(reader, "a frame header")
    head += await _exactly(reader, 1, "a frame header")
    head += await _varint(reader, "a frame header")
    head += await _exactly(reader, 4, "a frame header")
    h = framing.decode_data_head(head, space)
    if check is not None:
        check(h)
    payload = await _exactly(reader, h.payload_bytes, "a frame body")
    return framing.decode_data_body(h, payload, start, space), 1 + len(head) + len(payload)


async def read_ack(reader: asyncio.StreamReader) -> int | None:
    """Steps the receiver has run, or None when it closed between messages."""
    try:
        kind = await reader.readexactly(1)
    except asyncio.IncompleteReadError:
        return None
    if kind != framing.ACK:
        raise FrameError(f"expected an ack, got message type {kind!r}")
    (steps,) = struct.unpack("<Q", await _exactly(reader, 8, "an ack"))
    return int(steps)


async def connect(
    address: str, timeout_s: float, tls: ssl.SSLContext | None, server_name: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, retrying until ``timeout_s`` (the downstream may still be starting). A TLS
    failure is not retried: the peer is not who the plan says."""
    kind, where, port = parse_address(address)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if kind == "unix":
                return await asyncio.open_unix_connection(
                    where, ssl=tls, server_hostname=server_name if tls else None
                )
            return await asyncio.open_connection(
                where, port, ssl=tls, server_hostname=server_name if tls else None
            )
        except ssl.SSLError:
            raise
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise OSError(f"downstream {server_name} at {address}: {exc}") from exc
            await asyncio.sleep(0.1)


def positions(space: Any, gids: Any) -> tuple[Any, Any]:
    """Where each global id is in an edge's sorted id space, and whether it is in it (pure)."""
    at = np.searchsorted(space, gids)
    at_c = np.minimum(at, max(space.size - 1, 0))
    return at, (at < space.size) & (space[at_c] == gids) if space.size else at < 0


class Outbound:
    """The sending end of an edge."""

    def __init__(
        self,
        peer: str,
        space: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.peer = peer
        self.space = space
        self.reader = reader
        self.writer = writer
        self.acked = 0
        self.bytes_out = 0
        self.spikes_out = 0
        self.frames = 0
        self._changed = asyncio.Event()
        self._closed: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def hello(self, h: framing.Hello) -> None:
        data = framing.encode_hello(h)
        self.writer.write(data)
        self.bytes_out += len(data)
        await self.writer.drain()
        self._task = asyncio.create_task(self._acks())

    async def _acks(self) -> None:
        try:
            while True:
                got = await read_ack(self.reader)
                if got is None:
                    self._closed = ConnectionError(f"downstream {self.peer} closed its stream")
                    return
                if got < self.acked:
                    raise FrameError(f"downstream {self.peer} acked step {got} after {self.acked}")
                self.acked = got
                self._changed.set()
        except (FrameError, OSError) as exc:
            self._closed = exc
        finally:
            self._changed.set()

    async def wait_credit(self, upto: int, lookahead_steps: int) -> float:
        """Waits until the receiver has run through ``upto - lookahead_steps``; returns the
        seconds waited (time spent held back by the receiver)."""
        t0 = time.monotonic()
        while upto - self.acked > lookahead_steps:
            if self._closed is not None:
                raise ConnectionError(f"downstream {self.peer}: {self._closed}")
            self._changed.clear()
            await self._changed.wait()
        return time.monotonic() - t0

    async def send(self, d: framing.Data) -> None:
        data = framing.encode_data(d, self.space)
        self.writer.write(data)
        self.bytes_out += len(data)
        self.spikes_out += int(d.steps.size)
        self.frames += 1
        await self.writer.drain()

    async def finish(self, steps: int, timeout_s: float = 60.0) -> None:
        """END, then wait until the receiver has run every step sent (or closed).

        A receiver that knows the run's length may have taken the last window and closed
        before the END arrives (over TLS the END's drain then fails): that is its end too."""
        self.writer.write(framing.END)
        self.bytes_out += 1
        with contextlib.suppress(TimeoutError, ConnectionError):
            await self.writer.drain()
            await asyncio.wait_for(self.wait_credit(steps, 0), timeout_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()


class Inbound:
    """The receiving end of an edge. ``credit_steps``: how far past this end's last
    acknowledgement the sender may run (the stage's lookahead x window, the same number the
    stage's own senders wait for); what it buffers of this edge is bounded by it."""

    def __init__(
        self,
        peer: str,
        space: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        credit_steps: int,
    ) -> None:
        self.peer = peer
        self.space = space
        self.reader = reader
        self.writer = writer
        self.credit_steps = credit_steps
        self.horizon = 0  # steps the sender has finished
        self.acked = 0  # steps this end has acknowledged
        self.ended = False
        self.bytes_in = 0
        self.spikes_in = 0

    async def next(self) -> framing.Data | None:
        d, n = await read_data(self.reader, self.space, self.horizon, self._check_credit)
        self.bytes_in += n
        if d is None:
            self.ended = True
            return None
        self.horizon = d.window_end
        self.spikes_in += int(d.steps.size)
        return d

    def _check_credit(self, h: framing.DataHead) -> None:
        """When the header is in: what this end has acknowledged by then is what the sender
        may have seen before it sent the frame."""
        framing.check_credit(self.peer, self.horizon, h.window_steps, self.acked, self.credit_steps)

    async def ack(self, steps: int) -> None:
        self.acked = max(self.acked, steps)
        self.writer.write(framing.encode_ack(steps))
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()
