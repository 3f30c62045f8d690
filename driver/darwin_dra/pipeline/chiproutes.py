"""The routes a pipeline's claim asks for on its chip's router (pure).

A group of stages placed on one chip (one claim, its requests held to one chip by a
``matchAttribute`` constraint) exchanges spikes on the chip host's router instead of a socket
(runtime/routes.py). The controller knows the neuron map of every edge between two engine
stages (from the model and the plan, ``route_maps``); the plugin, which prepares the claim's
partitions, does not read the model. So the controller writes each group's routes into the
claim, as the ``darwin.snn.io/routes`` annotation (a ``ClaimRoutes`` document, schema
api/config/v1alpha1/claimroutes.schema.json), and the plugin programs them when it prepares
the claim (plugin/routeplan.py). An annotation and not an opaque device configuration: the API
server caps an opaque config's parameters at 10 KiB, too small for the maps of large models,
while an object's annotations may hold 256 KiB.

A neuron map is written as runs ``SRC:DST:N`` separated by spaces: the pairs
``SRC+k -> DST+k`` for ``k < N``, in the edge's order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra import schema
from darwin_dra.kubetypes import Obj
from darwin_dra.models.compile import CompiledModel
from darwin_dra.pipeline.placement import Group, Placement
from darwin_dra.pipeline.plan import PlanView
from darwin_dra.pipeline.splitplan import SplitPlan
from darwin_dra.pipeline.stagepart import route_map

ROUTES_ANNOTATION = "darwin.snn.io/routes"
SCHEMA_FILE = "claimroutes.schema.json"
_SCHEMA = schema.load(SCHEMA_FILE)
API_VERSION: str = _SCHEMA["properties"]["apiVersion"]["const"]
KIND: str = _SCHEMA["properties"]["kind"]["const"]
# What one claim's routes may take of the annotations' 256 KiB (the rest stays for others).
MAX_ROUTES_CHARS = 192 * 1024
_RUN = re.compile(r"(\d+):(\d+):(\d+)")

I64 = npt.NDArray[np.int64]
Edge = tuple[str, str]


def encode_map(neurons: npt.NDArray[np.integer], inputs: npt.NDArray[np.integer]) -> str:
    """The pairs ``neurons[k] -> inputs[k]`` as runs where both count up by one."""
    src = np.asarray(neurons, np.int64)
    dst = np.asarray(inputs, np.int64)
    if src.shape != dst.shape or src.ndim != 1:
        raise ValueError(f"a neuron map pairs equal lists, got {src.shape} and {dst.shape}")
    if src.size == 0:
        return ""
    breaks = np.flatnonzero((np.diff(src) != 1) | (np.diff(dst) != 1)) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [src.size]])
    return " ".join(f"{src[a]}:{dst[a]}:{b - a}" for a, b in zip(starts, ends, strict=True))


def decode_map(text: str, where: str = "neuronMap") -> tuple[I64, I64]:
    """The pairs of an encoded map; ValueError naming ``where`` and the bad run."""
    src: list[I64] = [np.zeros(0, np.int64)]
    dst: list[I64] = [np.zeros(0, np.int64)]
    for i, run in enumerate(text.split()):
        m = _RUN.fullmatch(run)
        if m is None or int(m.group(3)) < 1:
            raise ValueError(f"{where}: run {i} {run!r} is not SRC:DST:N with N >= 1")
        a, b, n = (int(g) for g in m.groups())
        src.append(np.arange(a, a + n, dtype=np.int64))
        dst.append(np.arange(b, b + n, dtype=np.int64))
    return np.concatenate(src), np.concatenate(dst)


@dataclass(frozen=True)
class RouteEntry:
    """One route of a claim: the spikes of ``source``'s mapped neurons into ``destination``'s
    inputs (both are request names of the claim, named as the stages are)."""

    source: str
    destination: str
    neuron_map: str
    lookahead_steps: int

    def to_json(self) -> Obj:
        return {
            "source": self.source,
            "destination": self.destination,
            "neuronMap": self.neuron_map,
            "lookaheadSteps": self.lookahead_steps,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RouteEntry:
        return cls(
            str(obj["source"]),
            str(obj["destination"]),
            str(obj["neuronMap"]),
            int(obj["lookaheadSteps"]),
        )

    @property
    def edge(self) -> str:
        return f"{self.source}->{self.destination}"


def on_chip_edges(plan: PlanView, placement: Placement, maps: Mapping[Edge, str]) -> list[Edge]:
    """The edges that go on the chip host's routes: between two stages of one claim that holds
    a router (one of its groups ``routed``), with a known neuron map: on one chip's router
    when both stages are in one group, over the fabric link between the chips when the claim
    joined two groups of one fabric (fabricjoin.join_on_fabric); a claim's maps beyond
    MAX_ROUTES_CHARS stay on sockets (in plan order)."""
    used: dict[str, int] = {}
    out: list[Edge] = []
    for e in plan.edges:
        claim = placement.claim_of(e.src)
        if (
            not claim
            or not any(g.routed for g in claim)
            or placement.claim_of(e.dst) != claim
            or (e.src, e.dst) not in maps
        ):
            continue
        name = claim[0].claim_id
        size = len(maps[(e.src, e.dst)]) + 100  # the entry's other fields
        if used.get(name, 0) + size > MAX_ROUTES_CHARS:
            continue
        used[name] = used.get(name, 0) + size
        out.append((e.src, e.dst))
    return out


def claim_routes(
    groups: Sequence[Group], edges: Sequence[Edge], maps: Mapping[Edge, str], lookahead_steps: int
) -> list[RouteEntry]:
    """The routes of one claim (its groups): its routed edges."""
    held = {s for g in groups for s in g.stages}
    return [
        RouteEntry(src, dst, maps[(src, dst)], lookahead_steps)
        for src, dst in edges
        if src in held and dst in held
    ]


def group_routes(
    group: Group, edges: Sequence[Edge], maps: Mapping[Edge, str], lookahead_steps: int
) -> list[RouteEntry]:
    """The routes of a claim of one group."""
    return claim_routes((group,), edges, maps, lookahead_steps)


def routes_annotation(routes: Sequence[RouteEntry]) -> str:
    """The annotation's value: one ClaimRoutes document."""
    doc = {"apiVersion": API_VERSION, "kind": KIND, "routes": [r.to_json() for r in routes]}
    return json.dumps(doc, separators=(",", ":"))


def parse_routes(text: str, where: str) -> tuple[RouteEntry, ...]:
    """An annotation's routes; ValueError naming ``where`` and the field."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON: {exc}") from None
    problem = schema.first_problem(SCHEMA_FILE, doc, where)
    if problem is not None:
        raise ValueError(f"{problem.field}: {problem.reason}")
    return tuple(RouteEntry.from_json(r) for r in doc["routes"])


def peers_on_chip(stage: str, edges: Sequence[Edge]) -> list[str]:
    """The neighbours of ``stage`` it exchanges spikes with on the chip (``--on-chip``)."""
    return sorted({b for a, b in edges if a == stage} | {a for a, b in edges if b == stage})


def route_maps(model: CompiledModel, plan: SplitPlan) -> dict[Edge, str]:
    """The encoded neuron map of every edge between two engine stages of the plan."""
    engine = {s.name for s in plan.engine_stages()}
    return {
        (e.src, e.dst): encode_map(*route_map(model, plan, e.src, e.dst))
        for e in plan.edges
        if e.src in engine and e.dst in engine
    }
