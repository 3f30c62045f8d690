"""What a pipeline stage leaves when its run ends: the output stage's outputs and digest, and a
readout stage's classes, in its report and, with --output, in an .npz file."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.models.compile import CompiledModel
from darwin_dra.pipeline import outputs as outs
from darwin_dra.pipeline.readout import Readout
from darwin_dra.runtime.pipeline_config import PipelineStageConfig
from darwin_dra.runtime.pipeline_report import PipelineReport

I64 = npt.NDArray[np.int64]


def _model_steps(model: CompiledModel, config: PipelineStageConfig, report: PipelineReport) -> int:
    """The run's model steps: as configured, or the engine steps run less the latency."""
    if config.steps is not None:
        return config.steps
    return max(0, report.steps - model.latency)


def finish_outputs(
    model: CompiledModel,
    config: PipelineStageConfig,
    report: PipelineReport,
    collected: tuple[I64, I64],
) -> None:
    """The model's outputs from the collected (step, global id) spikes, and their digest."""
    t, g = collected
    steps = config.steps
    if steps is None and report.steps:
        steps = _model_steps(model, config, report)
    o = outs.to_outputs(model, t, g, steps)
    report.outputs = o
    report.output_digest = outs.output_digest(o)
    if config.output is not None:
        arrays: dict[str, Any] = {}
        for name, (tt, ii) in o.items():
            arrays[f"{name}.steps"] = tt
            arrays[f"{name}.ids"] = ii
        np.savez(config.output, **arrays)


def finish_readout(
    readout: Readout, model: CompiledModel, config: PipelineStageConfig, report: PipelineReport
) -> None:
    """Each sample's readout and class into the report (and the file)."""
    summary, arrays = readout.finish(_model_steps(model, config, report))
    report.readout = summary
    if config.output is not None:
        np.savez(config.output, **arrays)
