"""`darwin-dra model inspect|run`: NIR models on a local engine (see docs/models.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from darwin_dra.engine import EngineError, Reset
from darwin_dra.models.compile import DEFAULT_DT_S, DEFAULT_WEIGHT_TOLERANCE
from darwin_dra.models.errors import ModelError
from darwin_dra.models.nirfile import load_model
from darwin_dra.models.report import format_inspect, format_run, inspect_model, run_report
from darwin_dra.models.run import load_spikes, run_model


def _reset(text: str) -> Reset:
    try:
        return Reset[text.upper()]
    except KeyError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'value' or 'subtract'") from exc


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="the model (.nir)")
    p.add_argument(
        "--dt",
        type=float,
        help=f"time step in seconds (default: the file's metadata, else {DEFAULT_DT_S:g})",
    )
    p.add_argument(
        "--reset",
        type=_reset,
        help="what a spike does: value (v <- v_reset, the NIR definition) or subtract "
        "(default: the file's metadata, else value)",
    )
    p.add_argument(
        "--weight-tolerance",
        type=float,
        default=DEFAULT_WEIGHT_TOLERANCE,
        help="largest RMS weight quantisation error of a layer, relative (default %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("model", help="inspect or run a NIR model on a local engine")
    msub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    i = msub.add_parser("inspect", help="layers, neurons, synapses and engine memory of a model")
    _common(i)
    i.set_defaults(func=inspect)
    r = msub.add_parser("run", help="run a model on a local engine and print its outputs")
    _common(r)
    r.add_argument(
        "--input",
        type=Path,
        required=True,
        help="input spikes: .npy (steps x inputs counts) or .npz (steps, ids)",
    )
    r.add_argument("--steps", type=int, help="model steps to run (default: the input's length)")
    r.add_argument("--threads", type=int, default=1, help="engine threads (default 1)")
    r.set_defaults(func=run)
    m = msub.add_parser("memory", help="engine bytes per synapse of each layer type, measured")
    m.add_argument("--scale", type=int, default=1, help="divide the layer sizes (default 1)")
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=memory)


def _fail(exc: Exception) -> int:
    print(f"darwin-dra model: {exc}", file=sys.stderr)
    return 1


def inspect(args: argparse.Namespace) -> int:
    try:
        model = load_model(
            args.file, dt=args.dt, reset=args.reset, weight_tolerance=args.weight_tolerance
        )
        report = inspect_model(model)
    except (ModelError, EngineError) as exc:
        return _fail(exc)
    print(json.dumps(report, indent=2) if args.json else format_inspect(report))
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        model = load_model(
            args.file, dt=args.dt, reset=args.reset, weight_tolerance=args.weight_tolerance
        )
        steps, ids, n = load_spikes(args.input, model)
        total = n if args.steps is None else args.steps
        if total < 0:
            raise ModelError(f"--steps {total} must be >= 0")
        result = run_model(model, total, steps, ids, threads=args.threads)
    except (ModelError, EngineError) as exc:
        return _fail(exc)
    report = run_report(model, result)
    print(json.dumps(report) if args.json else format_run(report))
    return 0


def memory(args: argparse.Namespace) -> int:
    from darwin_dra.models.memory import format_table, measure

    if args.scale < 1 or args.scale > 32:
        print("darwin-dra model memory: --scale must be 1..32", file=sys.stderr)
        return 2
    rows = measure(args.scale)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
