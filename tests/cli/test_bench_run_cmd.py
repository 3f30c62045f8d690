"""`darwin-dra bench run` runs both sides on the same network and reports them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow  # runs stages or the CLI in subprocesses (10-25 s)
def test_bench_run_compares_the_chip_host_with_the_engine() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "bench", "run", "--scale", "0.05",
         "--steps", "300", "--warmup-steps", "50", "--window", "100", "--repeat", "1", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    engine, host = report["sides"]["engine"], report["sides"]["chip host"]
    # the same network, seed and steps: the same spikes and events on both sides
    assert engine["events"] == host["events"] > 0
    assert engine["rate_hz"] == host["rate_hz"] > 0
    assert report["ratio"] == host["events_per_s"] / engine["events_per_s"]
