"""Samples in one stream and the readout at each sample's last step (pipeline/samples.py,
pipeline/readout.py), against brute-force references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from darwin_dra.engine.network import Reset
from darwin_dra.models.compile import CompiledModel, compile_graph
from darwin_dra.models.errors import ModelError
from darwin_dra.pipeline.readout import Readout, ReadoutLayer, held_readout, summary
from darwin_dra.pipeline.samples import SampleLayout, lay_out, load_samples
from darwin_dra.pipeline.split import split_at_layers, stage_of_neurons
from darwin_dra.runtime.pipeline_config import check_reset
from darwin_dra.splitlearn.nirexport import CUT, DT_S, split_graph
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart
from hypothesis import given
from hypothesis import strategies as st


@given(st.integers(1, 20), st.integers(0, 20), st.integers(0, 200))
def test_last_steps_are_every_completed_samples_last_step(steps: int, gap: int, run: int) -> None:
    layout = SampleLayout(steps, gap)
    want = [m for m in range(run) if m % (steps + gap) == steps - 1]
    assert layout.last_steps(run).tolist() == want


def test_layout_parses_and_refuses_by_flag() -> None:
    assert SampleLayout.parse("16+48") == SampleLayout(16, 48)
    assert SampleLayout.parse("16") == SampleLayout(16, 0)
    assert str(SampleLayout(16, 4)) == "16+4"
    reset = SampleLayout.parse("16+16,reset")
    assert reset == SampleLayout(16, 16, reset=True)
    assert str(reset) == "16+16,reset"
    assert [s for s in range(100) if reset.resets_at(s)] == [32, 64, 96]
    assert not any(SampleLayout(16, 16).resets_at(s) for s in range(100))
    check_reset(reset, 16, 16)
    with pytest.raises(ValueError, match="not a multiple of --window 10"):
        check_reset(reset, 10, 3)
    with pytest.raises(ValueError, match=r"at least the model's latency \(17 steps\)"):
        check_reset(reset, 16, 17)
    for bad in ("x", "16+y", "0+3", "4+-1", "16+2,rest"):
        with pytest.raises(ValueError, match="--samples"):
            SampleLayout.parse(bad)


def test_samples_are_laid_out_one_after_another(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (5, 4, 6))
    layout = SampleLayout(4, 3)
    steps, ids, total = lay_out(x, layout)
    assert total == 5 * 7
    dense = np.zeros((total, 6), np.int64)
    np.add.at(dense, (steps, ids), 1)
    for n in range(5):
        assert np.array_equal(dense[n * 7 : n * 7 + 4], x[n])
        assert not dense[n * 7 + 4 : n * 7 + 7].any()
    np.save(tmp_path / "s.npy", x)
    np.savez(tmp_path / "s.npz", samples=x)
    for f in ("s.npy", "s.npz"):
        got = load_samples(tmp_path / f, 6, layout)
        assert np.array_equal(got[0], steps)
        assert np.array_equal(got[1], ids)
        assert got[2] == total
    with pytest.raises(ModelError, match=r"s\.npy.*--samples 5\+3"):
        load_samples(tmp_path / "s.npy", 6, SampleLayout(5, 3))
    with pytest.raises(ModelError, match="7 inputs"):
        load_samples(tmp_path / "s.npy", 7, layout)
    (tmp_path / "s.npz").rename(tmp_path / "input")  # as a pod mounts a ConfigMap key
    got = load_samples(tmp_path / "input", 6, layout)
    assert np.array_equal(got[0], steps)
    np.savez(tmp_path / "bad.npz", other=x)
    with pytest.raises(ModelError, match="'samples'"):
        load_samples(tmp_path / "bad.npz", 6, layout)


def test_the_readout_keeps_each_samples_last_step_in_any_windows() -> None:
    layer = ReadoutLayer("output", "readout", 10, 3, depth=2)
    layout = SampleLayout(4, 2)
    trace = np.random.default_rng(1).random((40, 3)).astype(np.float32)  # engine steps
    for cuts in ([40], [1, 5, 34], [7] * 5 + [5]):
        r = Readout(layer, layout, model_steps=36, latency=4)
        at = 0
        for n in cuts:
            r.add(at, trace[at : at + n])
            at += n
        steps, v = r.result(36)
        assert steps.tolist() == [3, 9, 15, 21, 27, 33]
        assert np.array_equal(v, trace[steps + layer.depth])
    one = Readout(layer, None, latency=4)  # no layout: the run's last model step
    one.add(0, trace)
    steps, v = one.result(36)
    assert steps.tolist() == [35]
    assert np.array_equal(v[0], trace[37])
    s = summary(layer, steps, v)
    assert s == {"output": "output", "layer": "readout", "samples": 1,
                 "classes": [int(np.argmax(trace[37]))]}  # fmt: skip
    gap = Readout(layer, layout)
    gap.add(0, trace[:10])
    with pytest.raises(ValueError, match="no potentials at model step 9"):
        gap.result(20)


@pytest.fixture(scope="module")
def model() -> CompiledModel:
    cfg = Config()
    graph = split_graph(EdgePart(cfg, 0), ServerPart(cfg, 0))
    return compile_graph(graph, dt=DT_S, reset=Reset.VALUE, name="split")


def test_the_readout_sits_whole_in_the_stage_that_holds_it(model: CompiledModel) -> None:
    plan = split_at_layers(model, [[CUT], ["server", "readout"]])
    st_of = stage_of_neurons(model, plan)
    s0, s1 = (np.flatnonzero(st_of == j).astype(np.uint32) for j in (0, 1))
    assert held_readout(model, "s0", s0) is None
    held = held_readout(model, "s1", s1)
    assert held is not None
    assert (held.layer, held.count) == ("readout", 10)
    # a stage holding part of the readout layer is refused by name
    ro = model.layer("readout")
    half = np.concatenate([s0, np.arange(ro.first, ro.first + 4)]).astype(np.uint32)
    with pytest.raises(ValueError, match="stage s0 holds 4 of readout layer 'readout'"):
        held_readout(model, "s0", np.sort(half))
