"""A plain-Python model of a fabric link (docs/engine.md, "Chips on one fabric"), the reference
the engine's fabric links are tested against: a FIFO carrying at most `cap` spikes a step.
Spikes are taken in the order of their steps (a batch's order within a step); each goes at its
step or, that step being full, at the first later step with room, and one that would wait more
than `bound` steps is dropped and counted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

DROPPED = -1


@dataclass
class FabricLinkModel:
    cap: int
    bound: int
    per_step: Counter[int] = field(default_factory=Counter)  # step -> spikes carried
    cursor: int = 0  # the latest step holding a spike
    dropped: int = 0
    deferred: int = 0

    def send(self, steps: list[int]) -> list[int]:
        """The step each spike crosses at (DROPPED where dropped), in the batch's order."""
        out = [DROPPED] * len(steps)
        for i in sorted(range(len(steps)), key=lambda i: (steps[i], i)):
            t = steps[i]
            at = max(t, self.cursor)
            if self.per_step[at] >= self.cap:
                at += 1
            if at - t > self.bound:
                self.dropped += 1
                continue
            self.per_step[at] += 1
            self.cursor = at
            self.deferred += at - t
            out[i] = at
        return out
