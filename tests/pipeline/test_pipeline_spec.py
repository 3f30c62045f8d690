"""The spec as the controller reads it, and the schema the API server checks (the one source,
api/pipeline/v1alpha1/spikingpipeline.yaml) accepting what the parser accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from darwin_dra.pipeline.spec import ConfigMapKey, Hint, SpecError, parse_spec

from tests.pipeline.pipelines import pipeline_obj

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "api/pipeline/v1alpha1/spikingpipeline.yaml").read_text())["schema"]
EXAMPLE = ROOT / "deploy/examples/spikingpipeline.yaml"


def _validate(obj: dict[str, Any]) -> None:
    # jsonschema knows nothing of the x-kubernetes-* keywords (the API server's CEL rules are
    # tested against the real server in tests/integration); the rest is plain OpenAPI.
    jsonschema.validate(obj, SCHEMA)


def test_the_example_is_valid_and_parses() -> None:
    obj = yaml.safe_load(EXAMPLE.read_text())
    _validate(obj)
    spec = parse_spec(obj)
    assert spec.model.config_map == ConfigMapKey("digits-model", "digits.nir")
    assert (spec.stages, spec.steps, spec.target_rate) == (3, 5000, 500)
    assert spec.hints[0] == Hint("input", {"darwin.snn.io/edge": "true"})
    assert spec.hint_map()["s2"] == {"darwin.snn.io/zone": "core"}


def test_defaults_and_auto() -> None:
    obj = pipeline_obj(stages="auto")
    _validate(obj)
    spec = parse_spec(obj)
    assert spec.stages is None
    assert (spec.window, spec.steps, spec.input.rate_hz, spec.input.seed) == (10, None, 200.0, 3)


def test_stage_layers_give_the_split_and_its_stage_count() -> None:
    obj = pipeline_obj(stages="auto", stageLayers=[["edge"], ["server", "readout"]])
    _validate(obj)
    spec = parse_spec(obj)
    assert spec.stage_layers == (("edge",), ("server", "readout"))
    assert spec.stages == 2
    with pytest.raises(jsonschema.ValidationError):
        _validate(pipeline_obj(stageLayers=[["edge"], []]))
    # the held-out samples as the input file, from rest
    cm = {"configMap": {"name": "digits", "key": "samples.npy"}, "samples": "16+16,reset"}
    obj = pipeline_obj(input={"source": "file", "file": cm})
    _validate(obj)
    assert parse_spec(obj).input.samples == "16+16,reset"
    with pytest.raises(jsonschema.ValidationError):
        _validate(pipeline_obj(input={"source": "file", "file": {**cm, "samples": "0+3"}}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": {}}, "spec.model: give exactly one of configMap and volume"),
        ({"model": {"configMap": {"name": "m"}}}, "spec.model.configMap.key: expected"),
        ({"model": {"volume": {"claimName": "c", "path": "rel/x.nir"}}}, "must be an absolute"),
        ({"targetRate": 0}, r"spec.targetRate: 0 is out of range"),
        ({"stages": "many"}, "spec.stages: 'many' is neither"),
        ({"stages": 65}, "spec.stages: 65 is out of range"),
        ({"input": {"source": "camera"}}, "spec.input.source: 'camera'"),
        ({"input": {"source": "file"}}, "spec.input.file: required"),
        ({"hints": [{"stage": "s5", "nodeSelector": {"a": "b"}}]}, "stage s5 does not exist"),
        ({"hints": [{"stage": "edge", "nodeSelector": {"a": "b"}}]}, "'edge' is not input"),
        ({"hints": [{"stage": "input", "nodeSelector": {}}]}, r"spec.hints\[0\].nodeSelector"),
        (
            {
                "hints": [
                    {"stage": "s0", "nodeSelector": {"a": "b"}},
                    {"stage": "s0", "nodeSelector": {"c": "d"}},
                ]
            },
            r"spec.hints\[1\].stage: stage s0 has two hints",
        ),
        ({"stageLayers": []}, "spec.stageLayers: a list of 1 to 64"),
        (
            {"input": {"source": "socket", "inPlace": True}},
            "spec.input.inPlace: is for a poisson or file input, not a socket",
        ),
        ({"input": {"source": "poisson", "inPlace": "yes"}}, "spec.input.inPlace: expected true"),
        (
            {
                "input": {"source": "poisson", "inPlace": True},
                "hints": [{"stage": "input", "nodeSelector": {"a": "b"}}],
            },
            "spec.hints: input.inPlace leaves no input stage to pin",
        ),
        (
            {
                "input": {
                    "source": "file",
                    "file": {"configMap": {"name": "a", "key": "b"}, "samples": "16+x"},
                }
            },
            r"spec.input.file.samples: '16\+x' is not STEPS",
        ),
        ({"stageLayers": [["edge"], []]}, r"spec.stageLayers\[1\]: a non-empty list"),
        ({"stageLayers": [["edge"], [3]]}, r"spec.stageLayers\[1\]\[0\]"),
        ({"stages": 3, "stageLayers": [["a"], ["b"]]}, "spec.stageLayers names 2 stages"),
        (
            {
                "stages": "auto",
                "stageLayers": [["a"], ["b"]],
                "hints": [{"stage": "s2", "nodeSelector": {"a": "b"}}],
            },
            "stage s2 does not exist",
        ),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(pipeline_obj(**change))
