"""`darwin-dra bench engine` run the way a user runs it (tiny network, engine only)."""

from __future__ import annotations

import json

import pytest
from darwin_dra.testing.cli import Ran, run_cli

# `darwin-dra bench engine` on a tiny network, engine only.
BENCH = ("bench", "engine", "--scale", "0.05")


def _bench(*args: str) -> Ran:
    return run_cli(*BENCH, "--peers", "none", *args)


def test_bench_engine_json_without_peers() -> None:
    out = _bench("--threads", "1,2", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["name"], r["threads"]) for r in rows] == [("darwin engine", 1), ("darwin engine", 2)]
    assert rows[0]["spikes"] == rows[1]["spikes"] > 0
    assert rows[0]["extra"]["synapse_bytes_per_synapse"] <= 4.0
    assert rows[1]["ratio_first_to_this"]["events_per_s"] > 0


@pytest.mark.slow
def test_bench_engine_table_and_bad_threads() -> None:
    out = _bench("--threads", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[:3] == ["simulator", "thr", "build"]
    assert "darwin engine" in out.stdout
    bad = _bench("--threads", "one")
    assert bad.returncode == 2
    assert "--threads" in bad.stderr


def test_bench_engine_conv_table() -> None:
    """--network conv: the NIR conv model (16 x 16 at scale 1/16), its network line and the
    per-neuron-step and per-event columns of the footer."""
    out = run_cli("bench", "engine", "--network", "conv", "--scale", "0.0625", "--peers", "none")
    assert out.returncode == 0, out.stderr
    assert "network: conv" in out.stdout
    assert "16x16" in out.stdout
    assert "wall ns/neuron-step" in out.stdout
    assert "wall ns/event" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("darwin engine")]
    assert [r[2] for r in rows] == ["1", "2"]
    assert rows[0][5] == rows[1][5] != "0"  # the same spikes on 1 and 2 threads
