"""Routing: every spike reaches exactly its target cores, once; XY multicast trees count each
link once per spike; partitions never leak spikes into each other."""

from __future__ import annotations

import numpy as np
from darwin_dra.engine import Direction, Engine, FaultKind, Network, NeuronGroup
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURE_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def xy_links(eng: Engine, chip: int, a: tuple[int, int], b: tuple[int, int]) -> list[int]:
    """The links an XY route crosses: along X first, then Y."""
    (x, y), (x1, y1) = a, b
    out = []
    while x != x1:
        d = Direction.EAST if x < x1 else Direction.WEST
        link = eng.link_index(chip, x, y, d)
        assert link is not None
        out.append(link)
        x += 1 if x < x1 else -1
    while y != y1:
        d = Direction.SOUTH if y < y1 else Direction.NORTH
        link = eng.link_index(chip, x, y, d)
        assert link is not None
        out.append(link)
        y += 1 if y < y1 else -1
    return out


@st.composite
def fanout_networks(draw: st.DrawFn) -> tuple[Network, list[int]]:
    """Neurons that fire on every step they can (strong constant current), random synapses
    spread over the partition's cores (neurons_per_core is lowered by using many cores)."""
    n = draw(st.integers(4, 64))
    n_syn = draw(st.integers(1, 300))
    src = draw(st.lists(st.integers(0, n - 1), min_size=n_syn, max_size=n_syn))
    dst = draw(st.lists(st.integers(0, n - 1), min_size=n_syn, max_size=n_syn))
    delay = draw(st.lists(st.integers(1, 4), min_size=n_syn, max_size=n_syn))
    # zero weights keep the firing pattern fixed while every event is still routed
    net = Network(
        groups=(
            NeuronGroup(count=n, i_e=500.0, t_ref=draw(st.sampled_from([0.0, 0.5])), v_reset=0.0),
        ),
        src=np.array(src, np.uint32),
        dst=np.array(dst, np.uint32),
        weight=np.zeros(n_syn, np.float32),
        delay=np.array(delay, np.uint16),
    )
    cores = sorted(draw(st.sets(st.integers(0, 574), min_size=1, max_size=8)))
    return net, cores


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(case=fanout_networks(), steps=st.integers(5, 40))
def test_every_spike_reaches_each_target_core_once(
    engine: Engine, case: tuple[Network, list[int]], steps: int
) -> None:
    net, cores = case
    part = engine.create_partition(0, cores=cores)
    try:
        engine.load(part, net)
        engine.run(part, steps)
        counts = engine.spike_counts(part, net.n_neurons).astype(np.int64)
        tel = engine.telemetry(part)
        assert counts.sum() > 0  # the drive makes every neuron fire
        core_of = [engine.neuron_core(part, i) for i in range(net.n_neurons)]
        used = sorted(set(core_of))
        # events still in flight (due after the last step) are not delivered yet: count
        # only spikes whose delay has elapsed, using the recorded firing times instead.
        expected_core = dict.fromkeys(used, 0)
        expected_links = np.zeros(engine.link_count(0), dtype=np.int64)
        for s in range(net.n_neurons):
            if counts[s] == 0:
                continue
            targets = {core_of[int(d)] for d in net.dst[net.src == s]}
            for d, dl in zip(net.dst[net.src == s], net.delay[net.src == s], strict=True):
                del dl
                expected_core[core_of[int(d)]] += int(counts[s])
            here = engine.core(0, core_of[s])
            tree: set[int] = set()
            for t in targets:
                there = engine.core(0, t)
                tree.update(xy_links(engine, 0, (here.x, here.y), (there.x, there.y)))
            for link in tree:
                expected_links[link] += counts[s]
        # Delivery happens in the step a spike is emitted (into the delay ring), so every
        # emitted spike's events are already counted, each exactly once per synapse.
        got_core = engine.core_events(part)
        assert {used[i]: int(v) for i, v in enumerate(got_core)} == expected_core
        assert tel.events == sum(expected_core.values())
        np.testing.assert_array_equal(engine.link_events(part), expected_links)
        assert tel.dropped == 0
    finally:
        engine.destroy_partition(part)


def test_partitions_do_not_leak_spikes(darwin3: ChipProfile) -> None:
    """A flooding neighbour on the same chip changes nothing in a partition's own run."""
    rng = np.random.default_rng(5)
    n = 300
    src = rng.integers(0, n, 6000).astype(np.uint32)
    dst = rng.integers(0, n, 6000).astype(np.uint32)
    quiet = Network(
        groups=(NeuronGroup(count=n, poisson_rate_hz=8000.0, poisson_weight=0.3),),
        src=src,
        dst=dst,
        weight=np.full(6000, 0.4, np.float32),
        delay=np.full(6000, 3, np.uint16),
        seed=11,
    )
    loud = Network(
        groups=(NeuronGroup(count=n, i_e=50.0, t_ref=0.0),),
        src=src,
        dst=dst,
        weight=np.full(6000, 5.0, np.float32),
        delay=np.full(6000, 1, np.uint16),
    )

    def run(with_neighbour: bool) -> np.ndarray:
        with Engine() as eng:
            eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="L", fabric="f"))
            a = eng.create_partition(0, domains=[0, 1])
            if with_neighbour:
                b = eng.create_partition(0, domains=[2, 7])
                eng.load(b, loud)
                eng.run(b, 100)
            eng.load(a, quiet)
            eng.run(a, 500)
            if with_neighbour:
                # one core of the neighbour breaks: its events are dropped and counted
                eng.inject_fault(0, FaultKind.CORE, eng.partition(b).cores[1])
                eng.run(b, 100)
                assert eng.telemetry(b).dropped_fault > 0
            eng.run(a, 500)
            return eng.spike_counts(a, n)

    alone, beside = run(False), run(True)
    assert alone.sum() > 0
    np.testing.assert_array_equal(alone, beside)


def test_failed_link_drops_and_counts_only_routes_through_it(engine: Engine) -> None:
    # neuron 0 on core A drives neuron 1 on core B two tiles east
    a, b = engine.core(0, 30), engine.core(0, 32)
    assert a.y == b.y
    assert b.x == a.x + 2
    net = Network(
        groups=(NeuronGroup(count=2, i_e=500.0, t_ref=0.0, v_reset=0.0),),
        src=np.array([0], np.uint32),
        dst=np.array([1], np.uint32),
        weight=np.zeros(1, np.float32),
        delay=np.ones(1, np.uint16),
    )
    part = engine.create_partition(0, cores=[30, 32])
    engine.load(part, net)
    engine.run(part, 10)
    ok = engine.telemetry(part)
    link = engine.link_index(0, a.x + 1, a.y, Direction.EAST)
    assert link is not None
    engine.inject_fault(0, FaultKind.LINK, link)
    assert engine.chip(0).failed_links == 1
    engine.run(part, 10)
    broken = engine.telemetry(part)
    assert ok.dropped_fault == 0
    assert ok.events > 0
    # neuron 0 fires on every step: each of its 10 spikes lost its one event
    assert broken.dropped_fault == 10
    assert broken.events == ok.events
    engine.clear_fault(0, FaultKind.LINK, link)
    engine.run(part, 10)
    assert engine.telemetry(part).events > broken.events
