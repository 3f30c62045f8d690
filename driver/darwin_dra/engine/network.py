"""A spiking network as the engine loads it: LIF neuron groups and a synapse list (numpy)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
U16 = npt.NDArray[np.uint16]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class NeuronGroup:
    """Current-based leaky integrate-and-fire neurons with delta synapses (iaf_psc_delta).

    Potentials in mV, times in ms; `i_e` is the constant input current divided by the membrane
    capacitance (mV/ms). The Poisson drive is generated inside the engine, per neuron."""

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
