"""NIR files in and out: round trips through HDF5, and bad input refused with an error that
names what is wrong (a corrupted-file fuzz test included)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np
import pytest
from darwin_dra.engine import Network, NeuronGroup, Reset
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.models import (
    LoopWithoutDelay,
    MalformedFile,
    ModelError,
    ModelTooLarge,
    PrecisionError,
    ShapeMismatch,
    UnsupportedNode,
    compile_graph,
)
from darwin_dra.models.export import RESETTING, from_network
from darwin_dra.models.nirfile import load_model, read_graph, save_model, write_graph
from darwin_dra.models.run import LocalRunner, dense_to_aer, run_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.models.test_compile import DT, conv_graphs, dense_graphs, li, lif, recurrent_graph


def canonical(net: Network) -> tuple[np.ndarray, ...]:
    o = np.lexsort((net.weight, net.delay, net.dst, net.src))
    return net.src[o], net.dst[o], net.weight[o], net.delay[o]


def same_network(a: Network, b: Network) -> None:
    for x, y in zip(canonical(a), canonical(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert len(a.groups) == len(b.groups)
    for g, h in zip(a.groups, b.groups, strict=True):
        for f in dataclasses.fields(NeuronGroup):
            x, y = getattr(g, f.name), getattr(h, f.name)
            assert x == pytest.approx(y, rel=1e-6, abs=1e-9), f.name
    if a.bias is None:
        assert b.bias is None
    else:
        assert b.bias is not None
        np.testing.assert_allclose(a.bias, b.bias, rtol=1e-6)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=st.one_of(dense_graphs(), conv_graphs()), reset=st.sampled_from(list(Reset)))
def test_write_then_read_gives_the_same_network(
    tmp_path: Path, case: tuple[Any, Any], reset: Reset
) -> None:
    graph, _ = case
    model = compile_graph(graph, dt=DT, reset=reset, name="m")
    path = tmp_path / "m.nir"
    save_model(path, model)
    back = load_model(path)
    assert back.dt_s == DT
    assert back.reset is reset or not any(g.model in RESETTING for g in model.network.groups)
    same_network(model.network, back.network)
    assert [x.name for x in back.layers] == [x.name for x in model.layers]


def test_original_graph_written_by_nir_reads_back_with_compression(tmp_path: Path) -> None:
    """A graph with a nested subgraph, written by nir with gzip datasets, compiles the same."""
    graph = recurrent_graph(2 * DT)
    path = tmp_path / "rec.nir"
    write_graph(path, graph)
    with h5py.File(path) as f:
        assert f["node/nodes/fc/weight"].compression == "gzip"
    same_network(compile_graph(graph, dt=DT).network, load_model(path, dt=DT).network)


def test_a_plain_engine_network_exports_as_lif_layers(tmp_path: Path) -> None:
    net = Network(
        groups=(
            NeuronGroup(3, tau_m=10.0, v_th=20.0, v_reset=10.0, t_ref=0.0),
            NeuronGroup(2, t_ref=0.0),
        ),
        src=np.array([5, 6, 0, 1, 2, 3], np.uint32),
        dst=np.array([0, 1, 3, 4, 4, 0], np.uint32),
        weight=np.array([15.0, 25.0, 2.0, -1.0, 8.0, 0.5], np.float32),
        delay=np.array([1, 1, 2, 5, 5, 1], np.uint16),
        n_inputs=2,
        dt_ms=0.1,
    )
    model = from_network(net)
    path = tmp_path / "plain.nir"
    save_model(path, model)
    back = load_model(path)
    assert [x.kind for x in back.neuron_layers] == ["LIF", "LIF"]
    np.testing.assert_array_equal(canonical(back.network)[3], canonical(net)[3])
    # the LIF of the export moves v by w like iaf_psc_delta: same spikes from the same input
    x = np.zeros((30, 2), np.int64)
    x[[2, 3, 4, 10, 11], 0] = 1
    x[[2, 5, 12], 1] = 1
    steps, ids = dense_to_aer(x)
    got = run_model(back, 30, steps, ids)
    assert got.outputs  # group1 has no outgoing synapses: an output
    with pytest.raises(ModelError, match="Poisson drive"):
        from_network(
            dataclasses.replace(net, groups=(NeuronGroup(3, poisson_rate_hz=10.0), NeuronGroup(2)))
        )


# ---- bad input ----


def valid_file(tmp_path: Path) -> Path:
    path = tmp_path / "ok.nir"
    write_graph(path, recurrent_graph(DT))
    return path


def test_missing_truncated_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(MalformedFile, match="no such file"):
        load_model(tmp_path / "absent.nir")
    good = valid_file(tmp_path).read_bytes()
    cut = tmp_path / "cut.nir"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(MalformedFile, match=r"cut\.nir: not a readable NIR graph"):
        load_model(cut)
    text = tmp_path / "text.nir"
    text.write_text("not hdf5")
    with pytest.raises(MalformedFile, match=r"text\.nir"):
        load_model(text)
    other = tmp_path / "other.nir"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(MalformedFile, match="no 'node' group"):
        load_model(other)


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    path = valid_file(tmp_path)
    with h5py.File(path, "a") as f:
        del f["node/nodes/lif/tau"]
    with pytest.raises(MalformedFile, match=r"ok\.nir"):
        load_model(path)


def test_unsupported_nodes_are_named_with_their_path(tmp_path: Path) -> None:
    inner = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([2])}),
            "integrator": nir.I(r=np.ones(2)),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("in", "integrator"), ("integrator", "out")],
        type_check=False,
    )
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "sub": inner,
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "sub"), ("sub", "output")],
        type_check=False,
    )
    path = tmp_path / "i.nir"
    write_graph(path, graph)
    with pytest.raises(
        UnsupportedNode,
        match=r"node 'sub\.integrator\.' is of type I.*supported: Input, Output, Affine",
    ):
        load_model(path)
    with pytest.raises(UnsupportedNode, match=r"'sub\.integrator' is of type I"):
        compile_graph(graph)
    with h5py.File(path, "a") as f:
        del f["node/nodes/sub/nodes/integrator/type"]
        f["node/nodes/sub/nodes/integrator"].create_dataset("type", data=b"Spiky")
    with pytest.raises(UnsupportedNode, match="Spiky"):
        read_graph(path)


def test_a_loop_without_delay_is_refused() -> None:
    graph = recurrent_graph(0.0)
    with pytest.raises(LoopWithoutDelay, match="'lif' -> 'lif' \\(delay 0\\)"):
        compile_graph(graph, dt=DT)
    # two hops, one step of delay: the engine needs one per hop
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2])}),
        "a": lif(2),
        "b": lif(2),
        "ab": nir.Linear(weight=np.eye(2)),
        "ba": nir.Linear(weight=np.eye(2)),
        "d": nir.Delay(delay=np.full(2, DT)),
        "fc": nir.Linear(weight=np.eye(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [
        ("input", "fc"),
        ("fc", "a"),
        ("a", "ab"),
        ("ab", "b"),
        ("b", "ba"),
        ("ba", "d"),
        ("d", "a"),
        ("b", "output"),
    ]
    with pytest.raises(LoopWithoutDelay, match="fewer steps of delay than neuron hops"):
        compile_graph(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=DT)
    del nodes["d"]
    edges = [
        ("input", "fc"),
        ("fc", "a"),
        ("a", "ab"),
        ("ab", "ba"),
        ("ba", "ab"),
        ("ab", "b"),
        ("b", "output"),
    ]
    with pytest.raises(LoopWithoutDelay, match=r"\['ab', 'ba'\] form a loop without a neuron"):
        compile_graph(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=DT)


def test_shapes_that_do_not_match_are_named() -> None:
    def graph(*nodes: Any) -> Any:
        return nir.NIRGraph.from_list(*nodes, type_check=False)

    with pytest.raises(
        ShapeMismatch,
        match=r"node 'linear' \(Linear\): weight of shape \(2, 4\) cannot take an input of 3",
    ):
        compile_graph(
            graph(
                nir.Input(input_type={"input": np.array([3])}),
                nir.Linear(weight=np.ones((2, 4))),
                lif(2),
            )
        )
    with pytest.raises(ShapeMismatch, match=r"node 'lif' \(LIF\): parameters of shape \(5,\)"):
        compile_graph(
            graph(
                nir.Input(input_type={"input": np.array([3])}),
                nir.Linear(weight=np.ones((2, 3))),
                lif(5),
            )
        )
    conv = nir.Conv2d(
        input_shape=(4, 4),
        weight=np.ones((1, 2, 3, 3)),
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=np.zeros(1),
    )
    with pytest.raises(ShapeMismatch, match=r"node 'conv2d' \(Conv2d\): 1 input channels"):
        compile_graph(graph(nir.Input(input_type={"input": np.array([1, 4, 4])}), conv, lif(4)))
    with pytest.raises(ShapeMismatch, match="too small for the kernel"):
        compile_graph(graph(nir.Input(input_type={"input": np.array([2, 2, 2])}), conv, lif(4)))


def test_weights_beyond_the_chips_precision_are_refused() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.01, (20, 50))  # small weights and one outlier 100x their size
    w[3, 7] = 1.0
    g = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([50])}),
        nir.Linear(weight=w),
        li(20),
        type_check=False,
    )
    with pytest.raises(
        PrecisionError,
        match=r"layer 'li': its weights lose .*% \(RMS\) on the engine's grid of 255 levels",
    ):
        compile_graph(g)
    loose = compile_graph(g, weight_tolerance=1.0)
    assert 0.02 < loose.weight_error <= 1.0
    # a layer of ordinary weights fits, quantised
    ok = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([50])}),
        nir.Linear(weight=rng.normal(size=(20, 50))),
        li(20),
        type_check=False,
    )
    model = compile_graph(ok)
    assert 0 < model.weight_error < 0.02
    assert np.unique(model.network.weight).size <= 255


def test_a_model_bigger_than_the_chip_is_refused_before_loading() -> None:
    profile = dataclasses.replace(load_profiles()["darwin3"], neurons_per_core=1)
    g = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2])}),
        nir.Linear(weight=np.ones((600, 2))),
        lif(600),
        type_check=False,
    )
    model = compile_graph(g)
    with pytest.raises(
        ModelTooLarge, match=r"600 neurons exceed a darwin3 chip's 575 \(575 cores x 1\)"
    ):
        LocalRunner(model, profile)
    small = dataclasses.replace(load_profiles()["darwin3"], synapses_per_chip=1000)
    with pytest.raises(ModelTooLarge, match="1200 synapses exceed"):
        LocalRunner(model, small)


def test_bad_parameters_are_named() -> None:
    o = np.ones(2)
    bad = nir.LIF(tau=-o, r=o, v_leak=0 * o, v_threshold=o, v_reset=0 * o)
    g = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2])}),
        nir.Linear(weight=np.eye(2)),
        bad,
        type_check=False,
    )
    with pytest.raises(ModelError, match=r"node 'lif' \(LIF\): tau must be > 0"):
        compile_graph(g)
    with pytest.raises(ModelError, match="must be a positive number of seconds"):
        compile_graph(g, dt=-1.0)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzz_corrupted_files_are_refused_or_load_whole(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Flipped bytes and truncations: a ModelError naming the file, or a model that loads and
    runs; never another exception, never a crash."""
    raw = bytearray(valid_file(tmp_path).read_bytes())
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    for _ in range(data.draw(st.integers(1, 8))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "fuzz.nir"
    path.write_bytes(bytes(raw))
    try:
        model = load_model(path, dt=DT)
    except ModelError as exc:
        message = str(exc)
        assert "fuzz.nir" in message
        return
    steps, ids = dense_to_aer(np.ones((5, model.network.n_inputs), np.int64))
    run_model(model, 5, steps, ids)


def test_a_layer_without_neurons_is_refused_by_name() -> None:
    # Found by `make fuzz` (nir-graph): a zero in a shape gave an IndexError deep in compile.
    empty = nir.LIF(tau=np.ones(0), r=np.ones(0), v_leak=np.zeros(0), v_threshold=np.ones(0))
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([0])}), empty, type_check=False
    )
    with pytest.raises(ShapeMismatch, match=r"node 'lif' \(LIF\) has no neurons"):
        compile_graph(graph)
