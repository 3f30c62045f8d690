"""The conv model (`bench.conv`) on NEST: the compiled model's synapse arrays, its LIF
parameters and the same input spikes. Called by `peer_nest.run` for a ConvConfig.

NEST's iaf_psc_delta is the engine's LIF with delta synapses, step for step (docs/engine.md,
"Timing semantics"): in the step from t to t + dt it decays V towards E_L by exp(-dt / tau_m),
adds the weights of the spikes arriving in that step, then tests the threshold. A spike a
neuron emits in step s is stamped (s + 1) dt, so with a delay of d steps it is added in step
s + d, as in the engine. An injected input of step s is therefore a spike_generator spike at
(s + 1) dt. The weights are the engine's weights times the target's g_x = r (1 - a_m), as for
Brian2, in float64 where the engine uses float32. The engine fires on v > v_th, NEST on
V >= V_th: V_th is the next double above v_th, which makes the two tests the same.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from darwin_dra.bench.brunel import BenchResult, synaptic_events
from darwin_dra.bench.conv import ConvConfig, conv_model, input_spikes, lif_parameters
from darwin_dra.bench.peer_nest import nest_result, reset_kernel, timed_run
from darwin_dra.bench.peers import current_rss_mb


def run_conv(nest: Any, cfg: ConvConfig, seed: int, threads: int) -> BenchResult:
    rss_before = current_rss_mb()
    t0 = time.perf_counter()
    reset_kernel(nest, cfg.dt_ms, seed, threads)

    tc = time.perf_counter()
    model = conv_model(cfg)
    net = model.network
    p = lif_parameters(model)
    in_steps, in_ids = input_spikes(cfg, seed)
    n, n_in = net.n_neurons, net.n_inputs
    src = net.src.astype(np.int64)
    dst = net.dst.astype(np.int64)
    weight = net.weight.astype(np.float64) * p["g_x"][dst]
    delay_ms = net.delay.astype(np.float64) * cfg.dt_ms
    out_deg = np.bincount(src, minlength=n + n_in).astype(np.int64)
    conn_s = time.perf_counter() - tc

    neurons = nest.Create("iaf_psc_delta", n)
    # Delta synapses: the weight is the jump of V, so C_m does not matter; no refractory time
    # and no input current, as the NIR LIF of the model has none.
    neurons.set(
        tau_m=p["tau_ms"].tolist(),
        E_L=p["e_l"].tolist(),
        V_th=np.nextafter(p["v_th"], np.inf).tolist(),
        V_reset=p["v_reset"].tolist(),
        V_m=p["e_l"].tolist(),
        t_ref=0.0,
        I_e=0.0,
    )
    generators = nest.Create("spike_generator", n_in)
    order = np.argsort(in_ids, kind="stable")  # by input, each input's steps ascending
    starts = np.searchsorted(in_ids[order], np.arange(n_in + 1))
    times = (in_steps[order] + 1).astype(np.float64) * cfg.dt_ms
    generators.set(
        [{"spike_times": times[starts[i] : starts[i + 1]].tolist()} for i in range(n_in)]
    )
    first_n, first_g = int(neurons[0].global_id), int(generators[0].global_id)
    pre = np.where(src < n, src + first_n, src - n + first_g)
    nest.Connect(
        pre,
        dst + first_n,
        conn_spec="one_to_one",
        syn_spec={"synapse_model": "static_synapse", "weight": weight, "delay": delay_ms},
    )
    del pre, src, dst, weight, delay_ms
    n_syn = float(nest.GetKernelStatus("num_connections"))  # before the recorders' own
    # Stamps in (start, stop]: the spikes of the timed steps, whose stamps are (s + 1) dt.
    start_ms, stop_ms = cfg.warmup_ms, cfg.warmup_ms + cfg.sim_ms
    recorder = nest.Create("spike_recorder", params={"start": start_ms, "stop": stop_ms})
    nest.Connect(neurons, recorder)
    in_recorder = nest.Create("spike_recorder", params={"start": start_ms, "stop": stop_ms})
    nest.Connect(generators, in_recorder)
    nest.Prepare()
    build_s = time.perf_counter() - t0 - conn_s

    warmup_s, sim_s, sim_cpu_s = timed_run(nest, cfg.warmup_ms, cfg.sim_ms)

    counts = np.zeros(n + n_in, dtype=np.int64)
    for rec, first, offset, size in ((recorder, first_n, 0, n), (in_recorder, first_g, n, n_in)):
        senders = np.asarray(rec.get("events")["senders"], dtype=np.int64) - first
        counts[offset : offset + size] = np.bincount(senders, minlength=size)
    return nest_result(
        nest,
        cfg,
        threads,
        (build_s, conn_s, warmup_s, sim_s, sim_cpu_s),
        int(counts[:n].sum()),
        synaptic_events(counts, out_deg),
        {
            "rss_before_build_mb": rss_before,
            "input_spikes": float(counts[n:].sum()),
            "num_connections": n_syn,
        },
    )
