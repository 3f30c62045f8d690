"""Convolutions and pools are kept once per kernel in the engine (engine Kernel, C dk_kernel):
the same spikes and potentials, bit for bit, as their synapses listed one by one, spike for
spike the NIR reference, at a small fraction of the memory."""

from __future__ import annotations

import dataclasses
from typing import Any

import nir
import numpy as np
import pytest
from darwin_dra.engine import Engine, InvalidArgument, Reset
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.models import compile_graph
from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.run import dense_to_aer, run_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.models.test_compile import DT, assert_same, li, lif, spikes, weights


def expanded(model: CompiledModel) -> CompiledModel:
    """The same model with every synapse listed one by one (no kernels)."""
    return dataclasses.replace(model, network=dataclasses.replace(model.network, kernels=()))


def run(model: CompiledModel, x: np.ndarray, threads: int = 1) -> dict[str, Any]:
    steps, ids = dense_to_aer(x.reshape(x.shape[0], -1))
    res = run_model(model, x.shape[0], steps, ids, threads=threads)
    out: dict[str, Any] = {"telemetry": res.telemetry}
    for name, o in res.outputs.items():
        out[name] = (o.spike_steps, o.spike_ids, o.potentials)
    return out


def assert_bit_identical(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in a:
        if key == "telemetry":
            continue
        for x, y in zip(a[key], b[key], strict=True):
            if x is None:
                assert y is None
            else:
                np.testing.assert_array_equal(x, y, err_msg=key)


@st.composite
def kernel_graphs(draw: st.DrawFn) -> tuple[Any, np.ndarray]:
    groups = draw(st.sampled_from([1, 2]))
    c = groups * draw(st.integers(1, 2))
    co = groups * draw(st.integers(1, 2))
    h, w = draw(st.integers(3, 7)), draw(st.integers(3, 7))
    k, dil = draw(st.sampled_from([1, 2, 3])), draw(st.integers(1, 2))
    stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 2))
    span = dil * (k - 1) + 1
    if h + 2 * pad < span or w + 2 * pad < span:
        pad = span
    ho, wo = (h + 2 * pad - span) // stride + 1, (w + 2 * pad - span) // stride + 1
    conv = nir.Conv2d(
        input_shape=(h, w),
        weight=weights(draw, (co, c // groups, k, k)),
        stride=stride,
        padding=pad,
        dilation=dil,
        groups=groups,
        bias=np.zeros(co),
    )
    nodes: list[Any] = [nir.Input(input_type={"input": np.array([c, h, w])}), conv]
    nodes.append(lif(co * ho * wo, th=0.3))
    shape = (co, ho, wo)
    if ho >= 2 and wo >= 2:
        kind = draw(st.sampled_from([nir.SumPool2d, nir.AvgPool2d]))
        ps = draw(st.sampled_from([1, 2]))
        nodes.append(
            kind(kernel_size=np.array([2, 2]), stride=np.array([ps, ps]), padding=np.array([0, 0]))
        )
        shape = (co, (ho - 2) // ps + 1, (wo - 2) // ps + 1)
        nodes.append(lif(int(np.prod(shape)), th=0.2))
    n = int(np.prod(shape))
    nodes += [
        nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1),
        nir.Linear(weight=weights(draw, (2, n))),
        li(2),
        nir.Output(output_type={"output": np.array([2])}),
    ]
    x = spikes((c, h, w), draw(st.integers(2, 10)), draw(st.integers(0, 99)))
    return nir.NIRGraph.from_list(*nodes, type_check=False), x


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=kernel_graphs(), threads=st.sampled_from([1, 2, 4]))
def test_kernels_run_bit_for_bit_like_listed_synapses_and_like_the_reference(
    case: tuple[Any, np.ndarray], threads: int
) -> None:
    graph, x = case
    model = compile_graph(graph, dt=DT)
    assert model.network.kernels, "the conv and pool projections should be kernels"
    got, want = run(model, x, threads), run(expanded(model), x, threads)
    assert_bit_identical(got, want)
    t, u = got["telemetry"], want["telemetry"]
    assert (t.synapses, t.events, t.spikes) == (u.synapses, u.events, u.spikes)
    assert t.synapses == model.network.n_synapses
    assert_same(graph, {"input": x}, Reset.VALUE)


def test_conv1d_is_a_kernel_too() -> None:
    conv = nir.Conv1d(
        input_shape=12,
        weight=np.random.default_rng(3).normal(size=(4, 2, 3)),
        stride=2,
        padding=1,
        dilation=1,
        groups=1,
        bias=np.zeros(4),
    )
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2, 12])}),
        conv,
        lif(4 * 6, th=0.2),
        nir.Output(output_type={"output": np.array([24])}),
        type_check=False,
    )
    model = compile_graph(graph, dt=DT)
    (kern,) = model.network.kernels
    assert (kern.in_shape, kern.out_shape, kern.stride) == ((2, 1, 12), (4, 1, 6), (1, 2))
    x = spikes((2, 12), 12, 8, 0.5)
    assert_bit_identical(run(model, x), run(expanded(model), x))
    assert_same(graph, {"input": x}, Reset.VALUE)


def test_a_kernel_that_does_not_match_its_synapses_is_refused(darwin3: ChipProfile) -> None:
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([1, 4, 4])}),
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.zeros(2)),
        lif(4),
        nir.Output(output_type={"output": np.array([4])}),
        type_check=False,
    )
    net = compile_graph(graph, dt=DT).network
    (kern,) = net.kernels
    short = dataclasses.replace(kern, synapses=(0, kern.synapses[1] - 1))
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="K", fabric="f"))
        part = eng.create_partition(0, domains=[0])
        with pytest.raises(InvalidArgument, match="kernels imply 16 synapses, but they stand"):
            eng.load(part, dataclasses.replace(net, kernels=(short,)))
        eng.load(part, net)  # nothing half loaded: the partition is free again
        assert eng.telemetry(part).synapses == 16
        eng.unload(part)
        with pytest.raises(ValueError, match="not a fresh slice"):
            eng.load(part, dataclasses.replace(net, kernels=(kern, kern)))


@pytest.mark.parametrize("k", [3, 33])
def test_small_and_large_kernels_on_many_cores_are_the_listed_synapses(k: int) -> None:
    """A kernel up to 32 taps a side takes its taps once per source, a larger one tap by tap
    (C kernel_window, kernel_any); on 1, 2 and 4 threads each thread computes only the targets
    on its own cores. Both, on every thread count, deliver the listed synapses bit for bit."""
    rng = np.random.default_rng(k)
    side = 36
    w = rng.integers(-8, 9, size=(4, 1, k, k)) / 8.0
    w[0, 0, 0, 0] = 1.0
    conv = nir.Conv2d(
        input_shape=(side, side),
        weight=w,
        stride=1,
        padding=k // 2,
        dilation=1,
        groups=2,
        bias=np.zeros(4),
    )
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2, side, side])}),
        conv,
        lif(4 * side * side, th=0.3),
        nir.Output(output_type={"output": np.array([4 * side * side])}),
        type_check=False,
    )
    model = compile_graph(graph, dt=DT)
    assert model.network.kernels
    x = spikes((2, side, side), 6, k, 0.2)
    want = run(expanded(model), x)
    for threads in (1, 2, 4):
        got = run(model, x, threads)
        assert_bit_identical(got, want)
        assert got["telemetry"].events == want["telemetry"].events > 0
