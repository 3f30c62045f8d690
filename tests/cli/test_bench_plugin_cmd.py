"""`darwin-dra bench plugin` run the way a user runs it: without --kubeconfig the claims come
from the in-memory claim source (darwin_dra.testing.claims), the prepare path is the real one."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_plugin_prints_prepare_latency_from_memory_claims() -> None:
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", "bench", "plugin"]
    out = subprocess.run(
        [*cmd, "--claims", "1,3", "--repeat", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "claims served from memory (no --kubeconfig)" in out.stdout
    rows = [line for line in out.stdout.splitlines() if line.startswith("| prepare")]
    cases = [row.split("|")[1].strip() for row in rows]
    assert cases == [
        "prepare   1 claims/call, engine",
        "prepare   3 claims/call, engine",
        "prepare   1 claims/call, chip host",
        "prepare   3 claims/call, chip host",
    ]
    assert all(row.rstrip().endswith("| 2 calls |") for row in rows)
    assert "slice publishing skipped" in out.stdout
