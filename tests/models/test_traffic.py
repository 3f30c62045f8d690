"""model_graph: layers tiled into groups (spatial tiles for convolutions), spikes/s between
groups from rates, checked against a direct count over the synapse list."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from darwin_dra.models import compile_graph
from darwin_dra.models.traffic import model_graph, model_graph_tiles

from tests.models.test_compile import li, lif


def conv_model() -> object:
    conv = nir.Conv2d(
        input_shape=(16, 16),
        weight=np.ones((4, 2, 3, 3)),
        stride=1,
        padding=1,
        dilation=1,
        groups=1,
        bias=np.zeros(4),
    )
    conv2 = nir.Conv2d(
        input_shape=(16, 16),
        weight=np.ones((4, 4, 3, 3)),
        stride=1,
        padding=1,
        dilation=1,
        groups=1,
        bias=np.zeros(4),
    )
    g = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2, 16, 16])}),
        conv,
        lif(1024),
        conv2,
        lif(1024),
        nir.Flatten(input_type={"input": np.array([4, 16, 16])}, start_dim=0),
        nir.Linear(weight=np.ones((10, 1024))),
        li(10),
        type_check=False,
    )
    return compile_graph(g)


def test_conv_layers_tile_spatially_and_edges_count_senders() -> None:
    model = conv_model()
    graph, members = model_graph_tiles(
        model, max_group_neurons=256, rates_hz={"lif": 20.0}, include_inputs=True
    )
    lif1 = [g for g in graph.groups if g.layer == "lif"]
    assert len(lif1) == 4
    assert all(g.neurons == 256 for g in lif1)
    assert sum(g.synapses for g in graph.groups) == model.network.n_synapses
    assert sum(e.synapses for e in graph.edges) == model.network.n_synapses
    # locality: a 3x3 convolution links each tile to itself and its 3 neighbours only
    out = [e for e in graph.edges if e.source == "lif[0]" and e.target.startswith("lif_1")]
    assert sorted(e.target for e in out) == ["lif_1[0]", "lif_1[1]", "lif_1[2]", "lif_1[3]"]
    # spikes/s = rate x the source neurons with a synapse onto the target tile, counted directly
    net = model.network
    for e in out:
        s, t = members[e.source], members[e.target]
        mask = np.isin(net.src, s) & np.isin(net.dst, t)
        assert e.synapses == int(mask.sum())
        assert e.spikes_per_s == pytest.approx(20.0 * np.unique(net.src[mask]).size)
    # a 9-neuron tile of the dense readout sees every tile of lif_1
    assert {e.source for e in graph.edges if e.target == "li"} == {f"lif_1[{k}]" for k in range(4)}


def test_defaults_and_bad_arguments() -> None:
    model = conv_model()
    graph = model_graph(model, max_group_neurons=4096)
    assert [g.name for g in graph.groups] == ["lif", "lif_1", "li"]
    assert all(g.rate_hz == 10.0 for g in graph.groups)
    with pytest.raises(ValueError, match="layers the model does not have"):
        model_graph(model, max_group_neurons=10, rates_hz={"nope": 1.0})
    with pytest.raises(ValueError, match="max_group_neurons"):
        model_graph(model, max_group_neurons=0)
