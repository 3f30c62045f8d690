"""The flags of a pipeline stage against its plan (runtime/pipeline_config.check_stage): an
input drawn in place by an engine stage, and what is refused around it, with the flag named."""

from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.pipeline.inputs import InputSpec
from darwin_dra.runtime.pipeline_config import PipelineStageConfig, check_stage

POISSON = InputSpec("poisson", rate_hz=100.0, seed=1)


def cfg(stage: str, **kw: object) -> PipelineStageConfig:
    base: dict[str, object] = {"model": Path("m.nir"), "plan": Path("p.json"), "stage": stage}
    base.update(kw)
    return PipelineStageConfig(**base)  # type: ignore[arg-type]


def test_an_engine_stage_that_reads_the_input_may_draw_it_and_then_listens_for_no_one() -> None:
    c = cfg("s0", endpoint="unix:///p.sock", input=POISSON, rate=500.0, downstream={"s1": "x"})
    check_stage(c, "engine", ["s1"], ["input"])  # no --listen: its only upstream is drawn
    with pytest.raises(ValueError, match=r"stage s0 has upstreams \(s9\): give --listen"):
        check_stage(c, "engine", ["s1"], ["input", "s9"])


@pytest.mark.parametrize(
    ("config", "kind", "ups", "message"),
    [
        (
            cfg("s1", endpoint="unix:///p", input=POISSON, listen="tcp://h:1"),
            "engine",
            ["s0"],
            "--input on engine stage s1: it reads no model input in the plan",
        ),
        (
            cfg("s0", endpoint="unix:///p", input=InputSpec("socket", listen="tcp://h:2")),
            "engine",
            ["input"],
            "--input socket on engine stage s0: a producer connects to the input stage only",
        ),
        (
            cfg("output", input=POISSON, listen="tcp://h:1"),
            "output",
            ["s0"],
            "--input is for the input stage or an engine stage that reads",
        ),
        (
            cfg("s1", endpoint="unix:///p", rate=10.0, listen="tcp://h:1"),
            "engine",
            ["s0"],
            "--rate paces the stage that reads the input, not engine stage s1",
        ),
    ],
)
def test_misplaced_input_flags_are_refused_with_the_flag_named(
    config: PipelineStageConfig, kind: str, ups: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_stage(config, kind, [], ups)
