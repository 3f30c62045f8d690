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
    p.add_argument(
        "--route-maps",
        action="store_true",
        help="also print the neuron map of every edge between engine stages (what the chip's "
        "router needs when the controller places both stages on one chip)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from darwin_dra.pipeline.splitter import (
        PLAN_PREFIX,
        ROUTES_PREFIX,
        ModelError,
        parse_layers,
        split_model,
    )

    try:
        layers = None if args.layers is None else parse_layers(args.layers)
        if layers is not None and args.stages is not None and args.stages != len(layers):
            raise ModelError(f"--stages {args.stages} but --layers names {len(layers)} stages")
        text = split_model(args.model, args.stages, args.input_rate_hz, layers)
    except ModelError as exc:
        print(f"darwin-dra split: {exc}", file=sys.stderr)
        return 1
    if args.route_maps:
        try:
            maps = _route_maps(args.model, text)
        except (ValueError, OSError, KeyError) as exc:
            print(f"darwin-dra split: the neuron maps of the edges: {exc}", file=sys.stderr)
            return 1
        print(ROUTES_PREFIX + json.dumps(maps, separators=(",", ":"), sort_keys=True))
    print(PLAN_PREFIX + json.dumps(json.loads(text), separators=(",", ":")))
    return 0


def _route_maps(model: Path, plan_text: str) -> dict[str, str]:
    """Each engine edge's encoded map, those too long for any claim's routes left out."""
    from darwin_dra.models.nirfile import load_model
    from darwin_dra.pipeline.chiproutes import MAX_ROUTES_CHARS, route_maps
    from darwin_dra.pipeline.splitplan import SplitPlan

    maps = route_maps(load_model(model), SplitPlan.from_json(plan_text))
    return {f"{s}->{d}": m for (s, d), m in maps.items() if len(m) <= MAX_ROUTES_CHARS}
