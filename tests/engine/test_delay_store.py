"""The two delay stores (DK_DELAYS_SUMS: a ring of input sums per slot and neuron, added into at
delivery; DK_DELAYS_QUEUES: per-core packet queues replayed before the core updates) give the
same spikes, potentials and counters, bit for bit, with listed synapses of many delays, kernels,
faults, a KEPS share and several threads; AUTO takes the ring when it fits."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from darwin_dra.engine import (
    DelayStore,
    Engine,
    FaultKind,
    InvalidArgument,
    Network,
    NeuronGroup,
    PartitionConfig,
    Telemetry,
)
from darwin_dra.engine.native import SLOT_SUMS_MAX_BYTES
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.models import compile_graph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.test_memory import _trained
from tests.models.test_compile import DT
from tests.models.test_kernels import kernel_graphs

RunOutput = tuple[np.ndarray, np.ndarray, np.ndarray, Telemetry]


def _engine() -> Engine:
    engine = Engine()
    profile = load_profiles()["darwin3"]
    engine.add_chip(profile, ChipEntry(model="darwin3", serial="S-0", fabric="f"))
    return engine


def _run(
    net: Network,
    store: DelayStore,
    steps: int,
    threads: int,
    *,
    inputs: tuple[np.ndarray, np.ndarray] | None = None,
    keps_budget: int = 0,
    failed_core: int | None = None,
) -> RunOutput:
    with _engine() as engine:
        part = engine.create_partition(
            0,
            domains=list(range(8)),
            shared=keps_budget > 0,
            keps_budget=keps_budget,
            config=PartitionConfig(delay_store=store),
        )
        engine.load(part, net)
        engine.record(part, range(net.n_neurons), capacity=1 << 20)
        if inputs is not None:
            engine.set_input_capacity(part, max(1, inputs[0].size))
            engine.inject(part, inputs[0], inputs[1])
        engine.run(part, steps // 2, threads)
        if failed_core is not None:  # a fault in the middle: its events dropped, counted
            engine.inject_fault(0, FaultKind.CORE, failed_core)
        engine.run(part, steps - steps // 2, threads)
        at, ids = engine.read_spikes(part)
        v = engine.membrane(part, net.n_neurons)
        tel = engine.telemetry(part)
    assert tel.delay_store == store
    return at, ids, v, tel


def _assert_same(a: RunOutput, b: RunOutput) -> None:
    for x, y in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(x, y)
    ta, tb = a[3], b[3]
    for name in ("spikes", "events", "packets", "dropped_fault", "dropped_budget", "queue_peak"):
        assert getattr(ta, name) == getattr(tb, name), name


@pytest.mark.parametrize("threads", [1, 2])
def test_a_trained_network_runs_the_same_in_both_stores(threads: int) -> None:
    net = _trained(n=1500, k=300)  # 31 delays, per-synapse weights
    sums = _run(net, DelayStore.SUMS, 200, threads)
    queues = _run(net, DelayStore.QUEUES, 200, threads)
    assert sums[3].spikes > 100
    assert sums[3].events > 10_000
    _assert_same(sums, queues)


def test_faults_and_a_keps_share_drop_the_same_events_in_both_stores() -> None:
    net = _trained(n=1500, k=300)
    runs = [
        _run(net, store, 200, 2, keps_budget=1000, failed_core=3)
        for store in (DelayStore.SUMS, DelayStore.QUEUES)
    ]
    assert runs[0][3].dropped_fault > 0
    assert runs[0][3].dropped_budget > 0
    _assert_same(*runs)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=kernel_graphs(), threads=st.sampled_from([1, 2]))
def test_kernels_run_the_same_in_both_stores(
    case: tuple[nir.NIRGraph, np.ndarray], threads: int
) -> None:
    graph, x = case
    net = compile_graph(graph, dt=DT).network
    steps_, ids = np.nonzero(x.reshape(x.shape[0], -1))
    inputs = (steps_.astype(np.uint64), ids.astype(np.uint32))
    sums = _run(net, DelayStore.SUMS, x.shape[0] + 6, threads, inputs=inputs)
    _assert_same(sums, _run(net, DelayStore.QUEUES, x.shape[0] + 6, threads, inputs=inputs))


def _long_delays(n: int) -> Network:
    """n neurons, a chain of synapses with delays up to the engine's 255 steps."""
    src = np.arange(n - 1, dtype=np.uint32)
    delay = (1 + src % 255).astype(np.uint16)
    group = NeuronGroup(count=n, tau_m=10.0, v_th=20.0, v_reset=0.0, e_l=0.0, t_ref=0.0)
    return Network(
        groups=(group,),
        src=src,
        dst=src + 1,
        weight=np.full(n - 1, 25.0, dtype=np.float32),
        delay=delay,
        dt_ms=0.1,
        seed=1,
    )


def test_auto_keeps_the_ring_when_it_fits_and_queues_otherwise() -> None:
    small, big = _long_delays(1000), _long_delays(40_000)
    assert 256 * 40_000 * 4 > SLOT_SUMS_MAX_BYTES >= 256 * 1000 * 4
    with _engine() as engine:
        got = []
        for net in (small, big):
            part = engine.create_partition(0, domains=list(range(36)))
            engine.load(part, net)
            got.append(engine.telemetry(part).delay_store)
            engine.destroy_partition(part)
    assert got == [DelayStore.SUMS, DelayStore.QUEUES]


def test_the_ring_is_counted_and_queues_grow_with_the_traffic() -> None:
    net = _trained(n=2000, k=1000)
    with _engine() as engine:
        bytes_ = {}
        for store in (DelayStore.SUMS, DelayStore.QUEUES):
            part = engine.create_partition(
                0, domains=list(range(36)), config=PartitionConfig(delay_store=store)
            )
            engine.load(part, net)
            before = engine.telemetry(part).network_bytes
            engine.run(part, 300, 1)
            bytes_[store] = (before, engine.telemetry(part).network_bytes)
            engine.destroy_partition(part)
    ring = 41 * 2000 * 4  # delays up to 40 steps: 41 slots of sums
    assert bytes_[DelayStore.SUMS][0] - bytes_[DelayStore.QUEUES][0] == ring - 2000 * 4
    assert bytes_[DelayStore.SUMS][1] == bytes_[DelayStore.SUMS][0]  # nothing grows
    assert bytes_[DelayStore.QUEUES][1] > bytes_[DelayStore.QUEUES][0]


def test_an_unknown_store_is_refused() -> None:
    with _engine() as engine:
        part = engine.create_partition(0, domains=[0])
        with pytest.raises(InvalidArgument, match="delay store 7"):
            engine.configure(part, PartitionConfig(delay_store=7))  # type: ignore[arg-type]
