"""Metrics of a replay from hand-made records, checked against arithmetic done by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest
from darwin_dra.fleet.catalogue import darwin_catalogue, plain_catalogue
from darwin_dra.fleet.layout import FleetShape, chip_views, fleet_inventory
from darwin_dra.fleet.metrics import (
    Allocated,
    UnitRecord,
    arrivals_for_load,
    offered_need,
    outcomes,
    summarise,
)
from darwin_dra.fleet.replay import allocation
from darwin_dra.fleet.trace import Job, TraceConfig, generate
from darwin_dra.hardware.profiles import load_profiles

# Two nodes: node 0 has chips 0, 1 darwin3 and 2, 3 darwin3-fastroute; node 1 four darwin3.
INV = fleet_inventory(FleetShape(nodes=2))
FLEET = {n.name: chip_views(INV, load_profiles(), n.name) for n in INV.nodes}
N0, N1 = "fleet-node-0", "fleet-node-1"
CORES = 6 * 575 + 2 * 255
KEPS = 6 * 10**9 + 2 * 2 * 10**9


def test_blackbox_run() -> None:
    jobs = [
        Job(0, "infer", arrival=0, duration=100, domains=2, rate_meps=20_000),
        Job(1, "spike", arrival=0, duration=50, cores=128, rate_meps=1_500_000),
        Job(2, "pipeline", arrival=10, duration=1000, stage_meps=(10_000, 5_000), rate_meps=15_000),
        Job(3, "train", arrival=10, duration=10, chips=1, rate_meps=100_000),  # never starts
    ]
    chip = lambda node, c: (Allocated("chips", node, f"chip-{c}"),)  # noqa: E731
    records = [
        UnitRecord(0, 0, created=0, bound=10, released=110, devices=chip(N0, 0)),
        UnitRecord(1, 0, created=0, bound=0, released=50, devices=chip(N1, 0)),  # a darwin3
        # Pipeline stages: 0 and 1 on node 0, 2 on node 1; job starts when the last binds.
        UnitRecord(2, 0, created=10, bound=20, devices=chip(N0, 1)),
        UnitRecord(2, 1, created=10, bound=30, devices=chip(N0, 2)),
        UnitRecord(2, 2, created=10, bound=40, devices=chip(N1, 1)),
        UnitRecord(3, 0, created=10),
    ]
    outs = outcomes(jobs, records)
    assert [o.start for o in outs] == [10, 0, 40, None]
    s = summarise("blackbox", jobs, records, plain_catalogue(FLEET), length_s=200, samples=200)
    assert (s.jobs, s.started, s.completed, s.never_started) == (4, 3, 2, 1)
    assert s.completed_by_kind == {"infer": 1, "spike": 1}
    assert s.not_created == 0
    assert s.creation_lag_p99_s == 0  # every pod created at its job's arrival
    assert s.wait_mean_s == pytest.approx((10 + 0 + 30) / 3)
    # At t = 45: all five chips held (575 x 4 + 255), busy: 32 + 128 + 96 cores.
    i = 45
    assert s.cores_held[i] == pytest.approx((4 * 575 + 255) / CORES)
    assert s.cores_busy[i] == pytest.approx((32 + 128 + 96) / CORES)
    # KEPS: the spike job gets at most its darwin3 chip's 1,000,000 Meps.
    assert s.keps_used[i] == pytest.approx((20_000 + 1_000_000 + 15_000) * 1000 / KEPS)
    assert (s.spike_started, s.spike_sufficient) == (1, 0)
    # Pipeline runs 160 s: stage 0->1 stays on node 0, 1->2 crosses to node 1.
    assert s.pipeline_traffic_events == pytest.approx(15_000e6 * 160)
    assert s.cross_node_fraction == pytest.approx(5 / 15)
    assert s.cross_chip_fraction == pytest.approx(1.0)


def test_darwin_run_with_shares_and_stages() -> None:
    jobs = [
        Job(0, "share", arrival=0, duration=100, cores=4, keps=20_000_000, rate_meps=20_000),
        Job(1, "share", arrival=0, duration=50, cores=2, keps=10_000_000, rate_meps=10_000),
        Job(2, "spike", arrival=0, duration=100, cores=128, rate_meps=1_500_000),
        Job(3, "pipeline", arrival=0, duration=100, stage_meps=(10_000, 5_000), rate_meps=15_000),
    ]
    share = lambda keps: (Allocated("share", N1, "chip-0-shared-0", keps=keps),)  # noqa: E731
    records = [
        UnitRecord(0, 0, created=0, bound=0, released=100, devices=share(20_000_000)),
        UnitRecord(1, 0, created=0, bound=0, released=50, devices=share(10_000_000)),
        UnitRecord(
            2, 0, created=0, bound=0, released=100, devices=(Allocated("router", N0, "chip-3"),)
        ),
        UnitRecord(
            3,
            0,
            created=0,
            bound=0,
            released=100,
            devices=(
                Allocated("encoder", N0, "chip-0-domain-5"),
                Allocated("reservoir", N0, "chip-0-quad-1"),
                Allocated("readout", N0, "chip-1-domain-0"),
            ),
        ),
    ]
    s = summarise("darwin", jobs, records, darwin_catalogue(FLEET), length_s=200, samples=200)
    assert s.completed == 4
    # The shared half (287 cores) is held once while either share lives.
    assert s.cores_held[10] == pytest.approx((287 + 255 + 16 + 64 + 15) / CORES)
    assert s.cores_held[150] == 0
    assert s.cores_busy[10] == pytest.approx((4 + 2 + 128 + 95) / CORES)  # quad 1 + 2 domains
    assert (s.spike_started, s.spike_sufficient) == (1, 1)
    assert s.cross_node_fraction == 0
    assert s.cross_chip_fraction == pytest.approx(5 / 15)  # reservoir -> readout changes chip


def test_allocation_reads_the_claim_status_as_the_server_writes_it() -> None:
    claim = {
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {
                            "request": "block/quad",
                            "driver": "darwin.snn.io",
                            "pool": N0,
                            "device": "chip-0-quad-1",
                        },
                        {
                            "request": "share",
                            "driver": "darwin.snn.io",
                            "pool": N0,
                            "device": "chip-0-shared-0",
                            "shareID": "x",
                            "consumedCapacity": {"keps": "20M", "neurons": "16384"},
                        },
                    ]
                }
            }
        }
    }
    assert allocation(claim) == (
        Allocated("block", N0, "chip-0-quad-1"),
        Allocated("share", N0, "chip-0-shared-0", keps=20_000_000, neurons=16384),
    )
    assert allocation({"status": {}}) == ()


def test_capacity_run_counts_grants_by_domains_and_budgets() -> None:
    from darwin_dra.resources.partitions import CAPACITY_PARTITIONS

    jobs = [
        Job(0, "infer", arrival=0, duration=100, domains=2, rate_meps=20_000),
        Job(1, "spike", arrival=0, duration=100, cores=128, rate_meps=1_500_000),
        Job(2, "spike", arrival=0, duration=100, cores=128, rate_meps=1_500_000),
        Job(3, "pipeline", arrival=0, duration=100, stage_meps=(10_000, 5_000), rate_meps=15_000),
    ]

    def grant(job: int, node: str, chip: int, domains: int, keps: int) -> UnitRecord:
        dev = Allocated("r", node, f"chip-{chip}-capacity", keps=keps, domains=domains)
        return UnitRecord(job, 0, created=0, bound=0, released=100, devices=(dev,))

    records = [
        grant(0, N1, 0, 2, 20_000_000),
        grant(1, N0, 3, 8, 1_500_000_000),  # a fastroute chip: strong enough, budget enough
        grant(2, N0, 2, 8, 1_000_000_000),  # a budget below the rate: not sustained
        grant(3, N0, 0, 6, 15_000_000),
    ]
    cat = darwin_catalogue(FLEET, CAPACITY_PARTITIONS)
    s = summarise("capacity", jobs, records, cat, length_s=200, samples=200)
    # Held: each grant its domains' share of its chip's cores (575 / 36, 255 / 16 a domain).
    assert s.cores_held[10] == pytest.approx((32 + 128 + 128 + 96) / CORES)
    assert s.cores_busy[10] == pytest.approx((32 + 128 + 128 + 96) / CORES)
    assert (s.spike_started, s.spike_sufficient) == (2, 1)
    assert s.cross_chip_fraction == 0
    assert s.pipeline_traffic_events > 0


def test_the_trace_offered_load_and_completable_jobs() -> None:
    jobs = [
        Job(0, "infer", arrival=0, duration=150, domains=2, rate_meps=20_000),
        Job(1, "train", arrival=120, duration=100, chips=2, rate_meps=100_000),  # ends late
    ]
    s = summarise("blackbox", jobs, [], plain_catalogue(FLEET), length_s=200, samples=200)
    assert (s.completable, s.not_created) == (1, 2)  # no record: the bench created no pod
    # Second half (100..200): 32 cores to 150, two whole darwin3 (575) from 120.
    assert s.cores_offered_saturated == pytest.approx((32 * 50 + 2 * 575 * 80) / 100 / CORES)


@pytest.mark.parametrize(
    "mix", [None, {"infer": 0.3, "share": 0.1, "spike": 0.1, "train": 0.2, "pipeline": 0.3}]
)
def test_an_offered_load_sets_the_arrivals_that_offer_it(mix: dict[str, float] | None) -> None:
    # A long trace (many mean durations) at the rate found offers the asked load in steady
    # state: the time-average of the running jobs' needs, measured on its own jobs.
    base = TraceConfig(seed=5, duration_scale=0.5, **({"mix": mix} if mix else {}))
    rate = arrivals_for_load(base, 1.5, fleet_cores=99_000, whole_chip_cores=575)
    length = 200 * 3600.0
    jobs = generate(replace(base, seed=6, length_s=length, arrivals_per_hour=rate))
    window = [j for j in jobs if 3600 < j.arrival < length - 3 * 3600]
    span = window[-1].arrival - window[0].arrival
    offered = sum(offered_need(j, 575) * j.duration for j in window) / span / 99_000
    assert offered == pytest.approx(1.5, rel=0.05)
    # Twice the load, twice the arrivals.
    assert arrivals_for_load(base, 3.0, 99_000, 575) == pytest.approx(2 * rate)
    with pytest.raises(ValueError, match="positive"):
        arrivals_for_load(base, 0, 99_000, 575)
