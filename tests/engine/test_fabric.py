"""Chips of one fabric exchange spikes over fabric links with their own bandwidth (the profile's
fabricEventsPerSecond): checked against the FIFO of tests/engine/reference_fabric.py. Every
spike sent is delivered exactly once (at the step the link carried it) or counted as dropped,
never both; no step carries more than the link's capacity."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from darwin_dra.engine import (
    Engine,
    FaultKind,
    InvalidArgument,
    Model,
    Network,
    NeuronGroup,
    StateError,
)
from darwin_dra.engine.fabric import (
    NOT_CARRIED,
    fabric_capacity,
    fabric_link_stats,
    fabric_links,
    fabric_route,
    fabric_send,
)
from darwin_dra.engine.native import LINK_BACKLOG_STEPS
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.engine.reference_fabric import DROPPED, FabricGridModel, FabricLinkModel

DT_MS = 1.0


def board(eng: Engine, profile: ChipProfile, per_step: int) -> None:
    """Chips 0 and 1 on fabric "board", chip 2 on another; links of `per_step` spikes a step."""
    slow = dataclasses.replace(profile, fabric_events_per_s=(per_step + 0.5) / (DT_MS * 1e-3))
    assert fabric_capacity(slow.fabric_events_per_s, DT_MS) == per_step
    for serial, fabric in (("A", "board"), ("B", "board"), ("C", "other")):
        eng.add_chip(slow, ChipEntry(model=slow.model, serial=serial, fabric=fabric))


def readout(n: int) -> Network:
    """Input i onto neuron i, which fires the step after (threshold model, delay 1)."""
    return Network(
        groups=(NeuronGroup(count=n, model=Model.THRESHOLD, v_th=0.5, t_ref=0.0),),
        src=np.arange(n, dtype=np.uint32) + np.uint32(n),
        dst=np.arange(n, dtype=np.uint32),
        weight=np.ones(n, np.float32),
        delay=np.ones(n, np.uint16),
        n_inputs=n,
        dt_ms=DT_MS,
    )


@st.composite
def batches(draw: st.DrawFn) -> tuple[int, list[tuple[list[int], int]]]:
    """A capacity and rounds of (offsets from the destination's step, steps run after)."""
    cap = draw(st.integers(1, 4))
    rounds = draw(
        st.lists(
            st.tuples(st.lists(st.integers(0, 4), max_size=20), st.integers(0, 3)),
            min_size=1,
            max_size=5,
        )
    )
    return cap, rounds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=batches())
def test_fabric_link_against_reference(darwin3: ChipProfile, case: tuple) -> None:
    cap, rounds = case
    total = sum(len(offsets) for offsets, _ in rounds)
    with Engine() as eng:
        board(eng, darwin3, cap)
        src = eng.create_partition(0, cores=[3])
        dst = eng.create_partition(1, cores=[3])
        net = readout(max(total, 1))
        eng.load(dst, net)
        eng.record(dst, range(net.n_neurons))
        ref = FabricLinkModel(cap, LINK_BACKLOG_STEPS)
        now, next_id, want = 0, 0, []
        for offsets, run in rounds:
            steps = [now + o for o in offsets]
            ids = list(range(next_id, next_id + len(steps)))
            next_id += len(steps)
            sent = fabric_send(eng, src, dst, steps, ids)
            expect = ref.send(steps)
            assert [NOT_CARRIED if a == DROPPED else a for a in expect] == sent.at.tolist()
            assert sent.sent == sum(a != DROPPED for a in expect)
            want += [(a + 1, i) for a, i in zip(expect, ids, strict=True) if a != DROPPED]
            eng.run(dst, run)
            now += run
        eng.run(dst, max(max(ref.per_step, default=0) + 2 - now, 1))  # the last ones arrive
        fired_steps, fired = eng.read_spikes(dst)
        got = sorted(zip(fired_steps.tolist(), fired.tolist(), strict=True))
        assert got == sorted(want)  # each carried spike arrives once, at its step (+ delay 1)
        stats = fabric_link_stats(eng, 0, 1)
        assert stats.carried == len(want) == eng.telemetry(dst).input_spikes
        assert stats.carried + stats.dropped == total  # delivered or dropped, never both
        assert stats.dropped == ref.dropped
        assert stats.deferred == ref.deferred
        assert stats.capacity == (cap if total else 0)  # a link exists from its first spike
        per_step = Counter(s - 1 for s, _ in got)
        assert max(per_step.values(), default=0) <= cap  # never over the link's bandwidth
        assert stats.peak == max(per_step.values(), default=0)
        assert 0.0 <= stats.utilisation <= 1.0
        event("dropped" if stats.dropped else "none dropped")
        event("saturated" if stats.deferred else "never waited")


def test_fabric_links_join_only_chips_of_one_fabric(darwin3: ChipProfile) -> None:
    with Engine() as eng:
        board(eng, darwin3, 2)
        parts = [eng.create_partition(chip, cores=[3]) for chip in range(3)]
        for part in parts:
            eng.load(part, readout(4))
        with pytest.raises(InvalidArgument, match="not on one fabric"):
            fabric_send(eng, parts[1], parts[2], [0], [0])
        with pytest.raises(InvalidArgument, match="one chip"):
            fabric_send(eng, parts[0], parts[0], [0], [0])
        with pytest.raises(InvalidArgument, match="not on one fabric"):
            fabric_link_stats(eng, 0, 2)
        assert fabric_link_stats(eng, 1, 0).carried == 0  # exists, unused
        sent = fabric_send(eng, parts[0], parts[1], [0] * 12, list(range(4)) * 3)
        assert sent.sent == 2 * (LINK_BACKLOG_STEPS + 1)
        assert sent.dropped == 2


@st.composite
def grids(draw: st.DrawFn) -> tuple[int, int, int, set[tuple[int, int]], set[int], list]:
    """A fabric of n chips, w a row (0: all adjacent), links of cap a step, some failed links
    and chips, and sends (source chip, destination chip, steps)."""
    n, w = draw(st.integers(2, 6)), draw(st.sampled_from([0, 1, 2, 3]))
    cap = draw(st.integers(1, 3))
    model = FabricGridModel(n, w, cap, LINK_BACKLOG_STEPS)
    hops = [(a, b) for a in range(n) for b in model.neighbours(a)]
    failed = set(draw(st.lists(st.sampled_from(hops), max_size=4)))
    down = set(draw(st.lists(st.integers(0, n - 1), max_size=1)))
    pair = st.tuples(st.integers(0, n - 1), st.integers(1, n - 1)).map(
        lambda p: (p[0], (p[0] + p[1]) % n)
    )
    sends = draw(st.lists(st.tuples(pair, st.lists(st.integers(0, 4), max_size=12)), max_size=6))
    return n, w, cap, failed, down, sends


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=grids())
def test_fabric_grid_against_reference(darwin3: ChipProfile, case: tuple) -> None:
    """Multi-hop routes over a grid with failed links and chips, against FabricGridModel: the
    path, the step every spike arrives (each hop charged), the counters of every link; each
    spike delivered once at its arrival + delay or counted dropped, never both; no link over
    its capacity in any step."""
    n, w, cap, failed, down, sends = case
    prof = dataclasses.replace(
        darwin3, fabric_events_per_s=(cap + 0.5) / (DT_MS * 1e-3), fabric_grid_w=w
    )
    ref = FabricGridModel(n, w, cap, LINK_BACKLOG_STEPS, failed=failed, down=down)
    with Engine() as eng:
        for c in range(n):
            eng.add_chip(prof, ChipEntry(model=prof.model, serial=f"G{c}", fabric="wafer"))
        parts = [eng.create_partition(c, cores=[3]) for c in range(n)]
        for p in parts:
            eng.load(p, readout(80))
            eng.record(p, range(80))
        for a, b in sorted(failed):
            eng.inject_fault(a, FaultKind.FABRIC, b)
        for c in down:
            eng.inject_fault(c, FaultKind.CHIP)
        for a in range(n):
            for b in range(n):
                if a != b:
                    assert fabric_route(eng, a, b) == tuple(ref.route(a, b))
        want: dict[int, list[tuple[int, int]]] = {c: [] for c in range(n)}
        used = Counter[int]()
        total = 0
        for (a, b), steps in sends:
            if a in down or b in down:
                if steps:  # an empty batch is a no-op
                    with pytest.raises(StateError):
                        fabric_send(eng, parts[a], parts[b], steps, [0] * len(steps))
                continue
            ids = list(range(used[b], used[b] + len(steps)))
            used[b] += len(steps)
            total += len(steps)
            sent = fabric_send(eng, parts[a], parts[b], steps, ids)
            expect = ref.send(a, b, steps)
            assert [NOT_CARRIED if t == DROPPED else t for t in expect] == sent.at.tolist()
            want[b] += [(t + 1, i) for t, i in zip(expect, ids, strict=True) if t != DROPPED]
        delivered = 0
        for c in range(n):
            if c in down:
                continue
            eng.run(parts[c], 40)
            fired_steps, fired = eng.read_spikes(parts[c])
            got = sorted(zip(fired_steps.tolist(), fired.tolist(), strict=True))
            assert got == sorted(want[c])  # once each, at arrival + delay 1
            delivered += len(got)
        dropped = 0
        for st_ in fabric_links(eng):
            key = (st_.src_chip, st_.dst_chip)
            m = ref.links.get(key, FabricLinkModel(cap, LINK_BACKLOG_STEPS))
            assert (st_.carried, st_.dropped, st_.deferred) == (
                sum(m.per_step.values()),
                m.dropped,
                m.deferred,
            )
            assert st_.dropped_fault == ref.lost[key]
            assert st_.failed == (key in failed)
            assert max(m.per_step.values(), default=0) <= cap
            assert st_.peak <= cap
            dropped += st_.dropped + st_.dropped_fault
        assert delivered + dropped == total  # delivered or dropped, never both
        event(f"w={w}")
        rerouted = any(ref.route(*p) not in ([], ref.xy(*p)) for p, _ in sends)
        event("rerouted" if rerouted else "direct")
        event("lost to a fault" if ref.lost else "none lost to a fault")
