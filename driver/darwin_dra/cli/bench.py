"""`darwin-dra bench engine`: the Brunel network on the engine and its peers, side by side."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

from darwin_dra.bench.brunel import DEFAULT_SEED, BenchResult, BrunelConfig
from darwin_dra.bench.conv import ConvConfig
from darwin_dra.bench.peers import Config, PeerUnavailable, run_peer
from darwin_dra.bench.table import Row, render, to_json
from darwin_dra.engine import DelayStore, Engine


def bench_subparsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], module: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The subcommands of `darwin-dra bench`, for ``module`` to add its own to."""
    bench = sub.choices.get("bench")
    if bench is None:
        raise RuntimeError(f"darwin_dra.cli.bench must be registered before {module}")
    # argparse keeps the subparsers action of `bench` among its actions.
    [actions] = [a for a in bench._actions if isinstance(a, argparse._SubParsersAction)]
    return actions


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="benchmarks that print a table with peers")
    which = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    engine = which.add_parser(
        "engine", help="Brunel (2000) on the engine, NEST and Brian2 in the same run"
    )
    engine.add_argument("--json", action="store_true", help="print JSON instead of a table")
    engine.add_argument(
        "--network",
        choices=("brunel", "trained", "conv"),
        default="brunel",
        help="brunel: population weights and one delay; trained: a lognormal weight per "
        "synapse and delays uniform over 1-4 ms (BrunelConfig.trained); conv: the two-pathway "
        "convolutional NIR model of bench pipeline, compiled (bench/conv.py)",
    )
    engine.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="network size factor (in-degrees scale too); 1 = 10 k neurons (conv: 264 k, "
        "the image side times sqrt(factor); 4 = 1.05 M neurons)",
    )
    engine.add_argument(
        "--threads", default="1,2", help="comma-separated engine thread counts (default 1,2)"
    )
    engine.add_argument(
        "--peers", default="brian2,nest", help="comma-separated peers to run, or 'none'"
    )
    engine.add_argument("--seed", type=int, default=DEFAULT_SEED)
    engine.add_argument(
        "--quantised-peer",
        action="store_true",
        help="also run Brian2 with the engine's (quantised) weights: the rate error that "
        "quantisation adds, within one simulator (brunel, trained)",
    )
    engine.add_argument("--timeout", type=float, default=900.0, help="seconds per simulator")
    engine.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per simulator; the table shows the median run by events/s"
        " (these 2-core machines are noisy)",
    )
    engine.add_argument("--plot", type=Path, help="also draw the results into this PNG file")
    engine.set_defaults(func=run_engine_bench)
    placement = which.add_parser(
        "placement", help="the planner vs naive and random placement on 1 M-neuron models"
    )
    placement.add_argument("--models", default="conv-unet,cortical-sheet,conv-snn")
    placement.add_argument(
        "--methods", default="mtkahypar,pymetis,kahypar,greedy,naive,random",
        help="partitioners for the planner, and the baselines naive and random",
    )  # fmt: skip
    placement.add_argument("--seed", type=int, default=1)
    placement.add_argument("--json", action="store_true", help="print JSON instead of a table")
    placement.add_argument(
        "--plot", type=Path, help="draw the first model's planner and naive placements (PNG)"
    )
    placement.set_defaults(func=run_placement_bench)


def run_engine(cfg: Config, threads: int, timeout: float, seed: int) -> Row:
    """The engine in its own process, so its peak memory is its own, as for the peers."""
    return run_peer("engine", cfg, timeout, seed=seed, extra_args=["--threads", str(threads)])


def engine_details(rows: list[Row]) -> str:
    """The engine's cost split: per neuron-step (update and drive) and per event (delivery)."""
    lines = [
        "\nengine  thr  wall ns/neuron-step  wall ns/event  update ns/neuron-step"
        "  deliver ns/event  synapse B/syn  network B/syn  delays  queue peak  dropped  quant mV"
        "  Mev/s min..max"
    ]
    for r in rows:
        if not isinstance(r, BenchResult) or r.name != "darwin engine":
            continue
        x = r.extra
        spread = (
            f"{x['events_per_s_min'] / 1e6:.0f}..{x['events_per_s_max'] / 1e6:.0f}"
            if "runs" in x
            else "-"
        )
        store = DelayStore(int(x["delay_store"])).name.lower() if "delay_store" in x else "-"
        lines.append(
            f"        {r.threads:>3}  {x.get('wall_ns_per_neuron_step', math.nan):>19.3f}  "
            f"{r.ns_per_event:>13.3f}  {x['update_ns_per_neuron_step']:>21.3f}  "
            f"{x['deliver_ns_per_event']:>16.3f}  {x['synapse_bytes_per_synapse']:>13.2f}  "
            f"{x['network_bytes_per_synapse']:>13.2f}  {store:>6}  "
            f"{x['queue_peak_events']:>10.0f}  "
            f"{x['dropped_events']:>7.0f}  {x.get('quant_error_mv', 0.0):>8.4f}  {spread:>14}"
        )
    return "\n".join(lines)


def network_line(cfg: Config) -> str:
    if isinstance(cfg, ConvConfig):
        return (
            f"network: conv (bench pipeline's two-pathway NIR model), {cfg.size}x{cfg.size}, "
            f"{cfg.channels} channels, depth {cfg.depth}: N={cfg.n:,}, inputs {cfg.n_inputs:,}"
            f" at {cfg.density:g} spikes a step, {cfg.sim_steps} steps timed after "
            f"{cfg.warmup_steps}, dt {cfg.dt_ms} ms"
        )
    return (
        f"network: N={cfg.n}, in-degree {cfg.c_e}+{cfg.c_i}, {cfg.n_synapses:,} synapses,"
        f" {cfg.sim_ms:g} ms timed after {cfg.warmup_ms:g} ms warm-up, dt {cfg.dt_ms} ms"
    )


def rate_line(rows: list[Row]) -> str:
    """The engine's rate against each peer's, relative difference in percent."""
    done = [r for r in rows if isinstance(r, BenchResult)]
    engine = next((r for r in done if r.name == "darwin engine"), None)
    parts = [
        f"{r.name} {r.rate_hz:.3f} Hz ({100 * (engine.rate_hz / r.rate_hz - 1):+.2f} %)"
        for r in done
        if engine is not None and r.name != "darwin engine" and r.rate_hz > 0
    ]
    if engine is None or not parts:
        return ""
    line = f"rates: engine {engine.rate_hz:.3f} Hz; " + "; ".join(parts)
    exact = next((r for r in done if r.name.startswith("Brian2") and "(" not in r.name), None)
    quant = next((r for r in done if r.name.endswith("(engine weights)")), None)
    if exact is not None and quant is not None and exact.rate_hz > 0:
        line += (
            f"\nquantisation: Brian2 with the engine's weights {quant.rate_hz:.3f} Hz against "
            f"{exact.rate_hz:.3f} Hz with the exact ones "
            f"({100 * (quant.rate_hz / exact.rate_hz - 1):+.2f} %)"
        )
    return line


def median_run(runs: list[Row]) -> Row:
    """The run with the median events/s, annotated with the spread of all runs."""
    done = sorted((r for r in runs if isinstance(r, BenchResult)), key=lambda r: r.events_per_s)
    if not done:
        return runs[-1]
    mid = done[(len(done) - 1) // 2]
    if len(done) == 1:
        return mid
    extra = dict(mid.extra)
    extra["runs"] = float(len(done))
    extra["events_per_s_min"] = done[0].events_per_s
    extra["events_per_s_max"] = done[-1].events_per_s
    return dataclasses.replace(mid, extra=extra)


def run_engine_bench(args: argparse.Namespace) -> int:
    base: Config = ConvConfig() if args.network == "conv" else BrunelConfig()
    base = BrunelConfig.trained() if args.network == "trained" else base
    cfg = base.scaled(args.scale) if args.scale != 1.0 else base
    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        print(f"--threads: expected numbers like 1,2, got {args.threads!r}", file=sys.stderr)
        return 2
    peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",") if p.strip()]
    rows: list[Row] = []
    for t in threads:
        if not args.json:
            print(f"running darwin engine, {t} thread(s) ...", file=sys.stderr, flush=True)
        rows.append(
            median_run(
                [run_engine(cfg, t, args.timeout, args.seed) for _ in range(max(1, args.repeat))]
            )
        )
    for name in peers:
        if not args.json:
            print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.append(
            median_run(
                [
                    run_peer(name, cfg, args.timeout, seed=args.seed)
                    for _ in range(max(1, args.repeat))
                ]
            )
        )
    if args.quantised_peer and isinstance(cfg, BrunelConfig):
        if not args.json:
            print("running brian2 with the engine's weights ...", file=sys.stderr, flush=True)
        qcfg = dataclasses.replace(cfg, quantised=True)
        rows.append(run_peer("brian2", qcfg, args.timeout, seed=args.seed))
    print(to_json(rows) if args.json else render(rows))
    if not args.json:
        print("\n" + network_line(cfg))
        if isinstance(cfg, BrunelConfig) and cfg.per_synapse:
            print(
                f"trained synapses: lognormal weights (sigma {cfg.weight_sigma:g}, mean J and "
                f"-gJ), delays uniform on {cfg.delay_ms:g}..{cfg.delay_max_ms:g} ms"
            )
        print("speed x, mem x: first row divided by the row (events/s, peak memory)")
        print(
            "engine build: portable x86-64 baseline, neuron updates multi-versioned; "
            f"path chosen on this CPU: {Engine.simd_path()}"
        )
        print(engine_details(rows))
        print(rate_line(rows))
    if args.plot:
        from darwin_dra.bench.plot import plot_engine_bench

        plot_engine_bench(
            rows,
            args.plot,
            f"N={cfg.n}, {args.network}, {cfg.sim_ms:g} ms timed; command: darwin-dra bench engine",
        )
    failed = [r for r in rows if isinstance(r, PeerUnavailable) and r.name == "engine"]
    return 1 if failed else 0


def run_placement_bench(args: argparse.Namespace) -> int:
    import json

    from darwin_dra.bench.placement import bench_topology, generate, run_model
    from darwin_dra.planner.bins import bins_of
    from darwin_dra.planner.generate import GENERATORS
    from darwin_dra.planner.report import render, row_dict

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in models if m not in GENERATORS]
    if unknown:
        print(f"--models: unknown {unknown}; known: {', '.join(GENERATORS)}", file=sys.stderr)
        return 2
    topo = bench_topology()
    rows = []
    notes = []
    for i, name in enumerate(models):
        if not args.json:
            print(f"planning {name} ...", file=sys.stderr, flush=True)
        graph, gen_s = generate(name)
        neurons = sum(g.neurons for g in graph.groups)
        synapses = sum(g.synapses for g in graph.groups)
        notes.append(
            f"{name}: {neurons:,} neurons, {synapses:,} synapses, {len(graph.groups)} groups,"
            f" {len(graph.edges)} edges (generated in {gen_s:.1f} s)"
        )
        model_rows, plans = run_model(graph, topo, methods, args.seed)
        rows += model_rows
        if args.plot and i == 0:
            from darwin_dra.bench.plot_placement import plot_placement

            first = next((m for m in methods if m in plans and m not in ("naive", "random")), None)
            shown = [("planner", plans[first].assign)] if first else []
            shown += [("naive", plans["naive"].assign)] if "naive" in plans else []
            if shown:
                plot_placement(
                    graph,
                    bins_of(topo),
                    shown,
                    args.plot,
                    f"{name} on {topo.source}: the planner ({first}, left) and naive placement"
                    " (right);"
                    " colour: the layer holding most of a domain's synapses; white: unused",
                )
    if args.json:
        print(json.dumps({"topology": topo.source, "rows": [row_dict(r) for r in rows]}, indent=2))
        return 0
    print(render(rows))
    print(f"\ntopology: {topo.source}; plan s is wall time on one core")
    print("naive/x: the naive placement's traffic divided by the row's (higher is better)")
    for note in notes:
        print(note)
    return 0
