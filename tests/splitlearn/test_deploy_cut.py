"""The split-learning model deployed with its training cut (pipeline.split.split_at_layers):
stage s0 holds the edge's LIF layer alone, s1 the server's layer and the readout; the cut
carries exactly the edge's neurons. The traffic-driven split cuts elsewhere, which is why the
training cut has to be given."""

from __future__ import annotations

import numpy as np
import pytest
from darwin_dra.engine.network import Reset
from darwin_dra.models.compile import CompiledModel, compile_graph
from darwin_dra.pipeline.split import (
    SplitError,
    SplitPlan,
    extract_stage,
    plan_split,
    split_at_layers,
    stage_of_neurons,
)
from darwin_dra.splitlearn.nirexport import CUT, DT_S, split_graph
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart


@pytest.fixture(scope="module")
def model() -> CompiledModel:
    cfg = Config()
    graph = split_graph(EdgePart(cfg, 0), ServerPart(cfg, 0))
    return compile_graph(graph, dt=DT_S, reset=Reset.VALUE, name="split")


def _stages(model: CompiledModel, plan: SplitPlan) -> dict[str, set[int]]:
    st = stage_of_neurons(model, plan)
    return {x.name: set(st[x.first : x.first + x.count].tolist()) for x in model.neuron_layers}


def test_the_training_cut_is_the_deployed_cut(model: CompiledModel) -> None:
    plan = split_at_layers(model, [[CUT], ["server", "readout"]])
    assert _stages(model, plan) == {CUT: {0}, "server": {1}, "readout": {1}}
    edge = next(e for e in plan.edges if (e.src, e.dst) == ("s0", "s1"))
    assert edge.neurons == model.layer(CUT).count
    part = extract_stage(model, plan, "s1")
    cut = model.layer(CUT)
    np.testing.assert_array_equal(part.receives["s0"], np.arange(cut.first, cut.first + cut.count))
    # the split that minimises estimated traffic cuts inside the server's layer instead
    assert _stages(model, plan_split(model, 2))["server"] == {0, 1}


def test_a_bad_layer_split_is_refused_by_name(model: CompiledModel) -> None:
    with pytest.raises(SplitError, match="no neuron layer 'nope'"):
        split_at_layers(model, [[CUT], ["nope"]])
    with pytest.raises(SplitError, match="no stage holds layer"):
        split_at_layers(model, [[CUT], ["server"]])
    with pytest.raises(SplitError, match="named twice"):
        split_at_layers(model, [[CUT, "server"], ["server", "readout"]])
    with pytest.raises(SplitError, match="of an earlier stage"):
        split_at_layers(model, [["server", "readout"], [CUT]])
