"""A pipeline's split plan, read from where its model is (the thin, side-effect half of the
pipeline worker's first step): a model in a ConfigMap is split here, a model on a volume by a
pod that mounts the claim (its log carries the plan). Plans are cached per pipeline until their
inputs change. For a ConfigMap model the neuron map of every edge between engine stages is
computed too (pipeline/chiproutes.py), so the edges placed on one chip can go on its router;
a volume's model is not read here: its split pod prints the maps with the plan
(`darwin-dra split --route-maps`).
"""

from __future__ import annotations

import base64
import contextlib
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from darwin_dra import kubeapi
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline import objects, splitpod
from darwin_dra.pipeline.chiproutes import Edge
from darwin_dra.pipeline.plan import PlanView, from_split_json
from darwin_dra.pipeline.spec import ConfigMapKey, PipelineSpec
from darwin_dra.pipeline.splitter import (
    Layers,
    ModelError,
    file_rate_hz,
    maps_from_log,
    plan_from_log,
    split_model,
)

log = structlog.get_logger(__name__)

RouteMaps = Callable[[Path, str], dict[Edge, str]]


class ModelPending(Exception):
    """The model is being split in its pod; the message says where."""


def model_route_maps(path: Path, plan_text: str) -> dict[Edge, str]:
    """The encoded neuron maps of the plan's edges between engine stages; ModelError if the
    model does not fit the plan."""
    from darwin_dra.models.nirfile import load_model
    from darwin_dra.pipeline.chiproutes import route_maps
    from darwin_dra.pipeline.splitplan import SplitPlan

    try:
        return route_maps(load_model(path), SplitPlan.from_json(plan_text))
    except (ValueError, OSError, KeyError) as exc:
        raise ModelError(f"the neuron maps of {path.name}'s edges: {exc}") from None


@dataclass(frozen=True)
class Sourced:
    text: str
    plan: PlanView
    maps: Mapping[Edge, str] = field(default_factory=dict)  # empty: no routes known


@dataclass
class _Cached:
    key: tuple[Any, ...]
    sourced: Sourced


@dataclass
class PlanSource:
    api: kubeapi.PipelineKube
    settings: objects.StageSettings
    split: Callable[[Path, int | None, float | None], str] = split_model
    split_layers: Callable[[Path, int | None, float | None, Layers], str] = split_model
    maps: RouteMaps = model_route_maps
    _plans: dict[str, _Cached] = field(default_factory=dict)

    def plan(self, p: Obj, spec: PipelineSpec, split_pods: list[Obj]) -> Sourced:
        if spec.model.config_map is not None:
            return self._from_config_map(p, spec)
        return self._from_volume(p, spec, split_pods)

    def _config_map_file(
        self, ns: str, ref: ConfigMapKey, where: str, path: Path
    ) -> tuple[Path, str]:
        """``ref``'s bytes written to ``path``; the ConfigMap's resourceVersion."""
        try:
            cm = self.api.get_config_map(ns, ref.name)
        except kubeapi.NotFound:
            raise ModelError(f"{where}: ConfigMap {ns}/{ref.name} not found") from None
        raw = (cm.get("binaryData") or {}).get(ref.key)
        data = base64.b64decode(raw) if raw is not None else None
        if data is None and ref.key in (cm.get("data") or {}):
            data = str(cm["data"][ref.key]).encode()
        if data is None:
            raise ModelError(f"{where}: {ns}/{ref.name} has no key {ref.key!r}")
        path.write_bytes(data)
        return path, str(cm["metadata"].get("resourceVersion", ""))

    def _input_file(self, ns: str, spec: PipelineSpec, tmp: Path) -> tuple[Path | None, str]:
        """A file input's file, written to ``tmp``, and its ConfigMap's resourceVersion."""
        if spec.input.source != "file" or spec.input.file is None:
            return None, ""
        ref = spec.input.file
        return self._config_map_file(ns, ref, "spec.input.file.configMap", tmp / "input")

    def _from_config_map(self, p: Obj, spec: PipelineSpec) -> Sourced:
        meta = p["metadata"]
        uid = str(meta["uid"])
        with tempfile.TemporaryDirectory(prefix="darwin-model-") as tmp:
            assert spec.model.config_map is not None
            path, version = self._config_map_file(
                meta["namespace"],
                spec.model.config_map,
                "spec.model.configMap",
                Path(tmp) / "model.nir",
            )
            inp, input_version = self._input_file(meta["namespace"], spec, Path(tmp))
            key = (version, input_version, spec.model, spec.stages, spec.input, spec.stage_layers)
            cached = self._plans.get(uid)
            if cached is not None and cached.key == key:
                return cached.sourced
            # the input's rate: a Poisson input's, a file's busiest step; None: the default
            rate = spec.input.rate_hz if spec.input.source == "poisson" else None
            if inp is not None:
                rate = file_rate_hz(path, inp, spec.input.samples)
            if spec.stage_layers is not None:
                text = self.split_layers(path, spec.stages, rate, spec.stage_layers)
            else:
                text = self.split(path, spec.stages, rate)
            plan = from_split_json(text)
            sourced = Sourced(text, plan, self.maps(path, text))
        self._plans[uid] = _Cached(key, sourced)
        log.info(
            "pipeline: model split",
            pipeline=f"{meta['namespace']}/{meta['name']}",
            stages=[s.name for s in plan.stages],
            edges_with_maps=len(sourced.maps),
        )
        return sourced

    def _from_volume(self, p: Obj, spec: PipelineSpec, split_pods: list[Obj]) -> Sourced:
        """The model on a volume is split by a pod that mounts the claim (the controller does
        not); its log carries the plan. Raises ModelPending until it is done."""
        meta = p["metadata"]
        ns, uid = meta["namespace"], str(meta["uid"])
        key: tuple[object, ...] = ("volume", spec.model, spec.stages, spec.input)
        if spec.stage_layers is not None:  # (absent: the key, and its pod's hash, as before)
            key += (spec.stage_layers,)
        cached = self._plans.get(uid)
        if cached is not None and cached.key == key:
            return cached.sourced
        key_hash = objects.digest(key)
        name = splitpod.split_pod_name(meta["name"])
        pod = next((x for x in split_pods if x["metadata"]["name"] == name), None)
        if (
            pod is not None
            and (pod["metadata"].get("labels") or {}).get(objects.HASH_LABEL) != key_hash
        ):
            self.api.delete(ns, "Pod", name)
            raise ModelPending(f"replacing pod {name}: the model or its split changed")
        if pod is None:
            with contextlib.suppress(kubeapi.Conflict):  # an old one still terminating
                self.api.create(ns, splitpod.split_pod_body(p, spec, self.settings, key_hash))
            raise ModelPending(f"splitting the model in pod {ns}/{name}")
        phase = (pod.get("status") or {}).get("phase")
        if phase not in ("Succeeded", "Failed"):
            raise ModelPending(f"splitting the model in pod {ns}/{name} ({phase or 'Pending'})")
        text = self.api.read_pod_log(ns, name)
        plan_text = plan_from_log(text) if phase == "Succeeded" else None
        if plan_text is None:
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise ModelError(f"spec.model.volume: pod {ns}/{name} {phase}: {tail}")
        sourced = Sourced(plan_text, from_split_json(plan_text), maps_from_log(text))
        self._plans[uid] = _Cached(key, sourced)
        self.api.delete(ns, "Pod", name)
        return sourced
