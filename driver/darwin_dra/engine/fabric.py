"""Links that several parties share: the fabric links between the chips of one fabric (a board
or a wafer) and the mesh links the partitions of one chip route over (docs/engine.md, "Chips on
one fabric" and "Shared links"). Thin calls into the C engine; the model itself is in
native/src/fabric.c and native/src/router.c."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.engine.engine import Engine
from darwin_dra.engine.errors import NotFound
from darwin_dra.engine.marshal import spike_batch
from darwin_dra.engine.native import buf, check, ffi, from_struct, lib, opt

NOT_CARRIED = 2**64 - 1  # FabricSend.at of a spike dropped at the link


@dataclass(frozen=True)
class FabricLinkStats:
    """The directed fabric link src_chip -> dst_chip between two neighbours of a fabric's grid
    (zeros until a spike crossed it or a fault held it)."""

    src_chip: int
    dst_chip: int
    dt_ms: float  # the timestep its steps are of (set by the first send)
    capacity: int  # spikes per timestep
    carried: int  # spikes that crossed it
    dropped: int  # spikes dropped: they would have waited too long
    deferred: int  # spike-steps spent waiting
    peak: int  # most spikes carried in one step
    busy_steps: int  # steps in which it carried a spike
    last_step: int  # the latest step it carried a spike in
    dropped_fault: int  # spikes lost because it (or the chip behind it) failed, no path left
    failed: int  # 1 while a fabric fault (FaultKind.FABRIC) holds it

    @property
    def utilisation(self) -> float:
        """Spikes carried over what it could carry in the steps it was busy (0 if never)."""
        room = self.capacity * self.busy_steps
        return self.carried / room if room else 0.0


@dataclass(frozen=True)
class FabricSend:
    """What one send did: the step each spike crossed at (NOT_CARRIED where it was dropped)."""

    at: npt.NDArray[np.uint64]
    sent: int  # spikes the link carried (and injected into the destination)

    @property
    def dropped(self) -> int:
        return int(self.at.size) - self.sent


def fabric_capacity(fabric_events_per_s: float, dt_ms: float) -> int:
    """Spikes one fabric link carries per timestep of `dt_ms` (dk_fabric_capacity)."""
    return int(lib.dk_fabric_capacity(float(fabric_events_per_s), float(np.float32(dt_ms))))


def fabric_send(
    engine: Engine, src_part: int, dst_part: int, steps: npt.ArrayLike, inputs: npt.ArrayLike
) -> FabricSend:
    """Sends spikes of `src_part` (AER: the timestep each was emitted for, at least the
    destination's current step) to inputs of `dst_part` on another chip of the same fabric
    over their fabric link; each is injected into `dst_part` at the step the link carries it.
    A full input queue at the destination raises QueueOverflow after accepting what fits."""
    s64, i32 = spike_batch(steps, inputs)
    at = np.full(s64.size, NOT_CARRIED, dtype=np.uint64)
    sent = ffi.new("uint32_t *")
    sp, ip, ap = opt("uint64_t *", s64), opt("uint32_t *", i32), opt("uint64_t *", at)
    rc = lib.dk_fabric_send(engine._p(), src_part, dst_part, sp, ip, s64.size, ap, sent)
    check(rc, int(sent[0]))
    return FabricSend(at, int(sent[0]))


def fabric_link_stats(engine: Engine, src_chip: int, dst_chip: int) -> FabricLinkStats:
    """The fabric link from `src_chip` to `dst_chip` (InvalidArgument unless one fabric,
    NotFound unless neighbours on its grid)."""
    out = ffi.new("dk_fabric_stats *")
    check(lib.dk_fabric_link_stats(engine._p(), src_chip, dst_chip, out))
    return from_struct(FabricLinkStats, out)


def fabric_route(engine: Engine, src_chip: int, dst_chip: int) -> tuple[int, ...]:
    """The chips a spike from `src_chip` to `dst_chip` crosses now, both ends included: a
    shortest path over the working fabric links; () when none joins them (dk_fabric_route)."""
    cap = max(engine.chip_count(), 1)
    out = np.zeros(cap, dtype=np.uint32)
    n = ffi.new("uint32_t *")
    check(lib.dk_fabric_route(engine._p(), src_chip, dst_chip, buf("uint32_t *", out), cap, n))
    return tuple(int(c) for c in out[: int(n[0])])


def fabric_links(engine: Engine) -> list[FabricLinkStats]:
    """Every directed fabric link between the engine's chips (neighbours of one fabric's grid),
    by (src_chip, dst_chip)."""
    chips = engine.chips()
    out = []
    for a in chips:
        for b in chips:
            if a.id == b.id or not a.fabric or a.fabric != b.fabric:
                continue
            try:
                out.append(fabric_link_stats(engine, a.id, b.id))
            except NotFound:  # not neighbours: no link of their own
                continue
    return out


def link_users(engine: Engine, part: int) -> npt.NDArray[np.uint32]:
    """Per mesh link of the partition's chip: how many partitions with a network loaded route
    over it, this one included (0 where this one does not); they share its capacity."""
    n = engine.link_count(engine.partition(part).chip)
    out = np.zeros(n, dtype=np.uint32)
    check(lib.dk_link_users(engine._p(), part, buf("uint32_t *", out), n))
    return out
