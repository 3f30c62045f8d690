"""`darwin-dra bench pipeline --on-chip --input-in-place` at a small size: six runs of the
same model (unsplit, the planner's split, the naive split, the split on one chip with its edges
routed, and both splits with the input drawn in place) give the same outputs, and the planner's
cut carries fewer spikes between nodes than the naive one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow  # runs the CLI in subprocesses, tens of seconds on a loaded machine
def test_bench_pipeline_runs_and_agrees() -> None:
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", "bench", "pipeline", "--json"]
    cmd += ["--size", "16", "--depth", "2", "--steps", "40", "--window", "10", "--on-chip"]
    cmd += ["--input-in-place"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["same_outputs"]
    rows = summary["rows"]
    assert rows["unsplit"]["engine_stages"] == 1
    assert rows["split"]["engine_stages"] == rows["naive"]["engine_stages"] == 2
    assert rows["split"]["output_spikes"] > 0
    assert rows["split"]["cross_node_engine_spikes"] < rows["naive"]["cross_node_engine_spikes"]
    # the same split with its engine stages on one chip: the edge between them on the route
    on_chip = rows["split-on-chip"]
    assert on_chip["routed_spikes"] == rows["split"]["between_stage_spikes"] > 0
    assert on_chip["cross_node_engine_spikes"] == 0
    assert rows["split"]["routed_spikes"] == 0
    # the input drawn by its readers: no input stage, nothing of it on an edge or across nodes
    for drawn, sent in (("split-in-place", "split"), ("naive-in-place", "naive")):
        assert rows[drawn]["input_drawn_spikes"] > 0
        assert "input" not in dict(rows[drawn]["stages"])
        assert rows[drawn]["cross_node_spikes"] == rows[drawn]["cross_node_engine_spikes"]
        assert rows[drawn]["cross_node_engine_spikes"] == rows[sent]["cross_node_engine_spikes"]
    assert rows["split"]["cross_node_spikes"] > rows["split-in-place"]["cross_node_spikes"]
    assert summary["cross_node_naive_over_split_in_place"] > summary["cross_node_naive_over_split"]
    for r in rows.values():
        assert r["dropped"] == 0
        assert 0 < r["bytes_per_spike"] < 2
