"""The messages across the cut (pure: bytes in, arrays out, and back).

Every message is a type byte, a u32 body length and the body:

    BATCH 'B'  u8 mode (1 train, 0 predict), u16 samples, u16 steps, u32 neurons,
               samples label bytes (train only), then the spikes as one DATA frame of
               runtime/framing.py (Rice-coded gaps; window = samples x steps steps,
               id space = neurons; sample n's step t is frame step n * steps + t)
    GRAD  'G'  f32 loss, then samples x steps x neurons float32: dL/d(spike) at the cut
    PRED  'P'  samples u8 classes
    END   'E'  (empty) the edge has finished

The edge sends BATCH and END; the server answers each BATCH with GRAD (train) or PRED."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.runtime.framing import (
    DATA,
    Data,
    FrameError,
    decode_data_body,
    decode_data_head,
    encode_data,
    read_varint,
)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
BATCH, GRAD, PRED, END = b"B", b"G", b"P", b"E"
MAX_BODY = 1 << 28
_BATCH_HEAD = struct.Struct("<BHHI")


@dataclass(frozen=True)
class Batch:
    train: bool
    spikes: F32  # (samples, steps, neurons), 0/1
    labels: I64 | None
    frame_bytes: int = 0  # the DATA frame's size on the wire (decoded batches)


def envelope(kind: bytes, body: bytes) -> bytes:
    if len(body) > MAX_BODY:
        raise FrameError(f"a {kind!r} message of {len(body)} bytes exceeds {MAX_BODY}")
    return kind + struct.pack("<I", len(body)) + body


def spike_frame(s: F32) -> bytes:
    n, steps, neurons = s.shape
    b, t, i = np.nonzero(s > 0.5)
    flat = (b.astype(np.uint64) * np.uint64(steps) + t.astype(np.uint64)).astype(np.uint64)
    return encode_data(Data(0, n * steps, flat, i.astype(np.uint32)), neurons)


def encode_batch(s: F32, labels: I64 | None) -> bytes:
    n, steps, neurons = s.shape
    head = _BATCH_HEAD.pack(1 if labels is not None else 0, n, steps, neurons)
    lab = b""
    if labels is not None:
        if len(labels) != n:
            raise FrameError(f"{len(labels)} labels for {n} samples")
        lab = np.asarray(labels, np.uint8).tobytes()
    return envelope(BATCH, head + lab + spike_frame(s))


def decode_batch(body: bytes) -> Batch:
    if len(body) < _BATCH_HEAD.size:
        raise FrameError("batch: shorter than its header")
    mode, n, steps, neurons = _BATCH_HEAD.unpack_from(body)
    if mode not in (0, 1) or n < 1 or steps < 1 or neurons < 1:
        raise FrameError(f"batch: mode {mode}, {n} samples, {steps} steps, {neurons} neurons")
    at = _BATCH_HEAD.size
    labels = None
    if mode == 1:
        labels = np.frombuffer(body[at : at + n], np.uint8).astype(np.int64)
        if len(labels) != n:
            raise FrameError("batch: the labels are cut short")
        at += n
    frame = body[at:]
    if frame[:1] != DATA:
        raise FrameError("batch: the spikes are not a DATA frame")
    end = 1
    for i in range(4):
        if i == 2:
            end += 1
            continue
        _, end = read_varint(frame, end, "batch spike frame")
    head = decode_data_head(frame[1 : end + 4], neurons)
    if head.window_steps != n * steps:
        raise FrameError(f"batch: a frame of {head.window_steps} steps for {n} x {steps}")
    d = decode_data_body(head, frame[end + 4 :], 0, neurons)
    s = np.zeros((n * steps, neurons), np.float32)
    s[d.steps.astype(np.int64), d.index.astype(np.int64)] = 1.0
    return Batch(mode == 1, s.reshape(n, steps, neurons), labels, len(frame))


def encode_grad(loss: float, g: F32) -> bytes:
    return envelope(GRAD, struct.pack("<f", loss) + np.ascontiguousarray(g, "<f4").tobytes())


def decode_grad(body: bytes, shape: tuple[int, int, int]) -> tuple[float, F32]:
    want = 4 + 4 * shape[0] * shape[1] * shape[2]
    if len(body) != want:
        raise FrameError(f"grad: {len(body)} bytes, expected {want} for {shape}")
    (loss,) = struct.unpack_from("<f", body)
    return float(loss), np.frombuffer(body, "<f4", offset=4).reshape(shape).astype(np.float32)


def encode_pred(pred: I64) -> bytes:
    return envelope(PRED, np.asarray(pred, np.uint8).tobytes())


def decode_pred(body: bytes, n: int) -> I64:
    if len(body) != n:
        raise FrameError(f"pred: {len(body)} classes for {n} samples")
    return np.frombuffer(body, np.uint8).astype(np.int64)
