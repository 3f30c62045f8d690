"""The planner's cross-node estimate against the spikes the engine fires when the placed model
runs: rates measured by a short run, traffic counted from a longer run with another seed."""

from __future__ import annotations

import numpy as np
from darwin_dra.engine import Network, NeuronGroup, synapses
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.planner.bins import bins_of, groups_of
from darwin_dra.planner.cost import traffic
from darwin_dra.planner.from_network import crossing_spikes, model_graph_of, tiles_of
from darwin_dra.planner.place import place
from darwin_dra.planner.probe import spike_counts

from tests.planner.tiny import tiny_topology


def layered_network(layers: int = 3, width: int = 600, fan_out: int = 12, seed: int = 1) -> Network:
    """Poisson-driven layers; each neuron projects to random neurons of its own layer and of the
    next one (random connectivity, independent per target)."""
    rng = np.random.default_rng(seed)
    n = layers * width
    src = np.repeat(np.arange(n), fan_out)
    layer = src // width
    nxt = np.minimum(layer + rng.integers(0, 2, src.size), layers - 1)
    dst = nxt * width + rng.integers(0, width, src.size)
    s, d, w, dl = synapses(src, dst, np.full(src.size, 0.2), rng.integers(1, 20, src.size))
    groups = tuple(
        NeuronGroup(width, poisson_rate_hz=6000.0 + 3000.0 * i, poisson_weight=0.15)
        for i in range(layers)
    )
    return Network(groups, s, d, w, dl, seed=seed, name="layers")


def test_estimated_cross_node_traffic_matches_what_the_engine_fires(darwin3: ChipProfile) -> None:
    net = layered_network()
    probe_steps, run_steps = 2000, 10000
    counts = spike_counts(net, darwin3, probe_steps, seed=11)
    graph = model_graph_of(net, counts, probe_steps * net.dt_ms / 1000, tile=100)
    # 21,600 synapses on chips of 15,000: the model needs two nodes at least.
    topo = tiny_topology(darwin3, nodes=3, chips=1)
    plan = place(graph, topo)
    groups, bins = groups_of(graph), bins_of(topo)
    estimate = traffic(groups, bins, plan.assign)
    assert len(set(bins.node[plan.assign].tolist())) >= 2
    assert estimate.cross_node > 0

    node_of_neuron = bins.node[plan.assign][tiles_of(net, 100)]
    measured_counts = spike_counts(net, darwin3, run_steps, seed=29)
    seconds = run_steps * net.dt_ms / 1000
    measured = crossing_spikes(net, measured_counts, node_of_neuron) / seconds
    assert abs(estimate.cross_node - measured) <= 0.10 * measured, (estimate.cross_node, measured)
    chip_of_neuron = bins.chip[plan.assign][tiles_of(net, 100)]
    measured_chip = crossing_spikes(net, measured_counts, chip_of_neuron) / seconds
    assert abs(estimate.cross_chip - measured_chip) <= 0.10 * measured_chip


def test_model_graph_of_a_network_counts_each_neuron_once_per_target_tile() -> None:
    # Neuron 0 -> neurons 2 and 3 (one tile), neuron 1 -> 2; tiles of 2 neurons.
    s, d, w, dl = synapses([0, 0, 1], [2, 3, 2], [1.0, 1.0, 1.0], [1, 1, 1])
    net = Network((NeuronGroup(4),), s, d, w, dl, name="n")
    graph = model_graph_of(net, [10, 20, 0, 0], 2.0, tile=2)
    assert [(g.neurons, g.synapses, g.rate_hz) for g in graph.groups] == [(2, 3, 7.5), (2, 0, 0.0)]
    (edge,) = graph.edges
    assert (edge.spikes_per_s, edge.synapses) == (15.0, 3)
    # Crossing spikes: neuron 0 and 1 fire into the other unit, once per spike.
    assert crossing_spikes(net, [10, 20, 0, 0], np.array([0, 0, 1, 1])) == 30
