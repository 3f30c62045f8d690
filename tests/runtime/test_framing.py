"""The compact framing: any spikes round-trip exactly, and corrupted or truncated streams are
refused with a clear error, never read as other spikes."""

from __future__ import annotations

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
