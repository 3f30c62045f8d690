"""A file input's rate for the split (pipeline/inputs.py ``peak_rate_hz``, pipeline/splitter.py
``file_rate_hz``): the busiest step of the file as its stages read it, and a stage's KEPS
request sized from it covers that step's events, where the split's default rate does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from darwin_dra.models.nirfile import load_model, write_graph
from darwin_dra.models.run import LocalRunner, dense_to_aer
from darwin_dra.pipeline.plan import from_split_json
from darwin_dra.pipeline.splitter import ModelError, file_rate_hz, split_model
from darwin_dra.splitlearn.nirexport import DT_S, split_graph
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart

LAYERS = (("edge",), ("server", "readout"))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = Config()
    path = tmp_path_factory.mktemp("rate") / "split.nir"
    write_graph(path, split_graph(EdgePart(cfg, 0), ServerPart(cfg, 0)))
    return path


def test_the_rate_is_the_files_busiest_step_and_the_grant_covers_it(
    model_file: Path, tmp_path: Path
) -> None:
    cfg = Config()
    rng = np.random.default_rng(3)
    x = (rng.random((5, cfg.steps, cfg.inputs)) < 0.3).astype(np.uint8)
    x[2, 7, :] = 1  # one step where every input fires
    path = tmp_path / "samples.npy"
    np.save(path, x)
    rate = file_rate_hz(model_file, path, f"{cfg.steps}+16,reset")
    assert rate == pytest.approx(1.0 / DT_S)  # every input at that step: one spike per dt
    busiest = x.reshape(-1, cfg.inputs).sum(axis=1).max()
    assert rate == pytest.approx(busiest / cfg.inputs / DT_S)
    x[2, 7, :] = 0
    np.save(path, x)
    brute = x.reshape(-1, cfg.inputs).sum(axis=1).max() / cfg.inputs / DT_S
    assert file_rate_hz(model_file, path, f"{cfg.steps}") == pytest.approx(brute)
    # s0's grant (its claim's KEPS request: thousands of events per second, at one step per
    # dt) covers the events of the busiest step into it, each input spike times its fan-out
    net = load_model(model_file).network
    src = net.src.astype(np.int64)
    fanout = np.bincount(src[src >= net.n_neurons] - net.n_neurons, minlength=cfg.inputs)
    events = float((x.reshape(-1, cfg.inputs) @ fanout).max())
    assert events > 0
    grant = _grants(split_model(model_file, None, brute, LAYERS))
    assert grant["s0"] * 1000 * DT_S >= events
    # what the split's default rate (10 Hz) would have asked: not enough
    assert _grants(split_model(model_file, None, None, LAYERS))["s0"] * 1000 * DT_S < events
    # on the engine, the whole model held to both stages' grants drops nothing of the file's
    # stream; held to the default rate's, it drops events
    default = _grants(split_model(model_file, None, None, LAYERS))
    assert _dropped(model_file, x, grant["s0"] + grant["s1"]) == 0
    assert _dropped(model_file, x, default["s0"] + default["s1"]) > 0


def _dropped(model_file: Path, x: npt.NDArray[np.uint8], keps: int) -> int:
    steps, ids = dense_to_aer(x.reshape(-1, x.shape[2]))
    with LocalRunner(load_model(model_file)) as runner:
        runner.engine.set_budget(runner.part, keps)
        got = runner.run(x.shape[0] * x.shape[1], steps, ids).telemetry
    assert got.events > 0
    return got.dropped_budget


def _grants(plan: str) -> dict[str, int]:
    return {s.name: s.keps for s in from_split_json(plan).stages}


def test_a_bad_samples_file_is_named(model_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "samples.npy"
    np.save(path, np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(ModelError, match=r"spec.input.file: .*samples.npy: samples of shape"):
        file_rate_hz(model_file, path, "16+16")
