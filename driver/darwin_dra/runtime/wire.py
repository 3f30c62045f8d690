"""Byte layouts of spikes: packed protobuf columns and the AER frames stages stream.

Everything here is pure: bytes in, numpy out (and back). Every layout is little-endian.

A stage-to-stage frame (see docs/runtime.md):

    offset  size  field
    0       4     magic b"AER1"
    4       4     count: spikes in this frame (u32)
    8       8     window_start: first step the frame covers (u64)
    16      8     window_steps: steps it covers (u64); the sender has finished them
    24      8*n   steps (u64 each), all in [window_start, window_start + window_steps)
    24+8n   4*n   ids (u32 each): the sender's neuron ids
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]

MAGIC = b"AER1"
HEADER = struct.Struct("<4sIQQ")
# One frame is at most this many spikes: a bound on what a peer can make us allocate.
MAX_FRAME_SPIKES = 1 << 24


class WireError(ValueError):
    """Bytes that do not follow the layout."""


def column(data: bytes, dtype: str, name: str) -> npt.NDArray[np.generic]:
    """A packed little-endian column; refuses a byte length that is not whole items."""
    dt = np.dtype(dtype).newbyteorder("<")
    if len(data) % dt.itemsize:
        raise WireError(
            f"{name}: {len(data)} bytes is not a whole number of {dt.itemsize}-byte items"
        )
    return np.frombuffer(data, dtype=dt).astype(dt.newbyteorder("="))


def pack(values: npt.ArrayLike, dtype: str) -> bytes:
    return np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


def spikes(steps: bytes, ids: bytes) -> tuple[U64, U32]:
    """An AER batch from its two packed columns."""
    s = column(steps, "u8", "steps")
    i = column(ids, "u4", "ids")
    if s.shape != i.shape:
        raise WireError(f"steps has {s.size} spikes but ids has {i.size}")
    return s.astype(np.uint64), i.astype(np.uint32)


@dataclass(frozen=True)
class Frame:
    window_start: int
    window_steps: int
    steps: U64
    ids: U32

    @property
    def window_end(self) -> int:
        return self.window_start + self.window_steps


def encode_frame(frame: Frame) -> bytes:
    n = int(frame.steps.size)
    if frame.ids.size != n:
        raise WireError("steps and ids differ in length")
    if n > MAX_FRAME_SPIKES:
        raise WireError(f"{n} spikes exceed one frame ({MAX_FRAME_SPIKES}); split the window")
    if n and (frame.steps.min() < frame.window_start or frame.steps.max() >= frame.window_end):
        raise WireError("a spike lies outside the frame's window")
    head = HEADER.pack(MAGIC, n, frame.window_start, frame.window_steps)
    return head + pack(frame.steps, "u8") + pack(frame.ids, "u4")


def decode_header(head: bytes) -> tuple[int, int, int]:
    """(count, window_start, window_steps) of a frame header; the body is 12 * count bytes."""
    if len(head) != HEADER.size:
        raise WireError(f"a frame header is {HEADER.size} bytes, got {len(head)}")
    magic, count, start, steps = HEADER.unpack(head)
    if magic != MAGIC:
        raise WireError(f"bad frame magic {magic!r}: the peer does not speak AER1")
    if count > MAX_FRAME_SPIKES:
        raise WireError(f"frame of {count} spikes exceeds {MAX_FRAME_SPIKES}")
    return int(count), int(start), int(steps)


def frame_limit(window_steps: int, ids: int) -> int:
    """The most spikes a frame of ``window_steps`` steps over ``ids`` sender neurons can hold: a
    neuron fires at most once a step (pure; never past MAX_FRAME_SPIKES)."""
    return min(window_steps * ids, MAX_FRAME_SPIKES)


def check_frame(count: int, steps: int, window: int, ids: int) -> None:
    """A frame header (``count`` spikes over ``steps`` steps) against what the receiving stage
    can legitimately be sent: at most its ``window`` steps, and ``frame_limit`` spikes over the
    ``ids`` upstream neurons it routes. Checked before the body is read, so a peer that lies in
    the header makes the stage allocate nothing (pure)."""
    if steps > window:
        raise WireError(
            f"a frame of {steps} steps exceeds this stage's window of {window} steps (--window): "
            "an upstream's window must be no larger than its downstream's"
        )
    limit = frame_limit(steps, ids)
    if count > limit:
        raise WireError(
            f"a frame of {count} spikes exceeds the limit of {limit} for {steps} steps x {ids} "
            "upstream neurons (each fires at most once a step); its body of "
            f"{12 * count} bytes is not read"
        )


def decode_body(count: int, start: int, steps: int, body: bytes) -> Frame:
    if len(body) != 12 * count:
        raise WireError(f"frame body of {count} spikes needs {12 * count} bytes, got {len(body)}")
    s, i = spikes(body[: 8 * count], body[8 * count :])
    frame = Frame(start, steps, s, i)
    if count and (s.min() < start or s.max() >= frame.window_end):
        raise WireError("a spike lies outside the frame's window")
    return frame
