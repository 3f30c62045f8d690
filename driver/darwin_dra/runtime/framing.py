"""The compact framing between pipeline stages (pure: bytes in, numpy out, and back).

One stream carries one edge of a split plan, sender to receiver, as messages that each start
with a type byte. Both ends know the edge's id space (``space``: the sorted global ids the edge
carries, from the plan), so a spike is (step, index into that space).

    HELLO  0x48 'H'  u8 version, u16 len + plan digest, u16 len + sender, u16 len + receiver,
                     u32 space
    DATA   0x44 'D'  varint window_steps, varint count, u8 k, varint unary_bytes, u32 crc32,
                     then unary_bytes + ceil(count * k / 8) payload bytes
    END    0x45 'E'  (no body): the sender has finished; closing without it is an error
    ACK    0x41 'A'  u64 steps (receiver to sender): the receiver has run through this step

A DATA frame covers the next ``window_steps`` steps after the previous frame (the first starts
at step 0), so a frame with no spikes still advances the receiver's horizon. Its spikes are
positions ``(step - window_start) * space + index``, sorted, coded as the gaps between them
with a Rice code of parameter k: the quotient ``gap >> k`` in unary (that many 1 bits, then a
0) in the first part, the k low bits in the second. A gap of mean g costs about
``log2(g) + 1.5`` bits, so sparse spikes cost close to their entropy and never the 4 bytes a
neuron per step of dense float activations would. The crc32 covers the header fields and the
payload: a corrupted frame is refused, never read as other spikes.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

HELLO, DATA, END, ACK = b"H", b"D", b"E", b"A"
VERSION = 1
# Bounds on what a peer can make us allocate or compute. A frame's payload is bounded by what
# its own steps x ids can need (payload_limit), and a receiving stage bounds its steps by the
# credit it grants (check_credit).
MAX_WINDOW_STEPS = 1 << 20
MAX_SPACE = 1 << 32
MAX_K = 40


class FrameError(ValueError):
    """Bytes that do not follow the framing (the message says what and where)."""


@dataclass(frozen=True)
class Data:
    window_start: int
    window_steps: int
    steps: U64  # sorted by (step, index)
    index: U32

    @property
    def window_end(self) -> int:
        return self.window_start + self.window_steps


@dataclass(frozen=True)
class Hello:
    plan: str
    sender: str
    receiver: str
    space: int


def varint(x: int) -> bytes:
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf: bytes | memoryview, at: int, what: str) -> tuple[int, int]:
    """(value, next offset); at most 9 bytes (63 bits)."""
    x = 0
    for i in range(9):
        if at + i >= len(buf):
            raise FrameError(f"{what}: the frame ends inside a varint")
        b = buf[at + i]
        x |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return x, at + i + 1
    raise FrameError(f"{what}: a varint longer than 9 bytes")


def _string(s: str) -> bytes:
    b = s.encode()
    if len(b) > 0xFFFF:
        raise FrameError("a name longer than 65535 bytes")
    return struct.pack("<H", len(b)) + b


def encode_hello(h: Hello) -> bytes:
    if not 0 <= h.space <= MAX_SPACE - 1:
        raise FrameError(f"space {h.space} out of range")
    return (
        HELLO
        + bytes([VERSION])
        + _string(h.plan)
        + _string(h.sender)
        + _string(h.receiver)
        + struct.pack("<I", h.space)
    )


def decode_hello(body: bytes) -> Hello:
    """The body after the type byte."""
    if not body or body[0] != VERSION:
        got = body[0] if body else None
        raise FrameError(f"hello: framing version {got} is not {VERSION}")
    at = 1
    parts = []
    for what in ("plan", "sender", "receiver"):
        if at + 2 > len(body):
            raise FrameError(f"hello: ends before the {what}")
        (n,) = struct.unpack_from("<H", body, at)
        at += 2
        if at + n > len(body):
            raise FrameError(f"hello: ends inside the {what}")
        try:
            parts.append(body[at : at + n].decode())
        except UnicodeDecodeError as exc:
            raise FrameError(f"hello: the {what} is not UTF-8") from exc
        at += n
    if at + 4 != len(body):
        raise FrameError(f"hello: {len(body) - at} bytes where the space (4) should end it")
    (space,) = struct.unpack_from("<I", body, at)
    return Hello(parts[0], parts[1], parts[2], int(space))


def encode_ack(steps: int) -> bytes:
    return ACK + struct.pack("<Q", steps)


def rice_k(count: int, cells: int) -> int:
    """The Rice parameter for ``count`` spikes among ``cells`` positions."""
    if count == 0:
        return 0
    mean_gap = (cells - count) / count
    if mean_gap * math.log(2) < 1:
        return 0
    return min(MAX_K, math.floor(math.log2(mean_gap * math.log(2))))


def payload_limit(cells: int) -> int:
    """The most payload bytes a DATA frame over ``cells`` positions (steps x ids) can need as
    ``encode_data`` writes it, whatever its spikes (pure). With the Rice parameter of
    ``rice_k`` a frame costs at most about 1.37 bits a cell (every cell a spike: one unary bit
    each), so 1.5 bits a cell and a byte of padding for each of its two parts bound it; a
    header that claims more is refused before a byte of its payload is read."""
    return (3 * cells) // 16 + 2


def check_credit(peer: str, start: int, steps: int, acked: int, credit_steps: int) -> None:
    """A frame from ``peer`` of ``steps`` steps from ``start`` against what its receiver
    granted: a sender may run at most ``credit_steps`` steps past the receiver's last
    acknowledgement ``acked`` (``Outbound.wait_credit``), so a frame past that is a sender that
    ignores the backpressure, refused before its payload is read (pure)."""
    end = start + steps
    if end - acked > credit_steps:
        raise FrameError(
            f"{peer} sent a frame of {steps} steps ending at step {end}: past its credit, "
            f"this stage acknowledged step {acked} and grants {credit_steps} steps more "
            "(--lookahead x --window)"
        )


def _crc(head: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(head))


def encode_data(d: Data, space: int) -> bytes:
    """A DATA frame of spikes (step, index) in [window_start, window_end) x [0, space)."""
    steps = np.asarray(d.steps, np.uint64)
    index = np.asarray(d.index, np.uint64)
    n = int(steps.size)
    if index.size != n:
        raise FrameError(f"{n} steps but {index.size} indices")
    if not 1 <= d.window_steps <= MAX_WINDOW_STEPS:
        raise FrameError(f"window of {d.window_steps} steps (1..{MAX_WINDOW_STEPS})")
    if n and (int(steps.min()) < d.window_start or int(steps.max()) >= d.window_end):
        raise FrameError("a spike lies outside the frame's window")
    if n and int(index.max()) >= space:
        raise FrameError(f"index {int(index.max())} is outside the edge's {space} ids")
    cells = d.window_steps * space
    pos = np.sort((steps - np.uint64(d.window_start)) * np.uint64(space) + index)
    gaps = np.diff(pos.astype(np.int64), prepend=-1) - 1
    if n and gaps.min() < 0:
        raise FrameError("a neuron appears twice in one step")
    k = rice_k(n, cells)
    g = gaps.astype(np.uint64)
    q = (g >> np.uint64(k)).astype(np.int64)
    total = int(q.sum()) + n
    unary = np.ones(total + (-total) % 8, np.uint8)
    if n:
        unary[np.cumsum(q + 1) - 1] = 0
    ubytes = np.packbits(unary).tobytes()
    if k:
        shifts = np.arange(k - 1, -1, -1, dtype=np.uint64)
        bits = ((g[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8)
        rbytes = np.packbits(bits.ravel()).tobytes()
    else:
        rbytes = b""
    payload = ubytes + rbytes
    if len(payload) > payload_limit(cells):  # cannot happen (test_framing); never sent if so
        raise FrameError(f"{len(payload)} payload bytes exceed {payload_limit(cells)}")
    head = varint(d.window_steps) + varint(n) + bytes([k]) + varint(len(ubytes))
    return DATA + head + struct.pack("<I", _crc(head, payload)) + payload


@dataclass(frozen=True)
class DataHead:
    window_steps: int
    count: int
    k: int
    unary_bytes: int
    crc: int
    head: bytes  # the header fields as sent, for the crc

    @property
    def payload_bytes(self) -> int:
        return self.unary_bytes + (self.count * self.k + 7) // 8


def decode_data_head(buf: bytes, space: int) -> DataHead:
    """The header of a DATA frame (after the type byte), whole: varints then the crc."""
    steps, at = read_varint(buf, 0, "window_steps")
    count, at = read_varint(buf, at, "count")
    if at >= len(buf):
        raise FrameError("data: the frame ends before k")
    k = buf[at]
    at += 1
    ub, at = read_varint(buf, at, "unary_bytes")
    if at + 4 != len(buf):
        raise FrameError("data: the header does not end with its crc")
    (crc,) = struct.unpack_from("<I", buf, at)
    if not 1 <= steps <= MAX_WINDOW_STEPS:
        raise FrameError(f"data: a window of {steps} steps (1..{MAX_WINDOW_STEPS})")
    if count > steps * space:
        raise FrameError(f"data: {count} spikes in {steps} steps x {space} ids")
    if k > MAX_K:
        raise FrameError(f"data: Rice parameter {k} exceeds {MAX_K}")
    # the unary part holds count zeros and the gaps' quotients, whose sum is at most
    # (cells - count) >> k, padded to a byte
    cells = steps * space
    if ub > (count + ((cells - count) >> k) + 7) // 8:
        raise FrameError(f"data: {ub} unary bytes for {count} spikes is more than can be")
    head = DataHead(steps, count, k, ub, int(crc), bytes(buf[:at]))
    if head.payload_bytes > payload_limit(cells):
        raise FrameError(
            f"data: {head.payload_bytes} payload bytes, more than {steps} steps x {space} ids "
            f"can need ({payload_limit(cells)})"
        )
    return head


def decode_data_body(h: DataHead, payload: bytes, window_start: int, space: int) -> Data:
    if len(payload) != h.payload_bytes:
        raise FrameError(f"data: {len(payload)} payload bytes, the header says {h.payload_bytes}")
    if _crc(h.head, payload) != h.crc:
        raise FrameError("data: crc mismatch: the frame is corrupted")
    n, k = h.count, h.k
    bits = np.unpackbits(np.frombuffer(payload[: h.unary_bytes], np.uint8))
    # np.equal, not ==: atheris's comparison hooks (the stage-wire fuzz target) keep every
    # array an operator comparison makes alive, a leak of a kilobyte an input
    zeros = np.flatnonzero(np.equal(bits, 0))
    if zeros.size != n:
        raise FrameError(f"data: {zeros.size} unary codes for {n} spikes")
    tail = bits.size - (int(zeros[-1]) + 1 if n else 0)
    if tail >= 8 or (n == 0 and bits.size):
        raise FrameError("data: unary padding longer than a byte")
    q = np.diff(zeros, prepend=-1) - 1
    cells = h.window_steps * space
    # every gap is inside the window, so its quotient is at most (cells - 1) >> k: checked
    # before the shift, which would wrap silently in uint64
    if n and int(q.max()) > max(cells - 1, 0) >> k:
        raise FrameError("data: a gap longer than the frame's window")
    g = q.astype(np.uint64) << np.uint64(k)
    if k:
        rb = np.unpackbits(np.frombuffer(payload[h.unary_bytes :], np.uint8))
        if rb[n * k :].any():
            raise FrameError("data: nonzero padding after the remainders")
        # one bit of every remainder at a time: n words of memory, not n x k
        bits = rb[: n * k].reshape(n, k)
        r = np.zeros(n, np.uint64)
        for j in range(k):
            r <<= np.uint64(1)
            r |= bits[:, j]
        g |= r
    if n and int(g.max()) >= cells:
        raise FrameError("data: a gap longer than the frame's window")
    # each gap is below cells (< 2^52), so the running sum can wrap in int64 only after
    # thousands of them, and a wrap shows as a position that does not increase
    pos = np.cumsum(g.astype(np.int64) + 1) - 1
    if n and (int(pos[-1]) >= cells or bool(np.less_equal(pos[1:], pos[:-1]).any())):
        raise FrameError("data: a spike lies past the frame's window")
    p = pos.astype(np.uint64)
    sp = np.uint64(space) if space else np.uint64(1)
    return Data(
        window_start,
        h.window_steps,
        (p // sp + np.uint64(window_start)).astype(np.uint64),
        (p % sp).astype(np.uint32),
    )


def decode_stream(data: bytes, space: int) -> tuple[list[Data], bool]:
    """Every DATA frame of a whole sender stream (HELLO excluded) and whether END came; a stream
    cut inside a frame, or anything after END, is an error (pure; the tests' reference)."""
    frames: list[Data] = []
    at, start = 0, 0
    while at < len(data):
        kind = data[at : at + 1]
        at += 1
        if kind == END:
            if at != len(data):
                raise FrameError(f"{len(data) - at} bytes after END")
            return frames, True
        if kind != DATA:
            raise FrameError(f"unknown message type {kind!r} at byte {at - 1}")
        # the header: three varints, k, then the crc
        end = at
        for i in range(4):
            if i == 2:
                end += 1
                continue
            _, end = read_varint(data, end, "data header")
        if end + 4 > len(data):
            raise FrameError("the stream ends inside a frame header")
        h = decode_data_head(data[at : end + 4], space)
        at = end + 4
        if at + h.payload_bytes > len(data):
            raise FrameError("the stream ends inside a frame body")
        d = decode_data_body(h, data[at : at + h.payload_bytes], start, space)
        at += h.payload_bytes
        start = d.window_end
        frames.append(d)
    return frames, False
