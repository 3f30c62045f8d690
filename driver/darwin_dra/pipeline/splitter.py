"""A NIR file split into a pipeline's stages: the file read and pipeline/split.py's
``plan_split`` called, with every failure one ModelError that names the file."""

from __future__ import annotations

import json
from pathlib import Path

# `darwin-dra split` prints the plan as one line after this marker (a pod's log mixes streams).
PLAN_PREFIX = "darwin-dra split plan: "
# ... and with --route-maps the neuron maps of its edges between engine stages, one JSON line
# {"SRC->DST": "SRC:DST:N ..."} after this one (pipeline/chiproutes.py encode_map).
ROUTES_PREFIX = "darwin-dra split routes: "


class ModelError(ValueError):
    """The model cannot be read or split; the message says which object or file and why."""


Layers = tuple[tuple[str, ...], ...]  # the neuron layers of each engine stage, in order


def split_model(
    path: Path, stages: int | None, rate_hz: float | None = None, layers: Layers | None = None
) -> str:
    """The SplitPlan JSON of the NIR file at ``path``, ``stages`` engine stages (None: auto).

    Its KEPS are estimated at real time (one model step per ``dt``), not at the pipeline's
    target rate: a partition's KEPS grant is events per second of model time (the resource
    model's definition), and the engine enforces it per step. ``rate_hz``: the input's firing
    rate (a Poisson input's), also taken for the layers (an estimate on the high side); None:
    the split's default. ``layers``: the split the user gives (``split_at_layers``), not the
    traffic-driven one."""
    from darwin_dra.models.nirfile import load_model
    from darwin_dra.models.traffic import DEFAULT_RATE_HZ
    from darwin_dra.pipeline.split import plan_split, split_at_layers

    try:
        model = load_model(path)
        rate = DEFAULT_RATE_HZ if rate_hz is None else max(DEFAULT_RATE_HZ, rate_hz)
        steps_per_s = 1.0 / model.dt_s
        if layers is not None:
            plan = split_at_layers(model, layers, steps_per_s=steps_per_s, default_rate_hz=rate)
        else:
            plan = plan_split(model, stages, steps_per_s=steps_per_s, default_rate_hz=rate)
    except (ValueError, OSError, KeyError) as exc:
        raise ModelError(f"splitting {path.name}: {exc}") from None
    return plan.to_json()


def file_rate_hz(model_path: Path, input_path: Path, samples: str | None) -> float:
    """The firing rate a file input gives the split (``InputSource.peak_rate_hz``): the file
    laid out as its stages read it (``samples``: the --samples layout, None: AER spikes)."""
    from darwin_dra.models.nirfile import load_model
    from darwin_dra.pipeline.inputs import InputSource, InputSpec
    from darwin_dra.pipeline.samples import SampleLayout

    try:
        layout = SampleLayout.parse(samples) if samples is not None else None
        source = InputSource(InputSpec("file", path=input_path), load_model(model_path), layout)
    except (ValueError, OSError, KeyError) as exc:
        raise ModelError(f"spec.input.file: {exc}") from None
    return source.peak_rate_hz()


def layers_flag(layers: Layers) -> str:
    """The --layers value of ``darwin-dra split``: stages by ';', layers by ','."""
    return ";".join(",".join(held) for held in layers)


def parse_layers(text: str) -> Layers:
    held = [tuple(x.strip() for x in part.split(",") if x.strip()) for part in text.split(";")]
    if not held or any(not h for h in held):
        raise ModelError(f"--layers {text!r}: expected LAYER[,LAYER...] per stage, ';' between")
    return tuple(held)


def maps_from_log(log: str) -> dict[tuple[str, str], str]:
    """The route maps a `darwin-dra split --route-maps` run printed ({} if none); ModelError
    naming what is wrong with a bad line."""
    for line in reversed(log.splitlines()):
        if not line.startswith(ROUTES_PREFIX):
            continue
        try:
            doc = json.loads(line[len(ROUTES_PREFIX) :])
        except ValueError as exc:
            raise ModelError(f"the split's route maps: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ModelError("the split's route maps: expected an object of edge -> map")
        out: dict[tuple[str, str], str] = {}
        for edge, runs in doc.items():
            src, arrow, dst = str(edge).partition("->")
            if not arrow or not src or not dst or not isinstance(runs, str):
                raise ModelError(f"the split's route maps: {edge!r}: expected SRC->DST: runs")
            out[(src, dst)] = runs
        return out
    return {}


def plan_from_log(log: str) -> str | None:
    """The plan a `darwin-dra split` run printed, from its log; None if it printed none."""
    for line in reversed(log.splitlines()):
        if line.startswith(PLAN_PREFIX):
            return line[len(PLAN_PREFIX) :]
    return None
