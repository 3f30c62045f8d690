"""The Brunel network on the Darwin engine; run as a subprocess like the peers.

    python -m darwin_dra.bench.peer_engine --json [--threads T] [--scale F] [--seed S]

One darwin3 chip (from the shipped profile), a whole-chip partition, the network of
darwin_dra.bench.brunel with the chip model's routing, queues and telemetry on. build_s is the
engine's load (validation, placement, synapse store, routing trees); the timed part is one
run of sim_ms after an untimed warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

from darwin_dra.bench.brunel import (
    DEFAULT_SEED,
    BenchResult,
    BrunelConfig,
    initial_v,
    out_degree,
    synapses,
    synaptic_events,
)
from darwin_dra.bench.conv import ConvConfig, conv_model, input_spikes, source_out_degree
from darwin_dra.bench.peers import (
    RESULT_MARKER,
    Config,
    config_from_dict,
    current_rss_mb,
    peak_rss_mb,
)
from darwin_dra.engine import Engine, Network, NeuronGroup, Telemetry
from darwin_dra.engine import keps as kepsdef
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles


def brunel_network(cfg: BrunelConfig, seed: int) -> Network:
    """The benchmark network in the engine's form (initial V is set after loading)."""
    src, dst, weight_mv, delay_ms = synapses(cfg, seed)
    weight = weight_mv.astype(np.float32)
    delay = np.rint(delay_ms / cfg.dt_ms).astype(np.uint16)
    del weight_mv, delay_ms
    group = NeuronGroup(
        count=cfg.n,
        tau_m=cfg.tau_m_ms,
        v_th=cfg.theta_mv,
        v_reset=cfg.v_reset_mv,
        e_l=cfg.e_l_mv,
        t_ref=cfg.t_ref_ms,
        poisson_rate_hz=cfg.nu_ext_hz,
        poisson_weight=cfg.j_mv,
    )
    return Network(
        groups=(group,),
        src=src,
        dst=dst,
        weight=weight,
        delay=delay,
        dt_ms=cfg.dt_ms,
        seed=seed,
        name="brunel",
    )


def engine_extra(
    before: Telemetry, after: Telemetry, n: int, n_synapses: int, dt_ms: float, sim_s: float
) -> dict[str, float]:
    """The engine's own figures of a timed run (telemetry after minus before)."""
    events = after.events - before.events
    steps = after.steps - before.steps
    return {
        "update_ns_per_step": (after.update_ns - before.update_ns) / steps,
        "update_ns_per_neuron_step": (after.update_ns - before.update_ns) / steps / n,
        "deliver_ns_per_event": (after.deliver_ns - before.deliver_ns) / max(events, 1),
        "wall_ns_per_neuron_step": sim_s * 1e9 / steps / n,
        "synapse_bytes_per_synapse": after.synapse_bytes / n_synapses,
        "network_bytes_per_synapse": after.network_bytes / n_synapses,
        "queue_peak_events": float(after.queue_peak),
        "delay_store": float(after.delay_store),  # DelayStore: sums or queues
        "dropped_events": float(after.dropped - before.dropped),
        "quant_error_mv": after.quant_error_mv,
        # KEPS of model time (engine/keps.py) and this host's speed, kept apart.
        "keps": kepsdef.keps_of(events, steps, dt_ms),
        "host_keps": (events / sim_s / kepsdef.EVENTS_PER_KEPS) if sim_s > 0 else 0.0,
    }


def whole_chip(engine: Engine) -> int:
    """One darwin3 chip of the shipped profile and a partition of all its domains."""
    profile = load_profiles()["darwin3"]
    chip = engine.add_chip(profile, ChipEntry(model="darwin3", serial="BENCH-0", fabric="bench"))
    return engine.create_partition(chip, domains=list(range(profile.n_domains)))


def timed_run(engine: Engine, part: int, steps: int, threads: int) -> tuple[float, float]:
    """(wall s, CPU s) of one engine run."""
    c0, t0 = time.process_time(), time.perf_counter()
    engine.run(part, steps, threads)
    return time.perf_counter() - t0, time.process_time() - c0


WARMUP_RUNS = 5


def warm_up(engine: Engine, part: int, steps: int, threads: int) -> float:
    """The untimed warm-up, in WARMUP_RUNS runs as a chip host runs a partition in windows: a
    network's first run splits the cores evenly among the workers, and each later split follows
    the time measured so far, so the timed run starts from a settled split. Returns wall s."""
    total = 0.0
    for k in range(WARMUP_RUNS):
        chunk = steps * (k + 1) // WARMUP_RUNS - steps * k // WARMUP_RUNS
        if chunk:
            total += timed_run(engine, part, chunk, threads)[0]
    return total


def run(cfg: Config, seed: int, threads: int) -> BenchResult:
    if isinstance(cfg, ConvConfig):
        return run_conv(cfg, seed, threads)
    rss_before = current_rss_mb()
    tc = time.perf_counter()
    net = brunel_network(cfg, seed)
    conn_s = time.perf_counter() - tc
    with Engine() as engine:
        part = whole_chip(engine)
        t0 = time.perf_counter()
        engine.load(part, net)
        engine.set_membrane(part, initial_v(cfg, seed))
        build_s = time.perf_counter() - t0
        del net  # the engine holds its own compact copy
        warmup_s = warm_up(engine, part, cfg.warmup_steps, threads)
        before = engine.telemetry(part)
        counts_before = engine.spike_counts(part, cfg.n)
        sim_s, sim_cpu_s = timed_run(engine, part, cfg.sim_steps, threads)
        after = engine.telemetry(part)
        counts = (engine.spike_counts(part, cfg.n) - counts_before).astype(np.int64)
    events = after.events - before.events
    # Cross-check: the engine's own count equals spikes times out-degree unless it dropped.
    expected = synaptic_events(counts, out_degree(cfg, seed))
    if after.dropped == before.dropped and events != expected:
        raise RuntimeError(f"engine delivered {events} events, connectivity says {expected}")
    extra = {"connectivity_s": conn_s, "warmup_s": warmup_s, "sim_cpu_s": sim_cpu_s}
    extra["rss_before_build_mb"] = rss_before
    extra |= engine_extra(before, after, cfg.n, cfg.n_synapses, cfg.dt_ms, sim_s)
    return BenchResult.from_counts(
        name="darwin engine",
        threads=after.threads,
        cfg=cfg,
        build_s=build_s,
        sim_s=sim_s,
        spikes=int(counts.sum()),
        events=events,
        peak_rss_mb=peak_rss_mb(),
        extra=extra,
    )


def run_conv(cfg: ConvConfig, seed: int, threads: int) -> BenchResult:
    """The conv model: compiled from NIR, its input injected up front, timed after warm-up."""
    rss_before = current_rss_mb()
    tc = time.perf_counter()
    model = conv_model(cfg)
    in_steps, in_ids = input_spikes(cfg, seed)
    conn_s = time.perf_counter() - tc
    net = model.network
    n_src = net.n_neurons + net.n_inputs
    with Engine() as engine:
        part = whole_chip(engine)
        t0 = time.perf_counter()
        engine.load(part, net)
        build_s = time.perf_counter() - t0
        engine.set_input_capacity(part, max(1, in_steps.size))
        engine.inject(part, in_steps, in_ids)
        warmup_s = warm_up(engine, part, cfg.warmup_steps, threads)
        before = engine.telemetry(part)
        counts_before = engine.spike_counts(part, n_src)
        sim_s, sim_cpu_s = timed_run(engine, part, cfg.sim_steps, threads)
        after = engine.telemetry(part)
        counts = (engine.spike_counts(part, n_src) - counts_before).astype(np.int64)
    events = after.events - before.events
    expected = int(counts @ source_out_degree(model))
    if after.dropped == before.dropped and events != expected:
        raise RuntimeError(f"engine delivered {events} events, the synapses say {expected}")
    extra = {"connectivity_s": conn_s, "warmup_s": warmup_s, "sim_cpu_s": sim_cpu_s}
    extra["rss_before_build_mb"] = rss_before
    extra["input_spikes"] = float(counts[net.n_neurons :].sum())
    extra |= engine_extra(before, after, cfg.n, net.n_synapses, cfg.dt_ms, sim_s)
    return BenchResult.from_counts(
        name="darwin engine",
        threads=after.threads,
        cfg=cfg,
        build_s=build_s,
        sim_s=sim_s,
        spikes=int(counts[: net.n_neurons].sum()),
        events=events,
        peak_rss_mb=peak_rss_mb(),
        extra=extra,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m darwin_dra.bench.peer_engine")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--config", help="BrunelConfig as a JSON object (default: full size)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--trained", action="store_true", help="BrunelConfig.trained()")
    parser.add_argument("--conv", action="store_true", help="ConvConfig(): the NIR conv model")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    base: Config = ConvConfig() if args.conv else BrunelConfig()
    base = BrunelConfig.trained() if args.trained else base
    cfg = config_from_dict(json.loads(args.config)) if args.config else base
    if args.scale != 1.0:
        cfg = cfg.scaled(args.scale)
    result = run(cfg, args.seed, args.threads)
    if args.json:
        print(RESULT_MARKER + json.dumps(result.to_dict()), flush=True)
    else:
        from darwin_dra.bench.table import render

        print(render([result]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
