"""What a SpikePort keeps of its loaded network, so a Step can read a readout after every step
and reset the partition to its state right after Load (the network loaded afresh: neurons at
rest, no spike in flight, the queues empty), while the client's steps and counters go on
counting across resets."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from darwin_dra.engine import Engine, Network, Telemetry, errors
from darwin_dra.runtime import wire

I64 = npt.NDArray[np.int64]
# the counters a reset carries over (summed); keps is a rate and is not
SUMMED = (
    "steps", "spikes", "input_spikes", "events", "drive_events", "packets", "dropped_queue",
    "dropped_fault", "dropped_budget", "dropped_input", "dropped_output",
)  # fmt: skip


@dataclass
class PortState:
    net: Network
    export: I64
    capacity: int  # export buffer, spikes
    input_capacity: int  # 0: the engine's default
    readout: I64  # neurons whose potentials Step returns after every step
    offset: int = 0  # the client's step at the last reset (the engine counts from there)
    base: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMED, 0))

    def load(self, engine: Engine, part: int) -> None:
        if self.readout.size and int(self.readout.max()) >= self.net.n_neurons:
            raise wire.WireError(
                f"readout_neurons: neuron {int(self.readout.max())} is not in the network's "
                f"{self.net.n_neurons}"
            )
        with contextlib.suppress(errors.StateError):  # nothing loaded yet
            engine.unload(part)
        engine.load(part, self.net)
        if self.input_capacity:
            engine.set_input_capacity(part, self.input_capacity)
        engine.record(part, (int(i) for i in self.export), self.capacity)

    def reset(self, engine: Engine, part: int) -> None:
        """The network loaded afresh; the counters so far kept in ``base``."""
        t = engine.telemetry(part)
        for name in SUMMED:
            self.base[name] += int(getattr(t, name))
        self.offset = self.base["steps"]
        self.load(engine, part)

    def counters(self, t: Telemetry) -> Telemetry:
        """The engine's counters since the last reset plus those before it."""
        return dataclasses.replace(t, **{n: self.base[n] + int(getattr(t, n)) for n in SUMMED})

    def to_engine(self, steps: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        if steps.size and int(steps.min()) < self.offset:
            raise wire.WireError(
                f"inputs: step {int(steps.min())} is before the last reset (step {self.offset})"
            )
        return (steps - np.uint64(self.offset)).astype(np.uint64)

    def run(self, engine: Engine, part: int, steps: int) -> bytes:
        """Runs the steps; with readout neurons, one step at a time, their potentials after
        each (packed f32, steps x neurons)."""
        ro = self.readout
        if not ro.size:
            engine.run(part, steps)
            return b""
        lo = int(ro.min())
        span = int(ro.max()) - lo + 1
        rows = np.empty((steps, ro.size), np.float32)
        for k in range(steps):
            engine.run(part, 1)
            rows[k] = engine.potentials(part, lo, span)[0][ro - lo]
        return wire.pack(rows.reshape(-1), "f4")
