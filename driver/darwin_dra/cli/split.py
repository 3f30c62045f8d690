"""`darwin-dra split`: split a NIR model into pipeline stages and print the plan (the
SplitPlan JSON of pipeline/split.py). The controller runs it in a pod for a SpikingPipeline
whose model is on a volume; it prints the plan as one line after a marker
(pipeline/splitter.py, PLAN_PREFIX), so the plan can be read back from the pod's log."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _stages(text: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r}: a number from 1 to 64, or auto")
    return int(text)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("split", help="split a NIR model into pipeline stages (prints the plan)")
    p.add_argument("--model", type=Path, required=True, help="the model (.nir)")
    p.add_argument("--stages", type=_stages, default=None, help="engine stages, or auto")
    p.add_argument(
        "--input-rate-hz", type=float, help="the input's firing rate (default: the split's)"
    )
    p.add_argument(
        "--layers",
        help="the split to make, by layer: LAYER[,LAYER...] per engine stage, ';' between "
        "(e.g. 'edge;server,readout'); instead of --stages",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from darwin_dra.pipeline.splitter import PLAN_PREFIX, ModelError, parse_layers, split_model

    try:
        layers = None if args.layers is None else parse_layers(args.layers)
        if layers is not None and args.stages is not None and args.stages != len(layers):
            raise ModelError(f"--stages {args.stages} but --layers names {len(layers)} stages")
        text = split_model(args.model, args.stages, args.input_rate_hz, layers)
    except ModelError as exc:
        print(f"darwin-dra split: {exc}", file=sys.stderr)
        return 1
    print(PLAN_PREFIX + json.dumps(json.loads(text), separators=(",", ":")))
    return 0
