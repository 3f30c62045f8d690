"""The plain values the C engine's structs are built from (pure: no cffi, no engine).

engine/native.py hands these field mappings to cffi as struct initialisers and points the
structs' pointers into these contiguous numpy columns; every value is checked here first, so a
bad one is refused with the field it belongs to before anything crosses into C."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.engine.network import Kernel, Network, NeuronGroup
from darwin_dra.hardware.model import ChipProfile

F32 = npt.NDArray[np.float32]
Fields = dict[str, Any]

# The numeric fields of dk_chip_profile, named as in ChipProfile (model is text: native.py).
PROFILE_FIELDS = (
    "mesh_w",
    "mesh_h",
    "domain_w",
    "domain_h",
    "controller_x",
    "controller_y",
    "neurons_per_core",
    "synapses_per_chip",
    "core_queue_events",
    "router_events_per_s",
    "energy_pj_per_op",
    "fabric_events_per_s",
    "fabric_grid_w",
)


def profile_fields(profile: ChipProfile) -> Fields:
    return {name: getattr(profile, name) for name in PROFILE_FIELDS}


def _fits_u32(value: int) -> bool:
    return 0 <= value < 2**32


def group_fields(groups: Sequence[NeuronGroup]) -> list[Fields]:
    """The dk_group of each neuron group."""
    out = []
    for i, g in enumerate(groups):
        if not _fits_u32(g.count):
            raise ValueError(f"group {i}: count must be in [0, 2^32)")
        if not _fits_u32(g.bias_start):
            raise ValueError(f"group {i}: bias_start must be in [0, 2^32)")
        out.append(
            {
                "count": g.count,
                "tau_m": g.tau_m,
                "v_th": g.v_th,
                "v_reset": g.v_reset,
                "e_l": g.e_l,
                "i_e_mv_per_ms": g.i_e,
                "t_ref": g.t_ref,
                "v_init": g.v_init,
                "poisson_rate_hz": g.poisson_rate_hz,
                "poisson_weight": g.poisson_weight,
                "model": int(g.model),
                "reset": int(g.reset),
                "tau_syn": g.tau_syn,
                "r": g.r,
                "w_in": g.w_in,
                "bias_start": g.bias_start,
            }
        )
    return out


@dataclass(frozen=True)
class KernelValues:
    """The dk_kernel fields of each kernel (all but its weight pointer) and the contiguous
    weights that pointer points into."""

    fields: list[Fields]
    weights: list[F32]


@dataclass(frozen=True)
class NetworkValues:
    """What dk_network_desc is built from: the synapse columns to load one by one (src, dst,
    weight, delay; without those the kernels stand for), the groups, kernels and bias."""

    groups: list[Fields]
    columns: tuple[npt.NDArray[Any], ...]
    kernels: KernelValues
    bias: F32 | None

    @property
    def n_synapses(self) -> int:
        return int(self.columns[0].shape[0])


def network_values(net: Network) -> NetworkValues:
    """The checked values of `net`'s dk_network_desc (ValueError names what does not fit)."""
    groups = group_fields(net.groups)
    cols = (net.src, net.dst, net.weight, net.delay)
    dtypes = (np.uint32, np.uint32, np.float32, np.uint16)
    arrays = [np.ascontiguousarray(c, dtype=t) for c, t in zip(cols, dtypes, strict=True)]
    n = arrays[0].shape[0]
    if any(a.ndim != 1 or a.shape[0] != n for a in arrays):
        raise ValueError("src, dst, weight and delay must be 1-D arrays of equal length")
    kernels, keep = kernel_values(net.kernels, n)
    if keep is not None:  # the synapses the kernels stand for are not loaded one by one
        arrays = [a[keep] for a in arrays]
    if not 0 <= net.n_inputs < 2**32 or not 0 <= net.seed < 2**64:
        raise ValueError("n_inputs must fit 32 bits and seed 64 bits")
    bias = None
    if net.bias is not None:
        bias = np.ascontiguousarray(net.bias, dtype=np.float32)
        if bias.shape != (net.n_neurons,):
            raise ValueError(f"bias holds {bias.shape} values, the network has {net.n_neurons}")
    return NetworkValues(groups=groups, columns=tuple(arrays), kernels=kernels, bias=bias)


def kernel_values(
    ks: Sequence[Kernel], n: int
) -> tuple[KernelValues, npt.NDArray[np.bool_] | None]:
    """The kernels' values and the mask of the `n` listed synapses to load one by one (None:
    all of them)."""
    out = KernelValues(fields=[], weights=[])
    if not ks:
        return out, None
    keep = np.ones(n, dtype=bool)
    for i, k in enumerate(ks):
        a, b = k.synapses
        if not 0 <= a <= b <= n or not keep[a:b].all():
            raise ValueError(f"kernel {i}: synapses {a}:{b} are not a fresh slice of {n}")
        keep[a:b] = False
        w = np.ascontiguousarray(k.weight, dtype=np.float32)
        c_out, h_out, w_out = k.out_shape
        if w.ndim != 4 or w.shape[0] != c_out or w.shape[1] * k.groups != k.in_shape[0]:
            raise ValueError(f"kernel {i}: weight of shape {w.shape} does not fit {k}")
        out.weights.append(w)
        c_in, h_in, w_in = k.in_shape
        out.fields.append(
            {
                "src_first": k.src_first,
                "dst_first": k.dst_first,
                "c_in": c_in,
                "h_in": h_in,
                "w_in": w_in,
                "c_out": c_out,
                "h_out": h_out,
                "w_out": w_out,
                "k_h": int(w.shape[2]),
                "k_w": int(w.shape[3]),
                "stride_h": k.stride[0],
                "stride_w": k.stride[1],
                "pad_h": k.padding[0],
                "pad_w": k.padding[1],
                "dil_h": k.dilation[0],
                "dil_w": k.dilation[1],
                "groups": k.groups,
                "delay": k.delay,
            }
        )
    return out, keep


def ids_u32(values: npt.ArrayLike, what: str) -> npt.NDArray[np.uint32]:
    """`values` as contiguous uint32 ids, refusing any outside [0, 2^32)."""
    ids = np.asarray(values)
    if ids.size and (ids.min() < 0 or ids.max() >= 2**32):
        raise ValueError(f"{what} must be in [0, 2^32)")
    return np.ascontiguousarray(ids, dtype=np.uint32)


def spike_batch(
    steps: npt.ArrayLike, inputs: npt.ArrayLike
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]:
    """Spikes to inject (AER: timestep, input id) as contiguous columns, checked."""
    s = np.asarray(steps)
    i = np.asarray(inputs)
    if s.ndim != 1 or s.shape != i.shape:
        raise ValueError("steps and inputs must be 1-D arrays of equal length")
    if s.size and (s.min() < 0 or i.min() < 0 or i.max() >= 2**32):
        raise ValueError("steps must be >= 0 and inputs in [0, 2^32)")
    if s.size >= 2**32:
        raise ValueError("too many spikes in one batch")
    return np.ascontiguousarray(s, dtype=np.uint64), np.ascontiguousarray(i, dtype=np.uint32)
