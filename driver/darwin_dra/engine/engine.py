"""The typed face of the C engine: one Engine holds the chips of a node, their partitions and
networks. It calls C only through engine/native.py (the one module that imports the compiled
engine), so every C error code arrives as an exception from engine.errors carrying the engine's
message, and every buffer crosses as a numpy array (never one call per spike)."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.engine.errors import EngineError, InvalidArgument
from darwin_dra.engine.marshal import ids_u32, network_values, profile_fields, spike_batch
from darwin_dra.engine.native import (
    DelayStore,
    Direction,
    FaultKind,
    PartitionConfig,
    Routing,
    buf,
    check,
    ffi,
    from_struct,
    lib,
    opt,
    put,
    text,
)
from darwin_dra.engine.network import Network
from darwin_dra.engine.records import LinkStats, PartitionInfo, Telemetry
from darwin_dra.hardware.model import (
    ChipEntry,
    ChipInfo,
    ChipProfile,
    CoreInfo,
    DomainInfo,
    Inventory,
)

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
F32 = npt.NDArray[np.float32]


class Engine:
    """One engine instance: the chips of a node, their partitions and networks.

    Thread-safe: the C engine locks internally and cffi releases the GIL during calls, so
    partitions may run in parallel from several Python threads."""

    def __init__(self) -> None:
        out = ffi.new("dk_engine **")
        check(lib.dk_engine_create(out))
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

    def _out(self, fn: Any, *args: Any, ctype: str = "uint32_t *") -> int:
        """The value C function `fn(engine, *args, out)` writes to its last argument."""
        out = ffi.new(ctype)
        check(fn(self._p(), *args, out))
        return int(out[0])

    @staticmethod
    def version() -> str:
        return text(lib.dk_version())

    @staticmethod
    def simd_path() -> str:
        """The vector path the neuron updates run on this CPU (chosen at load time)."""
        return text(lib.dk_simd_path())

    # ---- chips and discovery ----
    def add_chip(self, profile: ChipProfile, entry: ChipEntry) -> int:
        prof = ffi.new("dk_chip_profile *", profile_fields(profile))
        put(prof.model, profile.model)
        desc = ffi.new("dk_chip_desc *")
        put(desc.serial, entry.serial)
        put(desc.fabric, entry.fabric)
        desc.numa_node = entry.numa_node
        chip = self._out(lib.dk_chip_add, prof, desc)
        self._extra[chip] = entry
        return chip

    def chip_count(self) -> int:
        return self._out(lib.dk_chip_count)

    def domain(self, chip: int, domain: int) -> DomainInfo:
        d = ffi.new("dk_domain_info *")
        check(lib.dk_domain_info_get(self._p(), chip, domain, d))
        return from_struct(DomainInfo, d, healthy=d.health == lib.DK_HEALTH_OK)

    def chip(self, chip: int) -> ChipInfo:
        c = ffi.new("dk_chip_info *")
        check(lib.dk_chip_info_get(self._p(), chip, c))
        entry = self._extra.get(chip)
        links = np.zeros(self.link_count(chip) if c.failed_links else 0, np.uint8)
        if links.size:  # which links failed (dk_links_failed: 1 for a failed one)
            check(lib.dk_links_failed(self._p(), chip, buf("uint8_t *", links), links.size))
        return from_struct(
            ChipInfo,
            c,
            healthy=c.health == lib.DK_HEALTH_OK,
            domains=tuple(self.domain(chip, d) for d in range(c.n_domains)),
            pcie_root=entry.pcie_root if entry else "",
            firmware=entry.firmware if entry else "",
            failed_link_ids=tuple(int(i) for i in np.flatnonzero(links)),
        )

    def chips(self) -> list[ChipInfo]:
        return [self.chip(i) for i in range(self.chip_count())]

    def core(self, chip: int, core: int) -> CoreInfo:
        c = ffi.new("dk_core_info *")
        check(lib.dk_core_info_get(self._p(), chip, core, c))
        partition = None if c.partition < 0 else int(c.partition)
        return from_struct(CoreInfo, c, healthy=c.health == lib.DK_HEALTH_OK, partition=partition)

    def cores(self, chip: int) -> list[CoreInfo]:
        return [self.core(chip, i) for i in range(self.chip(chip).n_cores)]

    def link_index(self, chip: int, x: int, y: int, direction: Direction) -> int | None:
        index = self._out(lib.dk_link_index, chip, x, y, int(direction), ctype="int32_t *")
        return None if index < 0 else index

    def link_count(self, chip: int) -> int:
        return self._out(lib.dk_link_count, chip)

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
        mode = lib.DK_PART_SHARED if shared else lib.DK_PART_EXCLUSIVE
        fn = lib.dk_partition_create if cores is not None else lib.dk_partition_create_domains
        part = self._out(fn, chip, arr, len(ids), mode, keps_budget)
        if config is not None:
            try:
                self.configure(part, config)
            except BaseException:
                self.destroy_partition(part)
                raise
        return part

    def destroy_partition(self, part: int) -> None:
        check(lib.dk_partition_destroy(self._p(), part))

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
            check(rc)
            return PartitionInfo(
                id=part,
                chip=int(chip[0]),
                cores=tuple(int(buf[i]) for i in range(count[0])),
                shared=mode[0] == lib.DK_PART_SHARED,
                keps_budget=int(budget[0]),
            )

    def partitions(self) -> list[PartitionInfo]:
        count = ffi.new("uint32_t *")
        check(lib.dk_partition_count(self._p(), count))
        cap = int(count[0]) + 16
        buf = ffi.new("uint32_t[]", cap)
        check(lib.dk_partition_ids(self._p(), buf, cap, count))
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
        fields = {f.name: int(getattr(config, f.name)) for f in dataclasses.fields(config)}
        check(lib.dk_partition_configure(self._p(), part, ffi.new("dk_partition_config *", fields)))

    def config(self, part: int) -> PartitionConfig:
        cfg = ffi.new("dk_partition_config *")
        check(lib.dk_partition_config_get(self._p(), part, cfg))
        got = from_struct(PartitionConfig, cfg)
        return dataclasses.replace(
            got, routing=Routing(got.routing), delay_store=DelayStore(got.delay_store)
        )

    def set_budget(self, part: int, keps_budget: int) -> None:
        if keps_budget < 0:
            raise ValueError("keps_budget must be >= 0 (0 means unlimited)")
        check(lib.dk_partition_set_budget(self._p(), part, keps_budget))

    # ---- networks ----
    def load(self, part: int, net: Network) -> None:
        values = network_values(net)
        groups = ffi.new("dk_group[]", values.groups or [{}])
        kernels = ffi.new("dk_kernel[]", values.kernels.fields or [{}])
        for c, w in zip(kernels, values.kernels.weights, strict=False):
            c.weight = buf("float *", w)
        n = values.n_synapses
        desc = ffi.new("dk_network_desc *")
        desc.n_neurons, desc.n_inputs = net.n_neurons, net.n_inputs
        desc.n_groups, desc.groups = len(values.groups), groups
        desc.n_synapses = n
        src, dst, weight, delay = values.columns
        desc.src, desc.dst = buf("uint32_t *", src), buf("uint32_t *", dst)
        desc.weight, desc.delay = buf("float *", weight), buf("uint16_t *", delay)
        desc.dt_ms, desc.seed = net.dt_ms, net.seed
        if values.bias is not None:
            desc.bias = buf("float *", values.bias)
        if values.kernels.fields:
            desc.n_kernels, desc.kernels = len(values.kernels.fields), kernels
        check(lib.dk_network_load(self._p(), part, desc))
        if net.kernels:
            held = int(self.telemetry(part).synapses)
            if held != net.n_synapses:
                self.unload(part)
                raise InvalidArgument(
                    f"network {net.name!r}: its kernels imply {held - n} synapses, but they "
                    f"stand for {net.n_synapses - n} of its listed ones"
                )

    def unload(self, part: int) -> None:
        check(lib.dk_network_unload(self._p(), part))

    def neuron_core(self, part: int, neuron: int) -> int:
        return self._out(lib.dk_neuron_core, part, neuron)

    def run(self, part: int, steps: int, threads: int = 1) -> None:
        if steps < 0:
            raise ValueError("steps must be >= 0")
        check(lib.dk_run(self._p(), part, steps, threads))

    def membrane(self, part: int, n_neurons: int) -> F32:
        v = np.empty(n_neurons, dtype=np.float32)
        check(lib.dk_membrane(self._p(), part, buf("float *", v), n_neurons))
        return v

    def potentials(self, part: int, first: int, count: int) -> tuple[F32, F32]:
        """Membrane potentials and synaptic currents (0 where a model has none) of neurons
        first..first+count-1: the readout of LI and CubaLI layers."""
        if first < 0 or count < 0 or first + count >= 2**32:
            raise ValueError("first and count must be >= 0 and fit 32 bits")
        v = np.empty(count, dtype=np.float32)
        cur = np.empty(count, dtype=np.float32)
        vp, cp = opt("float *", v), opt("float *", cur)
        check(lib.dk_potentials(self._p(), part, first, count, vp, cp))
        return v, cur

    def set_membrane(self, part: int, v: npt.ArrayLike) -> None:
        arr = np.ascontiguousarray(v, dtype=np.float32)
        if arr.ndim != 1:
            raise ValueError("membrane potentials must be a 1-D array")
        check(lib.dk_membrane_set(self._p(), part, buf("float *", arr), arr.size))

    # ---- spike ports ----
    def record(self, part: int, neurons: Iterable[int], capacity: int = 1 << 20) -> None:
        arr = ids_u32(np.fromiter(neurons, dtype=np.int64), "neuron ids")
        check(lib.dk_record(self._p(), part, opt("uint32_t *", arr), arr.size, capacity))

    def inject(self, part: int, steps: npt.ArrayLike, inputs: npt.ArrayLike) -> int:
        """Queues spikes of virtual inputs (AER: timestep, input id); returns how many were
        accepted. A full queue raises QueueOverflow after accepting what fits."""
        s64, i32 = spike_batch(steps, inputs)
        accepted = ffi.new("uint32_t *")
        sp, ip = opt("uint64_t *", s64), opt("uint32_t *", i32)
        rc = lib.dk_inject(self._p(), part, sp, ip, s64.size, accepted)
        check(rc, int(accepted[0]))
        return int(accepted[0])

    def read_spikes(self, part: int, max_spikes: int = 1 << 20) -> tuple[U64, U32]:
        """Drains recorded spikes (up to max_spikes) as (timesteps, neuron ids)."""
        steps = np.empty(max_spikes, dtype=np.uint64)
        ids = np.empty(max_spikes, dtype=np.uint32)
        count = ffi.new("uint32_t *")
        sp, ip = buf("uint64_t *", steps), buf("uint32_t *", ids)
        check(lib.dk_read_spikes(self._p(), part, sp, ip, max_spikes, count))
        k = int(count[0])
        return steps[:k].copy(), ids[:k].copy()

    def set_input_capacity(self, part: int, capacity: int) -> None:
        check(lib.dk_input_capacity(self._p(), part, capacity))

    # ---- telemetry ----
    def telemetry(self, part: int) -> Telemetry:
        t = ffi.new("dk_telemetry *")
        check(lib.dk_telemetry_get(self._p(), part, t))
        return from_struct(Telemetry, t)

    def _u64s(self, fn: Any, part: int, n: int) -> U64:
        out = np.zeros(n, dtype=np.uint64)
        check(fn(self._p(), part, buf("uint64_t *", out), n))
        return out

    def link_events(self, part: int) -> U64:
        """Events (multicast packets) that crossed each link of the chip's mesh, indexed as
        link_index gives."""
        return self._u64s(lib.dk_link_events, part, self.link_count(self.partition(part).chip))

    def saturation(self, chip: int, cores: Sequence[int] = ()) -> float:
        """Events per second of model time `cores` of `chip` (all if empty) route before their
        links saturate (dk_saturation; engine/keps.py)."""
        out, ids = ffi.new("double *"), ffi.new("uint32_t[]", list(cores) or [0])
        check(lib.dk_saturation(self._p(), chip, ids if cores else ffi.NULL, len(cores), out))
        return float(out[0])

    def link_stats(self, part: int) -> LinkStats:
        """The router's bandwidth per link: carried, dropped, waiting (docs/engine.md)."""
        n = self.link_count(self.partition(part).chip)
        carried, dropped, backlog = (np.zeros(n, dtype=np.uint64) for _ in range(3))
        ptrs = (buf("uint64_t *", a) for a in (carried, dropped, backlog))
        check(lib.dk_link_stats(self._p(), part, *ptrs, n))
        tel = self.telemetry(part)
        return LinkStats(carried, dropped, backlog, tel.link_capacity, tel.steps)

    def core_events(self, part: int) -> U64:
        """Events delivered to each core the network uses (partition cores in ascending order)."""
        return self._u64s(lib.dk_core_events, part, self.telemetry(part).cores_used)

    def spike_counts(self, part: int, n_sources: int) -> U64:
        return self._u64s(lib.dk_spike_counts, part, n_sources)

    # ---- faults ----
    def inject_fault(self, chip: int, kind: FaultKind, index: int = 0) -> None:
        check(lib.dk_fault_inject(self._p(), chip, int(kind), index))

    def clear_fault(self, chip: int, kind: FaultKind, index: int = 0) -> None:
        check(lib.dk_fault_clear(self._p(), chip, int(kind), index))
