"""The compact framing: any spikes round-trip exactly, and corrupted or truncated streams are
refused with a clear error, never read as other spikes."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from darwin_dra.runtime import framing
from darwin_dra.runtime.framing import Data, FrameError, decode_stream, encode_data
from hypothesis import given, settings
from hypothesis import strategies as st


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, list[Data]]:
    space = draw(st.integers(1, 300))
    frames = []
    start = 0
    for _ in range(draw(st.integers(0, 4))):
        steps = draw(st.integers(1, 20))
        p = draw(st.sampled_from([0.0, 0.001, 0.05, 0.5, 1.0]))
        seed = draw(st.integers(0, 2**32 - 1))
        m = np.random.default_rng(seed).random((steps, space)) < p
        t, i = np.nonzero(m)
        frames.append(Data(start, steps, (t + start).astype(np.uint64), i.astype(np.uint32)))
        start += steps
    return space, frames


def stream(space: int, frames: list[Data]) -> bytes:
    return b"".join(encode_data(d, space) for d in frames) + framing.END


@settings(max_examples=200, deadline=None)
@given(case=windows())
def test_frames_round_trip(case: tuple[int, list[Data]]) -> None:
    space, frames = case
    back, ended = decode_stream(stream(space, frames), space)
    assert ended
    assert len(back) == len(frames)
    for a, b in zip(frames, back, strict=True):
        assert (a.window_start, a.window_steps) == (b.window_start, b.window_steps)
        assert np.array_equal(a.steps, b.steps)
        assert np.array_equal(a.index, b.index)


@settings(max_examples=300, deadline=None)
@given(case=windows(), data=st.data())
def test_corrupted_streams_are_refused_or_read_whole(
    case: tuple[int, list[Data]], data: st.DataObject
) -> None:
    space, frames = case
    errors: list[str] = []
    raw = bytearray(stream(space, frames))
    how = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        raw[at] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        del raw[at:]
    else:
        raw.insert(at, data.draw(st.integers(0, 255)))
    try:
        back, ended = decode_stream(bytes(raw), space)
    except FrameError as exc:
        errors.append(str(exc))
    if errors:
        assert len(errors[0]) > 10  # says what is wrong
        return
    # what decodes must be exactly what was sent, or a prefix of it with no END (truncation)
    want = [(d.window_start, d.window_steps, d.steps.tolist(), d.index.tolist()) for d in frames]
    got = [(d.window_start, d.window_steps, d.steps.tolist(), d.index.tolist()) for d in back]
    if ended:
        assert got == want
    else:
        assert got == want[: len(got)]


_ONE = np.zeros(1, np.uint64)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (Data(5, 2, _ONE, np.zeros(1, np.uint32)), "outside the frame's window"),
        (Data(0, 2, _ONE, np.full(1, 4, np.uint32)), "outside the edge's 4 ids"),
        (Data(0, 2, np.zeros(2, np.uint64), np.zeros(2, np.uint32)), "twice in one step"),
    ],
    ids=["step-outside-window", "id-outside-space", "id-twice-in-a-step"],
)
def test_encoding_refuses_what_it_cannot_carry(frame: Data, error: str) -> None:
    with pytest.raises(FrameError, match=error):
        encode_data(frame, 4)


def test_decoding_refuses_a_corrupted_frame() -> None:
    raw = bytearray(encode_data(Data(0, 3, _ONE, np.ones(1, np.uint32)), 4))
    raw[-1] ^= 0x10
    with pytest.raises(FrameError, match="crc mismatch"):
        decode_stream(bytes(raw), 4)


def test_sparse_spikes_cost_under_two_bytes() -> None:
    rng = np.random.default_rng(1)
    space, steps = 20000, 20
    t, i = np.nonzero(rng.random((steps, space)) < 0.002)  # 0.2 % of the ids per step
    size = len(encode_data(Data(0, steps, t.astype(np.uint64), i.astype(np.uint32)), space))
    assert size / t.size < 1.5  # dense float activations: 4 bytes per id per step
    assert size < 0.01 * 4 * space * steps


def test_hellos_round_trip_and_refuse_garbage() -> None:
    h = framing.Hello("abc", "s0", "s1", 77)
    raw = framing.encode_hello(h)
    assert framing.decode_hello(raw[1:]) == h
    with pytest.raises(FrameError, match="version"):
        framing.decode_hello(b"\x09" + raw[2:])
    with pytest.raises(FrameError, match="ends"):
        framing.decode_hello(raw[1:-6])


@settings(max_examples=200, deadline=None)
@given(
    steps=st.integers(1, 40),
    space=st.integers(1, 400),
    fill=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_frame_the_encoder_writes_exceeds_the_payload_limit(
    steps: int, space: int, fill: float, seed: int
) -> None:
    cells = steps * space
    pos = np.random.default_rng(seed).permutation(cells)[: round(fill * cells)]
    t, i = np.divmod(np.sort(pos), space)
    raw = encode_data(Data(0, steps, t.astype(np.uint64), i.astype(np.uint32)), space)
    head = framing.decode_data_head(_head_of(raw), space)
    assert head.payload_bytes <= framing.payload_limit(cells)
    frames, _ = decode_stream(raw, space)
    assert frames[0].steps.size == pos.size


def _head_of(raw: bytes) -> bytes:
    """The header of one encoded DATA frame (after its type byte), crc included."""
    at = 1
    for i in range(4):
        if i == 2:
            at += 1
            continue
        _, at = framing.read_varint(raw, at, "test")
    return raw[1 : at + 4]


def test_the_payload_limit_bounds_every_count_the_decoder_accepts() -> None:
    """For every spike count of a frame, the largest payload the decoder lets its header claim
    with the encoder's Rice parameter fits the limit: the limit is never below a real frame."""
    for cells in [*range(1, 700), 4_000, 40_000, 123_457]:
        counts = np.unique(np.linspace(0, cells, min(cells + 1, 2_000)).astype(np.int64))
        for count in counts.tolist():
            k = framing.rice_k(count, cells)
            unary = (count + ((cells - count) >> k) + 7) // 8
            assert unary + (count * k + 7) // 8 <= framing.payload_limit(cells), (cells, count)


def test_a_header_claiming_more_payload_than_its_cells_can_need_is_refused() -> None:
    # 40 steps x 1,000 ids, every cell a spike, with the largest Rice parameter: 205 kB of
    # remainders where at most 7.5 kB can be needed
    count, k = 40_000, framing.MAX_K
    head = framing.varint(40) + framing.varint(count) + bytes([k]) + framing.varint(5_000)
    with pytest.raises(FrameError, match="more than 40 steps x 1000 ids can need"):
        framing.decode_data_head(head + b"\0\0\0\0", 1_000)


def test_a_frame_past_the_credit_the_receiver_granted_is_refused() -> None:
    framing.check_credit("s0", start=30, steps=10, acked=0, credit_steps=40)  # up to the credit
    with pytest.raises(FrameError, match="s0 sent a frame of 11 steps ending at step 41: past"):
        framing.check_credit("s0", start=30, steps=11, acked=0, credit_steps=40)
    with pytest.raises(FrameError, match="acknowledged step 0 and grants 40 steps more"):
        framing.check_credit("s0", start=0, steps=1 << 20, acked=0, credit_steps=40)


def _forged_body(steps: int, space: int, n: int, q: int) -> Data:
    """The body of a frame of ``n`` spikes whose gaps are each ``q`` << 40 plus 40 one-bits,
    under a right crc, handed to the body decoder as its own header (the header check refuses
    this one; the body's checks must stand on their own)."""
    k = framing.MAX_K
    unary = np.ones(n * (q + 1), np.uint8)
    unary[q :: q + 1] = 0
    ub = np.packbits(unary).tobytes()
    payload = ub + np.packbits(np.ones(n * k, np.uint8)).tobytes()
    head = framing.varint(steps) + framing.varint(n) + bytes([k]) + framing.varint(len(ub))
    crc = zlib.crc32(payload, zlib.crc32(head))
    return framing.decode_data_body(framing.DataHead(steps, n, k, len(ub), crc, head),
                                    payload, 0, space)  # fmt: skip


def test_gaps_that_wrap_the_positions_are_refused_not_read_as_spikes_past_the_window() -> None:
    """Found while writing the stage-wire fuzz target: 3,000 gaps of 2^52 summed past 2^63 and
    the int64 positions wrapped negative, so the one check (the last position below the
    window's cells) passed and 3,000 spikes came out at steps past the frame's window."""
    steps, space = 1 << 20, (1 << 32) - 1  # 2^52 - 2^20 cells
    with pytest.raises(FrameError, match="a gap longer than the frame's window"):
        _forged_body(steps, space, 3_000, 4_095)  # each gap 2^52 - 1: past the cells
    with pytest.raises(FrameError, match="a spike lies past the frame's window"):
        _forged_body(steps, space, 4_096, 4_094)  # each gap inside, their sum wraps int64
