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

from collections.abc import Sequence

from darwin_dra.engine.engine import Engine
from darwin_dra.engine.native import EVENTS_PER_KEPS, keps_events_per_step, keps_of

KEPS_PER_MEPS = 1000  # maxMeps, the attribute DeviceClasses select on, is KEPS / 1000

__all__ = [
    "EVENTS_PER_KEPS",
    "KEPS_PER_MEPS",
    "chip_capacity",
    "chip_keps",
    "keps_events_per_step",
    "keps_of",
    "meps",
    "partition_capacity",
    "saturation_keps",
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


def saturation_keps(engine: Engine, chip: int, cores: Sequence[int] = ()) -> int:
    """What `cores` of `chip` (all if empty) route in real time, measured on the chip model:
    the KEPS of uniform traffic among them at the rate where their busiest link saturates
    (dk_saturation; docs/engine.md, "Calibration"). Deterministic (the same on any host), lower
    with a failed core, domain or link, 0 on a failed chip."""
    return int(engine.saturation(chip, cores) // EVENTS_PER_KEPS)


def chip_capacity(engine: Engine, chip: int) -> int:
    """A whole chip's calibrated KEPS (`saturation_keps` of all its cores)."""
    return saturation_keps(engine, chip)


def partition_capacity(engine: Engine, part: int) -> int:
    """A partition's calibrated KEPS (`saturation_keps` of its cores)."""
    info = engine.partition(part)
    return saturation_keps(engine, info.chip, info.cores)
