"""The Brunel (2000) sparse random network shared by the engine and its peers.

Every simulator in the benchmark builds the network from the same `BrunelConfig`, the same
connectivity (`connectivity` / `iter_connectivity`) and the same initial membrane potentials
(`initial_v`), so spike counts and rates are comparable and only the simulator differs.

Conventions (the same for every simulator):

* fixed in-degree: each neuron draws `c_e` sources uniformly from the excitatory population
  [0, n_e) and `c_i` from the inhibitory population [n_e, n), with replacement. Autapses
  and multapses are therefore allowed (a neuron may draw itself, or a source twice); with
  these sizes that is ~0.01 % of the synapses.
* initial V uniform in [v_init_low_mv, theta_mv), drawn from the seed.
* the external drive is an independent Poisson train of rate `nu_ext_hz` per neuron, each
  spike adding `j_mv` to V; input arriving while a neuron is refractory is discarded
  (NEST iaf_psc_delta's default).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

U32Array = npt.NDArray[np.uint32]
F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]

# Connectivity is drawn per block of this many targets, each block from its own stream,
# so a simulator can build block by block (bounded memory) and still get the exact
# arrays `connectivity` returns. Changing it changes the network: keep it constant.
TARGET_BLOCK = 1024

DEFAULT_SEED = 12345


@dataclass(frozen=True)
class BrunelConfig:
    """Parameters of the network (units in the field names)."""

    n_e: int = 8000
    n_i: int = 2000
    c_e: int = 800
    c_i: int = 200
    tau_m_ms: float = 20.0
    theta_mv: float = 20.0
    v_reset_mv: float = 10.0
    e_l_mv: float = 0.0
    t_ref_ms: float = 2.0
    j_mv: float = 0.1
    g: float = 6.0
    delay_ms: float = 1.5
    dt_ms: float = 0.1
    eta: float = 1.5
    v_init_low_mv: float = 0.0
    warmup_ms: float = 200.0
    sim_ms: float = 1000.0
    # A trained network's synapses (`trained()`): each weight times a lognormal factor of mean
    # 1 and this sigma (0: the population weights J and -g J), and each delay drawn uniformly
    # from the dt grid on [delay_ms, delay_max_ms] (0: every delay is delay_ms).
    weight_sigma: float = 0.0
    delay_max_ms: float = 0.0
    # A peer given the engine's weights (`engine_weights`) instead of the exact ones: what the
    # engine's quantisation to 256 levels does to the rates, measured in one simulator.
    quantised: bool = False

    def __post_init__(self) -> None:
        if min(self.n_e, self.n_i, self.c_e) < 1 or self.c_i < 0:
            raise ValueError("population sizes and in-degrees must be positive")
        if self.dt_ms <= 0 or self.delay_ms < self.dt_ms:
            raise ValueError("need 0 < dt_ms <= delay_ms")
        if self.sim_ms <= 0 or self.warmup_ms < 0:
            raise ValueError("need sim_ms > 0 and warmup_ms >= 0")
        if self.weight_sigma < 0 or (self.delay_max_ms and self.delay_max_ms < self.delay_ms):
            raise ValueError("need weight_sigma >= 0 and delay_max_ms 0 or >= delay_ms")

    @classmethod
    def trained(cls) -> BrunelConfig:
        """The Brunel network with a trained network's synapses: a weight per synapse from a
        continuous (lognormal) distribution and delays spread uniformly over 1 to 4 ms."""
        return cls(weight_sigma=0.5, delay_ms=1.0, delay_max_ms=4.0)

    @property
    def per_synapse(self) -> bool:
        return self.weight_sigma > 0 or self.delay_max_ms > 0

    @property
    def n(self) -> int:
        return self.n_e + self.n_i

    @property
    def n_synapses(self) -> int:
        return self.n * (self.c_e + self.c_i)

    @property
    def j_inh_mv(self) -> float:
        return -self.g * self.j_mv

    @property
    def nu_thr_hz(self) -> float:
        """External rate per excitatory input that alone brings mean V to threshold."""
        return self.theta_mv / (self.j_mv * self.c_e * self.tau_m_ms * 1e-3)

    @property
    def nu_ext_hz(self) -> float:
        """Total Poisson rate of the external drive per neuron (15 kHz at full size)."""
        return self.eta * self.nu_thr_hz * self.c_e

    @property
    def warmup_steps(self) -> int:
        return round(self.warmup_ms / self.dt_ms)

    @property
    def sim_steps(self) -> int:
        return round(self.sim_ms / self.dt_ms)

    def scaled(self, factor: float) -> BrunelConfig:
        """A network `factor` times the size, in-degrees scaled the same way.

        J and eta are kept, so the external drive (eta * theta / (J * tau_m)) is unchanged
        and the balance g * c_i / c_e stays the same; the rate moves a little because the
        recurrent fluctuations shrink with the in-degree.
        """
        if factor <= 0:
            raise ValueError("factor must be positive")

        def s(x: int) -> int:
            return max(1, round(x * factor))

        return dataclasses.replace(
            self, n_e=s(self.n_e), n_i=s(self.n_i), c_e=s(self.c_e), c_i=s(self.c_i)
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrunelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown BrunelConfig fields: {sorted(unknown)}")
        return cls(**data)


def iter_connectivity(cfg: BrunelConfig, seed: int) -> Iterator[tuple[U32Array, U32Array]]:
    """Yield (src, dst) for consecutive blocks of `TARGET_BLOCK` targets.

    Within a block the synapses are ordered by target; for each target its `c_e`
    excitatory sources come first, then its `c_i` inhibitory ones.
    """
    k = cfg.c_e + cfg.c_i
    for block, start in enumerate(range(0, cfg.n, TARGET_BLOCK)):
        stop = min(start + TARGET_BLOCK, cfg.n)
        rng = np.random.default_rng([seed, block])
        m = stop - start
        src = np.empty((m, k), dtype=np.uint32)
        src[:, : cfg.c_e] = rng.integers(0, cfg.n_e, size=(m, cfg.c_e), dtype=np.uint32)
        src[:, cfg.c_e :] = rng.integers(cfg.n_e, cfg.n, size=(m, cfg.c_i), dtype=np.uint32)
        dst = np.repeat(np.arange(start, stop, dtype=np.uint32), k)
        yield src.reshape(-1), dst


def connectivity(cfg: BrunelConfig, seed: int) -> tuple[U32Array, U32Array]:
    """All synapses as (src, dst) uint32 arrays of length `cfg.n_synapses`, sorted by dst."""
    src = np.empty(cfg.n_synapses, dtype=np.uint32)
    dst = np.empty(cfg.n_synapses, dtype=np.uint32)
    pos = 0
    for s, d in iter_connectivity(cfg, seed):
        src[pos : pos + len(s)] = s
        dst[pos : pos + len(d)] = d
        pos += len(s)
    return src, dst


def synapse_weights_mv(cfg: BrunelConfig, src: U32Array) -> F64Array:
    """Weight of each synapse from its source: J if excitatory, -g*J if inhibitory (the
    population weights; `iter_synapses` adds a trained network's per-synapse spread)."""
    return np.where(src < cfg.n_e, cfg.j_mv, cfg.j_inh_mv)


def iter_synapses(
    cfg: BrunelConfig, seed: int
) -> Iterator[tuple[U32Array, U32Array, F64Array, F64Array]]:
    """(src, dst, weight mV, delay ms) per block of `iter_connectivity`; the per-synapse
    weights and delays of a trained config come from a stream of their own per block."""
    for block, (src, dst) in enumerate(iter_connectivity(cfg, seed)):
        w = synapse_weights_mv(cfg, src)
        delay: F64Array = np.full(src.shape[0], cfg.delay_ms)
        if cfg.per_synapse:
            rng = np.random.default_rng([seed, block, 1])
            if cfg.weight_sigma > 0:
                s = cfg.weight_sigma
                w = w * rng.lognormal(-0.5 * s * s, s, size=src.shape[0])
            if cfg.delay_max_ms > 0:
                lo, hi = round(cfg.delay_ms / cfg.dt_ms), round(cfg.delay_max_ms / cfg.dt_ms)
                steps = rng.integers(lo, hi + 1, size=src.shape[0])
                delay = np.multiply(steps, cfg.dt_ms, dtype=np.float64)
        yield src, dst, w, delay


def synapses(cfg: BrunelConfig, seed: int) -> tuple[U32Array, U32Array, F64Array, F64Array]:
    """All of `iter_synapses` at once."""
    blocks = list(iter_synapses(cfg, seed))
    return tuple(np.concatenate([b[i] for b in blocks]) for i in range(4))  # type: ignore[return-value]


ENGINE_WEIGHT_LEVELS = 256  # the engine's weight table (DK_MAX_WEIGHTS in darwin_engine.h)


def engine_weights(weight_mv: F64Array) -> F64Array:
    """The weights the engine holds for these (native/src/network.c build_weights): the float32
    values if at most 256 are distinct, else the nearest of 256 levels spread evenly from the
    least to the largest float32 weight."""
    w = weight_mv.astype(np.float32).astype(np.float64)
    if np.unique(w).size <= ENGINE_WEIGHT_LEVELS:
        return w
    lo, hi = float(w.min()), float(w.max())
    step = (hi - lo) / (ENGINE_WEIGHT_LEVELS - 1)
    table = (lo + step * np.arange(ENGINE_WEIGHT_LEVELS)).astype(np.float32).astype(np.float64)
    q = np.clip(np.floor((w - lo) / step + 0.5), 0, ENGINE_WEIGHT_LEVELS - 1).astype(np.int64)
    return table[q]


def out_degree(cfg: BrunelConfig, seed: int) -> I64Array:
    """Number of synapses leaving each neuron (varies: the in-degree is what is fixed)."""
    deg = np.zeros(cfg.n, dtype=np.int64)
    for s, _ in iter_connectivity(cfg, seed):
        deg += np.bincount(s, minlength=cfg.n)
    return deg


def synaptic_events(spikes_per_neuron: npt.ArrayLike, out_deg: I64Array) -> int:
    """Exact number of synaptic events: each spike counts its source's out-degree."""
    counts = np.asarray(spikes_per_neuron, dtype=np.int64)
    if counts.shape != out_deg.shape:
        raise ValueError(f"spike counts {counts.shape} vs out-degree {out_deg.shape}")
    return int(counts @ out_deg)


def initial_v(cfg: BrunelConfig, seed: int) -> F64Array:
    """Initial membrane potentials (mV), uniform in [v_init_low_mv, theta_mv)."""
    # A stream distinct from every connectivity block's ([seed, block]).
    rng = np.random.default_rng([seed, 2**31 - 1, 0])
    return rng.uniform(cfg.v_init_low_mv, cfg.theta_mv, size=cfg.n)


class RunShape(Protocol):
    """What rates a run: its neurons and its timed model time (BrunelConfig, ConvConfig)."""

    @property
    def n(self) -> int: ...

    @property
    def sim_ms(self) -> float: ...


@dataclass(frozen=True)
class BenchResult:
    """One simulator's measurement of the timed part of the run.

    build_s covers network construction from the shared connectivity arrays (for Brian2
    also code generation and compilation); drawing those arrays with numpy is not part
    of it (it is in extra["connectivity_s"]). sim_s is the wall time of the timed
    `sim_ms`, after the untimed warm-up. events is exact: the sum over the timed spikes
    of each source's out-degree. peak_rss_mb is the high-water mark of the process
    that ran the simulation.
    """

    name: str
    threads: int
    build_s: float
    sim_s: float
    spikes: int
    rate_hz: float
    events: int
    events_per_s: float
    ns_per_event: float
    peak_rss_mb: float
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_counts(
        cls,
        *,
        name: str,
        threads: int,
        cfg: RunShape,
        build_s: float,
        sim_s: float,
        spikes: int,
        events: int,
        peak_rss_mb: float,
        extra: dict[str, float] | None = None,
    ) -> BenchResult:
        """Fill in the derived fields (rate, events/s, ns/event) consistently."""
        rate = spikes / (cfg.n * cfg.sim_ms * 1e-3)
        eps = events / sim_s if sim_s > 0 else math.inf
        nspe = sim_s * 1e9 / events if events > 0 else math.inf
        return cls(
            name=name,
            threads=threads,
            build_s=build_s,
            sim_s=sim_s,
            spikes=spikes,
            rate_hz=rate,
            events=events,
            events_per_s=eps,
            ns_per_event=nspe,
            peak_rss_mb=peak_rss_mb,
            extra=dict(extra or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchResult:
        return cls(
            name=str(data["name"]),
            threads=int(data["threads"]),
            build_s=float(data["build_s"]),
            sim_s=float(data["sim_s"]),
            spikes=int(data["spikes"]),
            rate_hz=float(data["rate_hz"]),
            events=int(data["events"]),
            events_per_s=float(data["events_per_s"]),
            ns_per_event=float(data["ns_per_event"]),
            peak_rss_mb=float(data["peak_rss_mb"]),
            extra={str(k): float(v) for k, v in dict(data.get("extra", {})).items()},
        )
