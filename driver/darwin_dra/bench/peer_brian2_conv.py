"""The conv model (`bench.conv`) on Brian2 cpp_standalone: the compiled model's synapse arrays,
its LIF parameters and the same input spikes. Called by `peer_brian2.run` for a ConvConfig.

Timing is the engine's (docs/engine.md, "Timing semantics"): a spike emitted at step s with a
delay of d steps is added at step s + d after that step's decay and before its threshold test,
v <- e_l + a_m (v - e_l) + g_x x. Brian2's default schedule tests the threshold before the
synapses add their input, so this network runs with the schedule groups, synapses,
thresholds, resets: the synapses push the spikes of the step before, and a Brian2 delay of
d - 1 steps makes the input of step s + d. The weight is the engine's weight times the target's
g_x (the model's weight divided by the layer scale, times r (1 - a_m) with r holding the scale),
in float64, where the engine uses float32.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from darwin_dra.bench.brunel import BenchResult, synaptic_events
from darwin_dra.bench.conv import ConvConfig, conv_model, input_spikes, lif_parameters
from darwin_dra.bench.peers import peak_rss_mb

SCHEDULE = ["start", "groups", "synapses", "thresholds", "resets", "end"]


def run_conv(b2: Any, cfg: ConvConfig, seed: int, workdir: Path) -> BenchResult:
    from darwin_dra.bench.peer_brian2 import THREADS, TIMING_FILE, standalone_device, timed_runs

    build_dir, timing_path = workdir / "build", workdir / TIMING_FILE
    ms = b2.ms
    t0 = time.perf_counter()
    standalone_device(b2, cfg.dt_ms, seed, build_dir, timing_path)

    tc = time.perf_counter()
    model = conv_model(cfg)
    net = model.network
    p = lif_parameters(model)
    in_steps, in_ids = input_spikes(cfg, seed)
    n = net.n_neurons
    src = net.src.astype(np.int64)
    dst = net.dst.astype(np.int64)
    w = net.weight.astype(np.float64) * p["g_x"][dst]
    delay_steps = net.delay.astype(np.int64) - 1
    out_deg = np.bincount(src, minlength=n + net.n_inputs).astype(np.int64)
    conn_s = time.perf_counter() - tc

    neurons = b2.NeuronGroup(
        n,
        "dv/dt = (e_l - v) / tau : 1\ne_l : 1 (constant)\ntau : second (constant)\n"
        "v_th : 1 (constant)\nv_reset : 1 (constant)",
        threshold="v > v_th",
        reset="v = v_reset",
        method="exact",
        name="neurons",
    )
    neurons.e_l = p["e_l"]
    neurons.tau = p["tau_ms"] * ms
    neurons.v_th = p["v_th"]
    neurons.v_reset = p["v_reset"]
    neurons.v = p["e_l"]
    inputs = b2.SpikeGeneratorGroup(
        net.n_inputs, in_ids.astype(np.int32), in_steps * cfg.dt_ms * ms, name="inputs"
    )
    synapses = []
    for label, group, sel, offset in (
        ("in", inputs, src >= n, n),
        ("ff", neurons, src < n, 0),
    ):
        syn = b2.Synapses(group, neurons, model="w : 1", on_pre="v_post += w", name=f"syn_{label}")
        syn.connect(i=(src[sel] - offset).astype(np.int32), j=dst[sel].astype(np.int32))
        syn.w = w[sel]
        syn.delay = delay_steps[sel] * cfg.dt_ms * ms
        synapses.append(syn)
    del src, dst, w, delay_steps
    monitor = b2.SpikeMonitor(neurons, record=True, name="spikes")
    in_monitor = b2.SpikeMonitor(inputs, record=True, name="in_spikes")
    bnet = b2.Network(neurons, inputs, *synapses, monitor, in_monitor)
    bnet.schedule = SCHEDULE

    runs = timed_runs(b2, bnet, cfg.warmup_ms, cfg.sim_ms, build_dir, timing_path)
    construct_s = runs.build_started - t0 - conn_s
    codegen_compile_s, timing = runs.codegen_compile_s, runs.timing

    lo = (cfg.warmup_steps - 0.5) * cfg.dt_ms * 1e-3
    counts = np.zeros(n + net.n_inputs, dtype=np.int64)
    for mon, first, size in ((monitor, 0, n), (in_monitor, n, net.n_inputs)):
        t = np.asarray(mon.t_[:], dtype=np.float64)
        i = np.asarray(mon.i[:], dtype=np.int64)
        counts[first : first + size] = np.bincount(i[t >= lo], minlength=size)
    return BenchResult.from_counts(
        name=f"Brian2 {b2.__version__}",
        threads=THREADS,
        cfg=cfg,
        build_s=construct_s + codegen_compile_s + timing["setup_s"],
        sim_s=timing["sim_s"],
        spikes=int(counts[:n].sum()),
        events=synaptic_events(counts, out_deg),
        peak_rss_mb=timing["vmhwm_kb"] / 1024.0,
        extra={
            "connectivity_s": conn_s,
            "codegen_compile_s": codegen_compile_s,
            "warmup_s": timing["warmup_s"],
            "sim_cpu_s": timing["sim_cpu_s"],
            "wall_ns_per_neuron_step": timing["sim_s"] * 1e9 / cfg.sim_steps / n,
            "input_spikes": float(counts[n:].sum()),
            "python_peak_rss_mb": peak_rss_mb(),
        },
    )
