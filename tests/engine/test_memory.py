"""The engine's memory: 4-byte segments keep a trained network (out-degree 1000, 31 delays)
under 4 bytes a synapse, and the delay queues (DK_DELAYS_QUEUES), which grow while a run needs
them, are counted in the network's bytes (test_delay_store.py counts the ring of sums)."""

from __future__ import annotations

import numpy as np
from darwin_dra.engine import DelayStore, Engine, Network, NeuronGroup, PartitionConfig
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles


def _trained(n: int = 2000, k: int = 1000, seed: int = 5) -> Network:
    rng = np.random.default_rng(seed)
    dst = np.repeat(np.arange(n, dtype=np.uint32), k)
    src = rng.integers(0, n, size=n * k).astype(np.uint32)
    weight = (0.1 * rng.lognormal(0.0, 0.5, size=n * k)).astype(np.float32)
    weight[src >= int(0.8 * n)] *= -6.0
    delay = rng.integers(10, 41, size=n * k).astype(np.uint16)  # 31 delays, like the benchmark
    group = NeuronGroup(
        count=n,
        tau_m=20.0,
        v_th=20.0,
        v_reset=10.0,
        e_l=0.0,
        t_ref=2.0,
        poisson_rate_hz=15000.0,
        poisson_weight=0.1,
    )
    return Network(
        groups=(group,),
        src=src,
        dst=dst,
        weight=weight,
        delay=delay,
        dt_ms=0.1,
        seed=seed,
        name="trained",
    )


def test_a_trained_network_takes_under_4_bytes_a_synapse_and_its_queues_are_counted() -> None:
    profile = load_profiles()["darwin3"]
    net = _trained()
    with Engine() as engine:
        chip = engine.add_chip(profile, ChipEntry(model="darwin3", serial="M-0", fabric="f"))
        part = engine.create_partition(
            chip,
            domains=list(range(profile.n_domains)),
            config=PartitionConfig(delay_store=DelayStore.QUEUES),
        )
        engine.load(part, net)
        before = engine.telemetry(part)
        assert before.synapse_bytes / net.n_synapses < 4.0
        engine.run(part, 300, 1)
        after = engine.telemetry(part)
    assert after.spikes > 0
    assert after.events > 0
    assert after.synapse_bytes == before.synapse_bytes
    # packets waiting in the delay queues take memory: the network's bytes say so
    assert after.network_bytes > before.network_bytes
    assert after.network_bytes / net.n_synapses < 4.0
