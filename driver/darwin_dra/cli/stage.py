"""`darwin-dra stage`: run one stage of a split model.

With --model, --plan and --stage: a stage of a SplitPlan (pipeline/split.py) in a graph of
stages (runtime/pipeline_stage.py; flags in docs/pipeline.md). With --network: the older chain
mode, one .npz network per stage (runtime/stage.py). An engine stage's SpikePort comes from
DARWIN_SPIKE_ENDPOINT (set by the driver's CDI spec) or --endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import grpc
import numpy as np

from darwin_dra.cli.flags import env_option, positive_int
from darwin_dra.engine.network import Reset
from darwin_dra.logs import configure
from darwin_dra.models.errors import ModelError
from darwin_dra.pipeline.inputs import InputSpec
from darwin_dra.pipeline.samples import SampleLayout
from darwin_dra.runtime.pipeline_stage import PipelineStageConfig, run_pipeline_stage
from darwin_dra.runtime.stage import StageConfig, run_stage
from darwin_dra.runtime.tls import TlsFiles


def _peer(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or not address:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=tcp://HOST:PORT")
    return name, address


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stage", help="run one stage of a split model on a spike port")
    env_option(p, "--endpoint", "DARWIN_SPIKE_ENDPOINT", "the partition's SpikePort socket")
    p.add_argument("--model", type=Path, help="the whole model (.nir); with --plan and --stage")
    p.add_argument("--plan", type=Path, help="the split plan (SplitPlan JSON)")
    p.add_argument("--stage", help="this stage's name in the plan")
    p.add_argument("--network", type=Path, help="chain mode: the stage's network (.npz)")
    p.add_argument("--listen", help="where upstream stages connect: tcp://H:P or unix:///P")
    p.add_argument(
        "--downstream",
        action="append",
        default=[],
        help="NAME=ADDRESS of a downstream stage (repeat per edge); chain mode: ADDRESS",
    )
    p.add_argument(
        "--on-chip",
        action="append",
        default=[],
        metavar="PEER",
        help="a neighbour stage whose partition is on this stage's chip: the chip host's route "
        "carries that edge, no stream (repeat per peer; the route must be programmed)",
    )
    p.add_argument("--tls-ca", type=Path, help="the pipeline's CA certificate (PEM)")
    p.add_argument("--tls-cert", type=Path, help="this stage's certificate (PEM)")
    p.add_argument("--tls-key", type=Path, help="this stage's key (PEM)")
    p.add_argument(
        "--input",
        help="input stage: poisson, file:PATH or socket; an engine stage that reads the "
        "model's input: poisson or file:PATH, drawn in place (no input stage)",
    )
    p.add_argument("--input-rate-hz", type=float, help="poisson input: Hz per input neuron")
    p.add_argument("--input-seed", type=int, default=1, help="poisson input: seed (default 1)")
    p.add_argument("--input-listen", help="socket input: where the producer connects")
    p.add_argument("--window", type=positive_int, default=10, help="steps per window (default 10)")
    p.add_argument(
        "--lookahead", type=positive_int, default=4, help="windows a sender may run ahead"
    )
    p.add_argument(
        "--rate", type=float, help="the stage reading the input: timesteps per second to pace to"
    )
    p.add_argument("--steps", type=int, help="model steps to run (chain mode: engine steps)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.add_argument(
        "--output", type=Path, help="save the output spikes, or a stage's readout (.npz)"
    )
    p.add_argument(
        "--samples",
        help="STEPS[+GAP][,reset]: the input file holds samples of STEPS steps, run one after "
        "another GAP steps apart (with reset: engine stages start each from rest); a readout "
        "is read at each sample's last step",
    )
    p.add_argument(
        "--connect-timeout", type=float, help="seconds to reach the downstream (default 120)"
    )
    p.add_argument("--dt", type=float, help="the model's time step in seconds")
    p.add_argument("--reset", choices=["value", "subtract"], help="the model's reset")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model is not None or args.plan is not None or args.stage is not None:
        return _pipeline(args)
    if args.network is None:
        print("darwin-dra stage: give --model, --plan and --stage (or --network)", file=sys.stderr)
        return 2
    return _chain(args)


def _pipeline(args: argparse.Namespace) -> int:
    if args.model is None or args.plan is None or args.stage is None:
        print("darwin-dra stage: --model, --plan and --stage go together", file=sys.stderr)
        return 2
    tls_given = [args.tls_ca, args.tls_cert, args.tls_key]
    if any(tls_given) and not all(tls_given):
        print("darwin-dra stage: --tls-ca, --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    configure()
    try:
        downstream = dict(_peer(d) for d in args.downstream)
        spec = None
        if args.input is not None:
            spec = InputSpec.parse(
                args.input, args.input_rate_hz, args.input_seed, args.input_listen
            )
        config = PipelineStageConfig(
            model=args.model,
            plan=args.plan,
            stage=args.stage,
            endpoint=args.endpoint or None,
            listen=args.listen,
            downstream=downstream,
            tls=TlsFiles(args.tls_ca, args.tls_cert, args.tls_key) if args.tls_ca else None,
            input=spec,
            steps=args.steps,
            window=args.window,
            lookahead=args.lookahead,
            rate=args.rate,
            metrics_port=args.metrics_port,
            output=args.output,
            connect_timeout_s=120.0 if args.connect_timeout is None else args.connect_timeout,
            dt=args.dt,
            reset=Reset[args.reset.upper()] if args.reset else None,
            samples=SampleLayout.parse(args.samples) if args.samples else None,
            on_chip=frozenset(args.on_chip),
        )
        report = asyncio.run(run_pipeline_stage(config))
    except argparse.ArgumentTypeError as exc:
        print(f"darwin-dra stage: {exc}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        print(f"darwin-dra stage: spike port: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError, ModelError, ConnectionError) as exc:
        print(f"darwin-dra stage {args.stage}: {exc}", file=sys.stderr)
        return 1
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        line = (
            f"stage {report.stage} ({report.kind}): {report.steps} steps in {report.windows} "
            f"windows, {report.spikes_in} spikes in, {report.spikes_out} out, "
            f"{report.bytes_out} bytes out, dropped {report.dropped}"
        )
        if report.output_digest is not None:
            line += f"; outputs {summary['output_spikes']} spikes, digest {report.output_digest}"
        print(line)
    return 0


def _chain(args: argparse.Namespace) -> int:
    if not args.endpoint:
        print("darwin-dra stage: no --endpoint and no DARWIN_SPIKE_ENDPOINT", file=sys.stderr)
        return 2
    if len(args.downstream) > 1:
        print("darwin-dra stage: chain mode has one --downstream", file=sys.stderr)
        return 2
    if args.steps is not None and args.steps < 1:
        print("darwin-dra stage: --steps must be >= 1", file=sys.stderr)
        return 2
    try:
        config = StageConfig(
            endpoint=args.endpoint,
            network=args.network,
            window=args.window,
            listen=args.listen,
            downstream=args.downstream[0] if args.downstream else None,
            steps=args.steps,
            connect_timeout_s=30.0 if args.connect_timeout is None else args.connect_timeout,
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
