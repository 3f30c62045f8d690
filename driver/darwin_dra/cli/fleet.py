"""`darwin-dra bench fleet`: a job trace on the real scheduler, black box against Darwin DRA."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from darwin_dra.fleet.layout import FleetShape
from darwin_dra.fleet.report import markdown, table
from darwin_dra.fleet.trace import TraceConfig


def _bench_subparsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    bench = sub.choices.get("bench")
    if bench is None:
        raise RuntimeError("darwin_dra.cli.bench must be registered before darwin_dra.cli.fleet")
    actions = [a for a in bench._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _bench_subparsers(sub).add_parser(
        "fleet", help="a trace of SNN jobs on the real scheduler: black box vs Darwin claims"
    )
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--chips", type=int, default=4, help="chips per node")
    p.add_argument("--hours", type=float, default=8.0, help="trace length (trace hours)")
    p.add_argument("--arrivals-per-hour", type=float, default=1500.0)
    p.add_argument(
        "--compression",
        type=float,
        default=80.0,
        help="trace seconds per wall second (80: an 8 h trace replays in 6 min)",
    )
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--models", default="blackbox,darwin", help="comma-separated, in run order")
    p.add_argument("--plot-dir", type=Path, help="write fleet-utilisation.png, fleet-waits.png")
    p.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    p.add_argument("--json", type=Path, help="also write the summaries as JSON here")
    p.add_argument("--keep-dir", type=Path, help="keep each cluster's directory (logs) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from darwin_dra.fleet.run import FleetRun, run_fleet

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = [m for m in models if m not in ("blackbox", "darwin")]
    if unknown or not models:
        print(f"--models: unknown {unknown} (known: blackbox, darwin)", file=sys.stderr)
        return 2
    if args.compression <= 0 or args.hours <= 0 or args.nodes < 1 or args.chips < 1:
        print("--compression, --hours, --nodes and --chips must be positive", file=sys.stderr)
        return 2
    shape = FleetShape(nodes=args.nodes, chips_per_node=args.chips,
                       fast_chips=min(2, args.chips), wafer_chips=min(2, args.chips))  # fmt: skip
    trace = TraceConfig(
        seed=args.seed, length_s=args.hours * 3600, arrivals_per_hour=args.arrivals_per_hour
    )
    fleet_run = FleetRun(shape, trace, args.compression, models, args.keep_dir)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    summaries, errors = run_fleet(fleet_run, progress)
    print(table(summaries))
    wall = trace.length_s / args.compression
    print(
        f"\nfleet: {shape.nodes} nodes x {shape.chips_per_node} chips ({shape.base_model}, "
        f"{shape.fast_chips} {shape.fast_model} on every {shape.fast_every}nd node); trace "
        f"{args.hours:g} h, {args.arrivals_per_hour:g} arrivals/h, seed {args.seed}; "
        f"time compressed {args.compression:g}x ({wall / 60:.1f} wall minutes per model)"
    )
    for e in errors[:20]:
        print(f"error: {e}", file=sys.stderr)
    title = (
        f"darwin-dra bench fleet --nodes {args.nodes} --hours {args.hours:g} "
        f"--arrivals-per-hour {args.arrivals_per_hour:g} --compression {args.compression:g}"
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
