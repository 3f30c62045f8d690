"""A model on a volume (controller/plansource.py): the split pod's log carries the plan and the
neuron maps of its engine edges, so the controller can put an edge on a chip's router without
reading the model; a pod of an older image that printed no maps leaves the edges on sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from darwin_dra import kubeapi
from darwin_dra.controller.plansource import PlanSource, model_route_maps
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import objects, splitpod
from darwin_dra.pipeline.spec import parse_spec
from darwin_dra.testing.cli import run_cli

from tests.pipeline.pipelines import pipeline_obj

MODEL = Path(__file__).resolve().parents[1] / "data" / "digits_snntorch.nir"
SETTINGS = objects.StageSettings(image="darwin-dra.local/darwin-dra:test", pull_policy="Never")


class Api:
    def __init__(self, log: str) -> None:
        self.log, self.deleted = log, []

    def read_pod_log(self, namespace: str, name: str, tail_lines: int = 200) -> str:
        return self.log

    def delete(self, namespace: str, kind: str, name: str) -> None:
        self.deleted.append((kind, name))


def _source(log: str, obj: Obj) -> tuple[Any, Api]:
    spec = parse_spec(obj)
    key: tuple[object, ...] = ("volume", spec.model, spec.stages, spec.input)
    pod = splitpod.split_pod_body(obj, spec, SETTINGS, objects.digest(key))
    pod["status"] = {"phase": "Succeeded"}
    api = Api(log)
    source = PlanSource(cast(kubeapi.PipelineKube, api), SETTINGS)
    return source.plan(obj, spec, [pod]), api


def test_the_split_pods_route_maps_come_with_its_plan() -> None:
    obj = pipeline_obj(model={"volume": {"claimName": "models", "path": "/digits.nir"}})
    out = run_cli("split", "--model", str(MODEL), "--stages", "3", "--route-maps")
    assert out.returncode == 0, out.stderr
    sourced, api = _source("starting\n" + out.stdout, obj)
    assert dict(sourced.maps) == model_route_maps(MODEL, sourced.text)
    assert sourced.maps
    assert api.deleted == [("Pod", "digits-split")]
    old = run_cli("split", "--model", str(MODEL), "--stages", "3")
    older, _ = _source(old.stdout, obj)
    assert dict(older.maps) == {}
