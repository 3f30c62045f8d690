"""A SpikingPipeline's spec as typed values (pure).

The API server already checks the structural schema and its CEL rules
(api/pipeline/v1alpha1/spikingpipeline.yaml); this module reads the object the controller got
and checks again what a stored object may still get wrong (an older CRD, a hand-made object in
a test), with an error that names the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from darwin_dra import DRIVER_NAME

GROUP = DRIVER_NAME  # the CRD group is the driver name
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SpikingPipeline"
PLURAL = "spikingpipelines"
MAX_STAGES = 64

_STAGE = re.compile(r"input|output|s[0-9]{1,2}")
InputKind = Literal["poisson", "file", "socket"]


class SpecError(ValueError):
    """A spec the controller cannot act on; the message starts with the field path."""


@dataclass(frozen=True)
class ConfigMapKey:
    name: str
    key: str


@dataclass(frozen=True)
class ModelSource:
    config_map: ConfigMapKey | None = None
    claim_name: str | None = None  # a PersistentVolumeClaim holding the file at ``path``
    path: str | None = None


@dataclass(frozen=True)
class InputSource:
    source: InputKind = "poisson"
    rate_hz: float = 100.0
    seed: int = 1
    file: ConfigMapKey | None = None
    port: int = 7800
    samples: str | None = None  # the file's samples layout, every stage's --samples
    # no input stage: the engine stages that read the input draw it (poisson, file) themselves
    in_place: bool = False


@dataclass(frozen=True)
class Hint:
    stage: str  # the split's stage name: input, s0, s1, ..., output
    node_selector: Mapping[str, str]


@dataclass(frozen=True)
class PipelineSpec:
    model: ModelSource
    input: InputSource
    target_rate: int
    stages: int | None = None  # None: auto
    steps: int | None = None  # None: run until deleted
    window: int = 10
    hints: tuple[Hint, ...] = field(default=())
    # the layers of each engine stage, for a split the user gives (split_at_layers)
    stage_layers: tuple[tuple[str, ...], ...] | None = None

    def hint_map(self) -> dict[str, Mapping[str, str]]:
        return {h.stage: h.node_selector for h in self.hints}


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: expected a non-empty string")
    return value


def _int(value: Any, where: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{where}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise SpecError(f"{where}: {value} is out of range (must be {bound})")
    return value


def _config_map_key(value: Any, where: str) -> ConfigMapKey:
    obj = _obj(value, where)
    return ConfigMapKey(
        _str(obj.get("name"), f"{where}.name"), _str(obj.get("key"), f"{where}.key")
    )


def _model(value: Any) -> ModelSource:
    obj = _obj(value, "spec.model")
    has_cm, has_vol = "configMap" in obj, "volume" in obj
    if has_cm == has_vol:
        raise SpecError("spec.model: give exactly one of configMap and volume")
    if has_cm:
        return ModelSource(config_map=_config_map_key(obj["configMap"], "spec.model.configMap"))
    vol = _obj(obj["volume"], "spec.model.volume")
    path = _str(vol.get("path"), "spec.model.volume.path")
    if not path.startswith("/") or "\x00" in path:
        raise SpecError(f"spec.model.volume.path: {path!r} must be an absolute path")
    return ModelSource(
        claim_name=_str(vol.get("claimName"), "spec.model.volume.claimName"), path=path
    )


SAMPLES = re.compile(r"[1-9][0-9]{0,5}(\+[0-9]{1,6})?(,reset)?")  # as the schema's pattern


def _input(value: Any) -> InputSource:
    obj = _obj(value, "spec.input")
    source = obj.get("source")
    if source not in ("poisson", "file", "socket"):
        raise SpecError(f"spec.input.source: {source!r} is not one of poisson, file, socket")
    poisson = _obj(obj.get("poisson", {}), "spec.input.poisson")
    rate = poisson.get("rateHz", 100.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 10_000:
        raise SpecError(f"spec.input.poisson.rateHz: {rate!r} must be a number from 0 to 10000")
    seed = _int(poisson.get("seed", 1), "spec.input.poisson.seed", 0, 2**32 - 1)
    file = None
    samples = None
    if source == "file":
        if "file" not in obj:
            raise SpecError("spec.input.file: required when spec.input.source is file")
        file_obj = _obj(obj["file"], "spec.input.file")
        file = _config_map_key(file_obj.get("configMap"), "spec.input.file.configMap")
        if "samples" in file_obj:
            samples = _str(file_obj["samples"], "spec.input.file.samples")
            if not SAMPLES.fullmatch(samples):
                raise SpecError(f"spec.input.file.samples: {samples!r} is not STEPS[+GAP][,reset]")
    socket = _obj(obj.get("socket", {}), "spec.input.socket")
    port = _int(socket.get("port", 7800), "spec.input.socket.port", 1024, 65535)
    in_place = obj.get("inPlace", False)
    if not isinstance(in_place, bool):
        raise SpecError(f"spec.input.inPlace: expected true or false, got {in_place!r}")
    if in_place and source == "socket":
        raise SpecError(
            "spec.input.inPlace: is for a poisson or file input, not a socket (its producer "
            "connects to one place)"
        )
    return InputSource(source, float(rate), seed, file, port, samples, in_place)


def _stages(value: Any) -> int | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, str):
        raise SpecError(f"spec.stages: {value!r} is neither a number nor auto")
    return _int(value, "spec.stages", 1, MAX_STAGES)


def _hints(value: Any) -> tuple[Hint, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SpecError("spec.hints: expected a list")
    out: list[Hint] = []
    for i, raw in enumerate(value):
        where = f"spec.hints[{i}]"
        obj = _obj(raw, where)
        stage = _str(obj.get("stage"), f"{where}.stage")
        if not _STAGE.fullmatch(stage):
            raise SpecError(f"{where}.stage: {stage!r} is not input, output or s<N>")
        if any(h.stage == stage for h in out):
            raise SpecError(f"{where}.stage: stage {stage} has two hints")
        selector = _obj(obj.get("nodeSelector"), f"{where}.nodeSelector")
        if not selector:
            raise SpecError(f"{where}.nodeSelector: needs at least one label")
        labels = {
            _str(k, f"{where}.nodeSelector"): _str(v, f"{where}.nodeSelector.{k}")
            for k, v in selector.items()
        }
        out.append(Hint(stage, labels))
    return tuple(out)


def _stage_layers(value: Any) -> tuple[tuple[str, ...], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STAGES:
        raise SpecError(f"spec.stageLayers: a list of 1 to {MAX_STAGES} lists of layer names")
    out = []
    for j, held in enumerate(value):
        where = f"spec.stageLayers[{j}]"
        if not isinstance(held, list) or not held:
            raise SpecError(f"{where}: a non-empty list of layer names (stage s{j})")
        out.append(tuple(_str(x, f"{where}[{i}]") for i, x in enumerate(held)))
    return tuple(out)


def parse_spec(pipeline: Mapping[str, Any]) -> PipelineSpec:
    """The typed spec of a SpikingPipeline object; SpecError names the first bad field."""
    spec = _obj(pipeline.get("spec"), "spec")
    out = PipelineSpec(
        model=_model(spec.get("model")),
        input=_input(spec.get("input")),
        target_rate=_int(spec.get("targetRate"), "spec.targetRate", 1, 1_000_000),
        stages=_stages(spec.get("stages")),
        steps=None if spec.get("steps") is None else _int(spec["steps"], "spec.steps", 1),
        window=_int(spec.get("window", 10), "spec.window", 1, 10_000),
        hints=_hints(spec.get("hints")),
        stage_layers=_stage_layers(spec.get("stageLayers")),
    )
    if out.input.in_place and "input" in out.hint_map():
        raise SpecError("spec.hints: input.inPlace leaves no input stage to pin")
    if out.stage_layers is not None:
        n = len(out.stage_layers)
        if out.stages is not None and out.stages != n:
            raise SpecError(f"spec.stages is {out.stages}, spec.stageLayers names {n} stages")
        out = replace(out, stages=n)
    if out.stages is not None:
        for h in out.hints:
            if h.stage.startswith("s") and int(h.stage[1:]) >= out.stages:
                raise SpecError(
                    f"spec.hints: stage {h.stage} does not exist (spec.stages is {out.stages}: "
                    f"s0 to s{out.stages - 1})"
                )
    return out
