"""The verdict on a measured window from the lease keeper's samples (fleet/readiness.py), against
a reference that walks the window one second at a time."""

from __future__ import annotations

import pytest
from darwin_dra.fleet.readiness import Readiness, Sample, judge
from darwin_dra.fleet.schedbench import LayoutResult, table
from hypothesis import given
from hypothesis import strategies as st

NODES = [f"n{i}" for i in range(6)]


def s(at: float, *down: str) -> Sample:
    return Sample(at, frozenset(down))


def test_a_window_with_every_node_ready_is_valid() -> None:
    r = judge([s(0.0), s(10.0), s(20.0)], 6, 5.0, 25.0)
    assert r == Readiness(6, 3, 0, 0, 0.0, True, 0.0)
    assert r.valid
    assert r.reason == "all 6 nodes Ready at every sample"


def test_nodes_not_ready_inside_the_window_make_it_invalid_and_are_counted() -> None:
    samples = [s(0.0), s(10.0, "n1", "n2"), Sample(20.0, frozenset({"n2"}), 31.5), s(30.0)]
    r = judge(samples, 6, 5.0, 35.0)
    assert (r.worst, r.affected, r.node_seconds) == (2, 2, pytest.approx(30.0))
    assert r.slowest_round_s == 31.5
    assert "lease rounds took up to 31.5 s" in r.reason
    assert not r.valid
    assert r.reason.startswith("2 of 6 nodes were not Ready during the measurement")
    # The same trouble before the window opened or after it closed does not count.
    assert judge(samples, 6, 30.0, 35.0).valid
    assert judge([s(0.0), s(40.0, "n1")], 6, 5.0, 35.0).valid


def test_the_state_at_the_start_is_the_last_sample_before_it() -> None:
    r = judge([s(0.0, "n3"), s(50.0)], 6, 10.0, 20.0)
    assert (r.samples, r.affected, r.node_seconds) == (1, 1, pytest.approx(10.0))


def test_an_unobserved_start_is_not_valid() -> None:
    assert judge([], 6, 0.0, 1.0).reason == "no readiness sample covers the measurement"
    late = judge([s(5.0)], 6, 0.0, 10.0)
    assert not late.valid
    assert late.reason == "the first readiness sample came after the measurement began"


@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.frozensets(st.sampled_from(NODES))),
        max_size=12,
        unique_by=lambda x: x[0],
    ),
    st.integers(0, 60),
    st.integers(0, 30),
)
def test_matches_a_second_by_second_walk(
    points: list[tuple[int, frozenset[str]]], start: int, length: int
) -> None:
    samples = [Sample(float(t), down) for t, down in points]
    r = judge(samples, len(NODES), float(start), float(start + length))
    latest: dict[int, frozenset[str] | None] = {}
    for second in range(start, start + length + 1):
        before = [(t, d) for t, d in points if t <= second]
        latest[second] = max(before)[1] if before else None
    node_seconds = sum(len(latest[k] or ()) for k in range(start, start + length))
    seen = [d for t, d in points if start < t <= start + length]
    first = latest[start]
    if first is not None:
        seen.append(first)
    assert r.node_seconds == pytest.approx(node_seconds)
    assert r.affected == len(frozenset().union(*seen))
    assert r.worst == max((len(d) for d in seen), default=0)
    assert r.valid == (first is not None and not any(seen))


def test_the_table_says_which_rates_count() -> None:
    def r(valid: bool, worst: int) -> LayoutResult:
        return LayoutResult(
            "darwin", 500, 1, 1, 10, 10, 30.0, 0.1, 0.2, 100.0, 1.0, 0, worst, valid, ""
        )

    head, _, ok, bad = table([r(True, 0), r(False, 32)]).splitlines()
    assert "not ready max/end  valid" in head
    assert ok.split()[14:16] == ["0/0", "yes"]
    assert bad.split()[14:16] == ["32/0", "NO"]
