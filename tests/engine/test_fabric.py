"""Chips of one fabric exchange spikes over fabric links with their own bandwidth (the profile's
fabricEventsPerSecond): checked against the FIFO of tests/engine/reference_fabric.py. Every
spike sent is delivered exactly once (at the step the link carried it) or counted as dropped,
never both; no step carries more than the link's capacity."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from darwin_dra.engine import Engine, InvalidArgument, Model, Network, NeuronGroup
from darwin_dra.engine.fabric import (
    NOT_CARRIED,
    fabric_capacity,
    fabric_link_stats,
    fabric_send,
)
from darwin_dra.engine.native import LINK_BACKLOG_STEPS
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.engine.reference_fabric import DROPPED, FabricLinkModel

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
