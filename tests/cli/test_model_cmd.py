"""`darwin-dra model inspect|run` the way a user runs them: a .nir file and a spike file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.engine import Reset
from darwin_dra.models import compile_graph
from darwin_dra.models.nirfile import save_model

from tests.models.nir_reference import simulate
from tests.models.test_compile import DT, recurrent_graph


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "model", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow  # runs the CLI in subprocesses, tens of seconds on a loaded machine
def test_inspect_and_run_a_recurrent_model(tmp_path: Path) -> None:
    graph = recurrent_graph(2 * DT)
    model = compile_graph(graph, dt=DT, reset=Reset.SUBTRACT, name="rec")
    path = tmp_path / "rec.nir"
    save_model(path, model)
    out = cli("inspect", str(path))
    assert out.returncode == 0, out.stderr
    assert "model rec: 4 neurons, 3 inputs, 11 synapses" in out.stdout
    assert "lif -> lif" in out.stdout
    assert "B/synapse" in out.stdout
    report = json.loads(cli("inspect", str(path), "--json").stdout)
    assert report["reset"] == "subtract"
    assert report["engine"]["synapse_bytes"] > 0
    assert [x["name"] for x in report["layers"]] == ["lif", "li", "input"]

    x = (np.random.default_rng(5).random((25, 3)) < 0.4).astype(np.int8)
    np.save(tmp_path / "in.npy", x)
    run = cli("run", str(path), "--input", str(tmp_path / "in.npy"), "--json")
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["steps"] == 25
    assert got["latency_steps"] == 2
    ref = simulate(graph, DT, True, {"input": x})["output"]
    np.testing.assert_allclose(
        np.array(got["outputs"]["output"]["potentials"]), ref, rtol=1e-4, atol=1e-6
    )
    # the same spikes as AER in an .npz, fewer steps, as a table
    t, i = np.nonzero(x)
    np.savez(tmp_path / "in.npz", steps=t, ids=i)
    table = cli("run", str(path), "--input", str(tmp_path / "in.npz"), "--steps", "10")
    assert table.returncode == 0, table.stderr
    assert "model rec: 10 steps (+2 latency)" in table.stdout
    assert "final potentials" in table.stdout


@pytest.mark.slow  # runs the CLI in subprocesses, tens of seconds on a loaded machine
def test_bad_files_and_inputs_fail_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    out = cli("inspect", str(bad))
    assert out.returncode == 1
    assert "bad.nir: not a readable NIR graph" in out.stderr
    path = tmp_path / "rec.nir"
    save_model(path, compile_graph(recurrent_graph(DT), dt=DT))
    np.save(tmp_path / "wide.npy", np.zeros((5, 7), np.int8))
    out = cli("run", str(path), "--input", str(tmp_path / "wide.npy"))
    assert out.returncode == 1
    assert "7 input channels per step, the model has 3" in out.stderr
    out = cli("run", str(path), "--input", str(tmp_path / "wide.npy"), "--reset", "sideways")
    assert out.returncode == 2
    assert "'sideways' is not 'value' or 'subtract'" in out.stderr


@pytest.mark.slow  # runs the CLI in subprocesses, tens of seconds on a loaded machine
def test_memory_table_measures_every_layer_type() -> None:
    out = cli("memory", "--scale", "2", "--json")
    assert out.returncode == 0, out.stderr
    rows = {
        r["layer"].split()[0] + (" 16" if "16 weight" in r["layer"] else ""): r
        for r in json.loads(out.stdout)
    }
    assert set(rows) == {"Linear", "Linear 16", "Conv2d", "SumPool2d", "AvgPool2d", "Conv1d"}
    for r in rows.values():
        assert r["synapse_bytes"] > 0
        assert r["bytes_per_synapse"] == r["synapse_bytes"] / r["synapses"]
    assert 2.0 <= rows["Linear 16"]["bytes_per_synapse"] < rows["Linear"]["bytes_per_synapse"]
    # every layer type at or under 4 bytes a synapse: convolutions and pools once per kernel
    assert max(r["bytes_per_synapse"] for r in rows.values()) <= 4.0
    assert rows["Conv2d"]["bytes_per_synapse"] < 0.5
    assert cli("memory", "--scale", "0").returncode == 2


@pytest.mark.slow  # runs the CLI in subprocesses, tens of seconds on a loaded machine
def test_run_with_a_model_is_model_run(tmp_path: Path) -> None:
    # The spelling, `darwin-dra run --model FILE.nir --input SPIKES`, gives what
    # `darwin-dra model run` gives (all but the wall time).
    model = compile_graph(recurrent_graph(2 * DT), dt=DT, reset=Reset.SUBTRACT, name="rec")
    path = tmp_path / "rec.nir"
    save_model(path, model)
    x = (np.random.default_rng(7).random((20, 3)) < 0.4).astype(np.int8)
    np.save(tmp_path / "in.npy", x)
    spikes = str(tmp_path / "in.npy")
    base = [sys.executable, "-m", "darwin_dra.cli.main", "run"]
    out = subprocess.run(
        [*base, "--model", str(path), "--input", spikes, "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = json.loads(cli("run", str(path), "--input", spikes, "--json").stdout)
    for report in (got, want):
        report["telemetry"].pop("wall_s", None)
    assert got == want
    assert got["steps"] == 20
    missing = subprocess.run(
        [*base, "--model", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert missing.returncode == 2
    assert "--model needs --input" in missing.stderr
