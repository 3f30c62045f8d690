"""The demo's SpikingPipeline view: the stages' finish lines (as the stage runtime writes them)
read into a run, its streams' rates and cross-node marks, and the report's raster and traffic
pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.demo import report
from darwin_dra.demo.pipeline import finish_line, pipeline_run
from darwin_dra.demo.record import Chip, Record, Scenario
from darwin_dra.runtime.pipeline_stage import PeerCounts, PipelineReport


def _line(r: PipelineReport) -> str:
    """The stage's log line as structlog's JSON renderer writes it (pipeline_stage.run)."""
    fields = {k: v for k, v in r.summary().items() if k != "sent"}
    return "noise before\n" + json.dumps({**fields, "event": "stage finished"}) + "\n"


def _reports() -> dict[str, PipelineReport]:
    inp = PipelineReport("input", "input", window_spikes=[30, 10, 20], run_s=2.0)
    s0 = PipelineReport("s0", "engine", window_spikes=[4, 5, 6], run_s=2.0)
    s0.received = {"input": PeerCounts(60, 600)}
    s1 = PipelineReport("s1", "engine", window_spikes=[1, 2, 3], run_s=3.0)
    s1.received = {"s0": PeerCounts(15, 150), "input": PeerCounts(60, 600)}
    out = PipelineReport("output", "output", window_spikes=[0, 2, 4], run_s=4.0)
    out.received = {"s1": PeerCounts(6, 60)}
    out.outputs = {"y": (np.array([3, 7, 7], np.int64), np.array([1, 0, 2], np.int64))}
    out.output_digest = "abc"
    return {r.stage: r for r in (inp, s0, s1, out)}


NODES = {"input": "n0", "s0": "n0", "s1": "n1", "output": "n1"}
STATUS = {
    "traffic": {"source": "planned"},
    "edges": [{"from": "s0", "to": "s1", "spikesPerSecond": 7.5, "link": "tcp"}],
}


def test_a_run_is_read_from_the_stages_finish_lines() -> None:
    finish = {n: finish_line(_line(r), f"p-{n}") for n, r in _reports().items()}
    run = pipeline_run("digits", 10, finish, NODES, STATUS)
    assert [s.stage for s in run.stages] == ["input", "s0", "s1", "output"]
    assert run.stages[0].window_spikes == [30, 10, 20]
    assert run.outputs == {"y": [[3, 7, 7], [1, 0, 2]]}
    streams = {(s.source, s.target): s for s in run.streams()}
    assert set(streams) == {("input", "s0"), ("s0", "s1"), ("input", "s1"), ("s1", "output")}
    cross = streams[("s0", "s1")]
    assert cross.cross_node
    assert cross.spikes == 15
    assert cross.per_second == 5.0
    assert cross.planned_per_second == 7.5
    assert not streams[("input", "s0")].cross_node
    assert streams[("input", "s0")].planned_per_second is None
    assert streams[("s1", "output")].per_second == 1.5


def test_measured_rates_in_the_status_are_not_taken_for_planned_ones() -> None:
    finish = {n: finish_line(_line(r), n) for n, r in _reports().items()}
    measured = {**STATUS, "traffic": {"source": "measured"}}
    run = pipeline_run("digits", 10, finish, NODES, measured)
    assert all(s.planned_per_second is None for s in run.streams())


def test_a_missing_or_broken_finish_line_names_the_pod_or_stage() -> None:
    with pytest.raises(ValueError, match="pod digits-s0 logged no 'stage finished' line"):
        finish_line('{"event": "upstream connected"}\n', "digits-s0")
    with pytest.raises(ValueError, match="pod p: its 'stage finished' line is not JSON"):
        finish_line('x {"event": "stage finished", \n', "p")
    with pytest.raises(ValueError, match="stage s0: its finish line lacks 'window_spikes'"):
        pipeline_run("d", 10, {"s0": {"kind": "engine", "received": {}, "run_s": 1}}, {}, {})


def test_the_report_shows_the_raster_and_the_traffic(tmp_path: Path) -> None:
    finish = {n: finish_line(_line(r), n) for n, r in _reports().items()}
    record = Record(
        chips=[Chip("n0", 0, "darwin3", 24, 24, 4, 4)],
        scenarios=[Scenario("pipeline", "A SpikingPipeline", asked="a", given="g", why="w")],
        pipeline=pipeline_run("digits", 10, finish, NODES, STATUS),
    )
    text = report.write(record, tmp_path / "r").read_text()
    assert "<img id='raster' src='pipeline-raster.png'" in text
    assert "<img id='traffic' src='pipeline-traffic.png'" in text
    assert (tmp_path / "r" / "pipeline-raster.png").stat().st_size > 10_000
    assert (tmp_path / "r" / "pipeline-traffic.png").stat().st_size > 10_000
    assert "<td>s0 &rarr; s1</td><td>n0 &rarr; n1</td><td><b>across nodes</b></td>" in text
    assert "<td>15</td><td>5</td><td>8</td>" in text  # spikes, measured, planned
