"""The cut's messages round-trip any spikes and gradients, and refuse corrupted bytes."""

from __future__ import annotations

import numpy as np
import pytest
from darwin_dra.runtime.framing import FrameError
from darwin_dra.splitlearn import wire
from hypothesis import given, settings
from hypothesis import strategies as st


@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 9), st.floats(0, 1), st.integers(0, 99))
@settings(max_examples=100, deadline=None)
def test_batch_round_trips(n: int, steps: int, neurons: int, rate: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = (rng.random((n, steps, neurons)) < rate).astype(np.float32)
    labels = rng.integers(0, 10, n).astype(np.int64)
    for lab in (labels, None):
        msg = wire.encode_batch(s, lab)
        assert msg[:1] == wire.BATCH
        b = wire.decode_batch(msg[5:])
        assert np.array_equal(b.spikes, s)
        assert b.train == (lab is not None)
        if lab is not None:
            assert b.labels is not None
            assert np.array_equal(b.labels, labels)


def test_grad_round_trips_and_checks_its_size() -> None:
    g = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    msg = wire.encode_grad(1.5, g)
    loss, back = wire.decode_grad(msg[5:], (2, 3, 4))
    assert loss == 1.5
    assert np.array_equal(back, g)
    with pytest.raises(FrameError, match="expected"):
        wire.decode_grad(msg[5:-1], (2, 3, 4))


def test_a_flipped_bit_in_the_spikes_is_refused() -> None:
    s = (np.random.default_rng(1).random((4, 16, 32)) < 0.2).astype(np.float32)
    msg = bytearray(wire.encode_batch(s, None))
    msg[-3] ^= 0x10
    with pytest.raises(FrameError, match=r"crc|unary|padding|window"):
        wire.decode_batch(bytes(msg[5:]))
