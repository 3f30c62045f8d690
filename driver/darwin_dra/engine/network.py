"""A spiking network as the engine loads it: neuron groups and a synapse list (numpy)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from darwin_dra.engine.native import lib

U32 = npt.NDArray[np.uint32]
U16 = npt.NDArray[np.uint16]
F32 = npt.NDArray[np.float32]


class Model(enum.IntEnum):
    """Neuron models of the engine (the values are the C header's DK_MODEL_*)."""

    IAF_PSC_DELTA = int(lib.DK_MODEL_IAF_PSC_DELTA)  # NEST's iaf_psc_delta: the default
    LIF = int(lib.DK_MODEL_LIF)  # tau_m dv/dt = (e_l - v) + r x; fires when v > v_th
    IF = int(lib.DK_MODEL_IF)  # dv/dt = r x (t in ms)
    # tau_syn di/dt = -i + w_in x; tau_m dv/dt = (e_l - v) + r i
    CUBA_LIF = int(lib.DK_MODEL_CUBA_LIF)
    LI = int(lib.DK_MODEL_LI)  # LIF without firing: a readout
    CUBA_LI = int(lib.DK_MODEL_CUBA_LI)  # CUBA_LIF without firing: a readout
    THRESHOLD = int(lib.DK_MODEL_THRESHOLD)  # v = x; fires when x > v_th

    @property
    def spiking(self) -> bool:
        return self not in (Model.LI, Model.CUBA_LI)


class Reset(enum.IntEnum):
    """What a spike does to the potential of a NIR model: v <- v_reset, or v <- v - (v_th -
    v_reset) (by subtraction, keeping the excess over the threshold)."""

    VALUE = int(lib.DK_RESET_VALUE)
    SUBTRACT = int(lib.DK_RESET_SUBTRACT)


@dataclass(frozen=True)
class NeuronGroup:
    """A group of neurons sharing one model and its parameters.

    The default model is NEST's iaf_psc_delta: current-based leaky integrate-and-fire with delta
    synapses. Potentials in mV, times in ms; `i_e` is the constant input current divided by the
    membrane capacitance (mV/ms). The Poisson drive is generated inside the engine, per neuron.

    The NIR models (`model` other than IAF_PSC_DELTA, see docs/models.md) use tau_m, v_th,
    v_reset, e_l (the leak potential), v_init, and `reset`, `tau_syn` (ms), `r` (the input gain;
    per ms for IF) and `w_in`; they take a constant input as the network's per-neuron `bias`,
    and leave i_e, t_ref and the Poisson drive at zero."""

    count: int
    tau_m: float = 20.0
    v_th: float = 20.0
    v_reset: float = 10.0
    e_l: float = 0.0
    i_e: float = 0.0
    t_ref: float = 2.0
    v_init: float = 0.0
    poisson_rate_hz: float = 0.0
    poisson_weight: float = 0.0
    model: Model = Model.IAF_PSC_DELTA
    reset: Reset = Reset.VALUE
    tau_syn: float = 0.0
    r: float = 0.0
    w_in: float = 0.0
    bias_start: int = 0  # the bias applies from this step on (a layer's latency)

    @staticmethod
    def nir(
        model: Model,
        count: int,
        *,
        tau_m: float = 0.0,
        tau_syn: float = 0.0,
        r: float = 1.0,
        w_in: float = 0.0,
        v_th: float = 1.0,
        v_reset: float = 0.0,
        e_l: float = 0.0,
        v_init: float = 0.0,
        reset: Reset = Reset.VALUE,
        bias_start: int = 0,
    ) -> NeuronGroup:
        """A group of a NIR model, with the iaf_psc_delta-only fields at zero."""
        return NeuronGroup(
            count=count,
            tau_m=tau_m,
            v_th=v_th,
            v_reset=v_reset,
            e_l=e_l,
            t_ref=0.0,
            v_init=v_init,
            model=model,
            reset=reset,
            tau_syn=tau_syn,
            r=r,
            w_in=w_in,
            bias_start=bias_start,
        )


@dataclass(frozen=True)
class Kernel:
    """A convolution or pooling projection that the engine keeps once per kernel (C dk_kernel).

    It stands for the synapses ``synapses[0]:synapses[1]`` of its network's arrays, which list
    them one by one too (for whatever reads synapses: the planner, the exporter, a wire); the
    engine loads the kernel instead of them and checks that the kernel implies exactly as many.
    Input (ci, y, x) is source ``src_first + (ci h + y) w + x``; output (co, oy, ox) is neuron
    ``dst_first + (co h' + oy) w' + ox`` and takes input (ci, oy sy - py + ky dy, ox sx - px +
    kx dx) with ``weight[co, ci % (c_in / groups), ky, kx]``."""

    src_first: int
    dst_first: int
    in_shape: tuple[int, int, int]  # channels, height, width
    out_shape: tuple[int, int, int]
    weight: F32  # (c_out, c_in / groups, k_h, k_w)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    delay: int = 1
    synapses: tuple[int, int] = (0, 0)  # the slice of the network's arrays it stands for


@dataclass(frozen=True)
class Network:
    """Neurons 0..n-1 come from the groups in order; inputs n..n+n_inputs-1 are virtual sources
    fed by injected spikes (the import side of a spike port)."""

    groups: tuple[NeuronGroup, ...]
    src: U32
    dst: U32
    weight: F32
    delay: U16
    n_inputs: int = 0
    dt_ms: float = 0.1
    seed: int = 1
    name: str = field(default="network")
    bias: F32 | None = None  # constant input per neuron and step (NIR models only)
    kernels: tuple[Kernel, ...] = ()  # projections the engine keeps once per kernel

    @property
    def n_neurons(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def n_synapses(self) -> int:
        return int(self.src.shape[0])


def synapses(
    src: npt.ArrayLike, dst: npt.ArrayLike, weight: npt.ArrayLike, delay: npt.ArrayLike
) -> tuple[U32, U32, F32, U16]:
    """Converts synapse columns to the engine's dtypes, refusing values that do not fit."""
    cols: list[npt.NDArray[np.generic]] = [np.asarray(a) for a in (src, dst, weight, delay)]
    n = cols[0].shape
    if any(c.ndim != 1 or c.shape != n for c in cols):
        raise ValueError("src, dst, weight and delay must be 1-D arrays of equal length")
    for name, col, hi in (
        ("src", cols[0], 2**32 - 1),
        ("dst", cols[1], 2**32 - 1),
        ("delay", cols[3], 2**16 - 1),
    ):
        if col.size and (
            not np.issubdtype(col.dtype, np.integer) or col.min() < 0 or col.max() > hi
        ):
            raise ValueError(f"{name} must hold integers in [0, {hi}]")
    return (
        np.ascontiguousarray(cols[0], dtype=np.uint32),
        np.ascontiguousarray(cols[1], dtype=np.uint32),
        np.ascontiguousarray(cols[2], dtype=np.float32),
        np.ascontiguousarray(cols[3], dtype=np.uint16),
    )
