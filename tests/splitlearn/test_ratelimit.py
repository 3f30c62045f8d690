"""The firing-rate limit at the cut against a plain loop over each neuron's spikes."""

from __future__ import annotations

import numpy as np
import pytest
from darwin_dra.splitlearn.ratelimit import rate_limit
from hypothesis import given, settings
from hypothesis import strategies as st


def _reference(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    out, mask = np.zeros_like(s), np.zeros_like(s)
    for n in range(s.shape[0]):
        for j in range(s.shape[2]):
            seen = 0
            for t in range(s.shape[1]):
                mask[n, t, j] = 1.0 if seen < k else 0.0
                if s[n, t, j] > 0.5:
                    if seen < k:
                        out[n, t, j] = 1.0
                    seen += 1
    return out, mask


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 17), st.floats(0.0, 1.0))
def test_keeps_each_neurons_first_k_spikes(seed: int, k: int, rate: float) -> None:
    rng = np.random.default_rng(seed)
    s = (rng.random((3, 16, 5)) < rate).astype(np.float32)
    out, mask = rate_limit(s, k)
    ref_out, ref_mask = _reference(s, k)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(mask, ref_mask)
    assert (out.sum(axis=1) <= k).all()
    if k >= 16:
        np.testing.assert_array_equal(out, s)


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="rate limit must be >= 1"):
        rate_limit(np.zeros((1, 16, 2), np.float32), 0)
