"""Fuzz target for the stage wire: the streams between pipeline stages (runtime/links.py over
runtime/framing.py) as a hostile or broken peer may send them, read by the receiving stage's own
code, and the AER1 frames of `darwin-dra stage` (runtime/stage.py over runtime/wire.py): frames as a
stage writes them, some past the receiver's bound, forged headers, raw bytes.

One input is a stream: a HELLO (valid, with a field changed, or raw bytes), then messages: DATA
frames of real spikes as the encoder writes them, such frames with a byte changed or cut, forged
headers with any field values and a payload whose crc is right (a peer that lies, not a noisy
line), END, raw bytes. The receiver reads it as a stage does: ``read_hello``, ``admit``, then
``Inbound.next`` frame by frame against the credit, acknowledging as it goes.

What must hold for every input, beyond "no exception but the documented ones" (FrameError,
PeerRefused; WireError for AER1):
- every frame read starts where the last ended, is at most the credit long, and holds spikes
  inside its window and its id space, each (step, id) once, in order;
- no frame is read whose payload exceeds what the credit's steps x the edge's ids can need
  (payload_limit): what a peer makes a stage allocate is bounded by the plan and the flags;
- the stream reader and the pure decoder (``decode_stream``) agree: the same frames, and a
  stream one refuses the other refuses too;
- a stream of valid frames is read back spike for spike;
- an AER1 frame read is at most the stage's window long and holds at most ``frame_limit``
  spikes of the upstream neurons it routes (refused from the header otherwise); a stream of
  honest frames, up to that maximum, is read whole;
- on the sending side, any bytes as acknowledgements end the ack reader with the error kept,
  and a sender waiting for credit is woken with ConnectionError: never left waiting.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from typing import cast

import atheris
import numpy as np

with atheris.instrument_imports(include=["darwin_dra"]):
    from darwin_dra.runtime import framing, links, wire
    from darwin_dra.runtime.framing import Data, FrameError
    from darwin_dra.runtime.pipeline_config import PeerRefused, admit
    from darwin_dra.runtime.stage import read_frame

from tests.fuzz import loop

PLAN, SENDER, RECEIVER = "0123456789abcdef", "enc", "dec"
SPACES = (0, 1, 2, 7, 64, 692, 4096, 1 << 20, (1 << 32) - 1)
HEAD_MAX = 1 + 9 + 9 + 1 + 9 + 4  # a DATA frame's type byte and header at their longest


class _Sink:
    """The write half of a stream: keeps what is written (the acknowledgements)."""

    def __init__(self) -> None:
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _hello(fdp: atheris.FuzzedDataProvider, space: int) -> bytes:
    how = fdp.ConsumeIntInRange(0, 7)
    if how == 7:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
    plan, sender, receiver = PLAN, SENDER, RECEIVER
    if how == 1:
        plan = fdp.ConsumeUnicodeNoSurrogates(17)
    elif how == 2:
        sender = fdp.PickValueInList([RECEIVER, "producer", "", fdp.ConsumeUnicodeNoSurrogates(4)])
    elif how == 3:
        receiver = fdp.ConsumeUnicodeNoSurrogates(4)
    elif how == 4:
        space = fdp.ConsumeIntInRange(0, (1 << 32) - 1)
    raw = bytearray(framing.encode_hello(framing.Hello(plan, sender, receiver, space)))
    if how == 5 and raw:  # one byte changed: a length, the version, a name
        raw[fdp.ConsumeIntInRange(0, len(raw) - 1)] = fdp.ConsumeIntInRange(0, 255)
    elif how == 6:
        del raw[fdp.ConsumeIntInRange(0, len(raw)) :]
    return bytes(raw)


def _spikes(fdp: atheris.FuzzedDataProvider, start: int, steps: int, space: int) -> Data:
    n = fdp.ConsumeIntInRange(0, 48) if space else 0
    cells = {
        (fdp.ConsumeIntInRange(0, steps - 1), fdp.ConsumeIntInRange(0, space - 1)) for _ in range(n)
    }
    if fdp.ConsumeIntInRange(0, 15) == 0 and steps * space <= 4096:  # every cell a spike
        # (made as arrays, in (step, id) order: the set of up to 4,096 pairs and its sort were
        # a third of the target's own time)
        t = np.repeat(np.arange(start, start + steps, dtype=np.uint64), space)
        return Data(start, steps, t, np.tile(np.arange(space, dtype=np.uint32), steps))
    order = sorted(cells)
    t = np.asarray([start + c[0] for c in order], np.uint64)
    return Data(start, steps, t, np.asarray([c[1] for c in order], np.uint32))


def _forged(fdp: atheris.FuzzedDataProvider) -> bytes:
    """A DATA frame with any header fields and a payload under a right crc."""

    def field() -> int:
        return (
            fdp.PickValueInList([0, 1, 2, 7, 8, 40, 41, 255, 1 << 20, (1 << 20) + 1])
            if (fdp.ConsumeBool())
            else fdp.ConsumeIntInRange(0, (1 << 63) - 1)
        )

    steps, count, ub = field(), field(), fdp.ConsumeIntInRange(0, 64)
    k = fdp.ConsumeIntInRange(0, 255)
    head = framing.varint(steps) + framing.varint(count) + bytes([k]) + framing.varint(ub)
    payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 600))
    crc = zlib.crc32(payload, zlib.crc32(head))
    return framing.DATA + head + struct.pack("<I", crc) + payload


def _stream(fdp: atheris.FuzzedDataProvider, space: int, credit: int) -> tuple[bytes, list[Data]]:
    """The bytes after the hello, and the frames of it when it is all valid (else [])."""
    out, frames, clean, start = bytearray(), [], True, 0
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        kind = fdp.ConsumeIntInRange(0, 9)
        if kind <= 4:  # a frame as the encoder writes it, mostly within the credit
            steps = fdp.ConsumeIntInRange(1, credit + 2 if kind < 4 else 1 << 20)
            d = _spikes(fdp, start, steps, space)
            raw = bytearray(framing.encode_data(d, space))
            if kind == 3:  # one byte changed, or the frame cut short
                if fdp.ConsumeBool():
                    raw[fdp.ConsumeIntInRange(0, len(raw) - 1)] ^= fdp.ConsumeIntInRange(1, 255)
                else:
                    del raw[fdp.ConsumeIntInRange(0, len(raw) - 1) :]
                clean = False
            out += raw
            frames.append(d)
            start = d.window_end
        elif kind <= 6:
            out += _forged(fdp)
            clean = False
        elif kind == 7:
            out += framing.END
        else:
            out += fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16))
            clean = False
    if fdp.ConsumeIntInRange(0, 3):
        out += framing.END
    return bytes(out), frames if clean else []


def _check_frame(d: Data, start: int, space: int, credit: int) -> None:
    assert d.window_start == start, (d.window_start, start)
    assert 1 <= d.window_steps <= credit, (d.window_steps, credit)
    n = d.steps.size
    assert d.index.size == n, (n, d.index.size)
    assert n <= d.window_steps * space, (n, d.window_steps, space)
    if n:
        assert int(d.steps.min()) >= start, d
        assert int(d.steps.max()) < d.window_end, d
        assert int(d.index.max()) < space, d
        pos = (d.steps - np.uint64(start)) * np.uint64(space) + d.index.astype(np.uint64)
        assert bool(np.all(np.diff(pos.astype(np.int64)) > 0)), "spikes out of order or twice"


async def _receive(raw: bytes, space: int, credit: int, lag: int) -> tuple[list[Data], str]:
    """The receiving stage's side: how the stream ends ("end", "refused: ..." or "frame: ...")
    and the frames read before."""
    reader, sink = _reader(raw), _Sink()
    writer = cast(asyncio.StreamWriter, sink)
    try:
        hello = await links.read_hello(reader)
        admit(hello, None, stage=RECEIVER, digest=PLAN, wanted={SENDER: space}, connected=[],
              tls=False)  # fmt: skip
    except (FrameError, PeerRefused) as exc:
        return [], f"refused: {exc}"
    ib = links.Inbound(hello.sender, hello.space, reader, writer, credit)
    got: list[Data] = []
    while True:
        before = ib.bytes_in
        try:
            d = await ib.next()
        except FrameError as exc:
            return got, f"frame: {exc}"
        assert ib.bytes_in - before <= HEAD_MAX + framing.payload_limit(credit * space)
        if d is None:
            return got, "end"
        _check_frame(d, got[-1].window_end if got else 0, space, credit)
        got.append(d)
        await ib.ack(max(ib.acked, d.window_end - lag))  # a receiver lagging by `lag` steps


def _credit_refuses(frames: list[Data], credit: int, lag: int) -> int:
    """How many of ``frames`` a receiver acknowledging ``lag`` steps behind reads before its
    credit check refuses one (pure: the acknowledgements are known in advance)."""
    acked = 0
    for i, d in enumerate(frames):
        if d.window_end - acked > credit:
            return i
        acked = max(acked, d.window_end - lag)
    return len(frames)


def _same(a: list[Data], b: list[Data]) -> bool:
    return len(a) == len(b) and all(
        (x.window_start, x.window_steps) == (y.window_start, y.window_steps)
        and np.array_equal(x.steps, y.steps)
        and np.array_equal(x.index, y.index)
        for x, y in zip(a, b, strict=True)
    )


async def _acks(raw: bytes) -> None:
    """The sending stage's side: any bytes as the downstream's acknowledgements."""
    ob = links.Outbound(RECEIVER, 4, _reader(raw), cast(asyncio.StreamWriter, _Sink()))
    await ob._acks()  # returns, whatever the bytes: the error is kept for the sender
    assert ob._closed is not None
    expected, at = 0, 0  # the last of the acknowledgements before the first bad message
    while raw[at : at + 1] == framing.ACK and at + 9 <= len(raw):
        (steps,) = struct.unpack_from("<Q", raw, at + 1)
        if steps < expected:
            break
        expected, at = steps, at + 9
    assert ob.acked == expected, (ob.acked, expected)
    try:
        await asyncio.wait_for(ob.wait_credit(ob.acked + (1 << 62), 0), 5)
    except ConnectionError:
        return
    raise AssertionError("a sender waiting for credit from a closed downstream was not woken")


def _aer1_stream(fdp: atheris.FuzzedDataProvider, window: int, ids: int) -> tuple[bytes, int]:
    """AER1 bytes: frames as a stage writes them (some longer than the window, or of one neuron
    more than the receiver routes, so past its bound), forged headers, raw bytes; and how many
    frames a receiver reads when all are honest (else -1)."""
    out, start, honest = bytearray(), 0, 0
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        kind = fdp.ConsumeIntInRange(0, 3)
        if kind <= 1:
            steps = fdp.ConsumeIntInRange(1, window + 2)
            d = _spikes(fdp, start, steps, ids + kind)
            out += wire.encode_frame(wire.Frame(start, steps, d.steps, d.index))
            start += steps
            fits = steps <= window and d.steps.size <= wire.frame_limit(steps, ids)
            honest = honest + 1 if honest >= 0 and fits else -1
        elif kind == 2:  # a header of any count and steps (often at the bounds), some body
            steps = fdp.PickValueInList(
                [0, 1, window, window + 1, fdp.ConsumeIntInRange(0, 1 << 63)]
            )
            limit = wire.frame_limit(steps, ids)
            count = fdp.PickValueInList(
                [
                    0,
                    1,
                    limit,
                    limit + 1,
                    wire.MAX_FRAME_SPIKES + 1,
                    fdp.ConsumeIntInRange(0, (1 << 32) - 1),
                ]
            )
            head = wire.HEADER.pack(wire.MAGIC, count, start, steps)
            out += head + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 48))
            honest = -1
        else:
            out += fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
            honest = -1
    return bytes(out), honest


async def _aer1(raw: bytes, window: int, ids: int, honest: int) -> None:
    """`darwin-dra stage`'s stream: AER1 frames until the peer closes, read by a stage of
    ``window`` steps whose inputs come from ``ids`` upstream neurons."""
    reader = _reader(raw)
    read = 0
    while True:
        try:
            f = await read_frame(reader, window, ids)
        except wire.WireError:
            assert honest < 0, "an honest frame was refused"
            return
        if f is None:
            assert honest < 0 or read == honest, (read, honest)
            return
        read += 1
        n = f.steps.size
        assert n == f.ids.size
        assert f.window_steps <= window, (f.window_steps, window)
        assert n <= wire.frame_limit(f.window_steps, ids) <= wire.MAX_FRAME_SPIKES
        if n:
            assert int(f.steps.min()) >= f.window_start, f
            assert int(f.steps.max()) < f.window_end, f


def stage_wire(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    what = fdp.ConsumeIntInRange(0, 7)
    if what == 6:
        loop.run(_acks(fdp.ConsumeBytes(64)))
        return
    if what == 7:
        window, ids = fdp.ConsumeIntInRange(1, 64), fdp.ConsumeIntInRange(0, 300)
        if fdp.ConsumeBool():
            raw, honest = _aer1_stream(fdp, window, ids)
        else:
            raw, honest = fdp.ConsumeBytes(fdp.remaining_bytes()), -1
        loop.run(_aer1(raw, window, ids, honest))
        return
    space = (
        fdp.PickValueInList(list(SPACES)) if fdp.ConsumeBool() else fdp.ConsumeIntInRange(0, 300)
    )
    credit = fdp.ConsumeIntInRange(1, 64)
    lag = fdp.ConsumeIntInRange(0, credit)
    hello = _hello(fdp, space)
    body, built = _stream(fdp, space, credit)
    got, how = loop.run(_receive(hello + body, space, credit, lag))
    if how.startswith("refused"):
        return
    try:
        pure, ended = framing.decode_stream(body, space)
    except FrameError:
        # refused by the reference: the stream reader refuses it too, or stopped at an END
        # followed by more (the reference refuses the bytes after END; a stage reads no further)
        assert how != "end" or framing.END in body, (how, body)
        return
    n = _credit_refuses(pure, credit, lag)
    assert _same(got, pure[:n]), (len(got), len(pure), n, how)
    if n < len(pure):
        assert "past its credit" in how, how
    else:
        assert (how == "end") == ended, (how, ended)
    if built and n == len(pure):
        assert _same(got, built[: len(got)]), "valid frames not read back spike for spike"
