"""The benchmark networks on NEST (iaf_psc_delta, one thread); run as a subprocess.
The Brunel family here, the conv model in `peer_nest_conv`.

    python -m darwin_dra.bench.peer_nest --json [--scale F] [--seed S]

The connectivity and initial V come from darwin_dra.bench.brunel, so NEST simulates the
very network the engine does. build_s includes nest.Prepare(), where NEST finalises its
connection tables; the timed part is one nest.Run(sim_ms) after an untimed warm-up.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from darwin_dra.bench.brunel import (
    BenchResult,
    BrunelConfig,
    initial_v,
    iter_synapses,
    synaptic_events,
)
from darwin_dra.bench.conv import ConvConfig
from darwin_dra.bench.peers import Config, current_rss_mb, peak_rss_mb, peer_main

THREADS = 1


def _import_nest() -> Any:
    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    return nest


def _import_check() -> str | None:
    try:
        _import_nest()
    except ImportError as exc:
        return f"cannot import nest: {exc} (pip install nest-simulator)"
    return None


def reset_kernel(nest: Any, dt_ms: float, seed: int, threads: int) -> None:
    """A fresh NEST kernel at the benchmark's step, threads and seed, quiet."""
    nest.ResetKernel()
    if hasattr(nest, "VerbosityLevel"):  # 3.10 deprecates set_verbosity
        nest.verbosity = nest.VerbosityLevel.ERROR
    else:
        nest.set_verbosity("M_ERROR")
    nest.SetKernelStatus(
        {
            "resolution": dt_ms,
            "local_num_threads": threads,
            "rng_seed": seed % (2**31 - 2) + 1,
            "print_time": False,
        }
    )


def timed_run(nest: Any, warmup_ms: float, sim_ms: float) -> tuple[float, float, float]:
    """An untimed warm-up, then the timed run: (warm-up wall s, timed wall s, timed CPU s)."""
    t1 = time.perf_counter()
    if warmup_ms > 0:
        nest.Run(warmup_ms)
    warmup_s = time.perf_counter() - t1
    # CPU time too: on a loaded machine it is steadier than the wall time.
    c2 = time.process_time()
    t2 = time.perf_counter()
    nest.Run(sim_ms)
    sim_s = time.perf_counter() - t2
    sim_cpu_s = time.process_time() - c2
    nest.Cleanup()
    return warmup_s, sim_s, sim_cpu_s


def nest_result(
    nest: Any,
    cfg: Config,
    threads: int,
    times: tuple[float, float, float, float, float],
    spikes: int,
    events: int,
    extra: dict[str, float],
) -> BenchResult:
    """The result of a NEST run; times = (build, connectivity, warm-up, timed wall, timed CPU)."""
    build_s, conn_s, warmup_s, sim_s, sim_cpu_s = times
    return BenchResult.from_counts(
        name=f"NEST {nest.__version__}",
        threads=threads,
        cfg=cfg,
        build_s=build_s,
        sim_s=sim_s,
        spikes=spikes,
        events=events,
        peak_rss_mb=peak_rss_mb(),
        extra={"connectivity_s": conn_s, "warmup_s": warmup_s, "sim_cpu_s": sim_cpu_s, **extra},
    )


def run(cfg: Config, seed: int) -> BenchResult:
    nest = _import_nest()
    if isinstance(cfg, ConvConfig):
        from darwin_dra.bench.peer_nest_conv import run_conv

        return run_conv(nest, cfg, seed, THREADS)
    if not isinstance(cfg, BrunelConfig):
        raise ValueError(f"the NEST peer has no form of {type(cfg).__name__}")
    rss_before = current_rss_mb()
    conn_s = 0.0

    t0 = time.perf_counter()
    reset_kernel(nest, cfg.dt_ms, seed, THREADS)
    neurons = nest.Create(
        "iaf_psc_delta",
        cfg.n,
        params={
            "tau_m": cfg.tau_m_ms,
            "V_th": cfg.theta_mv,
            "V_reset": cfg.v_reset_mv,
            "E_L": cfg.e_l_mv,
            "t_ref": cfg.t_ref_ms,
            "I_e": 0.0,
        },
    )
    # Delta synapses: the weight is the jump of V in mV, so C_m does not matter.
    neurons.V_m = initial_v(cfg, seed).tolist()
    first_id = int(neurons[0].global_id)

    out_deg = np.zeros(cfg.n, dtype=np.int64)
    tc = time.perf_counter()
    for src, dst, weights, delays in iter_synapses(cfg, seed):
        out_deg += np.bincount(src, minlength=cfg.n)
        pre = src.astype(np.int64) + first_id
        post = dst.astype(np.int64) + first_id
        conn_s += time.perf_counter() - tc
        # The array fast path of Connect wants per-synapse arrays, even for the delay.
        nest.Connect(
            pre,
            post,
            conn_spec="one_to_one",
            syn_spec={"synapse_model": "static_synapse", "weight": weights, "delay": delays},
        )
        tc = time.perf_counter()

    # One generator gives every target its own independent Poisson train. Its delay does
    # not matter for a stationary drive; the recurrent delay keeps NEST's min_delay large.
    drive = nest.Create("poisson_generator", params={"rate": cfg.nu_ext_hz})
    nest.Connect(drive, neurons, syn_spec={"weight": cfg.j_mv, "delay": cfg.delay_ms})
    # Stamps in (start, stop] only: exactly the spikes of the timed window.
    recorder = nest.Create(
        "spike_recorder", params={"start": cfg.warmup_ms, "stop": cfg.warmup_ms + cfg.sim_ms}
    )
    nest.Connect(neurons, recorder)
    nest.Prepare()
    build_s = time.perf_counter() - t0 - conn_s

    warmup_s, sim_s, sim_cpu_s = timed_run(nest, cfg.warmup_ms, cfg.sim_ms)

    senders = np.asarray(recorder.get("events")["senders"], dtype=np.int64) - first_id
    counts = np.bincount(senders, minlength=cfg.n)
    n_syn = int(nest.GetKernelStatus("num_connections"))
    return nest_result(
        nest,
        cfg,
        THREADS,
        (build_s, conn_s, warmup_s, sim_s, sim_cpu_s),
        int(counts.sum()),
        synaptic_events(counts, out_deg),
        {"rss_before_build_mb": rss_before, "num_connections": float(n_syn)},
    )


def main(argv: Sequence[str] | None = None) -> int:
    return peer_main("nest", argv, _import_check, run)


if __name__ == "__main__":
    sys.exit(main())
