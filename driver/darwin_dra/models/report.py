"""What `darwin-dra model inspect` and `model run` print, as plain data (pure, apart from the
measured engine memory, which loads the model onto a local chip)."""

from __future__ import annotations

from typing import Any

import numpy as np

from darwin_dra.hardware.model import ChipProfile
from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.run import LocalRunner, RunResult


def inspect_model(model: CompiledModel, profile: ChipProfile | None = None) -> dict[str, Any]:
    """Layers, projections, totals, and the engine memory measured by loading the model."""
    net = model.network
    fan_in: dict[str, int] = {}
    for p in model.projections:
        fan_in[p.target] = fan_in.get(p.target, 0) + p.synapses
    with LocalRunner(model, profile) as runner:
        runner.load()
        tel = runner.engine.telemetry(runner.part)
        chip = runner.profile.model
    layers = [
        {
            "name": x.name,
            "type": x.kind,
            "shape": list(x.shape),
            "neurons": 0 if x.is_input else x.count,
            "inputs": x.count if x.is_input else 0,
            "synapses_in": fan_in.get(x.name, 0),
            "latency_steps": x.depth,
            "groups": len(model.groups_of.get(x.name, ())),
            "weight_scale": model.weight_scale.get(x.name, 1.0),
        }
        for x in model.layers
    ]
    projections = [
        {
            "source": p.source,
            "target": p.target,
            "via": list(p.via),
            "synapses": p.synapses,
            "delay_steps": p.delay,
        }
        for p in model.projections
    ]
    n_syn = net.n_synapses
    return {
        "model": model.name,
        "dt_s": model.dt_s,
        "reset": model.reset.name.lower(),
        "neurons": net.n_neurons,
        "inputs": net.n_inputs,
        "synapses": n_syn,
        "groups": len(net.groups),
        "latency_steps": model.latency,
        "outputs": dict(model.outputs),
        "weight_error_rms": model.weight_error,
        "engine": {
            "chip": chip,
            "cores_used": tel.cores_used,
            "network_bytes": tel.network_bytes,
            "synapse_bytes": tel.synapse_bytes,
            "synapse_bytes_per_synapse": tel.synapse_bytes / n_syn if n_syn else 0.0,
            "weight_quant_error": tel.quant_error_mv,
        },
        "layers": layers,
        "projections": projections,
    }


def format_inspect(r: dict[str, Any]) -> str:
    lines = [
        f"model {r['model']}: {r['neurons']} neurons, {r['inputs']} inputs, {r['synapses']} "
        f"synapses, {r['groups']} groups; dt {r['dt_s']:g} s, reset {r['reset']}, latency "
        f"{r['latency_steps']} steps",
        "",
        f"{'layer':<24} {'type':<10} {'shape':<14} {'neurons':>8} {'synapses in':>12} "
        f"{'latency':>7}",
    ]
    for x in r["layers"]:
        count = x["neurons"] or x["inputs"]
        lines.append(
            f"{x['name']:<24} {x['type']:<10} {'x'.join(map(str, x['shape'])):<14} {count:>8} "
            f"{x['synapses_in']:>12} {x['latency_steps']:>7}"
        )
    lines += ["", f"{'projection':<40} {'via':<22} {'synapses':>10} {'delay':>5}"]
    for p in r["projections"]:
        lines.append(
            f"{p['source'] + ' -> ' + p['target']:<40} {'+'.join(p['via']) or '-':<22} "
            f"{p['synapses']:>10} {p['delay_steps']:>5}"
        )
    e = r["engine"]
    lines += [
        "",
        f"engine memory on one {e['chip']} chip: {e['network_bytes']} bytes in all, "
        f"{e['synapse_bytes']} for synapses ({e['synapse_bytes_per_synapse']:.2f} B/synapse), "
        f"{e['cores_used']} cores",
        f"weights: {100 * r['weight_error_rms']:.2f}% RMS quantisation error (worst layer)",
    ]
    return "\n".join(lines)


def run_report(model: CompiledModel, result: RunResult) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for name, o in result.outputs.items():
        entry: dict[str, Any] = {"layer": o.layer, "type": o.kind, "spiking": o.spiking}
        if o.spiking:
            entry["counts"] = o.counts.tolist()
            entry["spikes"] = {"steps": o.spike_steps.tolist(), "ids": o.spike_ids.tolist()}
            entry["argmax"] = int(np.argmax(o.counts)) if o.counts.size else None
        else:
            assert o.potentials is not None
            v = o.potentials
            entry["final_potentials"] = v[-1].tolist() if len(v) else []
            entry["max_potentials"] = v.max(axis=0).tolist() if len(v) else []
            entry["potentials"] = v.tolist()
            if o.currents is not None:
                entry["currents"] = o.currents.tolist()
            entry["argmax"] = int(np.argmax(v.max(axis=0))) if len(v) else None
        outputs[name] = entry
    t = result.telemetry
    return {
        "model": model.name,
        "steps": result.steps,
        "latency_steps": result.latency,
        "engine_steps": t.steps,
        "outputs": outputs,
        "telemetry": {
            "spikes": t.spikes,
            "input_spikes": t.input_spikes,
            "events": t.events,
            "dropped": t.dropped,
            "wall_s": t.wall_ns * 1e-9,
        },
    }


def format_run(r: dict[str, Any]) -> str:
    lines = [
        f"model {r['model']}: {r['steps']} steps (+{r['latency_steps']} latency), "
        f"{r['telemetry']['input_spikes']} input spikes, {r['telemetry']['spikes']} spikes, "
        f"{r['telemetry']['events']} events, {r['telemetry']['dropped']} dropped"
    ]
    for name, o in r["outputs"].items():
        if o["spiking"]:
            lines.append(f"{name} ({o['layer']}, {o['type']}): spike counts {o['counts']}")
        else:
            fin = ", ".join(f"{v:.4g}" for v in o["final_potentials"])
            mx = ", ".join(f"{v:.4g}" for v in o["max_potentials"])
            lines.append(f"{name} ({o['layer']}, {o['type']}): final potentials [{fin}]")
            lines.append(f"{' ' * len(name)}  max potentials [{mx}]")
        lines.append(f"{' ' * len(name)}  argmax {o['argmax']}")
    return "\n".join(lines)
