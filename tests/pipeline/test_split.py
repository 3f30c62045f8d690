"""The split: the union of the stages is the model, every cut synapse crosses exactly one
inter-stage edge, the stage graph is a DAG, and the plan's JSON round-trips and refuses bad
input by name."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from darwin_dra.models import compile_graph
from darwin_dra.models.compile import CompiledModel
from darwin_dra.pipeline.split import (
    INPUT,
    OUTPUT,
    SplitError,
    SplitPlan,
    extract_stage,
    plan_split,
    spiking_output_ids,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pipeline.graphs import layered


def model_of(widths: list[int], skips: int, seed: int) -> CompiledModel:
    return compile_graph(layered(widths, skips=skips, seed=seed), dt=1e-3)


def global_synapses(model: CompiledModel, plan: SplitPlan) -> Counter[tuple[int, int, float, int]]:
    """The synapses of all engine stages, in global ids, as a multiset."""
    out: Counter[tuple[int, int, float, int]] = Counter()
    for spec in plan.engine_stages():
        part = extract_stage(model, plan, spec.name)
        net = part.network
        assert net is not None
        nl = part.neurons.size
        src = net.src.astype(np.int64)
        gsrc = np.where(
            src < nl,
            part.neurons[np.minimum(src, nl - 1)],
            part.inputs_from[np.maximum(src - nl, 0)],
        )
        gdst = part.neurons[net.dst]
        out.update(
            zip(gsrc.tolist(), gdst.tolist(), net.weight.tolist(), net.delay.tolist(), strict=True)
        )
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    skips=st.integers(0, 2),
    seed=st.integers(0, 1000),
    stages=st.integers(1, 4),
    tile=st.integers(1, 6),
)
def test_the_union_of_the_stages_is_the_model(
    widths: list[int], skips: int, seed: int, stages: int, tile: int
) -> None:
    model = model_of(widths, skips, seed)
    net = model.network
    parts_to_cut = sum(-(-w // tile) for w in widths)
    if stages > parts_to_cut:
        with pytest.raises(SplitError, match="parts"):
            plan_split(model, stages, max_group_neurons=tile)
        return
    plan = plan_split(model, stages, max_group_neurons=tile)
    assert len(plan.engine_stages()) == stages
    assert SplitPlan.from_json(plan.to_json()) == plan
    parts = {s.name: extract_stage(model, plan, s.name) for s in plan.stages}
    # every neuron in exactly one stage
    owned = np.concatenate([p.neurons for p in parts.values()])
    assert sorted(owned.tolist()) == list(range(net.n_neurons))
    # every synapse once, with its weight and delay
    original = Counter(
        zip(
            net.src.tolist(), net.dst.tolist(), net.weight.tolist(), net.delay.tolist(), strict=True
        )
    )
    assert global_synapses(model, plan) == original
    # every cut synapse's source is sent once on the edge to its target's stage
    stage_of = {int(g): name for name, p in parts.items() for g in p.neurons}
    for s, d in zip(net.src.tolist(), net.dst.tolist(), strict=True):
        src_stage = stage_of.get(s, INPUT)
        if src_stage == stage_of[d]:
            continue
        sent = parts[src_stage].sends[stage_of[d]]
        assert int(np.count_nonzero(sent == s)) == 1
        assert np.array_equal(sent, parts[stage_of[d]].receives[src_stage])
    # both ends of an edge agree, and the stage graph is a DAG in the plan's order
    order = [s.name for s in plan.stages]
    for e in plan.edges:
        assert np.array_equal(parts[e.src].sends[e.dst], parts[e.dst].receives[e.src])
        assert e.neurons == parts[e.src].sends[e.dst].size
        assert order.index(e.src) < order.index(e.dst)
    outs = spiking_output_ids(model)
    got = np.concatenate([parts[u].sends[OUTPUT] for u in plan.upstream(OUTPUT)])
    assert sorted(got.tolist()) == outs.tolist()


def test_the_cut_prefers_the_narrow_waist() -> None:
    # 40 -> 40 -> 2 -> 40 -> 40: two stages cut at the 2-neuron layer, where the fewest spikes go
    model = model_of([40, 40, 2, 40, 40], skips=0, seed=3)
    plan = plan_split(model, 2, max_group_neurons=2)
    cut = [e for e in plan.edges if e.src == "s0" and e.dst == "s1"]
    assert [e.neurons for e in cut] == [2]


def test_auto_uses_the_fewest_stages_that_fit() -> None:
    model = model_of([30, 30, 30], skips=1, seed=1)
    assert len(plan_split(model, None).engine_stages()) == 1
    plan = plan_split(model, None, max_stage_neurons=40, max_group_neurons=5)
    assert len(plan.engine_stages()) == 3
    assert all(s.neurons <= 40 for s in plan.engine_stages())


def test_bad_requests_and_plans_are_named() -> None:
    model = model_of([4, 4], skips=0, seed=1)
    with pytest.raises(SplitError, match="only 2 parts"):
        plan_split(model, 3, max_group_neurons=4)
    with pytest.raises(SplitError, match="stages must be >= 1"):
        plan_split(model, 0)
    with pytest.raises(SplitError, match="more than a stage"):
        plan_split(model, None, max_stage_neurons=2, max_group_neurons=4)
    plan = plan_split(model, 2, max_group_neurons=4)
    raw = json.loads(plan.to_json())
    raw["stages"][1]["neurons"] = "many"
    with pytest.raises(SplitError, match=r"stages\[1\].neurons must be int"):
        SplitPlan.from_json(json.dumps(raw))
    raw = json.loads(plan.to_json())
    raw["edges"][0]["dst"] = "nowhere"
    with pytest.raises(SplitError, match="unknown stage 'nowhere'"):
        SplitPlan.from_json(json.dumps(raw))
    with pytest.raises(SplitError, match="not JSON"):
        SplitPlan.from_json("{")
    other = model_of([4, 5], skips=0, seed=1)
    with pytest.raises(SplitError, match="digest"):
        extract_stage(other, plan, "s0")
    with pytest.raises(SplitError, match="no stage 's9'"):
        extract_stage(model, plan, "s9")
