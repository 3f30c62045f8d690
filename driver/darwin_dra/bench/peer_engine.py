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
from darwin_dra.bench.peers import RESULT_MARKER, current_rss_mb, peak_rss_mb
from darwin_dra.engine import Engine, Network, NeuronGroup
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


def run(cfg: BrunelConfig, seed: int, threads: int) -> BenchResult:
    rss_before = current_rss_mb()
    tc = time.perf_counter()
    net = brunel_network(cfg, seed)
    conn_s = time.perf_counter() - tc
    profile = load_profiles()["darwin3"]
    with Engine() as engine:
        chip = engine.add_chip(
            profile, ChipEntry(model="darwin3", serial="BENCH-0", fabric="bench")
        )
        part = engine.create_partition(chip, domains=list(range(profile.n_domains)))
        t0 = time.perf_counter()
        engine.load(part, net)
        engine.set_membrane(part, initial_v(cfg, seed))
        build_s = time.perf_counter() - t0
        del net  # the engine holds its own compact copy
        t1 = time.perf_counter()
        engine.run(part, cfg.warmup_steps, threads)
        warmup_s = time.perf_counter() - t1
        before = engine.telemetry(part)
        counts_before = engine.spike_counts(part, cfg.n)
        c2 = time.process_time()
        t2 = time.perf_counter()
        engine.run(part, cfg.sim_steps, threads)
        sim_s = time.perf_counter() - t2
        sim_cpu_s = time.process_time() - c2
        after = engine.telemetry(part)
        counts = (engine.spike_counts(part, cfg.n) - counts_before).astype(np.int64)
    events = after.events - before.events
    # Cross-check: the engine's own count equals spikes times out-degree unless it dropped.
    expected = synaptic_events(counts, out_degree(cfg, seed))
    dropped = after.dropped - before.dropped
    if dropped == 0 and events != expected:
        raise RuntimeError(f"engine delivered {events} events, connectivity says {expected}")
    steps = after.steps - before.steps
    return BenchResult.from_counts(
        name="darwin engine",
        threads=after.threads,
        cfg=cfg,
        build_s=build_s,
        sim_s=sim_s,
        spikes=int(counts.sum()),
        events=events,
        peak_rss_mb=peak_rss_mb(),
        extra={
            "connectivity_s": conn_s,
            "warmup_s": warmup_s,
            "sim_cpu_s": sim_cpu_s,
            "rss_before_build_mb": rss_before,
            "update_ns_per_step": (after.update_ns - before.update_ns) / steps,
            "update_ns_per_neuron_step": (after.update_ns - before.update_ns) / steps / cfg.n,
            "deliver_ns_per_event": (after.deliver_ns - before.deliver_ns) / max(events, 1),
            "synapse_bytes_per_synapse": after.synapse_bytes / cfg.n_synapses,
            "network_bytes_per_synapse": after.network_bytes / cfg.n_synapses,
            "queue_peak_events": float(after.queue_peak),
            "dropped_events": float(dropped),
            "quant_error_mv": after.quant_error_mv,
            # KEPS of model time (engine/keps.py) and this host's speed, kept apart.
            "keps": kepsdef.keps_of(events, steps, cfg.dt_ms),
            "host_keps": (events / sim_s / kepsdef.EVENTS_PER_KEPS) if sim_s > 0 else 0.0,
        },
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m darwin_dra.bench.peer_engine")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--config", help="BrunelConfig as a JSON object (default: full size)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--trained", action="store_true", help="BrunelConfig.trained()")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    base = BrunelConfig.trained() if args.trained else BrunelConfig()
    cfg = BrunelConfig.from_dict(json.loads(args.config)) if args.config else base
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
