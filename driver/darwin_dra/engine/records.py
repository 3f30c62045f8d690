"""What the engine reports about a partition and its network (plain records, no engine)."""

from __future__ import annotations

from dataclasses import dataclass


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
