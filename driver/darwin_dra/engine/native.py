"""The typed face of the C engine. This is the only module that touches cffi: every C error code
becomes an exception from engine.errors carrying the engine's message, and every buffer crosses
as a numpy array (never one call per spike)."""

from __future__ import annotations

import enum
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.engine._engine_cffi import ffi, lib
from darwin_dra.engine.errors import BY_CODE, EngineError, InvalidArgument, QueueOverflow
from darwin_dra.engine.network import Kernel, Network
from darwin_dra.hardware.model import (
    ChipEntry,
    ChipInfo,
    ChipProfile,
    CoreInfo,
    DomainInfo,
    Inventory,
)

# Synaptic events per KEPS, from the C header (the one definition: engine/keps.py).
EVENTS_PER_KEPS: int = int(lib.DK_EVENTS_PER_KEPS)

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
F32 = npt.NDArray[np.float32]


class FaultKind(enum.IntEnum):
    CORE = 0
    DOMAIN = 1
    LINK = 2
    CHIP = 3


class Direction(enum.IntEnum):
    EAST = 0
    WEST = 1
    NORTH = 2
    SOUTH = 3


class Routing(enum.IntEnum):
    """PartitionConfig routingMode: values from the C header (DK_ROUTE_*)."""

    MULTICAST_TREE = int(lib.DK_ROUTE_MULTICAST_TREE)
    XY = int(lib.DK_ROUTE_XY)

    @property
    def mode(self) -> str:
        """The PartitionConfig ``routingMode`` name."""
        return "xy" if self is Routing.XY else "multicast-tree"

    @classmethod
    def from_mode(cls, mode: str) -> Routing:
        """The routing of a PartitionConfig ``routingMode`` ("xy" or "multicast-tree")."""
        by_name = {"multicast-tree": cls.MULTICAST_TREE, "xy": cls.XY}
        if mode not in by_name:
            raise ValueError(f"routingMode {mode!r} is not one of {', '.join(by_name)}")
        return by_name[mode]


@dataclass(frozen=True)
class PartitionConfig:
    """What a partition was configured with before a network was loaded; 0 is not limited."""

    timestep_us: int = 0  # a network must step by exactly this (0: any)
    routing: Routing = Routing.MULTICAST_TREE
    max_neurons: int = 0  # a share's grant
    max_synapses: int = 0


@dataclass(frozen=True)
class PartitionInfo:
    id: int
    chip: int
    cores: tuple[int, ...]
    shared: bool
    keps_budget: int


@dataclass(frozen=True)
class Telemetry:
    steps: int
    spikes: int
    input_spikes: int
    events: int
    drive_events: int
    packets: int
    dropped_queue: int
    dropped_fault: int
    dropped_budget: int
    dropped_input: int
    dropped_output: int
    queue_peak: int
    wall_ns: int
    update_ns: int
    deliver_ns: int
    keps: float  # events per second of model time / 1000 (engine/keps.py)
    host_keps: float  # events per wall second / 1000: how fast this host simulated
    synapse_bytes: int
    synapses: int  # held: listed ones and those the kernels imply
    network_bytes: int
    quant_error_mv: float
    cores_used: int
    threads: int

    @property
    def dropped(self) -> int:
        return (
            self.dropped_queue
            + self.dropped_fault
            + self.dropped_budget
            + self.dropped_input
            + self.dropped_output
        )


def keps_of(events: int, steps: int, dt_ms: float) -> float:
    """The engine's own KEPS of `events` delivered in `steps` steps of `dt_ms` (model time)."""
    return float(lib.dk_keps_of(events, steps, float(np.float32(dt_ms))))  # the engine's dt


def keps_events_per_step(keps: float, dt_ms: float) -> float:
    """The events per step of `dt_ms` that `keps` stands for (how the engine enforces a grant)."""
    return float(lib.dk_keps_events_per_step(keps, float(np.float32(dt_ms))))


def _check(rc: int, accepted: int = 0) -> None:
    if rc == lib.DK_OK:
        return
    message = ffi.string(lib.dk_last_error()).decode("utf-8", "replace")
    cls = BY_CODE.get(rc, EngineError)
    if cls is QueueOverflow:
        raise QueueOverflow(message, accepted)
    raise cls(message)


def _text(value: Any) -> str:
    return str(ffi.string(value).decode("utf-8", "replace"))


def _put(field: Any, text: str, size: int) -> None:
    raw = text.encode()
    if len(raw) >= size:
        raise ValueError(f"{text!r} is longer than {size - 1} bytes")
    ffi.memmove(field, raw + b"\0", len(raw) + 1)


class Engine:
    """One engine instance: the chips of a node, their partitions and networks.

    Thread-safe: the C engine locks internally and cffi releases the GIL during calls, so
    partitions may run in parallel from several Python threads."""

    def __init__(self) -> None:
        out = ffi.new("dk_engine **")
        _check(lib.dk_engine_create(out))
        self._ptr: Any = out[0]
        self._extra: dict[int, ChipEntry] = {}
        self._closed = threading.Event()
        # This instance's identity: what lives on the chips (partitions, networks, faults) lives
        # as long as it. A new engine is a chip reset, and gets a new one.
        self.boot_id = uuid.uuid4().hex

    @classmethod
    def for_node(cls, inventory: Inventory, profiles: dict[str, ChipProfile], node: str) -> Engine:
        """An engine holding the chips the inventory lists for `node`, in inventory order."""
        engine = cls()
        try:
            for entry in inventory.node(node).chips:
                engine.add_chip(profiles[entry.model], entry)
        except BaseException:
            engine.close()
            raise
        return engine

    # ---- lifetime ----
    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            lib.dk_engine_destroy(self._ptr)
            self._ptr = ffi.NULL

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _p(self) -> Any:
        if self._closed.is_set():
            raise EngineError("the engine is closed")
        return self._ptr

    @staticmethod
    def version() -> str:
        return _text(lib.dk_version())

    @staticmethod
    def simd_path() -> str:
        """The vector path the neuron updates run on this CPU (chosen at load time)."""
        return _text(lib.dk_simd_path())

    # ---- chips and discovery ----
    def add_chip(self, profile: ChipProfile, entry: ChipEntry) -> int:
        prof = ffi.new("dk_chip_profile *")
        _put(prof.model, profile.model, 32)
        prof.mesh_w, prof.mesh_h = profile.mesh_w, profile.mesh_h
        prof.domain_w, prof.domain_h = profile.domain_w, profile.domain_h
        prof.controller_x, prof.controller_y = profile.controller_x, profile.controller_y
        prof.neurons_per_core = profile.neurons_per_core
        prof.synapses_per_chip = profile.synapses_per_chip
        prof.core_queue_events = profile.core_queue_events
        prof.router_events_per_s = profile.router_events_per_s
        prof.energy_pj_per_op = profile.energy_pj_per_op
        desc = ffi.new("dk_chip_desc *")
        _put(desc.serial, entry.serial, 64)
        _put(desc.fabric, entry.fabric, 64)
        desc.numa_node = entry.numa_node
        out = ffi.new("uint32_t *")
        _check(lib.dk_chip_add(self._p(), prof, desc, out))
        chip = int(out[0])
        self._extra[chip] = entry
        return chip

    def chip_count(self) -> int:
        out = ffi.new("uint32_t *")
        _check(lib.dk_chip_count(self._p(), out))
        return int(out[0])

    def domain(self, chip: int, domain: int) -> DomainInfo:
        d = ffi.new("dk_domain_info *")
        _check(lib.dk_domain_info_get(self._p(), chip, domain, d))
        return DomainInfo(
            domain=d.domain,
            x0=d.x0,
            y0=d.y0,
            x1=d.x1,
            y1=d.y1,
            n_cores=d.n_cores,
            failed_cores=d.failed_cores,
            healthy=d.health == lib.DK_HEALTH_OK,
        )

    def chip(self, chip: int) -> ChipInfo:
        c = ffi.new("dk_chip_info *")
        _check(lib.dk_chip_info_get(self._p(), chip, c))
        entry = self._extra.get(chip)
        return ChipInfo(
            id=c.id,
            model=_text(c.model),
            serial=_text(c.serial),
            fabric=_text(c.fabric),
            numa_node=c.numa_node,
            mesh_w=c.mesh_w,
            mesh_h=c.mesh_h,
            n_domains=c.n_domains,
            n_cores=c.n_cores,
            neurons_per_core=c.neurons_per_core,
            synapses_per_chip=c.synapses_per_chip,
            router_events_per_s=c.router_events_per_s,
            energy_pj_per_op=c.energy_pj_per_op,
            failed_cores=c.failed_cores,
            failed_links=c.failed_links,
            healthy=c.health == lib.DK_HEALTH_OK,
            domains=tuple(self.domain(chip, d) for d in range(c.n_domains)),
            pcie_root=entry.pcie_root if entry else "",
            firmware=entry.firmware if entry else "",
        )

    def chips(self) -> list[ChipInfo]:
        return [self.chip(i) for i in range(self.chip_count())]

    def core(self, chip: int, core: int) -> CoreInfo:
        c = ffi.new("dk_core_info *")
        _check(lib.dk_core_info_get(self._p(), chip, core, c))
        return CoreInfo(
            core=c.core,
            x=c.x,
            y=c.y,
            domain=c.domain,
            healthy=c.health == lib.DK_HEALTH_OK,
            partition=None if c.partition < 0 else int(c.partition),
        )

    def cores(self, chip: int) -> list[CoreInfo]:
        return [self.core(chip, i) for i in range(self.chip(chip).n_cores)]

    def link_index(self, chip: int, x: int, y: int, direction: Direction) -> int | None:
        out = ffi.new("int32_t *")
        _check(lib.dk_link_index(self._p(), chip, x, y, int(direction), out))
        return None if out[0] < 0 else int(out[0])

    def link_count(self, chip: int) -> int:
        out = ffi.new("uint32_t *")
        _check(lib.dk_link_count(self._p(), chip, out))
        return int(out[0])

    # ---- partitions ----
    def create_partition(
        self,
        chip: int,
        *,
        cores: Sequence[int] | None = None,
        domains: Sequence[int] | None = None,
        shared: bool = False,
        keps_budget: int = 0,
        config: PartitionConfig | None = None,
    ) -> int:
        """A partition from explicit cores or whole domains (exactly one of the two),
        configured with `config` if given (all or nothing: a refused config leaves none)."""
        if (cores is None) == (domains is None):
            raise ValueError("give either cores or domains")
        if keps_budget < 0:
            raise ValueError("keps_budget must be >= 0 (0 means unlimited)")
        ids = list(cores if cores is not None else domains or [])
        if any(not isinstance(i, int | np.integer) or i < 0 or i >= 2**32 for i in ids):
            raise ValueError("core and domain ids must be integers in [0, 2^32)")
        arr = ffi.new("uint32_t[]", ids or [0])
        out = ffi.new("uint32_t *")
        mode = lib.DK_PART_SHARED if shared else lib.DK_PART_EXCLUSIVE
        fn = lib.dk_partition_create if cores is not None else lib.dk_partition_create_domains
        _check(fn(self._p(), chip, arr, len(ids), mode, keps_budget, out))
        part = int(out[0])
        if config is not None:
            try:
                self.configure(part, config)
            except BaseException:
                self.destroy_partition(part)
                raise
        return part

    def destroy_partition(self, part: int) -> None:
        _check(lib.dk_partition_destroy(self._p(), part))

    def partition(self, part: int) -> PartitionInfo:
        chip = ffi.new("uint32_t *")
        count = ffi.new("uint32_t *")
        mode = ffi.new("int32_t *")
        budget = ffi.new("uint64_t *")
        cap = 1024
        while True:
            buf = ffi.new("uint32_t[]", cap)
            rc = lib.dk_partition_cores(self._p(), part, chip, buf, cap, count, mode, budget)
            if rc == lib.DK_E_OVERFLOW and count[0] > cap:
                cap = int(count[0])
                continue
            _check(rc)
            return PartitionInfo(
                id=part,
                chip=int(chip[0]),
                cores=tuple(int(buf[i]) for i in range(count[0])),
                shared=mode[0] == lib.DK_PART_SHARED,
                keps_budget=int(budget[0]),
            )

    def partitions(self) -> list[PartitionInfo]:
        count = ffi.new("uint32_t *")
        _check(lib.dk_partition_count(self._p(), count))
        cap = int(count[0]) + 16
        buf = ffi.new("uint32_t[]", cap)
        _check(lib.dk_partition_ids(self._p(), buf, cap, count))
        out = []
        for i in range(count[0]):
            try:
                out.append(self.partition(int(buf[i])))
            except EngineError:  # destroyed meanwhile by another thread
                continue
        return out

    def configure(self, part: int, config: PartitionConfig) -> None:
        """Sets a partition's configuration; before a network is loaded (else Conflict)."""
        for name in ("timestep_us", "max_neurons", "max_synapses"):
            if getattr(config, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 means not limited)")
        cfg = ffi.new("dk_partition_config *")
        cfg.timestep_us = config.timestep_us
        cfg.routing = int(config.routing)
        cfg.max_neurons = config.max_neurons
        cfg.max_synapses = config.max_synapses
        _check(lib.dk_partition_configure(self._p(), part, cfg))

    def config(self, part: int) -> PartitionConfig:
        cfg = ffi.new("dk_partition_config *")
        _check(lib.dk_partition_config_get(self._p(), part, cfg))
        return PartitionConfig(
            timestep_us=int(cfg.timestep_us),
            routing=Routing(cfg.routing),
            max_neurons=int(cfg.max_neurons),
            max_synapses=int(cfg.max_synapses),
        )

    def set_budget(self, part: int, keps_budget: int) -> None:
        if keps_budget < 0:
            raise ValueError("keps_budget must be >= 0 (0 means unlimited)")
        _check(lib.dk_partition_set_budget(self._p(), part, keps_budget))

    # ---- networks ----
    def load(self, part: int, net: Network) -> None:
        groups = ffi.new("dk_group[]", len(net.groups) or 1)
        for i, g in enumerate(net.groups):
            if g.count < 0 or g.count >= 2**32:
                raise ValueError(f"group {i}: count must be in [0, 2^32)")
            groups[i].count = g.count
            groups[i].tau_m, groups[i].v_th, groups[i].v_reset = g.tau_m, g.v_th, g.v_reset
            groups[i].e_l, groups[i].i_e_mv_per_ms, groups[i].t_ref = g.e_l, g.i_e, g.t_ref
            groups[i].v_init = g.v_init
            groups[i].poisson_rate_hz, groups[i].poisson_weight = (
                g.poisson_rate_hz,
                g.poisson_weight,
            )
            groups[i].model, groups[i].reset = int(g.model), int(g.reset)
            groups[i].tau_syn, groups[i].r, groups[i].w_in = g.tau_syn, g.r, g.w_in
            if not 0 <= g.bias_start < 2**32:
                raise ValueError(f"group {i}: bias_start must be in [0, 2^32)")
            groups[i].bias_start = g.bias_start
        cols = (net.src, net.dst, net.weight, net.delay)
        dtypes = (np.uint32, np.uint32, np.float32, np.uint16)
        arrays = [np.ascontiguousarray(c, dtype=t) for c, t in zip(cols, dtypes, strict=True)]
        n = arrays[0].shape[0]
        if any(a.ndim != 1 or a.shape[0] != n for a in arrays):
            raise ValueError("src, dst, weight and delay must be 1-D arrays of equal length")
        kernels, keep = self._kernels(net.kernels, n)
        if keep is not None:  # the synapses the kernels stand for are not loaded one by one
            arrays = [a[keep] for a in arrays]
            n = arrays[0].shape[0]
        if not 0 <= net.n_inputs < 2**32 or not 0 <= net.seed < 2**64:
            raise ValueError("n_inputs must fit 32 bits and seed 64 bits")
        desc = ffi.new("dk_network_desc *")
        desc.n_neurons = net.n_neurons
        desc.n_inputs = net.n_inputs
        desc.n_groups = len(net.groups)
        desc.groups = groups
        desc.n_synapses = n
        bufs = [ffi.from_buffer(a) for a in arrays]
        desc.src = ffi.cast("uint32_t *", bufs[0])
        desc.dst = ffi.cast("uint32_t *", bufs[1])
        desc.weight = ffi.cast("float *", bufs[2])
        desc.delay = ffi.cast("uint16_t *", bufs[3])
        desc.dt_ms = net.dt_ms
        desc.seed = net.seed
        bias = None
        if net.bias is not None:
            bias = np.ascontiguousarray(net.bias, dtype=np.float32)
            if bias.shape != (net.n_neurons,):
                raise ValueError(f"bias holds {bias.shape} values, the network has {net.n_neurons}")
            desc.bias = ffi.cast("float *", ffi.from_buffer(bias))
        if kernels is not None:
            desc.n_kernels = len(net.kernels)
            desc.kernels = kernels[0]
        _check(lib.dk_network_load(self._p(), part, desc))
        if net.kernels:
            held = int(self.telemetry(part).synapses)
            if held != net.n_synapses:
                self.unload(part)
                raise InvalidArgument(
                    f"network {net.name!r}: its kernels imply {held - n} synapses, but they "
                    f"stand for {net.n_synapses - n} of its listed ones"
                )

    @staticmethod
    def _kernels(ks: Sequence[Kernel], n: int) -> tuple[tuple[Any, list[Any]] | None, Any]:
        """The C kernels (and the buffers they point into) and the mask of listed synapses to
        load one by one (None: all of them)."""
        if not ks:
            return None, None
        out = ffi.new("dk_kernel[]", len(ks))
        keep = np.ones(n, dtype=bool)
        alive: list[Any] = []
        for i, k in enumerate(ks):
            a, b = k.synapses
            if not 0 <= a <= b <= n or not keep[a:b].all():
                raise ValueError(f"kernel {i}: synapses {a}:{b} are not a fresh slice of {n}")
            keep[a:b] = False
            w = np.ascontiguousarray(k.weight, dtype=np.float32)
            c_out, h_out, w_out = k.out_shape
            if w.ndim != 4 or w.shape[0] != c_out or w.shape[1] * k.groups != k.in_shape[0]:
                raise ValueError(f"kernel {i}: weight of shape {w.shape} does not fit {k}")
            alive.append(w)
            c = out[i]
            c.src_first, c.dst_first = k.src_first, k.dst_first
            c.c_in, c.h_in, c.w_in = k.in_shape
            c.c_out, c.h_out, c.w_out = c_out, h_out, w_out
            c.k_h, c.k_w = int(w.shape[2]), int(w.shape[3])
            c.stride_h, c.stride_w = k.stride
            c.pad_h, c.pad_w = k.padding
            c.dil_h, c.dil_w = k.dilation
            c.groups, c.delay = k.groups, k.delay
            c.weight = ffi.cast("float *", ffi.from_buffer(w))
        return (out, alive), keep

    def unload(self, part: int) -> None:
        _check(lib.dk_network_unload(self._p(), part))

    def neuron_core(self, part: int, neuron: int) -> int:
        out = ffi.new("uint32_t *")
        _check(lib.dk_neuron_core(self._p(), part, neuron, out))
        return int(out[0])

    def run(self, part: int, steps: int, threads: int = 1) -> None:
        if steps < 0:
            raise ValueError("steps must be >= 0")
        _check(lib.dk_run(self._p(), part, steps, threads))

    def membrane(self, part: int, n_neurons: int) -> F32:
        v = np.empty(n_neurons, dtype=np.float32)
        _check(lib.dk_membrane(self._p(), part, ffi.cast("float *", ffi.from_buffer(v)), n_neurons))
        return v

    def potentials(self, part: int, first: int, count: int) -> tuple[F32, F32]:
        """Membrane potentials and synaptic currents (0 where a model has none) of neurons
        first..first+count-1: the readout of LI and CubaLI layers."""
        if first < 0 or count < 0 or first + count >= 2**32:
            raise ValueError("first and count must be >= 0 and fit 32 bits")
        v = np.empty(count, dtype=np.float32)
        cur = np.empty(count, dtype=np.float32)
        vp = ffi.cast("float *", ffi.from_buffer(v)) if count else ffi.NULL
        cp = ffi.cast("float *", ffi.from_buffer(cur)) if count else ffi.NULL
        _check(lib.dk_potentials(self._p(), part, first, count, vp, cp))
        return v, cur

    def set_membrane(self, part: int, v: npt.ArrayLike) -> None:
        arr = np.ascontiguousarray(v, dtype=np.float32)
        if arr.ndim != 1:
            raise ValueError("membrane potentials must be a 1-D array")
        _check(
            lib.dk_membrane_set(
                self._p(), part, ffi.cast("float *", ffi.from_buffer(arr)), arr.size
            )
        )

    # ---- spike ports ----
    def record(self, part: int, neurons: Iterable[int], capacity: int = 1 << 20) -> None:
        ids = np.ascontiguousarray(np.fromiter(neurons, dtype=np.int64), dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= 2**32):
            raise ValueError("neuron ids must be in [0, 2^32)")
        arr = np.ascontiguousarray(ids, dtype=np.uint32)
        ptr = ffi.cast("uint32_t *", ffi.from_buffer(arr)) if arr.size else ffi.NULL
        _check(lib.dk_record(self._p(), part, ptr, arr.size, capacity))

    def inject(self, part: int, steps: npt.ArrayLike, inputs: npt.ArrayLike) -> int:
        """Queues spikes of virtual inputs (AER: timestep, input id); returns how many were
        accepted. A full queue raises QueueOverflow after accepting what fits."""
        s = np.asarray(steps)
        i = np.asarray(inputs)
        if s.ndim != 1 or s.shape != i.shape:
            raise ValueError("steps and inputs must be 1-D arrays of equal length")
        if s.size and (s.min() < 0 or i.min() < 0 or i.max() >= 2**32):
            raise ValueError("steps must be >= 0 and inputs in [0, 2^32)")
        if s.size >= 2**32:
            raise ValueError("too many spikes in one batch")
        s64 = np.ascontiguousarray(s, dtype=np.uint64)
        i32 = np.ascontiguousarray(i, dtype=np.uint32)
        accepted = ffi.new("uint32_t *")
        sp = ffi.cast("uint64_t *", ffi.from_buffer(s64)) if s64.size else ffi.NULL
        ip = ffi.cast("uint32_t *", ffi.from_buffer(i32)) if i32.size else ffi.NULL
        rc = lib.dk_inject(self._p(), part, sp, ip, s64.size, accepted)
        _check(rc, int(accepted[0]))
        return int(accepted[0])

    def read_spikes(self, part: int, max_spikes: int = 1 << 20) -> tuple[U64, U32]:
        """Drains recorded spikes (up to max_spikes) as (timesteps, neuron ids)."""
        steps = np.empty(max_spikes, dtype=np.uint64)
        ids = np.empty(max_spikes, dtype=np.uint32)
        count = ffi.new("uint32_t *")
        _check(
            lib.dk_read_spikes(
                self._p(),
                part,
                ffi.cast("uint64_t *", ffi.from_buffer(steps)),
                ffi.cast("uint32_t *", ffi.from_buffer(ids)),
                max_spikes,
                count,
            )
        )
        k = int(count[0])
        return steps[:k].copy(), ids[:k].copy()

    def set_input_capacity(self, part: int, capacity: int) -> None:
        _check(lib.dk_input_capacity(self._p(), part, capacity))

    # ---- telemetry ----
    def telemetry(self, part: int) -> Telemetry:
        t = ffi.new("dk_telemetry *")
        _check(lib.dk_telemetry_get(self._p(), part, t))
        return Telemetry(**{name: getattr(t, name) for name in Telemetry.__dataclass_fields__})

    def _u64s(self, fn: Any, part: int, n: int) -> U64:
        out = np.zeros(n, dtype=np.uint64)
        _check(fn(self._p(), part, ffi.cast("uint64_t *", ffi.from_buffer(out)), n))
        return out

    def link_events(self, part: int) -> U64:
        """Events (multicast packets) that crossed each link of the chip's mesh, indexed as
        link_index gives."""
        return self._u64s(lib.dk_link_events, part, self.link_count(self.partition(part).chip))

    def core_events(self, part: int) -> U64:
        """Events delivered to each core the network uses (partition cores in ascending order)."""
        return self._u64s(lib.dk_core_events, part, self.telemetry(part).cores_used)

    def spike_counts(self, part: int, n_sources: int) -> U64:
        return self._u64s(lib.dk_spike_counts, part, n_sources)

    # ---- faults ----
    def inject_fault(self, chip: int, kind: FaultKind, index: int = 0) -> None:
        _check(lib.dk_fault_inject(self._p(), chip, int(kind), index))

    def clear_fault(self, chip: int, kind: FaultKind, index: int = 0) -> None:
        _check(lib.dk_fault_clear(self._p(), chip, int(kind), index))
