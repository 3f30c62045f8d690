"""`darwin-dra bench pipeline`: a model of a million neurons split into stages that run as
`darwin-dra stage` processes, against the same model unsplit and against the naive split.

Two chip hosts stand for two nodes (node-a, node-b), each with its own chips; every stage is a
process on this machine and every edge is TCP on the loopback, so "across nodes" means "between
stages whose partitions are on different chip hosts", not a network between machines. The
input stage sits on node-a (the edge, where the input comes from), the output stage on node-b.
All the runs use the same model, input (Poisson, same seed) and steps, one after the other,
and must give the same output digest. With --input-in-place two more runs (split and naive
again) have no input stage: each engine stage that reads the input draws it itself, so the
input crosses no node (the Poisson draws are per (seed, step), the same spikes everywhere).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from darwin_dra.cli.bench import bench_subparsers
from darwin_dra.models.nirfile import load_model, write_graph
from darwin_dra.pipeline.benchmodel import two_pathway
from darwin_dra.pipeline.local import Routing, Slot, chip_hosts, launch, on_chip_edges
from darwin_dra.pipeline.split import INPUT, OUTPUT, SplitPlan, naive_split, plan_split

DT_S = 1e-3
CONFIGS = ("unsplit", "split", "naive")
ON_CHIP = "split-on-chip"  # --on-chip: the split's engine stages on one chip, edges routed
IN_PLACE = ("split-in-place", "naive-in-place")  # --input-in-place: the input drawn by its readers
NODES = ("node-a", "node-b")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = bench_subparsers(sub, "darwin_dra.cli.bench_pipeline")
    p = actions.add_parser(
        "pipeline", help="a split model's stages as processes vs unsplit and the naive split"
    )
    p.add_argument("--size", type=int, default=128, help="image side (128: 1.05 M neurons)")
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--depth", type=int, default=4, help="conv layers per pathway")
    p.add_argument("--stages", type=int, default=2, help="engine stages of the split")
    p.add_argument("--steps", type=int, default=200, help="model steps per run")
    p.add_argument("--window", type=int, default=20, help="steps per frame")
    p.add_argument("--lookahead", type=int, default=4)
    p.add_argument("--input-rate-hz", type=float, default=50.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", type=Path, help="draw the stages and their traffic (PNG)")
    p.add_argument(
        "--on-chip",
        action="store_true",
        help=f"a fourth run ({ON_CHIP}): the split's engine stages on one chip of node-a, a "
        "share of its domains each, their edges on the chip host's routes",
    )
    p.add_argument(
        "--input-in-place",
        action="store_true",
        help=f"two more runs ({', '.join(IN_PLACE)}): no input stage, each engine stage that "
        "reads the input draws it itself (spec.input.inPlace of a SpikingPipeline)",
    )
    p.set_defaults(func=run)


def _nodes(plan: SplitPlan, one_node: bool = False) -> dict[str, str]:
    """The node of every stage: engine stages alternate over the nodes (all on node-a when
    unsplit or ``one_node``); the input on node-a, the output on the last engine stage's node."""
    engine = [s.name for s in plan.engine_stages()]
    where = {n: NODES[0 if one_node else j % len(NODES)] for j, n in enumerate(engine)}
    where[INPUT] = NODES[0]
    where[OUTPUT] = where[engine[-1]]
    return where


def measure(
    plan: SplitPlan,
    reports: dict[str, dict[str, Any]],
    steps: int,
    one_node: bool = False,
    in_place: bool = False,
) -> dict[str, Any]:
    """The row of one run; ``in_place``: no input stage ran, its readers drew the input, so
    the input's edges carried nothing (the spikes drawn are ``input_drawn_spikes``)."""
    nodes = _nodes(plan, one_node)
    out = reports[OUTPUT]
    run_s = max(r["run_s"] for r in reports.values())
    engine_steps = out["steps"]
    events = sum(reports[s.name]["events"] for s in plan.engine_stages())
    edges = []
    spikes = wire = cross_spikes = cross_bytes = dense = between = between_bytes = 0
    cross_engine = routed = 0
    for e in plan.edges:
        if in_place and e.src == INPUT:
            continue  # drawn by its reader (input_drawn_spikes): on no edge, no node crossed
        sent = reports[e.src]["sent"][e.dst]
        edges.append((e.src, e.dst, int(sent["spikes"])))
        spikes += sent["spikes"]
        routed += reports[e.src].get("routed", {}).get(e.dst, 0)
        wire += sent["bytes"]
        dense += 4 * e.neurons * engine_steps
        if nodes[e.src] != nodes[e.dst]:
            cross_spikes += sent["spikes"]
            cross_bytes += sent["bytes"]
            if e.src != INPUT and e.dst != OUTPUT:
                cross_engine += sent["spikes"]
        if e.src != INPUT and e.dst != OUTPUT:
            between += sent["spikes"]
            between_bytes += sent["bytes"]
    return {
        "engine_stages": len(plan.engine_stages()),
        "steps": engine_steps,
        "run_s": run_s,
        "steps_per_s": engine_steps / run_s,
        "ms_per_step": 1000 * run_s / engine_steps,
        "first_window_s": out["first_s"],
        "events": events,
        "events_per_s": events / run_s,
        "edge_spikes": spikes,
        "edge_bytes": wire,
        # on the wire: the spikes of the edges over sockets only
        "bytes_per_spike": wire / (spikes - routed) if spikes > routed else 0.0,
        "dense_bytes": dense,
        "between_stage_spikes": between,
        "between_stage_bytes_per_spike": between_bytes / between if between else 0.0,
        "cross_node_spikes": cross_spikes,
        "cross_node_bytes": cross_bytes,
        "cross_node_engine_spikes": cross_engine,
        "dropped": sum(r["dropped"] for r in reports.values()),
        "routed_spikes": routed,
        "output_spikes": out["output_spikes"],
        "output_digest": out["output_digest"],
        "stages": [
            (s.name, nodes[s.name]) for s in plan.stages if not (in_place and s.name == INPUT)
        ],
        "input_drawn_spikes": sum(r.get("drawn", 0) for r in reports.values()),
        "edges": edges,
    }


def run(args: argparse.Namespace) -> int:
    if min(args.size, args.channels, args.depth, args.stages, args.steps, args.window) < 1:
        print("sizes, --stages, --steps and --window must be >= 1", file=sys.stderr)
        return 2
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="dra-bench-pipeline-") as tmp:
        work = Path(tmp)
        nir_file = work / "model.nir"
        write_graph(nir_file, two_pathway(args.size, args.channels, args.depth))
        model = load_model(nir_file, dt=DT_S)
        rates = {x.name: args.input_rate_hz for x in model.layers}
        plans = {
            "unsplit": plan_split(model, 1, rates_hz=rates),
            "split": plan_split(model, args.stages, rates_hz=rates),
            "naive": naive_split(model, args.stages, rates_hz=rates),
        }
        configs = CONFIGS + ((ON_CHIP,) if args.on_chip else ())
        configs += IN_PLACE if args.input_in_place else ()
        plans[ON_CHIP] = plans[IN_PLACE[0]] = plans["split"]
        plans[IN_PLACE[1]] = plans["naive"]
        slots: dict[str, Slot] = {}
        for c, config in enumerate(configs):
            where = _nodes(plans[config], config == ON_CHIP)
            engine = plans[config].engine_stages()
            for j, s in enumerate(engine):
                share = 36 // len(engine) if config == ON_CHIP else 36
                first = j * share if config == ON_CHIP else 0
                domains = tuple(range(first, first + share))
                slots[f"{config}-{s.name}"] = Slot(where[s.name], c, domains)
        routed = on_chip_edges(
            plans["split"],
            {n[len(ON_CHIP) + 1 :]: s for n, s in slots.items() if n.startswith(ON_CHIP + "-")},
        )
        routing = Routing(
            model, plans["split"], routed, args.lookahead * args.window, prefix=f"{ON_CHIP}-"
        )
        if not args.json:
            print(
                f"model: two-pathway conv SNN, {model.network.n_neurons} neurons, "
                f"{model.network.n_synapses} synapses; {args.steps} steps, window "
                f"{args.window}, Poisson input {args.input_rate_hz} Hz",
                file=sys.stderr,
            )
        with chip_hosts(work, slots, len(configs), routing if args.on_chip else None) as endpoints:
            for config in configs:
                plan = plans[config]
                plan_file = work / f"{config}-plan.json"
                plan_file.write_text(plan.to_json())
                mine = {s.name: endpoints[f"{config}-{s.name}"] for s in plan.engine_stages()}
                run_dir = work / config
                run_dir.mkdir()
                if not args.json:
                    print(f"running {config} ...", file=sys.stderr, flush=True)
                launched = launch(
                    run_dir,
                    nir_file,
                    plan_file,
                    plan,
                    mine,
                    ["--input", "poisson", "--input-rate-hz", str(args.input_rate_hz)],
                    steps=args.steps,
                    window=args.window,
                    lookahead=args.lookahead,
                    extra=["--dt", str(DT_S)],
                    on_chip=routed if config == ON_CHIP else (),
                    input_in_place=config in IN_PLACE,
                )
                reports = launched.wait(1800)
                rows[config] = measure(
                    plan, reports, args.steps, config == ON_CHIP, config in IN_PLACE
                )
    split, naive, unsplit = rows["split"], rows["naive"], rows["unsplit"]
    summary = {
        "neurons": model.network.n_neurons,
        "synapses": model.network.n_synapses,
        "rows": rows,
        "cross_node_naive_over_split": naive["cross_node_spikes"]
        / max(1, split["cross_node_spikes"]),
        "cross_node_engine_naive_over_split": naive["cross_node_engine_spikes"]
        / max(1, split["cross_node_engine_spikes"]),
        "bytes_per_spike_split": split["bytes_per_spike"],
        "dense_over_wire_split": split["dense_bytes"] / max(1, split["edge_bytes"]),
        "split_over_unsplit_steps_per_s": split["steps_per_s"] / unsplit["steps_per_s"],
        "same_outputs": len({r["output_digest"] for r in rows.values()}) == 1,
    }
    if args.on_chip:
        summary["on_chip_over_split_steps_per_s"] = (
            rows[ON_CHIP]["steps_per_s"] / split["steps_per_s"]
        )
    if args.input_in_place:
        a, b = rows[IN_PLACE[1]], rows[IN_PLACE[0]]
        summary["cross_node_naive_over_split_in_place"] = a["cross_node_spikes"] / max(
            1, b["cross_node_spikes"]
        )
        summary["split_in_place_over_unsplit_steps_per_s"] = (
            b["steps_per_s"] / unsplit["steps_per_s"]
        )
    if args.plot is not None:
        from darwin_dra.bench.pipeline_plot import plot_pipeline

        shown = ("split", "naive") + (IN_PLACE if args.input_in_place else ())
        plot_pipeline({c: rows[c] for c in shown}, NODES, args.plot)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    cols = [
        ("steps/s", "steps_per_s", "{:.1f}"),
        ("ms/step", "ms_per_step", "{:.2f}"),
        ("first window s", "first_window_s", "{:.3f}"),
        ("M events/s", "events_per_s", "{:.1f}"),
        ("edge spikes", "edge_spikes", "{:d}"),
        ("B/spike", "bytes_per_spike", "{:.3f}"),
        ("dense B", "dense_bytes", "{:d}"),
        ("cross-node spikes", "cross_node_spikes", "{:d}"),
        ("of which engine->engine", "cross_node_engine_spikes", "{:d}"),
        ("dropped", "dropped", "{:d}"),
        ("on-chip routed spikes", "routed_spikes", "{:d}"),
        ("digest", "output_digest", "{}"),
    ]
    print("| run | stages | " + " | ".join(c[0] for c in cols) + " |")
    print("|" + " --- |" * (len(cols) + 2))
    for name, r in rows.items():
        vals = []
        for _, key, fmt in cols:
            v = r[key]
            vals.append(
                fmt.format(v / 1e6 if key == "events_per_s" else v) if v is not None else "-"
            )
        print(f"| {name} | {r['engine_stages']} | " + " | ".join(vals) + " |")
    print(
        f"cross-node spikes, naive / split: {summary['cross_node_naive_over_split']:.1f}x "
        f"(between engine stages: {summary['cross_node_engine_naive_over_split']:.1f}x); "
        f"split / unsplit timesteps/s: {summary['split_over_unsplit_steps_per_s']:.2f}; "
        f"dense / wire bytes (split): {summary['dense_over_wire_split']:.0f}x; "
        f"outputs equal: {summary['same_outputs']}"
    )
    if args.input_in_place:
        print(
            "input drawn in place, cross-node spikes, naive / split: "
            f"{summary['cross_node_naive_over_split_in_place']:.1f}x; split / unsplit "
            f"timesteps/s: {summary['split_in_place_over_unsplit_steps_per_s']:.2f}"
        )
    if args.on_chip:
        print(
            f"{ON_CHIP} / split timesteps/s: {summary['on_chip_over_split_steps_per_s']:.2f} "
            "(the same stages, one chip host and routes instead of two hosts and TCP)"
        )
    return 0
