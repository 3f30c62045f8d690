"""Whether a bench's simulated fleet stayed Ready while it was measured (pure).

A simulated node is Ready only while its Lease is renewed (fleet/leases.py). When renewals come
late, the node lifecycle controller marks nodes NotReady and taints them; the scheduler then
filters them out, so it has fewer nodes to score and its rate looks better than the fleet's
size deserves. The lease keeper samples the fleet's nodes every round; this module turns the
samples that cover the measurement into a verdict: a rate is valid only if no node of the
fleet was NotReady or tainted at any sample of its window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """The fleet's nodes not Ready (or carrying a NoSchedule/NoExecute taint) at ``at_s``
    (time.monotonic, which every process of the host shares)."""

    at_s: float
    not_ready: frozenset[str]
    round_s: float = 0.0  # how long the keeper's lease round before this sample took


@dataclass(frozen=True)
class Readiness:
    nodes: int  # the fleet's size
    samples: int  # samples that describe the window (the last one before it and those inside)
    worst: int  # the most nodes not Ready at one sample
    affected: int  # distinct nodes not Ready at some sample
    # not-Ready nodes integrated over the window (each sample holds until the next)
    node_seconds: float
    observed_from_start: bool  # a sample at or before the window's start
    slowest_round_s: float = 0.0  # the keeper's slowest lease round in the window

    @property
    def valid(self) -> bool:
        return self.observed_from_start and self.affected == 0

    @property
    def reason(self) -> str:
        if not self.samples:
            return "no readiness sample covers the measurement"
        if self.affected:
            return (
                f"{self.affected} of {self.nodes} nodes were not Ready during the measurement "
                f"(at most {self.worst} at once, {self.node_seconds:.0f} node-seconds; lease "
                f"rounds took up to {self.slowest_round_s:.1f} s): the scheduler had fewer "
                "nodes to score"
            )
        if not self.observed_from_start:
            return "the first readiness sample came after the measurement began"
        return f"all {self.nodes} nodes Ready at every sample"


def judge(samples: Sequence[Sample], nodes: int, start_s: float, end_s: float) -> Readiness:
    """The verdict on the window [start_s, end_s] from the keeper's samples."""
    ordered = sorted(samples, key=lambda s: s.at_s)
    before = [s for s in ordered if s.at_s <= start_s]
    seen = before[-1:] + [s for s in ordered if start_s < s.at_s <= end_s]
    node_seconds = 0.0
    for i, s in enumerate(seen):
        t0 = max(s.at_s, start_s)
        t1 = seen[i + 1].at_s if i + 1 < len(seen) else end_s
        node_seconds += len(s.not_ready) * max(0.0, t1 - t0)
    affected = frozenset().union(*(s.not_ready for s in seen)) if seen else frozenset()
    return Readiness(
        nodes=nodes,
        samples=len(seen),
        worst=max((len(s.not_ready) for s in seen), default=0),
        affected=len(affected),
        node_seconds=node_seconds,
        observed_from_start=bool(before),
        slowest_round_s=max((s.round_s for s in seen), default=0.0),
    )
