"""`darwin-dra bench fleet`: a job trace on the real scheduler, black box against Darwin DRA."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from darwin_dra.cli.bench import bench_subparsers
from darwin_dra.fleet.layout import FleetShape
from darwin_dra.fleet.report import markdown, table
from darwin_dra.fleet.trace import TraceConfig, parse_mix


def _bench_subparsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return bench_subparsers(sub, "darwin_dra.cli.fleet")


def _shape(nodes: int, chips: int) -> FleetShape:
    """The generated fleet: two darwin3-fastroute chips on every other node, wafers by pairs."""
    return FleetShape(nodes=nodes, chips_per_node=chips, fast_chips=min(2, chips),
                      wafer_chips=min(2, chips))  # fmt: skip


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _bench_subparsers(sub).add_parser(
        "fleet", help="a trace of SNN jobs on the real scheduler: black box vs Darwin claims"
    )
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--chips", type=int, default=4, help="chips per node")
    p.add_argument("--hours", type=float, default=4.0, help="trace length (trace hours)")
    p.add_argument("--arrivals-per-hour", type=float, default=1200.0)
    p.add_argument(
        "--compression",
        type=float,
        default=30.0,
        help="trace seconds per wall second (30: a 4 h trace replays in 8 min)",
    )
    p.add_argument(
        "--offered-load",
        type=float,
        help="set the arrivals an hour so that the trace offers this fraction of the fleet's"
        " cores in steady state (e.g. 1.5: half again what the fleet holds; overrides"
        " --arrivals-per-hour)",
    )
    p.add_argument(
        "--mix",
        help="job kinds' shares, e.g. infer=0.3,share=0.1,spike=0.1,train=0.2,pipeline=0.3"
        " (default: infer 0.65, share 0.10, spike 0.05, train 0.05, pipeline 0.15)",
    )
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--duration-scale", type=float, default=1.0, help="multiplies the mean job durations"
    )
    p.add_argument(
        "--models",
        default="blackbox,darwin",
        help="comma-separated, in run order: blackbox, darwin (the default slice layout),"
        " capacity (the --partitions capacity layout)",
    )
    p.add_argument("--plot-dir", type=Path, help="write fleet-utilisation.png, fleet-waits.png")
    p.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    p.add_argument("--json", type=Path, help="also write the summaries as JSON here")
    p.add_argument("--keep-dir", type=Path, help="keep each cluster's directory (logs) here")
    p.set_defaults(func=run)
    s = _bench_subparsers(sub).add_parser(
        "scheduler", help="pods/s of the real kube-scheduler: Darwin slices vs plain slices"
    )
    s.add_argument("--nodes", default="500", help="comma-separated node counts (e.g. 500,1000)")
    s.add_argument("--chips", type=int, default=4, help="chips per node")
    s.add_argument("--pods", type=int, default=5000, help="pods with Darwin claims per run")
    s.add_argument(
        "--layouts", default="darwin,plain", help="comma-separated: darwin, light, plain"
    )
    s.add_argument(
        "--claims",
        default="domains,quad,share",
        help="Darwin claim kinds the pods rotate through: domains (two, matchAttribute chip),"
        " quad, share, domain",
    )
    s.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for binds")
    s.add_argument(
        "--profile-dir",
        type=Path,
        help="run kube-scheduler with --profiling=true and write a CPU profile of each run's"
        " measurement here (sched-<layout>-<nodes>.pprof; read with go tool pprof)",
    )
    s.add_argument("--profile-seconds", type=int, default=30, help="length of each profile")
    s.add_argument(
        "--nodes-to-score",
        type=int,
        help="kube-scheduler's percentageOfNodesToScore (0-100; 0: its adaptive default), set"
        " in a KubeSchedulerConfiguration passed with --config; unset: flags only",
    )
    s.add_argument(
        "--backlog",
        action="store_true",
        help="stop kube-scheduler (SIGSTOP) while the gates are removed, continue it after:"
        " pods/s is then the scheduler draining a full queue, not limited by how fast the"
        " bench ungates; latencies count from the continue",
    )
    s.set_defaults(func=run_scheduler)


def run_scheduler(args: argparse.Namespace) -> int:
    from darwin_dra.fleet.schedbench import LAYOUTS, run_layout, table
    from darwin_dra.fleet.schedclaims import CLAIM_KINDS

    try:
        counts = [int(n) for n in args.nodes.split(",") if n.strip()]
    except ValueError:
        print(f"--nodes: expected numbers like 500,1000, got {args.nodes!r}", file=sys.stderr)
        return 2
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    if not counts or any(n < 1 for n in counts) or args.pods < 1:
        print("--nodes and --pods must be positive", file=sys.stderr)
        return 2
    if any(x not in LAYOUTS for x in layouts) or not layouts:
        print(f"--layouts: known layouts are {', '.join(LAYOUTS)}", file=sys.stderr)
        return 2
    kinds = [k.strip() for k in args.claims.split(",") if k.strip()]
    if not kinds or any(k not in CLAIM_KINDS for k in kinds):
        print(f"--claims: known kinds are {', '.join(CLAIM_KINDS)}", file=sys.stderr)
        return 2
    if args.profile_seconds < 1:
        print("--profile-seconds must be positive", file=sys.stderr)
        return 2
    if args.nodes_to_score is not None and not 0 <= args.nodes_to_score <= 100:
        print("--nodes-to-score must be between 0 and 100", file=sys.stderr)
        return 2
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for n in counts:
        shape = _shape(n, args.chips)
        for layout in layouts:
            results.append(
                run_layout(
                    layout,
                    shape,
                    args.pods,
                    args.timeout,
                    lambda line: print(line, file=sys.stderr, flush=True),
                    claim_kinds=kinds,
                    profile=args.profile_dir / f"sched-{layout}-{n}.pprof"
                    if args.profile_dir
                    else None,
                    profile_s=args.profile_seconds,
                    nodes_to_score=args.nodes_to_score,
                    backlog=args.backlog,
                )
            )
            print(table(results), file=sys.stderr, flush=True)
    print(table(results))
    print(
        f"\n{args.chips} chips a node; Darwin pods rotate 2 domains (matchAttribute chip), a quad,"
        " a 10 k Meps KEPS share (capacity layout: domains 2, 4 with maxMeps >= 100 k, or 1,"
        " each with a KEPS request); plain pods take one chip each (at most one pod a chip)."
        " pods/s = bound / (last bind - first ungate); latency = bind seen - ungate (with"
        " --backlog both count from the scheduler's continue); binding/s = first to last bind;"
        " CPU ms/pod: user + system CPU, from ungate to the end, of kube-apiserver (api), etcd,"
        " kube-controller-manager (kcm), kube-scheduler (sched), and of the four together"
        " (plane). not ready max/end: fleet nodes not Ready or tainted, the most at one of the"
        " lease keeper's samples during the measurement and at its end; valid: none was."
    )
    for r in results:
        if not r.valid:
            print(f"{r.layout} at {r.nodes} nodes: not valid: {r.validity}")
    return 0 if all(r.complete for r in results) else 1


def run(args: argparse.Namespace) -> int:
    from darwin_dra.fleet.claims import MODELS
    from darwin_dra.fleet.metrics import arrivals_for_load
    from darwin_dra.fleet.run import FleetRun, fleet_cores, run_fleet

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        print(f"--models: unknown {unknown} (known: {', '.join(MODELS)})", file=sys.stderr)
        return 2
    if min(args.compression, args.hours, args.nodes, args.chips, args.duration_scale) <= 0:
        print(
            "--compression, --hours, --nodes, --chips and --duration-scale must be positive",
            file=sys.stderr,
        )
        return 2
    shape = _shape(args.nodes, args.chips)
    try:
        trace = TraceConfig(
            seed=args.seed,
            length_s=args.hours * 3600,
            arrivals_per_hour=args.arrivals_per_hour,
            duration_scale=args.duration_scale,
        )
        if args.mix:
            trace = replace(trace, mix=parse_mix(args.mix))
        if args.offered_load is not None:
            cores, chip = fleet_cores(shape)
            rate = arrivals_for_load(trace, args.offered_load, cores, chip)
            trace = replace(trace, arrivals_per_hour=rate)
    except ValueError as bad:
        print(f"--mix/--offered-load: {bad}", file=sys.stderr)
        return 2
    args.arrivals_per_hour = trace.arrivals_per_hour
    fleet_run = FleetRun(shape, trace, args.compression, models, args.keep_dir)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    summaries, errors = run_fleet(fleet_run, progress)
    print(table(summaries))
    wall = trace.length_s / args.compression
    print(
        f"\nfleet: {shape.nodes} nodes x {shape.chips_per_node} chips ({shape.base_model}, "
        f"{shape.fast_chips} {shape.fast_model} on every {shape.fast_every}nd node); trace "
        f"{args.hours:g} h, {args.arrivals_per_hour:.0f} arrivals/h, seed {args.seed}, "
        f"mix {' '.join(f'{k} {v:g}' for k, v in trace.mix.items())}, durations x"
        f"{args.duration_scale:g}"
        + (f", offered load {args.offered_load:g}" if args.offered_load is not None else "")
        + "; "
        f"time compressed {args.compression:g}x ({wall / 60:.1f} wall minutes per model)"
    )
    for e in errors[:20]:
        print(f"error: {e}", file=sys.stderr)
    title = (
        f"darwin-dra bench fleet --nodes {args.nodes} --hours {args.hours:g} "
        f"--arrivals-per-hour {args.arrivals_per_hour:.0f} --compression {args.compression:g}"
    )
    if args.plot_dir:
        from darwin_dra.fleet.plot import plot_utilisation, plot_waits

        args.plot_dir.mkdir(parents=True, exist_ok=True)
        plot_utilisation(summaries, args.plot_dir / "fleet-utilisation.png", title)
        plot_waits(summaries, args.plot_dir / "fleet-waits.png", title)
    if args.markdown:
        args.markdown.write_text(markdown(summaries) + "\n")
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in summaries], indent=1))
    return 1 if len(errors) > 0.01 * max(sum(s.jobs for s in summaries), 1) else 0
