"""The router's bandwidth: every mesh link carries at most its capacity of packets a step;
what does not fit waits in a bounded per-link backlog (and arrives that much later) or is
dropped and counted there; each spike is delivered exactly once or counted as dropped, never
both. Checked step by step against the plain-Python model of tests/engine/reference_router.py
on a chip model whose router is weak enough to saturate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from darwin_dra.engine import Engine, Model, Network, NeuronGroup, PartitionConfig, Routing
from darwin_dra.engine.native import LINK_BACKLOG_STEPS, link_capacity
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.engine.reference_router import RouterModel
from tests.engine.test_routing import xy_links

DT_MS = 1.0


def weak_router(profile: ChipProfile, per_link: int) -> ChipProfile:
    """`profile` with a router that carries `per_link` packets per link per 1 ms step."""
    w, h = profile.mesh_w, profile.mesh_h
    links = 2 * ((w - 1) * h + w * (h - 1))
    rate = (per_link + 0.5) * links / (DT_MS * 1e-3)
    weak = dataclasses.replace(profile, model="darwin3-weak", router_events_per_s=rate)
    assert link_capacity(rate, DT_MS, w, h) == per_link
    return weak


@dataclasses.dataclass(frozen=True)
class Case:
    net: Network
    cores: list[int]
    steps: int
    schedule: list[tuple[int, int]]  # (step, input), in injection order
    cap: int  # packets per link per step
    routing: Routing
    threads: int


@st.composite
def traffic(draw: st.DrawFn) -> Case:
    """Inputs (entering at the controller tile) onto readout neurons that never fire, spread
    over a few cores; random synapses, delays and an injection schedule."""
    n_in = draw(st.integers(1, 12))
    n = draw(st.integers(4, 40))
    n_syn = draw(st.integers(n_in, 120))
    src = [i % n_in for i in range(n_in)] + draw(
        st.lists(st.integers(0, n_in - 1), min_size=n_syn - n_in, max_size=n_syn - n_in)
    )
    steps = draw(st.integers(3, 14))
    density = draw(st.floats(0.0, 1.0))
    keep = draw(st.lists(st.floats(0.0, 1.0), min_size=steps * n_in, max_size=steps * n_in))
    sched = [(k // n_in, k % n_in) for k, u in enumerate(keep) if u < density]
    net = Network(
        groups=(NeuronGroup(count=n, model=Model.THRESHOLD, v_th=1e9, t_ref=0.0),),
        src=np.array(src, np.uint32) + np.uint32(n),  # inputs are sources n..n+n_in-1
        dst=np.array(
            draw(st.lists(st.integers(0, n - 1), min_size=n_syn, max_size=n_syn)), np.uint32
        ),
        weight=np.array(
            draw(st.lists(st.sampled_from([1.0, 2.0, 4.0]), min_size=n_syn, max_size=n_syn)),
            np.float32,
        ),
        delay=np.array(
            draw(st.lists(st.integers(1, 3), min_size=n_syn, max_size=n_syn)), np.uint16
        ),
        n_inputs=n_in,
        dt_ms=DT_MS,
    )
    return Case(
        net=net,
        cores=sorted(draw(st.sets(st.integers(0, 574), min_size=1, max_size=6))),
        steps=steps,
        schedule=sched,
        cap=draw(st.integers(1, 3)),
        routing=draw(st.sampled_from([Routing.MULTICAST_TREE, Routing.XY])),
        threads=draw(st.sampled_from([1, 2])),
    )


def source_links(
    eng: Engine, part: int, net: Network, routing: Routing, entry: tuple[int, int]
) -> dict[int, list[int]]:
    """Each input's packets (entering at tile `entry`): one tree over the XY routes to its
    target cores (each link once), or one XY route per target core (unicast)."""
    out: dict[int, list[int]] = {}
    for s in range(net.n_inputs):
        cores = sorted(
            {eng.neuron_core(part, int(d)) for d in net.dst[net.src == net.n_neurons + s]}
        )
        routes = [xy_links(eng, 0, entry, (eng.core(0, c).x, eng.core(0, c).y)) for c in cores]
        links = [link for r in routes for link in r]
        out[net.n_neurons + s] = links if routing is Routing.XY else sorted(set(links))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=traffic())
def test_router_bandwidth_against_reference(darwin3: ChipProfile, case: Case) -> None:
    cap, steps, routing, net, sched = case.cap, case.steps, case.routing, case.net, case.schedule
    with Engine() as eng:
        eng.add_chip(
            weak_router(darwin3, cap), ChipEntry(model="darwin3-weak", serial="W", fabric="f")
        )
        part = eng.create_partition(
            0,
            cores=case.cores,
            config=PartitionConfig(routing=routing),
        )
        eng.load(part, net)
        if sched:
            eng.inject(part, [t for t, _ in sched], [i for _, i in sched])
        entry = (darwin3.controller_x, darwin3.controller_y)
        links = source_links(eng, part, net, routing, entry)
        ref = RouterModel(links, eng.link_count(0), cap, cap * LINK_BACKLOG_STEPS)
        before = np.zeros(eng.link_count(0), np.uint64)
        for step in range(steps):
            eng.run(part, 1, case.threads)
            want = ref.step(step, [net.n_neurons + i for t, i in sched if t == step])
            stats = eng.link_stats(part)
            per_step = (stats.carried - before).astype(np.int64)
            before = stats.carried.copy()
            assert per_step.max(initial=0) <= cap  # never over the bandwidth in any step
            np.testing.assert_array_equal(per_step, want)
            # what arrives now: spikes that entered `delay` steps ago (v = x of this step)
            expect = np.zeros(net.n_neurons, np.float32)
            for s, at in ref.entered:
                hit = (net.src == s) & (at + net.delay.astype(np.int64) == step)
                np.add.at(expect, net.dst[hit], net.weight[hit])
            v, _ = eng.potentials(part, 0, net.n_neurons)
            np.testing.assert_array_equal(v, expect)
        stats = eng.link_stats(part)
        np.testing.assert_array_equal(stats.dropped, ref.dropped)
        np.testing.assert_array_equal(stats.backlog, ref.backlog)
        tel = eng.telemetry(part)
        syn = {
            s: int(np.count_nonzero(net.src == s))
            for s in range(net.n_neurons, net.n_neurons + net.n_inputs)
        }
        # every spike entered the mesh once, waits, or was dropped and counted: never two
        assert tel.input_spikes == len(sched)
        assert tel.routed_spikes + tel.backlog + tel.dropped_link_spikes == tel.input_spikes
        assert tel.routed_spikes == len(ref.entered)
        assert tel.dropped_link_spikes == len(ref.lost)
        assert tel.deferred == ref.deferred
        assert tel.events == sum(syn[s] for s, _ in ref.entered)
        assert tel.dropped_link == sum(syn[s] for s in ref.lost)
        assert tel.link_capacity == cap
        assert tel.link_util_peak <= 1.0
        event("saturated" if tel.deferred or tel.dropped_link_spikes else "never saturated")
        event("dropped" if tel.dropped_link_spikes else "none dropped")


def test_backpressure_delays_by_one_step_and_drops_past_the_bound(darwin3: ChipProfile) -> None:
    """One link, capacity 1: of two inputs injected together, the second waits one step and
    arrives one step late; a flood fills the backlog (4 steps of capacity) and the rest is
    dropped and counted at that link."""
    net = Network(
        groups=(NeuronGroup(count=1, model=Model.THRESHOLD, v_th=1e9, t_ref=0.0),),
        src=np.array([1, 2] + [3] * 1, np.uint32),
        dst=np.zeros(3, np.uint32),
        weight=np.array([1.0, 2.0, 4.0], np.float32),
        delay=np.full(3, 2, np.uint16),
        n_inputs=3,
        dt_ms=DT_MS,
    )
    with Engine() as eng:
        eng.add_chip(
            weak_router(darwin3, 1), ChipEntry(model="darwin3-weak", serial="W", fabric="f")
        )
        part = eng.create_partition(0, cores=[0])
        eng.load(part, net)
        eng.inject(part, [0, 0], [0, 1])
        seen = []
        for _ in range(4):
            eng.run(part, 1)
            seen.append(float(eng.potentials(part, 0, 1)[0][0]))
        assert seen == [0.0, 0.0, 1.0, 2.0]  # input 0 at 0 + 2, input 1 waited: at 1 + 2
        tel = eng.telemetry(part)
        assert (tel.deferred, tel.routed_spikes, tel.dropped_link) == (1, 2, 0)
        flood = 40
        eng.inject(part, [10] * flood, [2] * flood)
        eng.run(part, 7)  # steps 4..10: the flood arrives at step 10
        tel = eng.telemetry(part)
        bound = LINK_BACKLOG_STEPS
        assert tel.backlog == bound
        assert tel.dropped_link_spikes == flood - 1 - bound
        assert tel.dropped_link == flood - 1 - bound
        stats = eng.link_stats(part)
        assert int(stats.dropped.sum()) == tel.dropped_link_spikes
        assert int(stats.backlog.sum()) == bound
        eng.run(part, 10)  # the backlog drains, one a step
        tel = eng.telemetry(part)
        assert tel.backlog == 0
        assert tel.routed_spikes == 2 + 1 + bound
        assert 0 < tel.link_util_peak <= 1.0


@pytest.mark.parametrize("threads", [1, 2])
def test_unsaturated_links_change_nothing(darwin3: ChipProfile, threads: int) -> None:
    """With the shipped router no link of a busy network comes near its capacity: nothing
    waits, the spikes are bit for bit those of a router with a thousand times the bandwidth."""
    rng = np.random.default_rng(3)
    n = 2000
    src = rng.integers(0, n, 40000).astype(np.uint32)
    net = Network(
        groups=(NeuronGroup(count=n, poisson_rate_hz=9000.0, poisson_weight=0.4),),
        src=src,
        dst=rng.integers(0, n, src.size).astype(np.uint32),
        weight=rng.normal(0.3, 0.2, src.size).astype(np.float32),
        delay=rng.integers(1, 8, src.size).astype(np.uint16),
        seed=4,
    )
    fast = dataclasses.replace(darwin3, router_events_per_s=darwin3.router_events_per_s * 1000)

    def run(profile: ChipProfile) -> tuple[np.ndarray, int]:
        with Engine() as eng:
            eng.add_chip(profile, ChipEntry(model=profile.model, serial="U", fabric="f"))
            part = eng.create_partition(0, domains=[0, 1])
            eng.load(part, net)
            eng.run(part, 300, threads)
            tel = eng.telemetry(part)
            assert tel.deferred == tel.dropped_link == 0
            assert tel.routed_spikes == tel.spikes > 0
            return eng.spike_counts(part, n), eng.membrane(part, n).tobytes()  # type: ignore[return-value]

    assert run(darwin3)[1] == run(fast)[1]
    np.testing.assert_array_equal(run(darwin3)[0], run(fast)[0])
