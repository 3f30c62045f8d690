"""Every knob of a partition changes the engine: the time step a network must use, the routing
of its spikes, and the neuron and synapse grants of a share. Each test fails without its knob."""

from __future__ import annotations

import numpy as np
import pytest
from darwin_dra.engine import (
    CapacityExceeded,
    Conflict,
    Engine,
    InvalidArgument,
    Network,
    NeuronGroup,
    PartitionConfig,
    Routing,
)


def fan_out_network(n: int = 4096, dt_ms: float = 0.1, seed: int = 5) -> Network:
    """Every neuron projects to neurons on many cores, so routes fan out across the mesh."""
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n, dtype=np.uint32), 40)
    return Network(
        groups=(NeuronGroup(count=n, poisson_rate_hz=8000.0, poisson_weight=0.3),),
        src=src,
        dst=rng.integers(0, n, src.size).astype(np.uint32),
        weight=np.full(src.size, 0.05, np.float32),
        delay=np.full(src.size, 2, np.uint16),
        dt_ms=dt_ms,
        seed=seed,
    )


def test_timestep_refuses_a_network_of_another_step(engine: Engine) -> None:
    part = engine.create_partition(0, domains=[3])
    engine.configure(part, PartitionConfig(timestep_us=100))
    with pytest.raises(InvalidArgument, match=r"1000 us differs from the 100 us.*timestepUs"):
        engine.load(part, fan_out_network(256, dt_ms=1.0))
    engine.load(part, fan_out_network(256, dt_ms=0.1))  # the configured step loads
    assert engine.config(part).timestep_us == 100
    with pytest.raises(Conflict, match="configure it before loading"):
        engine.configure(part, PartitionConfig())
    other = engine.create_partition(0, domains=[4])  # unconfigured: any step
    engine.load(other, fan_out_network(256, dt_ms=1.0))


def test_routing_mode_changes_link_traffic_not_spikes(engine: Engine) -> None:
    results = {}
    for routing in Routing:
        part = engine.create_partition(0, domains=[0, 1, 6, 7])
        engine.configure(part, PartitionConfig(routing=routing))
        engine.load(part, fan_out_network())
        engine.run(part, 200)
        t = engine.telemetry(part)
        results[routing] = (t.spikes, t.events, t.packets, int(engine.link_events(part).sum()))
        engine.destroy_partition(part)
    tree, xy = results[Routing.MULTICAST_TREE], results[Routing.XY]
    assert tree[:3] == xy[:3]  # same spikes, events and packets
    assert xy[3] > tree[3] > 0  # unicast crosses shared links once per target core


def test_routing_mode_names() -> None:
    assert Routing.from_mode("xy") is Routing.XY
    assert Routing.from_mode("multicast-tree") is Routing.MULTICAST_TREE
    with pytest.raises(ValueError, match="routingMode 'mesh'"):
        Routing.from_mode("mesh")


def test_a_share_cannot_load_more_than_it_was_granted(engine: Engine) -> None:
    net = fan_out_network(1000)
    part = engine.create_partition(0, domains=[8], shared=True, keps_budget=1000)
    engine.configure(part, PartitionConfig(max_neurons=999))
    with pytest.raises(CapacityExceeded, match="1000 neurons exceed the 999 partition"):
        engine.load(part, net)
    engine.configure(part, PartitionConfig(max_neurons=1000, max_synapses=net.n_synapses - 1))
    with pytest.raises(CapacityExceeded, match="synapses exceed the"):
        engine.load(part, net)
    engine.configure(part, PartitionConfig(max_neurons=1000, max_synapses=net.n_synapses))
    engine.load(part, net)


def test_bad_configs_are_refused(engine: Engine) -> None:
    part = engine.create_partition(0, domains=[9])
    with pytest.raises(InvalidArgument, match="exceeds the engine's 10000 us"):
        engine.configure(part, PartitionConfig(timestep_us=20000))
    with pytest.raises(ValueError, match="max_neurons must be >= 0"):
        engine.configure(part, PartitionConfig(max_neurons=-1))
