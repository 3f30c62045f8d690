"""The Brunel network on Brian2 (cpp_standalone, no OpenMP); run as a subprocess.

    python -m darwin_dra.bench.peer_brian2 --json [--scale F] [--seed S]

In standalone mode the whole simulation runs in a compiled binary, so Python timers
cannot see the timed second alone. We insert wall-clock stamps (std::chrono) into the
generated main() around each run and have the binary report its own VmHWM: the peak
RSS is that of the process that simulated, not of Python or of the compiler.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darwin_dra.bench.brunel import (
    BenchResult,
    BrunelConfig,
    engine_weights,
    initial_v,
    synaptic_events,
)
from darwin_dra.bench.brunel import (
    synapses as synapses_of,
)
from darwin_dra.bench.conv import ConvConfig
from darwin_dra.bench.peers import Config, peak_rss_mb, peer_main

THREADS = 1
TIMING_FILE = "darwin_timing.txt"


def _import_check() -> str | None:
    try:
        import brian2  # noqa: F401
    except ImportError as exc:
        return f"cannot import brian2: {exc} (pip install brian2)"
    except AttributeError as exc:
        # brian2 <= 2.9 uses ndarray.ptp, which numpy 2.4 removed.
        return f"brian2 does not import with this numpy: {exc} (pip install 'numpy<2.4')"
    return None


def _timing_code(path: Path) -> tuple[str, str]:
    """C++ for main(): declarations before brian_start(), report after brian_end()."""
    declare = (
        "auto _dd_t0 = std::chrono::steady_clock::now();\n"
        "auto _dd_t1 = _dd_t0; auto _dd_t2 = _dd_t0; auto _dd_t3 = _dd_t0;\n"
        "std::clock_t _dd_c2 = 0; std::clock_t _dd_c3 = 0;"
    )
    report = f"""{{
    auto _dd_t4 = std::chrono::steady_clock::now();
    std::ofstream _dd_out("{path}");
    _dd_out << "setup_s " << std::chrono::duration<double>(_dd_t1 - _dd_t0).count() << "\\n";
    _dd_out << "warmup_s " << std::chrono::duration<double>(_dd_t2 - _dd_t1).count() << "\\n";
    _dd_out << "sim_s " << std::chrono::duration<double>(_dd_t3 - _dd_t2).count() << "\\n";
    _dd_out << "sim_cpu_s " << double(_dd_c3 - _dd_c2) / CLOCKS_PER_SEC << "\\n";
    _dd_out << "end_s " << std::chrono::duration<double>(_dd_t4 - _dd_t3).count() << "\\n";
    std::ifstream _dd_status("/proc/self/status");
    std::string _dd_line;
    while (std::getline(_dd_status, _dd_line)) {{
        if (_dd_line.rfind("VmHWM:", 0) == 0) _dd_out << "vmhwm_kb " << _dd_line.substr(6) << "\\n";
    }}
}}"""
    return declare, report


def _read_timing(path: Path) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        values[key] = float(value.split()[0])
    return values


def standalone_device(b2: Any, dt_ms: float, seed: int, build_dir: Path, timing_path: Path) -> None:
    """Brian2's C++ standalone device on one thread, clocks written to ``timing_path``."""
    b2.prefs.logging.file_log = False
    b2.set_device("cpp_standalone", directory=str(build_dir), build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0  # single thread, no OpenMP
    b2.prefs.codegen.cpp.headers = ["<chrono>", "<fstream>", "<string>"]
    b2.defaultclock.dt = dt_ms * b2.ms
    b2.seed(seed)
    declare, report = _timing_code(timing_path)
    b2.device.insert_code("before_start", declare)
    b2.device.insert_code("after_end", report)


@dataclass(frozen=True)
class TimedRuns:
    build_started: float  # perf_counter when the network was built and the runs queued
    codegen_compile_s: float
    binary_s: float
    timing: dict[str, float]  # the binary's own clocks (_timing_code)


def timed_runs(
    b2: Any, net: Any, warmup_ms: float, sim_ms: float, build_dir: Path, timing_path: Path
) -> TimedRuns:
    """The warm-up, then the timed run, inside the standalone binary with clocks around
    each; then code generation and compilation, and the binary run."""
    b2.device.insert_code("main", "_dd_t1 = std::chrono::steady_clock::now();")
    net.run(warmup_ms * b2.ms)
    # CPU time too: on a loaded machine it is steadier than the wall time.
    b2.device.insert_code(
        "main", "_dd_t2 = std::chrono::steady_clock::now(); _dd_c2 = std::clock();"
    )
    net.run(sim_ms * b2.ms)
    b2.device.insert_code(
        "main", "_dd_c3 = std::clock(); _dd_t3 = std::chrono::steady_clock::now();"
    )
    t1 = time.perf_counter()
    b2.device.build(directory=str(build_dir), compile=True, run=False, with_output=False)
    t2 = time.perf_counter()
    b2.device.run(directory=str(build_dir), with_output=False)
    t3 = time.perf_counter()
    return TimedRuns(t1, t2 - t1, t3 - t2, _read_timing(timing_path))


def run(cfg: Config, seed: int) -> BenchResult:
    import brian2 as b2

    with tempfile.TemporaryDirectory(prefix="darwin-brian2-") as tmp:
        if isinstance(cfg, ConvConfig):
            from darwin_dra.bench.peer_brian2_conv import run_conv

            return run_conv(b2, cfg, seed, Path(tmp))
        return _run_in(b2, cfg, seed, Path(tmp))


def _run_in(b2: Any, cfg: BrunelConfig, seed: int, workdir: Path) -> BenchResult:
    build_dir = workdir / "build"
    timing_path = workdir / TIMING_FILE
    ms, mv, hz = b2.ms, b2.mV, b2.Hz

    t0 = time.perf_counter()
    standalone_device(b2, cfg.dt_ms, seed, build_dir, timing_path)

    neurons = b2.NeuronGroup(
        cfg.n,
        "dv/dt = -(v - v_rest) / tau_m : volt (unless refractory)",
        threshold="v >= theta",
        reset="v = v_reset",
        refractory=cfg.t_ref_ms * ms,
        method="exact",
        namespace={
            "v_rest": cfg.e_l_mv * mv,
            "tau_m": cfg.tau_m_ms * ms,
            "theta": cfg.theta_mv * mv,
            "v_reset": cfg.v_reset_mv * mv,
        },
        name="neurons",
    )
    neurons.v = initial_v(cfg, seed) * mv

    tc = time.perf_counter()
    src, dst, weight_mv, delay_ms = synapses_of(cfg, seed)
    if cfg.quantised:
        weight_mv = engine_weights(weight_mv)
    out_deg = np.bincount(src, minlength=cfg.n).astype(np.int64)
    exc = src < cfg.n_e
    conn_s = time.perf_counter() - tc

    # Like NEST's iaf_psc_delta, input arriving during the refractory period is dropped
    # (Brian2 would otherwise add it to the clamped v).
    on_pre = "v_post += w * int(not_refractory_post)"
    synapses = []
    if cfg.per_synapse:
        # A trained network: a weight and a delay per synapse, on the same arrays as the others.
        syn = b2.Synapses(neurons, neurons, model="w : volt", on_pre=on_pre, name="syn")
        syn.connect(i=src.astype(np.int32), j=dst.astype(np.int32))
        syn.w = weight_mv * mv
        syn.delay = delay_ms * ms
        synapses.append(syn)
        exc = exc[:0]  # no population pathways below
    del weight_mv, delay_ms
    pathways = () if cfg.per_synapse else (("exc", exc, cfg.j_mv), ("inh", ~exc, cfg.j_inh_mv))
    for label, mask, weight in pathways:
        # Two pathways with a scalar weight and delay each: no per-synapse storage.
        syn = b2.Synapses(
            neurons,
            neurons,
            on_pre=on_pre,
            delay=cfg.delay_ms * ms,
            namespace={"w": weight * mv},
            name=f"syn_{label}",
        )
        syn.connect(i=src[mask].astype(np.int32), j=dst[mask].astype(np.int32))
        synapses.append(syn)
    del src, dst, exc

    # Binomial(c_e, nu_thr * dt) per step: c_e independent Poisson sources of rate nu_thr.
    drive = b2.PoissonInput(
        neurons,
        "v",
        N=cfg.c_e,
        rate=cfg.eta * cfg.nu_thr_hz * hz,
        weight=f"{cfg.j_mv!r}*mV*int(not_refractory)",
    )
    monitor = b2.SpikeMonitor(neurons, record=True, name="spikes")
    net = b2.Network(neurons, *synapses, drive, monitor)

    runs = timed_runs(b2, net, cfg.warmup_ms, cfg.sim_ms, build_dir, timing_path)
    construct_s = runs.build_started - t0 - conn_s
    codegen_compile_s, binary_s, timing = runs.codegen_compile_s, runs.binary_s, runs.timing

    t_spike = np.asarray(monitor.t_[:], dtype=np.float64)
    i_spike = np.asarray(monitor.i[:], dtype=np.int64)
    # Brian stamps a spike with the start of its step: the timed window is t >= warmup.
    in_window = t_spike >= (cfg.warmup_ms - 0.5 * cfg.dt_ms) * 1e-3
    counts = np.bincount(i_spike[in_window], minlength=cfg.n)

    return BenchResult.from_counts(
        name=f"Brian2 {b2.__version__}" + (" (engine weights)" if cfg.quantised else ""),
        threads=THREADS,
        cfg=cfg,
        build_s=construct_s + codegen_compile_s + timing["setup_s"],
        sim_s=timing["sim_s"],
        spikes=int(counts.sum()),
        events=synaptic_events(counts, out_deg),
        peak_rss_mb=timing["vmhwm_kb"] / 1024.0,
        extra={
            "connectivity_s": conn_s,
            "python_construct_s": construct_s,
            "codegen_compile_s": codegen_compile_s,
            "binary_setup_s": timing["setup_s"],
            "warmup_s": timing["warmup_s"],
            "sim_cpu_s": timing["sim_cpu_s"],
            "binary_total_s": binary_s,
            "python_peak_rss_mb": peak_rss_mb(),
        },
    )


def main(argv: Sequence[str] | None = None) -> int:
    return peer_main("brian2", argv, _import_check, run)


if __name__ == "__main__":
    sys.exit(main())
