"""KEPS means one thing (engine/keps.py): thousands of events per second of model time. These
tests tie its places together: the C header's unit, the engine's telemetry, the enforcement of a
shared grant, the published slices (keps, maxMeps), calibration and the engine benchmark."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from darwin_dra.engine import Direction, Engine, FaultKind, Network, NeuronGroup
from darwin_dra.engine import keps as kepsdef
from darwin_dra.engine.calibrate import calibrate
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.slices import build_slices

HEADER = Path(__file__).resolve().parents[2] / "native" / "include" / "darwin_engine.h"


def busy_network(n: int = 2000, fan_out: int = 50, seed: int = 3, weight: float = 0.1) -> Network:
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n, dtype=np.uint32), fan_out)
    return Network(
        groups=(NeuronGroup(count=n, poisson_rate_hz=20000.0, poisson_weight=0.2),),
        src=src,
        dst=rng.integers(0, n, src.size).astype(np.uint32),
        weight=np.full(src.size, weight, np.float32),
        delay=rng.integers(1, 8, src.size).astype(np.uint16),
        seed=seed,
    )


def test_the_unit_comes_from_the_header() -> None:
    match = re.search(r"DK_EVENTS_PER_KEPS\s*=\s*(\d+)", HEADER.read_text())
    assert match is not None
    assert kepsdef.EVENTS_PER_KEPS == int(match.group(1)) == 1000


def test_telemetry_keps_is_model_time_and_host_speed_is_apart(engine: Engine) -> None:
    part = engine.create_partition(0, domains=[2])
    net = busy_network()
    engine.load(part, net)
    engine.run(part, 300)
    t = engine.telemetry(part)
    assert t.events > 0
    assert t.keps == pytest.approx(kepsdef.keps_of(t.events, t.steps, net.dt_ms), rel=1e-12)
    # the engine holds dt as float32, hence the looser match with the formula in float64
    assert t.keps == pytest.approx(t.events / (t.steps * net.dt_ms * 1e-3) / 1000, rel=1e-6)
    assert t.host_keps == pytest.approx(t.events / (t.wall_ns * 1e-9) / 1000, rel=1e-9)


def test_a_shared_grant_is_enforced_in_the_same_keps(engine: Engine) -> None:
    """A share granted K KEPS delivers K KEPS of model time when its load wants more."""
    net = busy_network(weight=0.0)  # the drive alone sets the rate: the demand stays the same
    free = engine.create_partition(0, domains=[4])
    engine.load(free, net)
    engine.run(free, 400)
    wanted = engine.telemetry(free).keps
    grant = int(wanted // 4)
    part = engine.create_partition(0, domains=[5], shared=True, keps_budget=grant)
    engine.load(part, net)
    engine.run(part, 400)
    t = engine.telemetry(part)
    assert t.dropped_budget > 0
    assert t.keps <= grant * 1.01
    assert t.keps >= grant * 0.75  # bursty steps leave some of the grant unused
    per_step = kepsdef.keps_events_per_step(grant, net.dt_ms)
    assert t.events <= per_step * t.steps + 2 * per_step + 1


def test_published_keps_and_maxmeps_follow_the_profile(darwin3: ChipProfile) -> None:
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="K-0", fabric="f"))
        view = ChipView.from_info(eng.chip(0), darwin3)
        assert view.keps == kepsdef.chip_keps(darwin3.router_events_per_s) == 10**9
        devices = {
            d["name"]: d for s in build_slices("n", [view]) for d in s["spec"].get("devices", [])
        }
        whole = devices["chip-0"]
        assert whole["attributes"]["maxMeps"]["int"] == kepsdef.meps(view.keps)
        domain = devices["chip-0-domain-1"]
        assert domain["attributes"]["maxMeps"]["int"] == kepsdef.meps(
            kepsdef.share(view.keps, 16, 575)
        )
        # The shipped darwin-fast class asks maxMeps >= 100000: a whole chip qualifies.
        assert whole["attributes"]["maxMeps"]["int"] >= 100_000


def test_calibration_is_the_chip_models_capacity_not_the_hosts_speed(engine: Engine) -> None:
    part = engine.create_partition(1, domains=list(range(36)))
    first = calibrate(engine, part, steps=100)
    second = calibrate(engine, part, steps=100)
    measured = kepsdef.chip_capacity(engine, 1)
    assert first.keps == second.keps == measured  # deterministic, whatever the host did
    # the links saturate before the router's nominal throughput is reached
    assert 0 < measured < kepsdef.chip_keps(engine.chip(1).router_events_per_s)
    assert first.host_keps > 0
    assert first.realtime_factor > 0
    assert first.load_keps == pytest.approx(
        kepsdef.keps_of(first.events, first.steps, 0.1), rel=1e-12
    )
    engine.inject_fault(1, FaultKind.DOMAIN, 7)
    degraded = calibrate(engine, part, steps=50).keps
    assert degraded == kepsdef.chip_capacity(engine, 1) < measured
    link = engine.link_index(1, 5, 5, Direction.EAST)
    assert link is not None
    engine.inject_fault(1, FaultKind.LINK, link)
    assert kepsdef.chip_capacity(engine, 1) < degraded
    engine.inject_fault(1, FaultKind.CHIP)
    assert kepsdef.chip_capacity(engine, 1) == 0
    assert kepsdef.chip_capacity(engine, 0) == measured  # the other chip is untouched


def test_saturation_is_where_the_busiest_link_fills(engine: Engine, darwin3: ChipProfile) -> None:
    """By hand on a 2 x 1 block of tiles: each core multicasts to both; the one link each way
    carries one packet a round, as does each core's port, so a round is as fast as one link:
    routerEventsPerSecond / links rounds a second, 4 deliveries each."""
    a, b = engine.core(0, 1), engine.core(0, 2)
    assert (a.y, b.y, b.x - a.x) == (0, 0, 1)
    w, h = darwin3.mesh_w, darwin3.mesh_h
    per_link = darwin3.router_events_per_s / (2 * ((w - 1) * h + w * (h - 1)))
    assert engine.saturation(0, [1, 2]) == pytest.approx(4 * per_link, rel=1e-12)
    assert kepsdef.saturation_keps(engine, 0, [1]) == int(per_link // 1000)  # its port alone
    # a partition far from the controller routes what the same shape routes anywhere
    assert engine.saturation(0, [1, 2]) == engine.saturation(1, [1, 2])


def test_a_weaker_router_publishes_less() -> None:
    profiles = load_profiles()
    fast = kepsdef.chip_keps(profiles["darwin3-fastroute"].router_events_per_s)
    assert fast > kepsdef.chip_keps(profiles["darwin3"].router_events_per_s)
    with Engine() as eng:  # and measured: the weaker router saturates at a lower rate
        for model in ("darwin3", "darwin3-fastroute"):
            eng.add_chip(profiles[model], ChipEntry(model=model, serial=model, fabric="f"))
        assert kepsdef.chip_capacity(eng, 1) > kepsdef.chip_capacity(eng, 0) > 0


def test_the_engine_benchmark_reports_both_figures() -> None:
    from darwin_dra.bench.brunel import BrunelConfig
    from darwin_dra.bench.peer_engine import run

    cfg = BrunelConfig(warmup_ms=5.0, sim_ms=20.0).scaled(0.05)
    r = run(cfg, 1, 1)
    steps = cfg.sim_steps
    assert r.extra["keps"] == pytest.approx(kepsdef.keps_of(r.events, steps, cfg.dt_ms))
    assert r.extra["host_keps"] == pytest.approx(r.events / r.sim_s / 1000)
