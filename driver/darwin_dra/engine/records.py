"""What the engine reports about a partition and its network (plain records, no engine)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


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
    delay_store: int  # the loaded network's DK_DELAYS_SUMS or DK_DELAYS_QUEUES (native.DelayStore)
    # The router's bandwidth (docs/engine.md, "Router bandwidth"); per link: Engine.link_stats.
    routed_spikes: int  # spikes (neurons' and injected) that entered the mesh
    deferred: int  # spike-steps spent waiting in link backlogs
    backlog: int  # spikes waiting in link backlogs now
    dropped_link_spikes: int  # spikes dropped at a full link backlog
    dropped_link: int  # the synaptic events those spikes would have delivered
    link_capacity: int  # packets one mesh link carries per timestep
    link_util_peak: float  # the busiest link: packets carried / (capacity x steps)

    @property
    def dropped(self) -> int:
        return (
            self.dropped_queue
            + self.dropped_fault
            + self.dropped_budget
            + self.dropped_input
            + self.dropped_output
            + self.dropped_link
        )


@dataclass(frozen=True)
class LinkStats:
    """Per link of a partition's chip (indexed as Engine.link_index gives): packets carried,
    spikes dropped at its full backlog, spikes waiting in it now; and what a link carries."""

    carried: npt.NDArray[np.uint64]
    dropped: npt.NDArray[np.uint64]
    backlog: npt.NDArray[np.uint64]
    capacity: int  # packets per timestep
    steps: int  # timesteps run since the network was loaded

    @property
    def utilisation(self) -> npt.NDArray[np.float64]:
        """Packets carried over what the link could carry in the steps run (0 before a step)."""
        room = float(self.capacity) * float(self.steps)
        return self.carried.astype(np.float64) / room if room else np.zeros(self.carried.size)
