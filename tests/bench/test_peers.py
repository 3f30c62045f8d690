"""Peers (NEST, Brian2) on a small Brunel network, plus the shared network definition.

Tests that need a simulator are skipped when it does not import, unless the environment
sets DARWIN_REQUIRE_PEERS (CI does, so a missing peer fails there).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os

import numpy as np
import pytest
from darwin_dra.bench import (
    BenchResult,
    BrunelConfig,
    PeerUnavailable,
    connectivity,
    initial_v,
    iter_connectivity,
    out_degree,
    render,
    run_peer,
    synaptic_events,
    to_json,
)
from darwin_dra.bench.peers import RESULT_MARKER, UNAVAILABLE_MARKER, parse_peer_output

# 1000 neurons, in-degree 80 + 20; short runs: the whole module stays well under 60 s,
# most of it Brian2's compilation.
SMALL = dataclasses.replace(BrunelConfig().scaled(0.1), warmup_ms=50.0, sim_ms=200.0)
SEED = 7
# A guard against a hung peer, not a speed check: Brian2's first compile on a loaded 2-core
# machine, next to another test worker, took over 90 s.
PEER_TIMEOUT = 300


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _needs(module: str) -> pytest.MarkDecorator:
    required = bool(os.environ.get("DARWIN_REQUIRE_PEERS"))
    return pytest.mark.skipif(
        not required and not _importable(module),
        reason=f"{module} not installed (set DARWIN_REQUIRE_PEERS=1 to fail instead)",
    )


# ---- the shared network -----------------------------------------------------------------


def test_full_size_parameters() -> None:
    cfg = BrunelConfig()
    assert cfg.n == 10_000
    assert cfg.n_synapses == 10_000_000
    assert cfg.nu_thr_hz == pytest.approx(12.5)
    assert cfg.nu_ext_hz == pytest.approx(15_000.0)
    assert cfg.j_inh_mv == pytest.approx(-0.6)
    assert (cfg.warmup_steps, cfg.sim_steps) == (2000, 10000)


def test_scaled_keeps_drive_and_balance() -> None:
    cfg = BrunelConfig().scaled(0.25)
    assert (cfg.n_e, cfg.n_i, cfg.c_e, cfg.c_i) == (2000, 500, 200, 50)
    assert cfg.nu_ext_hz == pytest.approx(BrunelConfig().nu_ext_hz)
    assert cfg.j_mv == BrunelConfig().j_mv
    with pytest.raises(ValueError, match="positive"):
        BrunelConfig().scaled(0)


def test_config_round_trips_and_rejects_unknown_fields() -> None:
    assert BrunelConfig.from_dict(SMALL.to_dict()) == SMALL
    with pytest.raises(ValueError, match="unknown"):
        BrunelConfig.from_dict({**SMALL.to_dict(), "bogus": 1})


def test_connectivity_fixed_in_degree() -> None:
    cfg = BrunelConfig().scaled(0.15)  # 1500 neurons: spans two target blocks
    src, dst = connectivity(cfg, SEED)
    assert src.dtype == np.uint32
    assert dst.dtype == np.uint32
    assert len(src) == len(dst) == cfg.n_synapses
    assert np.all(np.bincount(dst, minlength=cfg.n) == cfg.c_e + cfg.c_i)
    per_target = src.reshape(cfg.n, cfg.c_e + cfg.c_i)
    assert np.all(per_target[:, : cfg.c_e] < cfg.n_e)
    assert np.all(per_target[:, cfg.c_e :] >= cfg.n_e)
    assert np.all(per_target < cfg.n)
    # Blocks concatenate to the same arrays, and the seed matters.
    blocks = list(iter_connectivity(cfg, SEED))
    assert len(blocks) == 2
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), src)
    src2, _ = connectivity(cfg, SEED)
    np.testing.assert_array_equal(src, src2)
    assert not np.array_equal(connectivity(cfg, SEED + 1)[0], src)
    # Out-degree varies around the mean in-degree and sums to the synapse count.
    deg = out_degree(cfg, SEED)
    assert int(deg.sum()) == cfg.n_synapses
    assert deg.min() < cfg.c_e + cfg.c_i < deg.max()


def test_initial_v_range_and_events() -> None:
    v = initial_v(SMALL, SEED)
    assert v.shape == (SMALL.n,)
    assert v.min() >= SMALL.v_init_low_mv
    assert v.max() < SMALL.theta_mv
    deg = np.array([3, 0, 5], dtype=np.int64)
    assert synaptic_events([2, 7, 1], deg) == 11
    with pytest.raises(ValueError, match="spike counts"):
        synaptic_events([1, 2], deg)


# ---- output parsing and the table -----------------------------------------------------


def _fake(name: str, events_per_s: float, rss: float) -> BenchResult:
    return BenchResult.from_counts(
        name=name,
        threads=1,
        cfg=SMALL,
        build_s=1.0,
        sim_s=1e6 / events_per_s,
        spikes=5000,
        events=1_000_000,
        peak_rss_mb=rss,
    )


def test_parse_peer_output() -> None:
    res = _fake("X", 2e7, 100.0)
    out = "banner\n" + RESULT_MARKER + json.dumps(res.to_dict()) + "\n"
    assert parse_peer_output("x", 0, out, "") == res
    missing = parse_peer_output("x", 3, UNAVAILABLE_MARKER + "no module\n", "")
    assert isinstance(missing, PeerUnavailable)
    assert missing.reason == "not installed"
    crashed = parse_peer_output("x", 1, "", "Traceback\nBoom\n")
    assert isinstance(crashed, PeerUnavailable)
    assert crashed.reason == "failed (exit 1)"
    assert "Boom" in crashed.detail


def test_table_ratios_and_unavailable_rows() -> None:
    engine = _fake("engine", 1e8, 50.0)
    peer = _fake("peer", 2.5e7, 200.0)
    rows: list[BenchResult | PeerUnavailable] = [
        engine,
        peer,
        PeerUnavailable("NEST", "not installed"),
    ]
    text = render(rows)
    peer_line = next(line for line in text.splitlines() if line.startswith("peer"))
    assert peer_line.split()[-2:] == ["4.00", "0.25"]
    assert "not installed" in text.splitlines()[-1]
    data = json.loads(to_json(rows))
    assert data[1]["ratio_first_to_this"]["events_per_s"] == pytest.approx(4.0)
    assert data[2] == {"name": "NEST", "available": False, "reason": "not installed", "detail": ""}


# ---- the peers themselves -------------------------------------------------------------


def _check_sane(res: BenchResult | PeerUnavailable, prefix: str) -> BenchResult:
    assert isinstance(res, BenchResult), res
    assert res.name.startswith(prefix)
    assert res.threads == 1
    assert res.build_s > 0
    assert res.sim_s > 0
    # The small network fires at a few tens of Hz (it is ~40 Hz at this size).
    assert 5.0 < res.rate_hz < 100.0
    assert res.spikes == round(res.rate_hz * SMALL.n * SMALL.sim_ms * 1e-3)
    mean_fanout = res.events / res.spikes
    assert 0.8 * (SMALL.c_e + SMALL.c_i) < mean_fanout < 1.2 * (SMALL.c_e + SMALL.c_i)
    assert res.events_per_s == pytest.approx(res.events / res.sim_s)
    assert res.ns_per_event == pytest.approx(1e9 / res.events_per_s)
    assert 1.0 < res.peak_rss_mb < 4096.0
    assert res.extra["sim_cpu_s"] > 0.0
    return res


@pytest.fixture(scope="module")
def nest_result() -> BenchResult:
    return _check_sane(run_peer("nest", SMALL, timeout=PEER_TIMEOUT, seed=SEED), "NEST")


@pytest.fixture(scope="module")
def brian2_result() -> BenchResult:
    return _check_sane(run_peer("brian2", SMALL, timeout=PEER_TIMEOUT, seed=SEED), "Brian2")


@pytest.mark.slow  # runs a peer simulator in a subprocess
@_needs("nest")
def test_nest_small(nest_result: BenchResult) -> None:
    assert nest_result.extra["num_connections"] >= SMALL.n_synapses


@pytest.mark.slow  # runs a peer simulator in a subprocess
@_needs("brian2")
def test_brian2_small(brian2_result: BenchResult) -> None:
    assert brian2_result.extra["codegen_compile_s"] > 0
    assert brian2_result.build_s >= brian2_result.extra["codegen_compile_s"]


@pytest.mark.slow  # runs a peer simulator in a subprocess
@_needs("nest")
@_needs("brian2")
def test_peers_agree_on_rate(nest_result: BenchResult, brian2_result: BenchResult) -> None:
    # Same network, same initial state: only the simulators' step semantics differ.
    assert math.isclose(nest_result.rate_hz, brian2_result.rate_hz, rel_tol=0.15)


def test_unknown_peer_rejected() -> None:
    with pytest.raises(ValueError, match="unknown peer"):
        run_peer("neuron", SMALL, timeout=1)


# ---- the engine against the peers -------------------------------------------------------


@pytest.fixture(scope="module")
def engine_result() -> BenchResult:
    from darwin_dra.cli.bench import run_engine

    res = run_engine(SMALL, threads=1, timeout=PEER_TIMEOUT, seed=SEED)
    assert isinstance(res, BenchResult), res
    assert res.extra["dropped_events"] == 0
    return res


@pytest.mark.slow  # runs a peer simulator in a subprocess
@_needs("nest")
def test_engine_rate_agrees_with_nest(engine_result: BenchResult, nest_result: BenchResult) -> None:
    assert math.isclose(engine_result.rate_hz, nest_result.rate_hz, rel_tol=0.10)


@pytest.mark.slow  # runs a peer simulator in a subprocess
@_needs("brian2")
def test_engine_rate_agrees_with_brian2(
    engine_result: BenchResult, brian2_result: BenchResult
) -> None:
    assert math.isclose(engine_result.rate_hz, brian2_result.rate_hz, rel_tol=0.10)


def test_engine_is_deterministic_across_threads(engine_result: BenchResult) -> None:
    from darwin_dra.cli.bench import run_engine

    two = run_engine(SMALL, threads=2, timeout=PEER_TIMEOUT, seed=SEED)
    assert isinstance(two, BenchResult), two
    assert (two.spikes, two.events) == (engine_result.spikes, engine_result.events)


# ---- the trained network (a weight per synapse, delays over 1-4 ms) ---------------------

TRAINED = dataclasses.replace(BrunelConfig.trained().scaled(0.1), warmup_ms=50.0, sim_ms=200.0)


def test_trained_synapses_are_the_same_arrays_block_by_block() -> None:
    from darwin_dra.bench.brunel import iter_synapses, synapses

    src, _dst, w, d = synapses(TRAINED, SEED)
    assert np.unique(w).size > 1000  # continuous weights
    assert set(np.unique(np.rint(d / TRAINED.dt_ms)).astype(int)) == set(range(10, 41))
    assert np.mean(w[src < TRAINED.n_e]) == pytest.approx(TRAINED.j_mv, rel=0.05)
    again = np.concatenate([b[2] for b in iter_synapses(TRAINED, SEED)])
    np.testing.assert_array_equal(again, w)
    assert not BrunelConfig().per_synapse


@pytest.mark.slow  # runs a peer simulator in a subprocess
@_needs("nest")
def test_engine_on_the_trained_network_agrees_with_nest() -> None:
    from darwin_dra.cli.bench import run_engine

    engine = run_engine(TRAINED, threads=1, timeout=PEER_TIMEOUT, seed=SEED)
    nest = run_peer("nest", TRAINED, timeout=PEER_TIMEOUT, seed=SEED)
    assert isinstance(engine, BenchResult), engine
    assert isinstance(nest, BenchResult), nest
    assert engine.extra["synapse_bytes_per_synapse"] > 0
    assert 0 < engine.extra["quant_error_mv"] < 0.01 * TRAINED.j_mv * 10
    assert math.isclose(engine.rate_hz, nest.rate_hz, rel_tol=0.10)


def test_engine_weights_are_what_the_engine_holds() -> None:
    """Given `engine_weights` of the trained network's weights (at most 256 distinct, so held
    exactly), the engine runs spike for spike as given the exact weights, which it quantises
    itself; the largest change is its quant_error_mv."""
    from darwin_dra.bench.brunel import engine_weights
    from darwin_dra.bench.peer_engine import brunel_network, whole_chip
    from darwin_dra.engine import Engine

    exact = brunel_network(TRAINED, SEED)
    q = engine_weights(exact.weight.astype(np.float64))
    assert np.unique(q).size <= 256
    given = dataclasses.replace(exact, weight=q.astype(np.float32))
    counts, errors = [], []
    for net in (exact, given):
        with Engine() as engine:
            part = whole_chip(engine)
            engine.load(part, net)
            engine.set_membrane(part, initial_v(TRAINED, SEED))
            engine.run(part, 1000, 1)
            counts.append(engine.spike_counts(part, TRAINED.n))
            errors.append(engine.telemetry(part).quant_error_mv)
    np.testing.assert_array_equal(counts[0], counts[1])
    assert counts[0].sum() > 0
    assert errors[1] == 0.0
    assert errors[0] == pytest.approx(float(np.max(np.abs(q - exact.weight))), rel=1e-6)


@pytest.mark.parametrize("steps", [0, 3, 7, 100])
def test_the_warm_up_runs_its_steps_in_windows(steps: int) -> None:
    """All the warm-up's steps run, in at most WARMUP_RUNS runs, so the timed run starts where
    the peers' does (after warmup_steps) and from a split the engine has measured."""
    from darwin_dra.bench import peer_engine
    from darwin_dra.engine import Engine

    cfg = BrunelConfig().scaled(0.02)
    calls: list[int] = []
    with Engine() as engine:
        part = peer_engine.whole_chip(engine)
        engine.load(part, peer_engine.brunel_network(cfg, 1))
        run = engine.run

        def counting_run(p: int, n: int, threads: int = 1) -> None:
            calls.append(n)
            run(p, n, threads)

        engine.run = counting_run  # type: ignore[method-assign]
        peer_engine.warm_up(engine, part, steps, 2)
        assert engine.telemetry(part).steps == steps
    assert sum(calls) == steps
    assert len(calls) == min(steps, peer_engine.WARMUP_RUNS)
    assert all(n > 0 for n in calls)
