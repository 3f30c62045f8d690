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
    p.add_argument("--network", type=Path, required=True, help="engine network file (.npz)")
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
