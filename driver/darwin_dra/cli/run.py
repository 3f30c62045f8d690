"""`darwin-dra run`: run a spiking network on the partition a claim gave this pod.

The partition's SpikePort comes from DARWIN_SPIKE_ENDPOINT (set by the driver's CDI spec, with
DARWIN_PARTITION, DARWIN_CORES and DARWIN_KEPS) or --endpoint. Prints the firing rate and the
synaptic events per second; the pod's log is the proof that its network ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import grpc

from darwin_dra.cli.flags import env_option, positive_int
from darwin_dra.runtime.run import RunConfig, load_network, run_network


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a spiking network on this pod's partition")
    env_option(p, "--endpoint", "DARWIN_SPIKE_ENDPOINT", "the partition's SpikePort socket")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--network", type=Path, help="engine network file (.npz), on the partition")
    what.add_argument(
        "--model",
        type=Path,
        help="a NIR model (.nir) with --input, on a local engine: `darwin-dra model run`",
    )
    p.add_argument(
        "--input", type=Path, help="with --model: input spikes, .npy (steps x inputs) or .npz"
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--steps", type=positive_int, help="steps to run (default 10000)")
    how.add_argument("--seconds", type=float, help="run for this much wall time instead")
    p.add_argument(
        "--window", type=positive_int, default=1000, help="steps per call (default 1000)"
    )
    p.add_argument("--warmup-steps", type=int, default=0, help="steps run first, not measured")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model is not None:
        return _run_model(args)
    if args.input is not None:
        print("darwin-dra run: --input goes with --model, not --network", file=sys.stderr)
        return 2
    if not args.endpoint:
        print("darwin-dra run: no --endpoint and no DARWIN_SPIKE_ENDPOINT", file=sys.stderr)
        return 2
    try:
        steps = args.steps if args.steps or args.seconds is not None else 10000
        cfg = RunConfig(args.endpoint, steps, args.seconds, args.window, args.warmup_steps)
        net = load_network(args.network)
        report = asyncio.run(run_network(cfg, net))
    except grpc.aio.AioRpcError as exc:
        print(f"darwin-dra run: spike port: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"darwin-dra run: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_json()) if args.json else report.line(), flush=True)
    return 0


def _run_model(args: argparse.Namespace) -> int:
    """`run --model FILE.nir --input SPIKES` is `model run FILE.nir --input SPIKES`: one code
    path, two spellings (the second groups it with inspect and memory)."""
    if args.input is None:
        print("darwin-dra run: --model needs --input (the spikes to feed it)", file=sys.stderr)
        return 2
    if args.seconds is not None or args.warmup_steps:
        print("darwin-dra run: --seconds and --warmup-steps go with --network", file=sys.stderr)
        return 2
    from darwin_dra.cli import model
    from darwin_dra.models.compile import DEFAULT_WEIGHT_TOLERANCE

    return model.run(
        argparse.Namespace(
            file=args.model,
            input=args.input,
            steps=args.steps,
            dt=None,
            reset=None,
            weight_tolerance=DEFAULT_WEIGHT_TOLERANCE,
            threads=1,
            json=args.json,
        )
    )
