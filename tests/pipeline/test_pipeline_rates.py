"""Stage rates from two scrapes of a stage's counters, in the Prometheus text a real
prometheus_client registry writes."""

from __future__ import annotations

from datetime import UTC, datetime

from darwin_dra.pipeline.rates import parse_sample, stage_rates
from darwin_dra.pipeline.status import Outcome, pipeline_status
from darwin_dra.runtime.pipeline_report import Metrics
from prometheus_client import CollectorRegistry, Counter, generate_latest

from tests.pipeline.test_pipeline_reconcile import _converge, _setup


def _registry() -> tuple[CollectorRegistry, Counter, Counter, Counter]:
    r = CollectorRegistry()
    steps = Counter("darwin_stage_steps", "steps", registry=r)
    out = Counter("darwin_stage_spikes_out", "spikes out", ["peer"], registry=r)
    dropped = Counter("darwin_stage_dropped_spikes", "dropped", registry=r)
    return r, steps, out, dropped


def test_two_scrapes_give_steps_and_spikes_per_second_per_peer() -> None:
    r, steps, out, dropped = _registry()
    before = parse_sample(generate_latest(r).decode(), at=10.0)
    steps.inc(1000)
    out.labels("s1").inc(300)
    out.labels("s2").inc(100)
    dropped.inc(3)
    after = parse_sample(generate_latest(r).decode(), at=12.0)
    rates = stage_rates(before, after)
    assert rates is not None
    assert (rates.timesteps_per_s, rates.spikes_out_per_s, rates.dropped) == (500.0, 200.0, 3)
    assert rates.spikes_to == {"s1": 150.0, "s2": 50.0}
    # Too close, or a restarted stage (its counters start again): no rate.
    assert stage_rates(before, parse_sample(generate_latest(r).decode(), at=10.1)) is None
    assert stage_rates(after, before.__class__(13.0, 0.0, 0.0, {})) is None


def test_status_shows_measured_traffic_once_every_sender_reports() -> None:
    obj, spec, plan, placement = _setup()
    claims, pods = _converge(obj, spec, plan, placement)
    r, steps, out, _ = _registry()
    before = parse_sample(generate_latest(r).decode(), 0.0)
    steps.inc(400)
    for peer in ("s0", "s1", "s2", "output"):
        out.labels(peer).inc(40)
    after = parse_sample(generate_latest(r).decode(), 2.0)
    one = stage_rates(before, after)
    assert one is not None
    rates = dict.fromkeys(("input", "s0", "s1", "s2"), one)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    status = pipeline_status(
        obj, Outcome("Running", "StagesRunning", ""), now, plan, placement, claims, pods, rates
    )
    assert status["traffic"]["source"] == "measured"
    assert {s["name"]: s.get("timestepsPerSecond") for s in status["stages"]}["s1"] == 200.0
    # s1 -> s2 crosses the nodes: 20 spikes/s measured (not the 20,000 planned).
    assert status["traffic"]["crossNodeSpikesPerSecond"] == 20
    partial = pipeline_status(
        obj,
        Outcome("Running", "StagesRunning", ""),
        now,
        plan,
        placement,
        claims,
        pods,
        {"s0": one},
    )
    assert partial["traffic"]["source"] == "planned"


def test_spikes_on_a_chips_route_show_in_the_status() -> None:
    """The stage's own metrics (runtime/pipeline_report.Metrics): spikes to s1 over the chip's
    route count as sent to s1 and as routed on the chip."""
    obj, spec, plan, placement = _setup()
    claims, pods = _converge(obj, spec, plan, placement)
    stage = Metrics("s0")
    before = parse_sample(generate_latest(stage.registry).decode(), 0.0)
    stage.steps.inc(400)
    stage.spikes_out.labels("s1").inc(60)
    stage.routed.labels("s1", "out").inc(60)
    stage.routed.labels("input", "in").inc(500)  # what came in is not this stage's to count
    after = parse_sample(generate_latest(stage.registry).decode(), 2.0)
    s0 = stage_rates(before, after)
    assert s0 is not None
    assert (s0.spikes_to, s0.routed_to) == ({"s1": 30.0}, {"s1": 30.0})
    r, steps, out, _ = _registry()
    b2 = parse_sample(generate_latest(r).decode(), 0.0)
    steps.inc(400)
    for peer in ("s0", "s1", "s2", "output"):
        out.labels(peer).inc(40)
    other = stage_rates(b2, parse_sample(generate_latest(r).decode(), 2.0))
    assert other is not None
    rates = {"input": other, "s0": s0, "s1": other, "s2": other}
    now = datetime(2026, 12, 1, tzinfo=UTC)
    status = pipeline_status(
        obj, Outcome("Running", "StagesRunning", ""), now, plan, placement, claims, pods, rates
    )
    edges = {(e["from"], e["to"]): e for e in status["edges"]}
    assert edges[("s0", "s1")]["routedOnChip"] is True
    assert "routedOnChip" not in edges[("s1", "s2")]
    assert status["traffic"]["onChipRoutedSpikesPerSecond"] == 30
