"""`darwin-dra split-learn` as a user runs it: two processes over mutual TLS train a small
split model; it must learn, match the unsplit model, send fewer bytes than the ANN, and, deployed
as a pipeline cut where training cut, give the training code's accuracy within 1 point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from darwin_dra.testing.cli import run_cli


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_split_learn_trains_and_reports(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", "split-learn", "--limit", "300",
           "--epochs", "8", "--ann-epochs", "10", "--work", str(tmp_path), "--json",
           "--export", str(tmp_path / "split.nir"), "--deploy"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=400, check=False)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["test_samples"] == 150
    assert r["split_accuracy"] >= 0.8, r
    assert abs(r["split_accuracy"] - r["unsplit_accuracy"]) <= 0.01
    # spikes as sent: well under the dense float32 activations (4 x 64 = 256 bytes)
    assert r["ann_bytes_per_sample"] == 256
    assert 0 < r["split_bytes_per_sample"] < r["ann_bytes_per_sample"] / 2, r
    # the bytes counted are the spikes' frame plus headers: at least a bit per spike
    assert r["split_bytes_per_sample"] >= r["spikes_per_sample"] / 8
    # the split-trained weights as NIR, on the engine: within 1 point of the training code
    nir = r["nir"]
    assert (tmp_path / "split.nir").is_file()
    assert nir["samples"] == 150
    assert abs(nir["engine_accuracy"] - nir["training_accuracy"]) <= 0.01, nir
    assert nir["training_accuracy"] == r["split_accuracy"]
    # as one stream (what a pipeline gets), 48 silent steps between digits, the state left to
    # decay instead of reset: within 2 of the 150 digits of the engine's digit-by-digit run.
    # The residue of the decay flips a borderline digit or two, and which ones depends on the
    # trained weights, whose last bits vary with the platform's numeric libraries (the same
    # code gave 1 digit apart on one machine and 2 on another; 64 to 192 silent steps gave 1)
    digits_apart = round(abs(nir["stream_accuracy"]["48"] - nir["engine_accuracy"]) * 150)
    assert digits_apart <= 2, nir
    # deployed as a pipeline cut at the training cut (input -> s0 -> s1: the edge's layer,
    # then the server's and the readout), the classes read from s1's readout, each digit from
    # rest (the stages load afresh between digits): within 1 point of the training code, and
    # the very classes of the unsplit engine digit by digit
    d = r["deploy"]
    assert d["stages"] == ["input", "s0", "s1"]
    assert d["samples"] == 150
    assert d["gap"] == 16
    assert abs(d["pipeline_accuracy"] - nir["training_accuracy"]) <= 0.01, d
    assert d["one_piece_accuracy"] == nir["engine_accuracy"]
    assert d["agreement"] == 1.0, d
    # the state left to decay in the gap instead: the unsplit engine's one-stream classes
    assert d["decay_one_piece_accuracy"] == nir["stream_accuracy"]["16"]
    assert d["decay_agreement"] == 1.0, d
    # the cut carries the edge's spikes (frames, hellos, end): less than the bitmap of
    # 64 neurons x 32 steps, and some
    assert 0 < d["cut_bytes_per_sample"] < 64 * 32 / 8, d
    # each party kept its own weights, and only its own
    edge = set(__import__("numpy").load(tmp_path / "edge" / "edge.npz").files)
    server = set(__import__("numpy").load(tmp_path / "server" / "server.npz").files)
    assert edge == {"edge_w", "edge_b"}
    assert server == {"server_w2", "server_b2", "server_w3", "server_b3"}


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--cut-noise", "2"], "cut_noise"),
        (["--cut-rate-limit", "0"], "cut_rate_limit must be >= 1"),
        (["--attack", "--dataset", "mnist1d"], "not for --dataset mnist1d"),
        (["--cluster"], "--cluster needs --image"),
        (["--deploy"], "--deploy runs the export: give --export FILE.nir"),
        (["--deploy", "--export", "x.nir", "--deploy-gap", "-1"], "--deploy-gap -1"),
        (["--cluster", "--image", "x", "--edge-node", "a", "--server-node", "a"], "same node"),
    ],
)
def test_split_learn_refuses_bad_flags(flags: list[str], says: str) -> None:
    out = run_cli("split-learn", *flags)
    assert out.returncode == 1
    assert says in out.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_rate_limit_bounds_the_spikes_at_the_cut(tmp_path: Path) -> None:
    """--cut-rate-limit 1: at most one spike per cut neuron and digit, split equal to unsplit."""
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", "split-learn", "--limit", "100",
           "--epochs", "2", "--ann-epochs", "1", "--cut-rate-limit", "1", "--rate-penalty", "0",
           "--work", str(tmp_path), "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=280, check=False)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["config"]["cut_rate_limit"] == 1
    assert 0 < r["spikes_per_sample"] <= r["config"]["hidden"]
    assert r["split_accuracy"] == r["unsplit_accuracy"]
