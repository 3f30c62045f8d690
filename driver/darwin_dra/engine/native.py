"""The C boundary: the one module that imports the compiled engine (cffi).

Every number of the C header the Python side needs comes from here, read from the compiled
module (constants, the fault kinds, directions and routings, and the error codes, which
engine.errors binds to one exception each); ``_check`` turns a failed call into that exception
with the engine's message, and the helpers below move buffers (numpy arrays, never one call per
spike), text and structs across. engine/engine.py, the typed face, calls C only through them."""

from __future__ import annotations

import dataclasses
import enum
import functools
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from darwin_dra.engine import errors
from darwin_dra.engine._engine_cffi import ffi as ffi
from darwin_dra.engine._engine_cffi import lib as lib

# Numbers of the C header (native/include/darwin_engine.h), never copied by hand.
EVENTS_PER_KEPS: int = int(lib.DK_EVENTS_PER_KEPS)  # synaptic events per KEPS (engine/keps.py)
MAX_GROUPS: int = int(lib.DK_MAX_GROUPS)
MAX_DELAY: int = int(lib.DK_MAX_DELAY)  # timesteps
MAX_NEURONS: int = int(lib.DK_MAX_NEURONS)  # neurons, and input lines, of one network
LINK_BACKLOG_STEPS: int = int(lib.DK_LINK_BACKLOG_STEPS)  # a link's backlog: steps of capacity
# Every error code of the header's enum dk_error becomes its own exception.
errors.bind_codes(ffi.typeof("enum dk_error").relements)

T = TypeVar("T")


class FaultKind(enum.IntEnum):
    """What a fault acts on: the header's enum dk_fault_kind."""

    CORE = int(lib.DK_FAULT_CORE)
    DOMAIN = int(lib.DK_FAULT_DOMAIN)
    LINK = int(lib.DK_FAULT_LINK)
    CHIP = int(lib.DK_FAULT_CHIP)
    FABRIC = int(lib.DK_FAULT_FABRIC)  # the fabric link from `chip` to chip `index`


class Direction(enum.IntEnum):
    """A link's direction out of its tile: the header's enum dk_direction."""

    EAST = int(lib.DK_DIR_EAST)
    WEST = int(lib.DK_DIR_WEST)
    NORTH = int(lib.DK_DIR_NORTH)
    SOUTH = int(lib.DK_DIR_SOUTH)


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


class DelayStore(enum.IntEnum):
    """Where delivered events wait for their step (DK_DELAYS_*, docs/engine.md "Delays"): a
    ring of input sums per delay slot and neuron, or per-core packet queues; AUTO takes the
    ring when it fits DK_SLOT_SUMS_MAX_BYTES. The same sums, bit for bit, either way."""

    AUTO = int(lib.DK_DELAYS_AUTO)
    SUMS = int(lib.DK_DELAYS_SUMS)
    QUEUES = int(lib.DK_DELAYS_QUEUES)


SLOT_SUMS_MAX_BYTES: int = int(lib.DK_SLOT_SUMS_MAX_BYTES)


@dataclass(frozen=True)
class PartitionConfig:
    """What a partition was configured with before a network was loaded; 0 is not limited."""

    timestep_us: int = 0  # a network must step by exactly this (0: any)
    routing: Routing = Routing.MULTICAST_TREE
    max_neurons: int = 0  # a share's grant
    max_synapses: int = 0
    delay_store: DelayStore = DelayStore.AUTO


def keps_of(events: int, steps: int, dt_ms: float) -> float:
    """The engine's own KEPS of `events` delivered in `steps` steps of `dt_ms` (model time)."""
    return float(lib.dk_keps_of(events, steps, float(np.float32(dt_ms))))  # the engine's dt


def keps_events_per_step(keps: float, dt_ms: float) -> float:
    """The events per step of `dt_ms` that `keps` stands for (how the engine enforces a grant)."""
    return float(lib.dk_keps_events_per_step(keps, float(np.float32(dt_ms))))


def link_capacity(router_events_per_s: float, dt_ms: float, mesh_w: int, mesh_h: int) -> int:
    """Packets one directed mesh link carries per timestep of `dt_ms` (dk_link_capacity)."""
    rate, dt = float(router_events_per_s), float(np.float32(dt_ms))
    return int(lib.dk_link_capacity(rate, dt, mesh_w, mesh_h))


def cap_mmap_threshold(nbytes: int) -> None:
    """Caps glibc's mmap threshold for this process (mallopt M_MMAP_THRESHOLD): blocks of at
    least ``nbytes`` are mmapped and go back to the system when freed. Left dynamic, glibc
    raises the threshold to the largest block freed so far (up to 32 MiB), after which each
    thread's arena keeps buffers of that size: a chip host fed 12 MB messages held ~230 MiB
    instead of ~95 (docs/reliability.md, the spike flood; tests/chiphost/test_spike_flood.py
    fails without it). OSError if glibc refuses (mallopt returns 0)."""
    if lib.mallopt(lib.M_MMAP_THRESHOLD, nbytes) != 1:
        raise OSError(f"mallopt(M_MMAP_THRESHOLD, {nbytes}) refused")


def check(rc: int, accepted: int = 0) -> None:
    """Raises the exception of a failed call's code, with the engine's message."""
    if rc == lib.DK_OK:
        return
    message = ffi.string(lib.dk_last_error()).decode("utf-8", "replace")
    cls = errors.BY_CODE.get(rc, errors.InternalError)
    if cls is errors.QueueOverflow:
        raise errors.QueueOverflow(message, accepted)
    raise cls(message)


def text(value: Any) -> str:
    """A C string (or char array) as text."""
    return str(ffi.string(value).decode("utf-8", "replace"))


@functools.cache
def _shared_fields(cls: Any, ctype: Any) -> tuple[tuple[str, bool], ...]:
    """The fields dataclass `cls` shares with C struct type `ctype`, each with whether it is a
    char array (the pair's answer never changes: worked out once, not at every record)."""
    c_fields = dict(ctype.item.fields)
    return tuple(
        (f.name, c_fields[f.name].type.kind == "array")
        for f in dataclasses.fields(cls)
        if f.name in c_fields
    )


def from_struct(cls: type[T], c: Any, **given: Any) -> T:
    """Dataclass `cls` from the same-named fields of C struct `c` (text from char arrays);
    `given` sets the others."""
    values = dict(given)
    key: Any = cls  # a class is hashable; mypy sees type[T] as possibly not
    for name, is_text in _shared_fields(key, ffi.typeof(c)):
        if name not in values:
            raw = getattr(c, name)
            values[name] = text(raw) if is_text else raw
    return cls(**values)


def buf(ctype: str, array: npt.NDArray[Any]) -> Any:
    """A C pointer into numpy `array` (which must outlive the call)."""
    return ffi.cast(ctype, ffi.from_buffer(array))


def opt(ctype: str, array: npt.NDArray[Any]) -> Any:
    """buf, or NULL for an empty array."""
    return buf(ctype, array) if array.size else ffi.NULL


def put(field: Any, value: str) -> None:
    """Copies `value` into C char array `field`, NUL-terminated (its size is the header's)."""
    size = len(field)
    raw = value.encode()
    if len(raw) >= size:
        raise ValueError(f"{value!r} is longer than {size - 1} bytes")
    ffi.memmove(field, raw + b"\0", len(raw) + 1)
