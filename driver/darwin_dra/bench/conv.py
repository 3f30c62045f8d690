"""The feed-forward convolutional network of `darwin-dra bench engine --network conv`.

The model is the two-pathway convolutional SNN of the pipeline benchmark
(`darwin_dra.pipeline.benchmodel.two_pathway`, NIR), compiled by the model compiler
(`darwin_dra.models.compile_graph`) into the engine's network: its convolutions and pools are
kernels on the engine, and the same compiled arrays (src, dst, weight, delay, one row a
synapse) are what Brian2 simulates. The input is a Bernoulli spike train on every input
channel, drawn from the seed, the same for every simulator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.models import CompiledModel, compile_graph

I64 = npt.NDArray[np.int64]

CONV_KIND = "conv"


@dataclass(frozen=True)
class ConvConfig:
    """The conv benchmark: the model's size and the input's density, warm-up and timed steps.

    `n` and `sim_ms` have the meaning they have in BrunelConfig (neurons; timed model time),
    so that `BenchResult.from_counts` rates both networks alike."""

    size: int = 64  # image side: 2 x depth x channels x size^2 neurons, + pools and head
    channels: int = 8
    depth: int = 4
    outputs: int = 10
    density: float = 0.1  # input spikes per input channel and step
    dt_ms: float = 0.1  # the compiler's default step (NIR has none)
    # 1,000 timed steps (0.1 s of model time): 200 gave the engine 0.05 s of wall time, and
    # its two-thread runs of one block ranged 340..556 Mev/s; 100 untimed steps give the
    # workers' split a measured run to go by (a network's first run splits the cores evenly).
    warmup_steps: int = 100
    sim_steps: int = 1000
    model_seed: int = 1
    kind: str = CONV_KIND

    def __post_init__(self) -> None:
        if self.size < 8 or self.size % 8:
            raise ValueError(f"size {self.size} must be a positive multiple of 8")
        if min(self.channels, self.depth, self.outputs, self.sim_steps) < 1:
            raise ValueError("channels, depth, outputs and sim_steps must be >= 1")
        if self.channels % 2:
            raise ValueError(f"channels {self.channels} must be even (groups of two)")
        if not 0 < self.density <= 1:
            raise ValueError(f"density {self.density} must lie in (0, 1]")
        if self.warmup_steps < 0 or self.kind != CONV_KIND:
            raise ValueError("need warmup_steps >= 0 and kind 'conv'")

    @property
    def n(self) -> int:
        pooled = self.size // 8
        return (
            2 * (self.depth * self.channels * self.size**2 + self.channels * pooled**2)
            + self.outputs
        )

    @property
    def n_inputs(self) -> int:
        return 2 * self.size**2

    @property
    def sim_ms(self) -> float:
        return self.sim_steps * self.dt_ms

    @property
    def warmup_ms(self) -> float:
        return self.warmup_steps * self.dt_ms

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.sim_steps

    def scaled(self, factor: float) -> ConvConfig:
        """`factor` times the neurons: the image side times sqrt(factor), a multiple of 8."""
        if factor <= 0:
            raise ValueError("factor must be positive")
        side = max(8, round(self.size * factor**0.5 / 8) * 8)
        return dataclasses.replace(self, size=side)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown ConvConfig fields: {sorted(unknown)}")
        return cls(**data)


def conv_model(cfg: ConvConfig) -> CompiledModel:
    """The compiled model (dt from the config): the engine's network and the peers' arrays."""
    from darwin_dra.pipeline.benchmodel import two_pathway

    graph = two_pathway(
        size=cfg.size,
        channels=cfg.channels,
        depth=cfg.depth,
        outputs=cfg.outputs,
        seed=cfg.model_seed,
    )
    model = compile_graph(graph, dt=cfg.dt_ms * 1e-3, name="conv")
    if model.network.n_neurons != cfg.n or model.network.n_inputs != cfg.n_inputs:
        raise RuntimeError(
            f"conv model: {model.network.n_neurons} neurons, {model.network.n_inputs} inputs;"
            f" ConvConfig says {cfg.n} and {cfg.n_inputs}"
        )
    return model


def input_spikes(cfg: ConvConfig, seed: int) -> tuple[I64, I64]:
    """(step, input id) of every input spike over the whole run, ordered by step then id."""
    rng = np.random.default_rng([seed, 7])
    steps: list[I64] = []
    ids: list[I64] = []
    for s in range(cfg.total_steps):
        on = np.flatnonzero(rng.random(cfg.n_inputs) < cfg.density).astype(np.int64)
        steps.append(np.full(on.size, s, dtype=np.int64))
        ids.append(on)
    return np.concatenate(steps), np.concatenate(ids)


def lif_parameters(model: CompiledModel) -> dict[str, npt.NDArray[np.float64]]:
    """Per neuron: the engine's LIF propagator terms, for a peer to integrate the same model.

    The engine integrates v <- e_l + a_m (v - e_l) + g_x x with a_m = exp(-dt / tau_m) and
    g_x = r (1 - a_m), x the sum of its (engine) weights that arrive in the step; fires when
    v > v_th and resets to v_reset (docs/models.md). Only LIF groups (reset to a value) occur
    in this model; anything else is refused."""
    from darwin_dra.engine.network import Model, Reset

    net = model.network
    out = {k: np.empty(net.n_neurons) for k in ("tau_ms", "e_l", "v_th", "v_reset", "g_x")}
    start = 0
    for g in net.groups:
        if g.model is not Model.LIF or g.reset is not Reset.VALUE:
            raise ValueError(f"conv peers integrate LIF with reset to a value, not {g.model!r}")
        sl = slice(start, start + g.count)
        a_m = np.exp(-net.dt_ms / g.tau_m)
        out["tau_ms"][sl] = g.tau_m
        out["e_l"][sl] = g.e_l
        out["v_th"][sl] = g.v_th
        out["v_reset"][sl] = g.v_reset
        out["g_x"][sl] = g.r * (1.0 - a_m)
        start += g.count
    if net.bias is not None:
        raise ValueError("the conv model has no bias; this one does")
    return out


def source_out_degree(model: CompiledModel) -> I64:
    """Synapses leaving each source: neurons first, then the inputs (the engine's ids)."""
    net = model.network
    return np.bincount(net.src, minlength=net.n_neurons + net.n_inputs).astype(np.int64)
