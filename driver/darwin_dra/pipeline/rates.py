"""Per-stage rates from the stages' own counters (pure): two samples of a stage's Prometheus
text (``darwin_stage_*``, PIPELINE-CONTRACT.md) some seconds apart give its timesteps per
second, its spikes per second to each downstream stage and what it dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from darwin_dra.pipeline.status import StageRates


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    steps: float
    dropped: float
    spikes_out: Mapping[str, float] = field(default_factory=dict)  # per downstream stage
    routed: Mapping[str, float] = field(default_factory=dict)  # of those, on the chip's router


def parse_sample(text: str, at: float) -> Sample:
    """The counters of one scrape; a counter the stage does not export reads 0."""
    steps = dropped = 0.0
    out: dict[str, float] = {}
    routed: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "darwin_stage_steps_total":
                steps = float(s.value)
            elif s.name == "darwin_stage_dropped_spikes_total":
                dropped += float(s.value)
            elif s.name == "darwin_stage_spikes_out_total":
                peer = s.labels.get("peer", "")
                out[peer] = out.get(peer, 0.0) + float(s.value)
            elif (
                s.name == "darwin_stage_routed_spikes_total" and s.labels.get("direction") == "out"
            ):
                peer = s.labels.get("peer", "")
                routed[peer] = routed.get(peer, 0.0) + float(s.value)
    return Sample(at, steps, dropped, out, routed)


def stage_rates(before: Sample, after: Sample) -> StageRates | None:
    """None when the samples are too close (under 0.5 s) or the counters went back (a new
    process: its counters start again)."""
    dt = after.at - before.at
    if dt < 0.5 or after.steps < before.steps:
        return None
    spikes = sum(after.spikes_out.values()) - sum(before.spikes_out.values())
    per_peer = {
        peer: max(0.0, (v - before.spikes_out.get(peer, 0.0)) / dt)
        for peer, v in after.spikes_out.items()
    }
    return StageRates(
        timesteps_per_s=(after.steps - before.steps) / dt,
        spikes_out_per_s=max(0.0, spikes / dt),
        dropped=int(after.dropped),
        spikes_to=per_peer,
        routed_to={
            peer: max(0.0, (v - before.routed.get(peer, 0.0)) / dt)
            for peer, v in after.routed.items()
        },
    )
