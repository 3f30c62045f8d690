"""Every engine call through the Python wrapper, and the error each bad input gets."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from darwin_dra.engine import (
    CapacityExceeded,
    Conflict,
    Direction,
    Engine,
    EngineError,
    FaultKind,
    InvalidArgument,
    Network,
    NeuronGroup,
    NotFound,
    QueueOverflow,
    StateError,
)
from darwin_dra.engine.calibrate import calibrate
from darwin_dra.hardware.model import ChipEntry, ChipProfile


def relay(n_inputs: int = 1, weight: float = 25.0, delay: int = 3) -> Network:
    """Input i (source id n + i) drives neuron i above threshold after `delay` steps."""
    n = n_inputs
    return Network(
        groups=(NeuronGroup(count=n, t_ref=0.0),),
        src=np.arange(n, 2 * n, dtype=np.uint32),
        dst=np.arange(n, dtype=np.uint32),
        weight=np.full(n, weight, np.float32),
        delay=np.full(n, delay, np.uint16),
        n_inputs=n,
    )


def test_discovery(engine: Engine, darwin3: ChipProfile) -> None:
    assert engine.chip_count() == 2
    chip = engine.chip(0)
    assert (chip.model, chip.serial, chip.fabric) == ("darwin3", "T-0", "f0")
    assert (chip.n_cores, chip.n_domains, chip.mesh_w) == (575, 36, 24)
    assert chip.healthy
    assert [d.n_cores for d in chip.domains] == [15] + [16] * 35
    assert engine.domain(0, 7).x0 == 4
    assert engine.domain(0, 7).y0 == 4
    core = engine.core(0, 0)  # the controller sits at (0, 0): core 0 is tile (1, 0)
    assert (core.x, core.y, core.domain, core.partition) == (1, 0, 0, None)
    assert engine.link_index(0, 23, 0, Direction.EAST) is None
    assert engine.link_index(0, 0, 0, Direction.EAST) == 0
    assert engine.link_count(0) == 24 * 24 * 4
    with pytest.raises(NotFound, match="core 575 does not exist"):
        engine.core(0, 575)
    with pytest.raises(NotFound, match="chip 2 does not exist"):
        engine.chip(2)
    with pytest.raises(InvalidArgument, match="outside the 24x24 mesh"):
        engine.link_index(0, 24, 0, Direction.EAST)
    with pytest.raises(Conflict, match="serial T-0 is already present"):
        engine.add_chip(darwin3, ChipEntry(model="darwin3", serial="T-0", fabric="x"))


def test_bad_profile_is_refused(darwin3: ChipProfile) -> None:
    from dataclasses import replace

    with Engine() as eng:
        entry = ChipEntry(model="darwin3", serial="S", fabric="f")
        with pytest.raises(InvalidArgument, match="must divide the mesh"):
            eng.add_chip(replace(darwin3, domain_w=5), entry)
        with pytest.raises(InvalidArgument, match="outside the mesh"):
            eng.add_chip(replace(darwin3, controller_x=24), entry)
        with pytest.raises(ValueError, match="longer than 63 bytes"):
            eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="x" * 64, fabric="f"))
        assert eng.chip_count() == 0


def test_relay_spike_timing_and_ports(engine: Engine) -> None:
    part = engine.create_partition(0, domains=[3])
    net = relay(n_inputs=2)
    engine.load(part, net)
    engine.record(part, [0, 1], capacity=16)
    assert engine.inject(part, [5, 9], [0, 1]) == 2
    engine.run(part, 20)
    steps, ids = engine.read_spikes(part)
    # injected at step s, delivered into the ring for step s + delay, integrated then
    assert list(zip(steps.tolist(), ids.tolist(), strict=True)) == [(8, 0), (12, 1)]
    tel = engine.telemetry(part)
    assert (tel.input_spikes, tel.spikes, tel.events, tel.steps) == (2, 2, 2, 20)
    assert engine.read_spikes(part)[0].size == 0  # drained
    v = engine.membrane(part, 2)
    assert v.dtype == np.float32
    assert v.shape == (2,)
    engine.set_membrane(part, [19.5, 0.0])
    np.testing.assert_array_equal(engine.membrane(part, 2), np.float32([19.5, 0.0]))
    with pytest.raises(InvalidArgument, match="not finite"):
        engine.set_membrane(part, [np.nan, 0.0])
    with pytest.raises(InvalidArgument, match="already past"):
        engine.inject(part, [3], [0])
    with pytest.raises(InvalidArgument, match="names input 2 but the network has 2"):
        engine.inject(part, [30], [2])
    with pytest.raises(InvalidArgument, match="neuron 2 does not exist"):
        engine.record(part, [2])
    assert engine.neuron_core(part, 1) in engine.partition(part).cores


def test_input_flood_is_counted_not_lost_silently(engine: Engine) -> None:
    part = engine.create_partition(0, domains=[4])
    engine.load(part, relay())
    engine.set_input_capacity(part, 100)
    with pytest.raises(QueueOverflow, match="accepted 100 of 250") as info:
        engine.inject(part, np.arange(250), np.zeros(250, np.int64))
    assert info.value.accepted == 100
    assert engine.telemetry(part).dropped_input == 150
    engine.run(part, 300)
    assert engine.telemetry(part).input_spikes == 100  # the earliest 100 were kept
    engine.inject(part, [400, 401, 402], [0, 0, 0])
    with pytest.raises(Conflict, match="below the 3 spikes pending"):
        engine.set_input_capacity(part, 2)


def test_record_buffer_overflow_is_counted(engine: Engine) -> None:
    part = engine.create_partition(0, domains=[5])
    net = Network(
        groups=(NeuronGroup(count=4, i_e=500.0, t_ref=0.0, v_reset=0.0),),
        src=np.zeros(0, np.uint32),
        dst=np.zeros(0, np.uint32),
        weight=np.zeros(0, np.float32),
        delay=np.zeros(0, np.uint16),
    )
    engine.load(part, net)
    engine.record(part, range(4), capacity=10)
    engine.run(part, 5)  # 4 neurons fire every step: 20 spikes, 10 fit
    steps, _ = engine.read_spikes(part)
    assert steps.size == 10
    assert engine.telemetry(part).dropped_output == 10


# A network that differs from a good relay in one field, and how the engine refuses it.
BAD_NETWORKS = [
    ({"delay": np.zeros(1, np.uint16)}, InvalidArgument, r"delay 0 must be 1\.\.255"),
    ({"dst": np.array([5], np.uint32)}, InvalidArgument, "target 5 is not a neuron"),
    ({"src": np.array([9], np.uint32)}, InvalidArgument, "source 9 is not a neuron or input"),
    ({"weight": np.array([np.inf], np.float32)}, InvalidArgument, "weight is not finite"),
    (
        {"groups": (NeuronGroup(count=1, v_reset=25.0),)},
        InvalidArgument,
        "v_reset 25 must lie below v_th 20",
    ),
    (
        {"groups": (NeuronGroup(count=5000),)},
        CapacityExceeded,
        "5000 neurons exceed the partition's 4096",
    ),
]


@pytest.mark.parametrize(
    ("changes", "error", "match"), BAD_NETWORKS, ids=[m for _, _, m in BAD_NETWORKS]
)
def test_a_bad_network_is_refused(
    engine: Engine, changes: dict[str, object], error: type[Exception], match: str
) -> None:
    part = engine.create_partition(0, cores=[100])
    with pytest.raises(error, match=match):
        engine.load(part, dataclasses.replace(relay(), **changes))  # type: ignore[arg-type]
    engine.load(part, relay())  # the refusal left nothing behind


def test_network_validation(engine: Engine) -> None:
    part = engine.create_partition(0, cores=[100])
    good = relay()
    many = 200_000  # one core's share of a 100 M-synapse chip is 173,913
    with pytest.raises(CapacityExceeded, match="exceed the partition's 173913"):
        engine.load(
            part,
            Network(
                groups=(NeuronGroup(count=1),),
                src=np.zeros(many, np.uint32),
                dst=np.zeros(many, np.uint32),
                weight=np.ones(many, np.float32),
                delay=np.ones(many, np.uint16),
            ),
        )
    with pytest.raises(StateError, match="no network loaded"):
        engine.run(part, 1)
    engine.load(part, good)
    with pytest.raises(Conflict, match="already runs a network"):
        engine.load(part, good)
    engine.unload(part)
    with pytest.raises(StateError):
        engine.unload(part)
    engine.load(part, good)
    with pytest.raises(InvalidArgument, match="threads must be"):
        engine.run(part, 1, threads=0)


def test_many_weights_are_quantised_and_reported(engine: Engine) -> None:
    part = engine.create_partition(0, cores=[200])
    n = 600
    net = Network(
        groups=(NeuronGroup(count=n),),
        src=np.arange(n, dtype=np.uint32),
        dst=np.arange(n, dtype=np.uint32)[::-1].copy(),
        weight=np.linspace(-1, 1, n).astype(np.float32),
        delay=np.ones(n, np.uint16),
    )
    engine.load(part, net)
    err = engine.telemetry(part).quant_error_mv
    assert 0 < err <= 1.0 / 255 + 1e-6


def test_queue_capacity_drops_are_counted(darwin3: ChipProfile) -> None:
    from dataclasses import replace

    with Engine() as eng:
        eng.add_chip(
            replace(darwin3, core_queue_events=10),
            ChipEntry(model="darwin3", serial="Q", fabric="f"),
        )
        part = eng.create_partition(0, cores=[1])
        n = 40  # 40 neurons firing every step, each with one synapse to neuron 0
        net = Network(
            groups=(NeuronGroup(count=n, i_e=500.0, t_ref=0.0, v_reset=0.0),),
            src=np.arange(n, dtype=np.uint32),
            dst=np.zeros(n, np.uint32),
            weight=np.zeros(n, np.float32),
            delay=np.ones(n, np.uint16),
        )
        eng.load(part, net)
        eng.run(part, 10)
        tel = eng.telemetry(part)
        assert tel.events == 10 * 10  # ten fit a step
        assert tel.dropped_queue == 30 * 10
        assert tel.queue_peak == 10


def test_keps_budget_caps_events(engine: Engine) -> None:
    part = engine.create_partition(0, domains=[9], shared=True, keps_budget=100)
    n = 50  # 100 keps at dt 0.1 ms: 10 events a step
    net = Network(
        groups=(NeuronGroup(count=n, i_e=500.0, t_ref=0.0, v_reset=0.0),),
        src=np.arange(n, dtype=np.uint32),
        dst=np.zeros(n, np.uint32),
        weight=np.zeros(n, np.float32),
        delay=np.ones(n, np.uint16),
    )
    engine.load(part, net)
    engine.run(part, 100)
    tel = engine.telemetry(part)
    assert tel.dropped_budget > 0
    assert 100 * 10 - 10 <= tel.events <= 100 * 10  # the share, to the event
    engine.set_budget(part, 0)
    engine.run(part, 10)
    assert engine.telemetry(part).events - tel.events == 10 * n


def test_faults_and_health(engine: Engine) -> None:
    engine.inject_fault(0, FaultKind.DOMAIN, 3)
    assert not engine.domain(0, 3).healthy
    assert engine.domain(0, 3).failed_cores == 16
    assert engine.chip(0).failed_cores == 16
    assert engine.chip(0).healthy  # a domain failure degrades, the chip still answers
    engine.inject_fault(0, FaultKind.CHIP)
    assert not engine.chip(0).healthy
    assert engine.chip(1).healthy
    assert engine.chip(1).failed_cores == 0
    engine.clear_fault(0, FaultKind.CHIP)
    engine.clear_fault(0, FaultKind.DOMAIN, 3)
    assert engine.chip(0).healthy
    assert engine.chip(0).failed_cores == 0
    with pytest.raises(NotFound, match="domain 40 does not exist"):
        engine.inject_fault(0, FaultKind.DOMAIN, 40)
    with pytest.raises(NotFound, match="link 1 does not exist"):
        engine.inject_fault(0, FaultKind.LINK, 1)  # tile (0,0) has no westward link
    with pytest.raises(InvalidArgument, match="is not core"):
        engine.inject_fault(0, 9)  # type: ignore[arg-type]


def test_calibration_measures_and_leaves_the_partition_idle(engine: Engine) -> None:
    part = engine.create_partition(1, domains=[0, 1, 2, 3])
    cal = calibrate(engine, part, steps=200)
    assert cal.events > 0
    assert cal.keps > 100
    assert cal.host_keps > 0
    with pytest.raises(StateError):
        engine.telemetry(part)  # unloaded again


def test_concurrent_runs_and_destroy_during_run(engine: Engine) -> None:
    parts = [engine.create_partition(0, domains=[d]) for d in (10, 11)]
    rng = np.random.default_rng(1)
    for p in parts:
        n = 2000
        engine.load(
            p,
            Network(
                groups=(NeuronGroup(count=n, poisson_rate_hz=15000.0, poisson_weight=0.1),),
                src=rng.integers(0, n, 40000).astype(np.uint32),
                dst=rng.integers(0, n, 40000).astype(np.uint32),
                weight=np.full(40000, 0.1, np.float32),
                delay=np.full(40000, 5, np.uint16),
            ),
        )
    errors: list[BaseException] = []

    def worker(p: int) -> None:
        try:
            engine.run(p, 3000, threads=2)
        except EngineError as exc:  # destroyed under it is fine; a crash is not
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    engine.destroy_partition(parts[1])  # while it may be running
    for t in threads:
        t.join()
    assert engine.telemetry(parts[0]).steps == 3000
    with pytest.raises(NotFound):
        engine.telemetry(parts[1])
    assert all(isinstance(e, NotFound) for e in errors)


def test_closed_engine_refuses_calls(darwin3: ChipProfile) -> None:
    eng = Engine()
    eng.close()
    eng.close()  # idempotent
    with pytest.raises(EngineError, match="closed"):
        eng.chip_count()
