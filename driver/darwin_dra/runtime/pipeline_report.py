"""What a pipeline stage tells: its report (the run's counts and times, per peer) and its
Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter

from darwin_dra.pipeline import outputs as outs

I64 = npt.NDArray[np.int64]
MAX_RASTER = 20_000  # the finish line carries every output spike up to this many


@dataclass
class PeerCounts:
    spikes: int = 0
    bytes: int = 0


@dataclass
class PipelineReport:
    stage: str
    kind: str
    steps: int = 0
    windows: int = 0
    spikes_in: int = 0
    spikes_out: int = 0
    dropped: int = 0
    refused: int = 0
    wall_s: float = 0.0
    held_s: float = 0.0  # waiting for a receiver's acknowledgement (backpressure)
    starved_s: float = 0.0  # waiting for an upstream's frame
    engine_s: float = 0.0
    run_s: float = 0.0  # from every stream connected to the end
    first_s: float | None = None  # from every stream connected to the first window run
    events: int = 0
    sent: dict[str, PeerCounts] = field(default_factory=dict)
    received: dict[str, PeerCounts] = field(default_factory=dict)
    routed: dict[str, int] = field(default_factory=dict)  # peer -> spikes on the chip's router
    drawn: int = 0  # input spikes this engine stage drew in place (--input), on no wire
    outputs: dict[str, tuple[I64, I64]] | None = None
    output_digest: str | None = None
    # per window, the spikes it sent (input, engine: what its neurons fired) or got (output)
    window_spikes: list[int] = field(default_factory=list)
    # a stage holding an LI / CubaLI readout: its Output, layer, samples and their classes
    readout: dict[str, Any] | None = None

    @property
    def bytes_out(self) -> int:
        return sum(p.bytes for p in self.sent.values())

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stage": self.stage,
            "kind": self.kind,
            "steps": self.steps,
            "windows": self.windows,
            "spikes_in": self.spikes_in,
            "spikes_out": self.spikes_out,
            "dropped": self.dropped,
            "refused": self.refused,
            "wall_s": round(self.wall_s, 4),
            "held_s": round(self.held_s, 4),
            "starved_s": round(self.starved_s, 4),
            "engine_s": round(self.engine_s, 4),
            "run_s": round(self.run_s, 4),
            "first_s": None if self.first_s is None else round(self.first_s, 4),
            "events": self.events,
            "bytes_out": self.bytes_out,
            "sent": {p: vars(c) for p, c in self.sent.items()},
            "received": {p: vars(c) for p, c in self.received.items()},
            "routed": dict(self.routed),
            "drawn": self.drawn,
            "window_spikes": self.window_spikes,
        }
        if self.readout is not None:
            out["readout"] = self.readout
        if self.outputs is not None:
            out["output_spikes"] = outs.count(self.outputs)
            out["output_digest"] = self.output_digest
            if out["output_spikes"] <= MAX_RASTER:  # each output's (steps, indices)
                out["output_raster"] = {
                    n: [t.tolist(), i.tolist()] for n, (t, i) in self.outputs.items()
                }
        return out


class Metrics:
    def __init__(self, stage: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.steps = Counter("darwin_stage_steps", "Engine steps run", registry=r)
        self.spikes_in = Counter("darwin_stage_spikes_in", "Spikes received", ["peer"], registry=r)
        self.spikes_out = Counter("darwin_stage_spikes_out", "Spikes sent", ["peer"], registry=r)
        self.dropped = Counter(
            "darwin_stage_dropped_spikes", "Spikes or events the engine dropped", registry=r
        )
        self.wire = Counter(
            "darwin_stage_wire_bytes", "Bytes on the wire", ["peer", "direction"], registry=r
        )
        self.routed = Counter(
            "darwin_stage_routed_spikes",
            "Spikes to or from a neighbour on this stage's chip, moved by the chip host",
            ["peer", "direction"],
            registry=r,
        )
        self.stage = stage
