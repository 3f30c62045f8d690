"""`darwin-dra stage`: run one stage of a split model on the partition a claim gave this pod.

The partition's SpikePort comes from DARWIN_SPIKE_ENDPOINT (set by the driver's CDI spec) or
--endpoint. See docs/runtime.md for the network file, the frame format and an example.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import grpc
import numpy as np

from darwin_dra.cli.flags import env_option, positive_int
from darwin_dra.runtime.stage import StageConfig, run_stage


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stage", help="run one stage of a split model on a spike port")
    env_option(p, "--endpoint", "DARWIN_SPIKE_ENDPOINT", "the partition's SpikePort socket")
    p.add_argument("--network", type=Path, required=True, help="the stage's network (.npz)")
    p.add_argument("--listen", help="where the upstream stage connects: tcp://H:P or unix:///P")
    p.add_argument("--downstream", help="the next stage's --listen address")
    p.add_argument("--window", type=positive_int, default=10, help="steps per window (default 10)")
    p.add_argument(
        "--steps", type=positive_int, help="stop after this many steps (a source needs it)"
    )
    p.add_argument("--output", type=Path, help="save the exported spikes (last stage) as .npz")
    p.add_argument(
        "--connect-timeout", type=float, default=30.0, help="seconds to wait for --downstream"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.endpoint:
        print("darwin-dra stage: no --endpoint and no DARWIN_SPIKE_ENDPOINT", file=sys.stderr)
        return 2
    try:
        config = StageConfig(
            endpoint=args.endpoint,
            network=args.network,
            window=args.window,
            listen=args.listen,
            downstream=args.downstream,
            steps=args.steps,
            connect_timeout_s=args.connect_timeout,
        )
        report = asyncio.run(run_stage(config))
    except grpc.aio.AioRpcError as exc:
        print(f"darwin-dra stage: spike port: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # WireError is a ValueError
        print(f"darwin-dra stage: {exc}", file=sys.stderr)
        return 1
    if args.output is not None:
        steps, ids = report.spikes()
        np.savez(args.output, steps=steps, ids=ids)
    print(
        f"stage: {report.steps} steps in {report.windows} windows, "
        f"{report.received} spikes received ({report.unrouted} unrouted), "
        f"{report.exported} exported"
    )
    return 0
