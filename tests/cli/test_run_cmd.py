"""`darwin-dra run` as a user runs it in a pod: the environment a prepared claim's CDI spec
injects, the chip host serving the partition's spike port, a network file, a report."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.chiphost.client import ChipHostClient, RemotePorts
from darwin_dra.engine import Network, NeuronGroup, synapses
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig
from darwin_dra.runtime.stage import save_stage

from tests.chiphost.conftest import NODE, Host, write_inventory
from tests.plugin.claims import ClaimStore, claim, result


def _network(path: Path) -> Path:
    """A driven, recurrent network: 400 neurons, each with 20 random targets."""
    rng = np.random.default_rng(3)
    n = 400
    src = np.repeat(np.arange(n), 20)
    dst = rng.integers(0, n, src.size)
    drive = NeuronGroup(count=n, poisson_rate_hz=2000.0, poisson_weight=2.0)
    cols = synapses(src, dst, np.full(src.size, 0.5), np.full(src.size, 15))
    save_stage(path, Network((drive,), *cols, seed=5))
    return path


@pytest.fixture
def claim_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The container environment of a claim prepared on a real chip host, with the endpoint
    rewritten to where the CDI mount puts its socket on the host."""
    host = Host(tmp_path / "state", write_inventory(tmp_path / "inv.yaml"), tmp_path / "ch.log")
    host.start()
    try:
        with ChipHostClient(host.socket) as chip:
            store = ClaimStore(claim("u1", [result("chip-1-quad-2", NODE)]))
            config = DriverConfig(NODE, host.state_dir, tmp_path / "cdi", lock_timeout_s=5)
            driver = Driver(config, chip, load_profiles(), store, boot_id=lambda: "b",
                            spike_ports=RemotePorts(chip))  # fmt: skip
            done = asyncio.run(driver.prepare([ClaimRef("ns", "u1", "c-u1")]))["u1"]
            assert done.error is None
            spec = json.loads((tmp_path / "cdi" / "darwin.snn.io-u1.json").read_text())
            [dev] = spec["devices"]
            env = dict(e.split("=", 1) for e in dev["containerEdits"]["env"])
            [mount] = dev["containerEdits"]["mounts"]
            inside = env["DARWIN_SPIKE_ENDPOINT"].removeprefix("unix://")
            assert Path(inside).parent == Path(mount["containerPath"])
            env["DARWIN_SPIKE_ENDPOINT"] = f"unix://{mount['hostPath']}/{Path(inside).name}"
            yield env
    finally:
        assert host.stop() == 0


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "run", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # runs the CLI in subprocesses, tens of seconds on a loaded machine
def test_run_reports_rate_and_events_of_the_network(
    claim_env: dict[str, str], tmp_path: Path
) -> None:
    net = _network(tmp_path / "net.npz")
    out = _run("--network", str(net), "--steps", "3000", "--window", "500", "--json", env=claim_env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["partition"] == claim_env["DARWIN_PARTITION"]
    assert report["cores"] == claim_env["DARWIN_CORES"]
    assert (report["steps"], report["simulated_ms"], report["neurons"]) == (3000, 300.0, 400)
    assert report["spikes"] > 0
    assert report["events"] == report["spikes"] * 20  # every neuron has 20 targets
    assert report["rate_hz"] == pytest.approx(report["spikes"] / 400 / 0.3)
    assert report["events_per_s"] > 0
    assert report["dropped"] == 0
    # the same run as a person reads it
    text = _run("--network", str(net), "--steps", "1000", env=claim_env)
    assert text.returncode == 0, text.stderr
    assert f"on partition {claim_env['DARWIN_PARTITION']}" in text.stdout
    assert "M events/s" in text.stdout


def test_run_for_wall_time(claim_env: dict[str, str], tmp_path: Path) -> None:
    net = _network(tmp_path / "net.npz")
    out = _run("--network", str(net), "--seconds", "0.5", "--window", "100", "--json",
               env=claim_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["wall_s"] >= 0.5
    assert report["steps"] % 100 == 0
    assert report["steps"] > 0


@pytest.mark.slow  # runs the CLI in subprocesses, tens of seconds on a loaded machine
def test_bad_input_is_named(claim_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, nothing=np.zeros(1))
    out = _run("--network", str(bad), env=claim_env)
    assert out.returncode == 1
    assert str(bad) in out.stderr
    missing = _run("--network", str(tmp_path / "net.npz"), env={"DARWIN_SPIKE_ENDPOINT": ""})
    assert missing.returncode == 2
    assert "DARWIN_SPIKE_ENDPOINT" in missing.stderr
    gone = _run("--network", str(_network(tmp_path / "net.npz")),
                env={"DARWIN_SPIKE_ENDPOINT": f"unix://{tmp_path}/none.sock"})  # fmt: skip
    assert gone.returncode == 1
    assert "UNAVAILABLE" in gone.stderr
