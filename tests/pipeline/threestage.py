"""The three-engine-stage split both stage CLI tests run: a layered model with skip
projections, its plan, a file input and the unsplit model's outputs for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.nirfile import load_model, write_graph
from darwin_dra.models.run import run_model
from darwin_dra.pipeline.inputs import InputSpec, input_spikes
from darwin_dra.pipeline.outputs import Outputs, of_result
from darwin_dra.pipeline.split import SplitPlan, plan_split

from tests.pipeline.graphs import input_spikes as random_input
from tests.pipeline.graphs import layered


@dataclass(frozen=True)
class ThreeStages:
    nir_file: Path
    model: CompiledModel
    plan: SplitPlan
    plan_file: Path
    spikes: Path  # the input, an .npz of steps and ids
    want: Outputs  # the unsplit model's outputs for it


def three_stages(work: Path, steps: int) -> ThreeStages:
    nir_file = work / "model.nir"
    write_graph(nir_file, layered([24, 30, 20, 12], n_in=10, skips=2, seed=4))
    model = load_model(nir_file, dt=1e-3)
    plan = plan_split(model, 3, max_group_neurons=6)
    plan_file = work / "plan.json"
    plan_file.write_text(plan.to_json())
    t, i = random_input(10, steps, seed=5)
    spikes = work / "input.npz"
    np.savez(spikes, steps=t, ids=i)
    inputs = input_spikes(InputSpec("file", path=spikes), model, steps)
    want = of_result(run_model(model, steps, *inputs))
    return ThreeStages(nir_file, model, plan, plan_file, spikes, want)
