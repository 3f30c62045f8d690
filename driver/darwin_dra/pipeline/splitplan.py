"""A split plan (pure): the stages a model is cut into (``input``, the engine stages ``s0``,
``s1``..., ``output``), the estimated traffic on each edge between them, and the model it was
made for (its digest), with its JSON form and the checks that read it back (every bad field
named). pipeline/split.py makes plans; pipeline/stagepart.py gives one stage its part.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from darwin_dra.models.compile import CompiledModel

PLAN_VERSION = 1
INPUT = "input"
OUTPUT = "output"


class SplitError(ValueError):
    """A model that cannot be split as asked, or a plan that does not fit the model."""


@dataclass(frozen=True)
class StageSpec:
    name: str
    kind: str  # "input", "engine" or "output"
    neurons: int
    synapses: int  # synapses onto the stage's neurons (the cut's are held at its inputs)
    keps: int  # estimated thousands of synaptic events per second at the plan's steps_per_s
    groups: tuple[str, ...] = ()  # the planner groups it holds (engine stages)


@dataclass(frozen=True)
class StageEdge:
    src: str
    dst: str
    spikes_per_step: float  # estimated
    spikes_per_s: float  # estimated, at the plan's steps_per_s
    neurons: int  # distinct global ids sent on this edge
    synapses: int  # synapses the edge feeds (0 into the output stage)


@dataclass(frozen=True)
class ModelRef:
    name: str
    neurons: int
    synapses: int
    inputs: int
    digest: str


def model_digest(model: CompiledModel) -> str:
    """A digest of the compiled network: a plan made for another model is refused."""
    net = model.network
    h = hashlib.sha256()
    h.update(f"{net.n_neurons}:{net.n_inputs}:{net.n_synapses}:{len(net.groups)}".encode())
    for col in (net.src, net.dst, net.delay, net.weight):
        h.update(np.ascontiguousarray(col).tobytes())
    for g in net.groups:
        h.update(repr(dataclasses.astuple(g)).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class SplitPlan:
    model: ModelRef
    steps_per_s: float
    max_group_neurons: int
    stages: tuple[StageSpec, ...]
    edges: tuple[StageEdge, ...]
    version: int = PLAN_VERSION

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise SplitError(f"the plan has no stage {name!r} (stages: {self.names()})")

    def names(self) -> str:
        return ", ".join(s.name for s in self.stages)

    def engine_stages(self) -> tuple[StageSpec, ...]:
        return tuple(s for s in self.stages if s.kind == "engine")

    def downstream(self, name: str) -> list[str]:
        return [e.dst for e in self.edges if e.src == name]

    def upstream(self, name: str) -> list[str]:
        return [e.src for e in self.edges if e.dst == name]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> SplitPlan:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SplitError(f"the plan is not JSON: {exc}") from exc
        return _plan_from(raw)


def _field(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if not isinstance(raw, Mapping) or key not in raw:
        raise SplitError(f"plan: {where} lacks {key!r}")
    value = raw[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise SplitError(f"plan: {where}.{key} must be {kind.__name__}, got {value!r}")
    return value


def _plan_from(raw: Any) -> SplitPlan:
    if not isinstance(raw, Mapping):
        raise SplitError("plan: the top level must be an object")
    version = _field(raw, "version", int, "plan")
    if version != PLAN_VERSION:
        raise SplitError(f"plan: version {version} is not {PLAN_VERSION}")
    m = _field(raw, "model", dict, "plan")
    model = ModelRef(
        _field(m, "name", str, "model"),
        _field(m, "neurons", int, "model"),
        _field(m, "synapses", int, "model"),
        _field(m, "inputs", int, "model"),
        _field(m, "digest", str, "model"),
    )
    stages = []
    for i, s in enumerate(_field(raw, "stages", list, "plan")):
        w = f"stages[{i}]"
        groups = _field(s, "groups", list, w)
        if not all(isinstance(g, str) for g in groups):
            raise SplitError(f"plan: {w}.groups must be strings")
        kind = _field(s, "kind", str, w)
        if kind not in ("input", "engine", "output"):
            raise SplitError(f"plan: {w}.kind {kind!r} is not input, engine or output")
        stages.append(
            StageSpec(
                _field(s, "name", str, w),
                kind,
                _field(s, "neurons", int, w),
                _field(s, "synapses", int, w),
                _field(s, "keps", int, w),
                tuple(groups),
            )
        )
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise SplitError(f"plan: stage names repeat: {names}")
    edges = []
    for i, e in enumerate(_field(raw, "edges", list, "plan")):
        w = f"edges[{i}]"
        edge = StageEdge(
            _field(e, "src", str, w),
            _field(e, "dst", str, w),
            _field(e, "spikes_per_step", float, w),
            _field(e, "spikes_per_s", float, w),
            _field(e, "neurons", int, w),
            _field(e, "synapses", int, w),
        )
        for end in (edge.src, edge.dst):
            if end not in names:
                raise SplitError(f"plan: {w} names unknown stage {end!r}")
        edges.append(edge)
    return SplitPlan(
        model,
        _field(raw, "steps_per_s", float, "plan"),
        _field(raw, "max_group_neurons", int, "plan"),
        tuple(stages),
        tuple(edges),
        version,
    )
