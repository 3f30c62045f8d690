"""A Step's fabric sends go in step order across its routes (runtime/spikeport.fabric_sends):
the fabric link is a FIFO in time, so a route's whole window sent before another's earlier
steps would defer those (and drop them past the link's backlog)."""

from __future__ import annotations

import numpy as np
from darwin_dra.runtime.spikeport import fabric_sends
from hypothesis import given
from hypothesis import strategies as st


def _a(*v: int) -> np.ndarray:
    return np.array(v, np.uint64)


def test_two_routes_windows_interleave_by_step() -> None:
    routes = [(3, _a(0, 0, 2), _a(5, 6, 5)), (4, _a(1, 2), _a(0, 1))]
    got = [(src, s.tolist(), i.tolist()) for src, s, i in fabric_sends(routes)]
    assert got == [(3, [0, 0], [5, 6]), (4, [1], [0]), (3, [2], [5]), (4, [2], [1])]
    assert fabric_sends([(3, _a(), _a())]) == []


@given(
    st.lists(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 50)), max_size=12), max_size=4)
)
def test_the_sends_carry_every_spike_once_in_step_order(
    routes: list[list[tuple[int, int]]],
) -> None:
    batches = [
        (src, _a(*sorted(t for t, _ in r)), _a(*[i for _, i in sorted(r)]))
        for src, r in enumerate(routes)
    ]
    sends = fabric_sends(batches)
    steps = [int(s[0]) for _, s, _ in sends]
    assert steps == sorted(steps)
    assert all(s.size and (s == s[0]).all() for _, s, _ in sends)
    for src, s, i in batches:
        mine = [(a, b) for x, ss, ii in sends if x == src for a, b in zip(ss, ii, strict=True)]
        assert mine == list(zip(s, i, strict=True))
