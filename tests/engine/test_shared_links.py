"""Shared mesh links: partitions of one chip whose XY routes cross the same link share its
capacity each step (docs/engine.md, "Shared links"). Checked step by step against the
plain-Python router of tests/engine/reference_router.py with the shares it defines: together
the partitions never put more than the link's capacity on it in a step, each gets its share
(floor(B / k), the remainder rotating), and a partition alone on a link can use all of it."""

from __future__ import annotations

import dataclasses

import numpy as np
from darwin_dra.engine import Direction, Engine, Model, Network, NeuronGroup, Routing
from darwin_dra.engine.fabric import link_users
from darwin_dra.engine.native import LINK_BACKLOG_STEPS
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.engine.reference_router import RouterModel
from tests.engine.test_router_bandwidth import DT_MS, source_links, weak_router

ENTRY = (0, 0)  # the controller tile of darwin3, where injected spikes enter the mesh


def feed(n: int, n_in: int) -> Network:
    """Every input onto every one of `n` readout neurons that never fire (delay 1)."""
    src = np.repeat(np.arange(n_in, dtype=np.uint32) + np.uint32(n), n)
    return Network(
        groups=(NeuronGroup(count=n, model=Model.THRESHOLD, v_th=1e9, t_ref=0.0),),
        src=src,
        dst=np.tile(np.arange(n, dtype=np.uint32), n_in),
        weight=np.ones(src.size, np.float32),
        delay=np.ones(src.size, np.uint16),
        n_inputs=n_in,
        dt_ms=DT_MS,
    )


@dataclasses.dataclass(frozen=True)
class Party:
    cores: list[int]
    n_in: int
    schedule: list[tuple[int, int]]  # (step, input)


@st.composite
def party(draw: st.DrawFn, cores: list[int], steps: int) -> Party:
    n_in = draw(st.integers(1, 6))
    density = draw(st.floats(0.2, 1.0))
    keep = draw(st.lists(st.floats(0, 1), min_size=steps * n_in, max_size=steps * n_in))
    sched = [(k // n_in, k % n_in) for k, u in enumerate(keep) if u < density]
    return Party(cores, n_in, sched)


@st.composite
def contention(draw: st.DrawFn) -> tuple[list[Party], int, int]:
    """Two or three partitions on disjoint cores near the controller (so their routes from it
    overlap), random traffic each, a weak router (1..4 packets a link a step)."""
    steps = draw(st.integers(3, 10))
    n = draw(st.integers(2, 3))
    pool = draw(st.permutations(list(range(0, 60))))
    sizes = [draw(st.integers(1, 3)) for _ in range(n)]
    at, parties = 0, []
    for size in sizes:
        parties.append(draw(party(sorted(pool[at : at + size]), steps)))
        at += size
    return parties, steps, draw(st.integers(1, 4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=contention())
def test_shared_links_against_reference(darwin3: ChipProfile, case: tuple) -> None:
    parties, steps, cap = case
    with Engine() as eng:
        eng.add_chip(weak_router(darwin3, cap), ChipEntry("darwin3-weak", "W", "f"))
        n_links = eng.link_count(0)
        parts, nets, links = [], [], []
        for p in parties:
            part = eng.create_partition(0, cores=p.cores)
            net = feed(2 * len(p.cores), p.n_in)
            eng.load(part, net)
            if p.schedule:
                eng.inject(part, [t for t, _ in p.schedule], [i for _, i in p.schedule])
            parts.append(part)
            nets.append(net)
            links.append(source_links(eng, part, net, Routing.MULTICAST_TREE, ENTRY))
        used = [{link for ls in srcs.values() for link in ls} for srcs in links]
        models = []
        for j, part in enumerate(parts):
            shares = {}
            for link in used[j]:
                with_it = [parts[i] for i in range(len(parts)) if link in used[i]]
                shares[link] = (len(with_it), sum(q < part for q in with_it))
            users = link_users(eng, part)
            assert {link: int(users[link]) for link in used[j]} == {
                link: k for link, (k, _) in shares.items()
            }
            models.append(
                RouterModel(links[j], n_links, cap, cap * LINK_BACKLOG_STEPS, shares=shares)
            )
        before = [np.zeros(n_links, np.int64) for _ in parts]
        contended = False
        for step in range(steps):
            total = np.zeros(n_links, np.int64)
            for j, part in enumerate(parts):
                eng.run(part, 1)
                new = [nets[j].n_neurons + i for t, i in parties[j].schedule if t == step]
                want = models[j].step(step, new)
                carried = eng.link_stats(part).carried.astype(np.int64)
                np.testing.assert_array_equal(carried - before[j], want)
                for link, (k, _) in models[j].shares.items():  # the fairness bound
                    assert carried[link] - before[j][link] <= -(-cap // k)
                total += carried - before[j]
                before[j] = carried
            assert total.max(initial=0) <= cap  # together, never over the link's capacity
            contended |= bool((total == cap).any() and len(parts) > 1)
        for j, part in enumerate(parts):
            tel = eng.telemetry(part)
            assert tel.routed_spikes + tel.backlog + tel.dropped_link_spikes == tel.input_spikes
            assert tel.routed_spikes == len(models[j].entered)
            assert tel.dropped_link_spikes == len(models[j].lost)
            np.testing.assert_array_equal(eng.link_stats(part).dropped, models[j].dropped)
        event("a shared link full" if contended else "no shared link full")


def saturate(eng: Engine, part: int, step: int, count: int) -> None:
    eng.inject(part, [step] * count, [0] * count)


def test_two_partitions_split_a_link_and_one_alone_uses_all_of_it(darwin3: ChipProfile) -> None:
    """Capacity 5 on the link east of the controller, two saturating partitions behind it: 3 and
    2 packets a step, alternating (the remainder rotates), 5 together; over two steps each gets
    5. Unloaded, the other leaves the whole link to the first: 5 a step."""
    cap = 5
    with Engine() as eng:
        eng.add_chip(weak_router(darwin3, cap), ChipEntry("darwin3-weak", "W", "f"))
        link = eng.link_index(0, 0, 0, Direction.EAST)  # on both routes
        assert link is not None
        a, b = (eng.create_partition(0, cores=[c]) for c in (2, 4))
        for part in (a, b):
            eng.load(part, feed(1, 1))
        assert link_users(eng, a)[link] == link_users(eng, b)[link] == 2
        got: dict[int, list[int]] = {a: [], b: []}
        for step in range(4):
            for part in (a, b):
                saturate(eng, part, step, 2 * cap)
                before = int(eng.link_stats(part).carried[link])
                eng.run(part, 1)
                got[part].append(int(eng.link_stats(part).carried[link]) - before)
        assert [x + y for x, y in zip(got[a], got[b], strict=True)] == [cap] * 4
        assert got[a] == [3, 2, 3, 2]
        assert got[b] == [2, 3, 2, 3]
        eng.unload(b)
        assert link_users(eng, a)[link] == 1
        alone = []
        for step in range(4, 8):
            saturate(eng, a, step, 2 * cap)
            before = int(eng.link_stats(a).carried[link])
            eng.run(a, 1)
            alone.append(int(eng.link_stats(a).carried[link]) - before)
        assert alone == [cap] * 4  # alone, the whole capacity
