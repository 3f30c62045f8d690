"""`darwin-dra bench fleet` end to end on a 5-node mini fleet: both resource models replayed
on fresh real control planes (kube-scheduler allocating, kube-controller-manager making and
deleting the claims), run the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_mini_fleet_runs_both_models_on_the_real_scheduler(tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "darwin_dra.cli.main",
            "bench",
            "fleet",
            "--nodes",
            "5",
            "--hours",
            "0.5",
            "--duration-scale",
            "0.1",
            "--arrivals-per-hour",
            "300",
            "--compression",
            "120",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "jobs completed within the trace" in run.stdout
    assert "time compressed 120x" in run.stdout
    blackbox, darwin = json.loads(out.read_text())
    assert (blackbox["model"], darwin["model"]) == ("blackbox", "darwin")
    assert blackbox["jobs"] == darwin["jobs"] > 100
    assert blackbox["started"] > 0
    # Which model finishes more is the benchmark's finding, not a test's: at 120x compression
    # it depends on how fast a loaded 2-core machine lets the scheduler go (a cold CI run saw
    # the black box ahead). The test checks what the models must do, whatever the speed.
    assert darwin["started"] > 0
    assert darwin["completed"] > 0
    # The claims put every spike-heavy job on a chip that sustains it, every pipeline on one node.
    assert darwin["spike_started"] > 0
    assert darwin["spike_sufficient"] == darwin["spike_started"]
    assert darwin["pipeline_cross_node_events"] == 0
    assert darwin["pipeline_traffic_events"] > 0
