"""`darwin-dra bench run-pod`: its pure parts and its refusals. The whole benchmark starts a
cluster of its own (minutes); its figures are in docs/benchmarks.md with the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from darwin_dra.bench.brunel import BrunelConfig
from darwin_dra.cli import bench_pod, bench_run
from darwin_dra.cli.bench_run import Measured
from darwin_dra.runtime.run import load_network


def test_the_pod_builds_the_host_side_network_and_runs_it(tmp_path: Path) -> None:
    script = bench_pod.pod_script(0.05, 300, 100, 50)
    build, _, run = script.partition(" && ")
    assert run == (
        "darwin-dra run --network /tmp/brunel.npz --steps 300 --warmup-steps 100 --window 50 --json"
    )
    # The container's build step, run here with /tmp moved: the same network as the host's.
    code = build.removeprefix('python -c "').removesuffix('"')
    code = code.replace("/tmp/brunel.npz", str(tmp_path / "brunel.npz"))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    net = load_network(tmp_path / "brunel.npz").network
    cfg = BrunelConfig().scaled(0.05)
    assert (net.n_neurons, net.n_synapses) == (cfg.n, cfg.n_synapses)


def test_the_pod_claims_a_whole_chip_and_runs_once() -> None:
    pod = bench_pod.pod("run-0", "img:1", "true")
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["resourceClaims"] == [{"name": "chip", "resourceClaimTemplateName": "chip"}]
    request = bench_pod.chip_template()["spec"]["spec"]["devices"]["requests"][0]
    assert request["exactly"]["deviceClassName"] == "darwin-chip.snn.io"


def test_summary_takes_medians_and_the_spread() -> None:
    runs = [Measured(e, 10.0, 1.0, 5) for e in (3e6, 1e6, 2e6)]
    row = bench_run.summary({"pod": runs})["pod"]
    assert (row["events_per_s"], row["events_per_s_min"], row["events_per_s_max"]) == (
        pytest.approx(2e6),
        pytest.approx(1e6),
        pytest.approx(3e6),
    )


def test_bad_counts_are_refused_before_any_cluster_starts() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "bench", "run-pod", "--repeat", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "must be >= 1" in out.stderr
