"""The engine's NIR neuron models (LIF with both resets, IF, CubaLIF, LI, CubaLI, Threshold)
equal the plain numpy reference of their exact integration, spike for spike and bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from darwin_dra.engine import (
    DelayStore,
    Engine,
    InvalidArgument,
    Model,
    Network,
    NeuronGroup,
    Reset,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.reference_models import coefficients, simulate_models
from tests.engine.test_dynamics import run_engine

WEIGHTS = [0.25, 0.5, 1.5, -0.75, 2.0, -1.25, 0.125, 3.0]


@st.composite
def groups(draw: st.DrawFn) -> NeuronGroup:
    model = draw(st.sampled_from(list(Model)[1:]))
    v_th = draw(st.sampled_from([0.5, 1.0, 2.0]))
    return NeuronGroup.nir(
        model,
        draw(st.integers(1, 10)),
        tau_m=draw(st.sampled_from([1.0, 5.0, 20.0])),
        tau_syn=draw(st.sampled_from([1.0, 2.5, 5.0, 20.0])),  # 5 = tau_m: the limit form
        r=draw(st.sampled_from([0.5, 1.0, 4.0])),
        w_in=draw(st.sampled_from([0.5, 1.0, 2.0])),
        v_th=v_th,
        v_reset=draw(st.sampled_from([0.0, -0.5])),
        e_l=draw(st.sampled_from([0.0, 0.2])),
        v_init=draw(st.floats(-1.0, 0.375, width=32)),
        reset=draw(st.sampled_from(list(Reset))),
        bias_start=draw(st.sampled_from([0, 0, 3])),
    )


@st.composite
def networks(draw: st.DrawFn) -> tuple[Network, list[tuple[int, int]], int]:
    gs = tuple(draw(st.lists(groups(), min_size=1, max_size=4)))
    n = sum(g.count for g in gs)
    n_inputs = draw(st.integers(0, 3))
    n_syn = draw(st.integers(0, 80))
    src = draw(st.lists(st.integers(0, n + n_inputs - 1), min_size=n_syn, max_size=n_syn))
    dst = draw(st.lists(st.integers(0, n - 1), min_size=n_syn, max_size=n_syn))
    w = draw(st.lists(st.sampled_from(WEIGHTS), min_size=n_syn, max_size=n_syn))
    d = draw(st.lists(st.integers(1, 5), min_size=n_syn, max_size=n_syn))
    bias = None
    if draw(st.booleans()):
        bias = np.array(
            draw(st.lists(st.sampled_from([0.0, 0.05, 0.3, -0.1]), min_size=n, max_size=n)),
            dtype=np.float32,
        )
    net = Network(
        groups=gs,
        src=np.array(src, dtype=np.uint32),
        dst=np.array(dst, dtype=np.uint32),
        weight=np.array(w, dtype=np.float32),
        delay=np.array(d, dtype=np.uint16),
        n_inputs=n_inputs,
        dt_ms=draw(st.sampled_from([0.1, 1.0])),
        bias=bias,
    )
    steps = draw(st.integers(1, 50))
    inputs: list[tuple[int, int]] = []
    if n_inputs:
        k = draw(st.integers(0, 40))
        inputs = [
            (draw(st.integers(0, steps - 1)), draw(st.integers(0, n_inputs - 1))) for _ in range(k)
        ]
    return net, inputs, steps


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    case=networks(),
    threads=st.sampled_from([1, 2]),
    store=st.sampled_from([DelayStore.SUMS, DelayStore.QUEUES]),
)
def test_models_match_reference(
    engine: Engine,
    case: tuple[Network, list[tuple[int, int]], int],
    threads: int,
    store: DelayStore,
) -> None:
    net, inputs, steps = case
    ref = simulate_models(net, steps, inputs)
    spikes, v = run_engine(engine, net, inputs, steps, threads, [10, 11, 40, 41, 300], store)
    assert spikes == sorted(ref.spikes)
    np.testing.assert_array_equal(v, ref.v)


def test_potentials_and_currents_read_out(engine: Engine) -> None:
    """A CubaLI readout: the current decays as exp(-dt/tau_syn), the potential follows the
    closed form, and potentials can be read for any range of neurons."""
    g = NeuronGroup.nir(Model.CUBA_LI, 2, tau_m=10.0, tau_syn=5.0, r=1.0, w_in=1.0)
    net = Network(
        groups=(g,),
        src=np.array([2], np.uint32),
        dst=np.array([1], np.uint32),
        weight=np.array([2.0], np.float32),
        delay=np.array([1], np.uint16),
        n_inputs=1,
        dt_ms=1.0,
    )
    if True:
        eng = engine
        part = eng.create_partition(0, cores=[0, 1, 2, 3])
        eng.load(part, net)
        eng.inject(part, [0], [0])
        eng.run(part, 2)
        v, cur = eng.potentials(part, 0, 2)
        c = coefficients(Model.CUBA_LI, 10.0, 5.0, 1.0, 1.0, 1.0)
        assert v[0] == 0
        assert cur[0] == 0
        assert cur[1] == np.float32(c.g_s * np.float32(2.0))
        assert math.isclose(float(cur[1]), 2.0 * (1 - math.exp(-0.2)), rel_tol=1e-6)
        eng.run(part, 1)
        v2, cur2 = eng.potentials(part, 1, 1)
        assert cur2[0] == c.a_s * cur[1]
        assert v2[0] == np.float32(0) + c.a_m * (v[1] - np.float32(0)) + c.p_vi * cur[
            1
        ] + c.g_x * np.float32(0)
        with pytest.raises(InvalidArgument, match="do not exist"):
            eng.potentials(part, 1, 2)


def test_nir_fields_refused_on_iaf_and_back(engine: Engine) -> None:
    net = Network(
        groups=(NeuronGroup(count=2, r=1.0),),
        src=np.zeros(0, np.uint32),
        dst=np.zeros(0, np.uint32),
        weight=np.zeros(0, np.float32),
        delay=np.zeros(0, np.uint16),
    )
    if True:
        eng = engine
        part = eng.create_partition(0, cores=[0, 1, 2, 3])
        with pytest.raises(InvalidArgument, match="iaf_psc_delta"):
            eng.load(part, net)
        lif = NeuronGroup(count=2, model=Model.LIF, tau_m=5.0, v_th=1.0, v_reset=0.0, t_ref=2.0)
        with pytest.raises(InvalidArgument, match=r"group 0 \(LIF\)"):
            eng.load(
                part,
                Network(
                    groups=(lif,), src=net.src, dst=net.dst, weight=net.weight, delay=net.delay
                ),
            )
        with pytest.raises(ValueError, match="bias holds"):
            eng.load(
                part,
                Network(
                    groups=(NeuronGroup.nir(Model.LI, 2, tau_m=5.0),),
                    src=net.src,
                    dst=net.dst,
                    weight=net.weight,
                    delay=net.delay,
                    bias=np.zeros(3, np.float32),
                ),
            )
