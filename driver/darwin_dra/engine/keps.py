"""KEPS, the one definition of event throughput (docs/engine.md, "KEPS").

KEPS is thousands of synaptic events per second of *model* time: a partition that runs in real
time and routes `k` KEPS delivers `k * EVENTS_PER_KEPS` events per simulated second. It is a
property of the chip, not of the host that simulates it. Publishing (ResourceSlices), granting
(a shared device's consumedCapacity) and enforcing (the engine's per-step budget) all use it; the
C engine computes it (dk_keps_of, dk_keps_events_per_step) and this module only adds the chip
arithmetic. How fast this host simulates a load is a different figure, `host_keps` (events per
wall second / 1000), reported as a metric and never published as capacity.
"""

from __future__ import annotations

from darwin_dra.engine.engine import Engine
from darwin_dra.engine.native import EVENTS_PER_KEPS, keps_events_per_step, keps_of
from darwin_dra.hardware.model import ChipInfo

KEPS_PER_MEPS = 1000  # maxMeps, the attribute DeviceClasses select on, is KEPS / 1000

__all__ = [
    "EVENTS_PER_KEPS",
    "KEPS_PER_MEPS",
    "capacity",
    "chip_capacity",
    "chip_keps",
    "keps_events_per_step",
    "keps_of",
    "meps",
    "partition_capacity",
    "share",
]


def chip_keps(router_events_per_s: float) -> int:
    """A whole healthy chip's KEPS: its router throughput (profile `routerEventsPerSecond`,
    events per second of model time) in KEPS."""
    return int(router_events_per_s // EVENTS_PER_KEPS)


def share(keps: int, cores: int, total: int) -> int:
    """The part of `keps` that `cores` of `total` cores carry (each core an equal share)."""
    return keps * cores // max(total, 1)


def meps(keps: int) -> int:
    """KEPS in millions of events per second (the `maxMeps` attribute)."""
    return keps // KEPS_PER_MEPS


def capacity(chip: ChipInfo, working_cores: int) -> int:
    """What `working_cores` of `chip` route in real time, from the chip model: the chip's KEPS,
    shared by its cores, scaled by the fraction of its mesh links that work. Deterministic (the
    same on any host), lower with failed cores or links, 0 on a failed chip."""
    if not chip.healthy:
        return 0  # the whole chip is down
    w, h = chip.mesh_w, chip.mesh_h
    n_links = 2 * ((w - 1) * h + w * (h - 1))  # directed links between neighbouring tiles
    ok_links = max(n_links - chip.failed_links, 0)
    keps = share(chip_keps(chip.router_events_per_s), working_cores, chip.n_cores)
    return keps * ok_links // max(n_links, 1)


def chip_capacity(chip: ChipInfo) -> int:
    """A whole chip's calibrated KEPS (`capacity` of its working cores)."""
    return capacity(chip, chip.n_cores - chip.failed_cores)


def partition_capacity(engine: Engine, part: int) -> int:
    """A partition's calibrated KEPS (`capacity` of its working cores)."""
    info = engine.partition(part)
    chip = engine.chip(info.chip)
    return capacity(chip, sum(1 for c in info.cores if engine.core(info.chip, c).healthy))
