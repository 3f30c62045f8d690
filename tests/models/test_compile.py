"""Imported NIR graphs run on the engine as the NIR reference says, spike for spike: dense,
convolutional, pooled, nested and recurrent graphs, every neuron node, both resets."""

from __future__ import annotations

from typing import Any

import nir
import numpy as np
import pytest
from darwin_dra.engine import Reset
from darwin_dra.models import compile_graph
from darwin_dra.models.errors import ModelError, ModelTooLarge
from darwin_dra.models.export import to_nir
from darwin_dra.models.run import dense_to_aer, run_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.models.nir_reference import simulate

DT = 1e-3


def weights(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """Multiples of 1/8 whose largest magnitude is 1: exact on the engine's weight grid."""
    k = np.array(
        draw(
            st.lists(st.integers(-8, 8), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))
        )
    )
    k[draw(st.integers(0, k.size - 1))] = 8
    return (k / 8.0).reshape(shape)


def neuron(draw: st.DrawFn, kind: str, n: int) -> Any:
    ones = np.ones(n)
    tau = draw(st.sampled_from([2e-3, 5e-3, 2e-2]))
    th = draw(st.sampled_from([0.5, 1.0]))
    r = draw(st.sampled_from([1.0, 2.0, 4.0]))
    if kind == "LIF":
        return nir.LIF(
            tau=tau * ones, r=r * ones, v_leak=0 * ones, v_threshold=th * ones, v_reset=0 * ones
        )
    if kind == "IF":
        return nir.IF(r=r * 250 * ones, v_threshold=th * ones, v_reset=0 * ones)
    if kind == "CubaLIF":
        return nir.CubaLIF(
            tau_mem=tau * ones,
            tau_syn=draw(st.sampled_from([1e-3, 5e-3])) * ones,
            r=r * ones,
            v_leak=0 * ones,
            v_threshold=0.3 * th * ones,
            v_reset=0 * ones,
            w_in=2 * ones,
        )
    if kind == "LI":
        return nir.LI(tau=tau * ones, r=r * ones, v_leak=0 * ones)
    if kind == "CubaLI":
        return nir.CubaLI(
            tau_mem=tau * ones, tau_syn=2e-3 * ones, r=r * ones, v_leak=0 * ones, w_in=ones
        )
    return nir.Threshold(threshold=0.5 * ones)


@st.composite
def dense_graphs(draw: st.DrawFn) -> tuple[Any, dict[str, np.ndarray]]:
    n_in = draw(st.integers(1, 6))
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    nodes: list[Any] = [nir.Input(input_type={"input": np.array([n_in])})]
    prev = n_in
    for j, n in enumerate(sizes):
        w = weights(draw, (n, prev))
        if draw(st.booleans()):
            nodes.append(
                nir.Affine(
                    weight=w,
                    bias=np.array(
                        draw(st.lists(st.sampled_from([0.0, 0.125, -0.25]), min_size=n, max_size=n))
                    ),
                )
            )
        else:
            nodes.append(nir.Linear(weight=w))
        last = j == len(sizes) - 1
        kinds = ["LIF", "IF", "CubaLIF", "Threshold"] + (["LI", "CubaLI"] if last else [])
        nodes.append(neuron(draw, draw(st.sampled_from(kinds)), n))
        prev = n
    nodes.append(nir.Output(output_type={"output": np.array([prev])}))
    graph = nir.NIRGraph.from_list(*nodes)
    steps = draw(st.integers(1, 25))
    x = np.array(
        draw(st.lists(st.integers(0, 1), min_size=steps * n_in, max_size=steps * n_in))
    ).reshape(steps, n_in)
    return graph, {"input": x}


def engine_outputs(
    graph: Any, x: dict[str, np.ndarray], reset: Reset, dt: float = DT
) -> dict[str, np.ndarray]:
    model = compile_graph(graph, dt=dt, reset=reset)
    dense = np.concatenate(
        [x[layer.name].reshape(x[layer.name].shape[0], -1) for layer in model.inputs], axis=1
    )
    steps, ids = dense_to_aer(dense)
    res = run_model(model, dense.shape[0], steps, ids)
    out = {}
    for name, o in res.outputs.items():
        if o.spiking:
            z = np.zeros((res.steps, o.counts.size))
            np.add.at(z, (o.spike_steps, o.spike_ids), 1)
            out[name] = z
        else:
            assert o.potentials is not None
            out[name] = o.potentials.astype(np.float64)
    return out


def assert_same(graph: Any, x: dict[str, np.ndarray], reset: Reset, dt: float = DT) -> None:
    ref = simulate(graph, dt, reset is Reset.SUBTRACT, x)
    got = engine_outputs(graph, x, reset, dt)
    assert set(ref) == set(got)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=k)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=dense_graphs(), reset=st.sampled_from(list(Reset)))
def test_dense_graphs_match_the_nir_reference(
    case: tuple[Any, dict[str, np.ndarray]], reset: Reset
) -> None:
    graph, x = case
    assert_same(graph, x, reset)


def lif(n: int, tau: float = 5e-3, th: float = 0.5) -> Any:
    o = np.ones(n)
    return nir.LIF(tau=tau * o, r=2 * o, v_leak=0 * o, v_threshold=th * o, v_reset=0 * o)


def li(n: int) -> Any:
    o = np.ones(n)
    return nir.LI(tau=1e-2 * o, r=o, v_leak=0 * o)


def spikes(shape: tuple[int, ...], steps: int, seed: int, p: float = 0.4) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, *shape)) < p).astype(np.int64)


@st.composite
def conv_graphs(draw: st.DrawFn) -> tuple[Any, dict[str, np.ndarray]]:
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(3, 6)), draw(st.integers(3, 6))
    co, k = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 3]))
    stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    conv = nir.Conv2d(
        input_shape=(h, w),
        weight=weights(draw, (co, c, k, k)),
        stride=stride,
        padding=pad,
        dilation=1,
        groups=1,
        bias=np.zeros(co),
    )
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    nodes: list[Any] = [
        nir.Input(input_type={"input": np.array([c, h, w])}),
        conv,
        lif(co * ho * wo),
    ]
    shape = (co, ho, wo)
    if draw(st.booleans()) and ho >= 2 and wo >= 2:
        kind = draw(st.sampled_from([nir.SumPool2d, nir.AvgPool2d]))
        nodes.append(
            kind(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
        )
        shape = (co, ho // 2, wo // 2)
        nodes.append(lif(int(np.prod(shape)), th=0.25))
    n = int(np.prod(shape))
    nodes += [
        nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1),
        nir.Linear(weight=weights(draw, (2, n))),
        li(2),
        nir.Output(output_type={"output": np.array([2])}),
    ]
    graph = nir.NIRGraph.from_list(*nodes, type_check=False)
    return graph, {"input": spikes((c, h, w), draw(st.integers(1, 12)), draw(st.integers(0, 99)))}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_graphs())
def test_conv_and_pool_graphs_match_the_nir_reference(
    case: tuple[Any, dict[str, np.ndarray]],
) -> None:
    graph, x = case
    assert_same(graph, x, Reset.VALUE)


def test_conv1d_scale_and_a_nested_graph() -> None:
    inner = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([6])}),
            "scale": nir.Scale(scale=np.full(6, 0.5)),
            "lif": lif(6, th=0.2),
            "out": nir.Output(output_type={"output": np.array([6])}),
        },
        edges=[("in", "scale"), ("scale", "lif"), ("lif", "out")],
        type_check=False,
    )
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1, 8])}),
            "conv": nir.Conv1d(
                input_shape=8,
                weight=np.array([[[1.0, -0.5, 0.25]]]),
                stride=1,
                padding=0,
                dilation=1,
                groups=1,
                bias=np.zeros(1),
            ),
            "flat": nir.Flatten(input_type={"input": np.array([1, 6])}, start_dim=0),
            "block": inner,
            "readout": nir.Linear(weight=np.eye(6)[:2]),
            "li": li(2),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[
            ("input", "conv"),
            ("conv", "flat"),
            ("flat", "block"),
            ("block", "readout"),
            ("readout", "li"),
            ("li", "output"),
        ],
        type_check=False,
    )
    x = {"input": spikes((1, 8), 15, 4, 0.6)}
    assert_same(graph, x, Reset.VALUE)
    model = compile_graph(graph, dt=DT)
    assert [layer.name for layer in model.neuron_layers] == ["block.lif", "li"]
    assert model.layer("li").depth == 2


def recurrent_graph(delay_s: float) -> Any:
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Linear(weight=np.array([[1.0, 0, 0.5], [0, 1.0, 0], [0.5, 0, 1.0]])),
            "lif": lif(3),
            "rec": nir.Linear(weight=np.array([[0, 0.5, 0], [0, 0, -1.0], [0.25, 0, 0]])),
            "delay": nir.Delay(delay=np.full(3, delay_s)),
            "ro": nir.Linear(weight=np.array([[1.0, 1.0, -0.5]])),
            "li": li(1),
            "output": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[
            ("input", "fc"),
            ("fc", "lif"),
            ("lif", "rec"),
            ("rec", "delay"),
            ("delay", "lif"),
            ("lif", "ro"),
            ("ro", "li"),
            ("li", "output"),
        ],
        type_check=False,
    )


@pytest.mark.parametrize("delay_steps", [1, 3])
def test_recurrent_loop_with_delay(delay_steps: int) -> None:
    graph = recurrent_graph(delay_steps * DT)
    x = {"input": spikes((3,), 30, 7)}
    assert_same(graph, x, Reset.SUBTRACT)
    model = compile_graph(graph, dt=DT)
    rec = [p for p in model.projections if p.source == "lif" and p.target == "lif"]
    assert [p.delay for p in rec] == [delay_steps]
    assert rec[0].via == ("Delay", "Linear")


def test_time_in_steps_like_sinabs() -> None:
    """dt = 1 (a framework whose time unit is the step): IF with r = 1 adds its input each step,
    LIF decays by exp(-1/tau); the engine runs it as 1 ms steps with the time scaled alike."""
    o = np.ones(3)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2])}),
        nir.Linear(weight=np.array([[1.0, 0.5], [0.25, -1.0], [0.5, 0.5]])),
        nir.IF(r=o, v_threshold=o, v_reset=0 * o),
        nir.Linear(weight=np.array([[1.0, -0.5, 0.25], [0.5, 0.5, 1.0]])),
        nir.LIF(
            tau=10 * np.ones(2),
            r=4 * np.ones(2),
            v_leak=np.zeros(2),
            v_threshold=0.5 * np.ones(2),
            v_reset=np.zeros(2),
        ),
        nir.Linear(weight=np.eye(2)),
        nir.LI(tau=5 * np.ones(2), r=np.ones(2), v_leak=np.zeros(2)),
        nir.Output(output_type={"output": np.array([2])}),
        type_check=False,
    )
    x = {"input": spikes((2,), 30, 3, 0.5)}
    assert_same(graph, x, Reset.SUBTRACT, dt=1.0)
    model = compile_graph(graph, dt=1.0)
    assert model.network.dt_ms == 1.0
    assert model.network.groups[0].r == pytest.approx(1.0)  # per engine ms: 1 per step
    back = compile_graph(to_nir(model), dt=1.0)
    assert back.network.groups == model.network.groups


def test_a_shape_whose_element_count_wraps_int64_is_refused_not_compiled_empty() -> None:
    # (2^32, 2^32) has 2^64 elements: numpy's int64 product made it 0, and the graph compiled
    # with an input layer of no neurons. One element past the u32 id space is refused too.
    for shape in ((1 << 32, 1 << 32), (1 << 32,)):
        big = np.array(shape)
        graph = nir.NIRGraph(
            nodes={"input": nir.Input(input_type=big), "output": nir.Output(output_type=big)},
            edges=[("input", "output")],
        )
        with pytest.raises(ModelError, match="a layer holds at most 4294967295"):
            compile_graph(graph, dt=1e-3, name="big")


def _lif(n: int) -> Any:
    o = np.ones(n)
    return nir.LIF(tau=o, r=o, v_leak=0 * o, v_threshold=o, v_reset=0 * o)


@pytest.mark.parametrize("shape", [(1 << 31,), (1 << 12, 1 << 12, 2)])
def test_more_input_lines_than_one_network_holds_is_refused_before_any_matrix(
    shape: tuple[int, ...],
) -> None:
    # (2^31,) fits the u32 id space but not the engine (2^24 lines); compiled, its identity
    # projection alone would take tens of GB. The refusal comes first, before any matrix.
    big = np.array(shape)
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=big), "output": nir.Output(output_type=big)},
        edges=[("input", "output")],
    )
    with pytest.raises(ModelTooLarge, match=r"input lines .*holds at most 16777216"):
        compile_graph(graph, dt=1e-3, name="big")


def test_more_neurons_than_one_network_holds_is_refused_before_any_matrix() -> None:
    # Two layers of 2^23 + 1 neurons each fed by the same input: 2^24 + 2 neurons in all.
    half = (1 << 23) + 1
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([half])),
            "a": _lif(1),
            "b": _lif(1),
            "output": nir.Output(output_type=np.array([half])),
        },
        edges=[("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")],
        type_check=False,  # the layers' parameters are scalars: nothing is built from them
    )
    with pytest.raises(ModelTooLarge, match=r"16777218 neurons .*holds at most 16777216"):
        compile_graph(graph, dt=1e-3, name="big")
