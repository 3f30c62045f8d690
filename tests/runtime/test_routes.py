"""The chip router's pure parts against simple reference models: the neuron map, the merged
injection order, and the checks of a route's request."""

from __future__ import annotations

import numpy as np
import pytest
from darwin_dra.runtime.routes import RouteSpec, check_route, map_spikes, merge_inputs
from hypothesis import given
from hypothesis import strategies as st


def route(neurons: list[int], inputs: list[int]) -> RouteSpec:
    return RouteSpec("r", 1, 2, np.array(neurons, np.int64), np.array(inputs, np.int64), 4)


@given(
    pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 20)), max_size=12),
    spikes=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 12)), max_size=30),
)
def test_a_spike_of_a_mapped_neuron_reaches_each_of_its_inputs(
    pairs: list[tuple[int, int]], spikes: list[tuple[int, int]]
) -> None:
    spec = route([a for a, _ in pairs], [b for _, b in pairs])
    steps = np.array([t for t, _ in spikes], np.int64)
    ids = np.array([n for _, n in spikes], np.int64)
    got_s, got_i = map_spikes(spec, steps, ids)
    want = [(t, b) for t, n in spikes for a, b in pairs if a == n]
    assert sorted(zip(got_s.tolist(), got_i.tolist(), strict=True)) == sorted(want)
    # in the order of the spikes: steps never go back where the source's did not
    if np.all(np.diff(steps) >= 0):
        assert np.all(np.diff(got_s) >= 0)


@given(
    a=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)), max_size=20),
    b=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)), max_size=20),
)
def test_route_and_client_spikes_inject_in_step_then_input_order(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    def cols(x: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        return np.array([t for t, _ in x], np.int64), np.array([i for _, i in x], np.int64)

    s, i = merge_inputs(*cols(a), *cols(b))
    assert list(zip(s.tolist(), i.tolist(), strict=True)) == sorted(a + b)


def test_a_route_request_is_checked_by_name() -> None:
    chips = {1: 0, 2: 0, 3: 1}
    owners = {1: "ns/p", 2: "ns/p", 3: "ns/p"}
    check_route(route([0], [0]), chips, owners)
    bad = RouteSpec("r", 1, 1, np.zeros(1, np.int64), np.zeros(1, np.int64), 4)
    with pytest.raises(ValueError, match="source and destination are partition 1"):
        check_route(bad, chips, owners)
    with pytest.raises(ValueError, match="do not belong to one owner"):
        check_route(route([0], [0]), chips, {1: "ns/p", 2: "ns/q"})
    with pytest.raises(ValueError, match="owner none"):
        check_route(route([0], [0]), chips, {})
    with pytest.raises(ValueError, match="destination partition 2 does not exist"):
        check_route(route([0], [0]), {1: 0}, owners)
    across = RouteSpec("r", 1, 3, np.zeros(1, np.int64), np.zeros(1, np.int64), 4)
    check_route(across, chips, owners, {0: "board", 1: "board"})  # two chips of one fabric
    for fabrics in ({0: "board", 1: "wafer"}, {0: "", 1: ""}, None):
        with pytest.raises(ValueError, match="a route stays on one chip's router or one fabric"):
            check_route(across, chips, owners, fabrics)
    with pytest.raises(ValueError, match="needs a name"):
        check_route(
            RouteSpec("", 1, 2, np.zeros(0, np.int64), np.zeros(0, np.int64), 1), chips, owners
        )
