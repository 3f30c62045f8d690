"""What the controller needs of a split plan: each stage's load and each edge's traffic (pure).

The split itself (pipeline/split.py, ``plan_split``) decides which neurons go to which stage
and writes a SplitPlan; ``from_split_json`` reads the part of its JSON the placement uses
(PIPELINE-CONTRACT.md: stages' name, kind, neurons, synapses, keps; edges' src, dst,
spikes_per_step), so the placement depends on the split's wire format, not on its code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

StageKind = Literal["input", "engine", "output"]
KINDS: tuple[StageKind, ...] = ("input", "engine", "output")
# What a stage asks over the split's estimate of its events: the engine enforces a KEPS grant
# per step, carrying at most two steps of unspent credit within one step call and none across
# calls (native/src/run.c), and drops what is over. So the grant must cover the busiest step,
# not the mean: at 4x the mean a 5000-step run of the digits model at 200 Hz Poisson input
# still lost events (its output differed from the unsplit run's, and from run to run).
KEPS_HEADROOM = 16
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class PlanError(ValueError):
    """A split plan the controller cannot place (the message names the stage or edge)."""


@dataclass(frozen=True)
class StageLoad:
    """``kind``: an ``engine`` stage runs on a partition (one claim request); the ``input``
    stage (it reads the model's input) and the ``output`` stage (it collects the model's
    output spikes) run on no chip."""

    name: str
    neurons: int
    synapses: int
    keps: int  # thousands of spike events per second at the pipeline's target rate
    kind: StageKind = "engine"

    @property
    def on_chip(self) -> bool:
        return self.kind == "engine"


@dataclass(frozen=True)
class EdgeLoad:
    src: str
    dst: str
    spikes_per_step: float


@dataclass(frozen=True)
class PlanView:
    stages: tuple[StageLoad, ...]
    edges: tuple[EdgeLoad, ...]
    # engine stages that draw the model's input themselves (``drawn_in_place``)
    input_readers: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if not names:
            raise PlanError("the plan has no stages")
        if len(set(names)) != len(names):
            raise PlanError(f"stage names repeat: {names}")
        for s in self.stages:
            if len(s.name) > 40 or not _DNS_LABEL.fullmatch(s.name):
                raise PlanError(f"stage {s.name!r}: a stage name must be a DNS label of <= 40")
            if s.kind not in KINDS:
                raise PlanError(f"stage {s.name}: kind {s.kind!r} is not one of {KINDS}")
            if min(s.neurons, s.synapses, s.keps) < 0:
                raise PlanError(f"stage {s.name}: negative load")
        for e in self.edges:
            if e.src not in names or e.dst not in names or e.src == e.dst:
                raise PlanError(f"edge {e.src} -> {e.dst}: not between two stages of the plan")
            if e.spikes_per_step < 0:
                raise PlanError(f"edge {e.src} -> {e.dst}: negative traffic")
        self.order()  # raises on a cycle

    def drawn_in_place(self) -> PlanView:
        """The plan without its input stage, whose readers draw the input themselves
        (spec.input.inPlace): no pod, no place and no edge for it."""
        inputs = {s.name for s in self.stages if s.kind == "input"}
        return PlanView(
            tuple(s for s in self.stages if s.kind != "input"),
            tuple(e for e in self.edges if e.src not in inputs),
            frozenset(e.dst for e in self.edges if e.src in inputs),
        )

    def reads_input(self, name: str) -> bool:
        """Whether the stage reads the model's input source: the input stage, or a stage
        that draws it in place."""
        return self.stage(name).kind == "input" or name in self.input_readers

    def stage(self, name: str) -> StageLoad:
        return next(s for s in self.stages if s.name == name)

    def index(self, name: str) -> int:
        return [s.name for s in self.stages].index(name)

    def downstream(self, name: str) -> list[str]:
        return sorted({e.dst for e in self.edges if e.src == name})

    def upstream(self, name: str) -> list[str]:
        return sorted({e.src for e in self.edges if e.dst == name})

    def order(self) -> list[str]:
        """Stages in topological order (inputs first), ties by plan order; PlanError on a
        cycle: the stages exchange spikes one window ahead, so a loop would never start."""
        names = [s.name for s in self.stages]
        indegree = {n: len(self.upstream(n)) for n in names}
        out: list[str] = []
        ready = [n for n in names if indegree[n] == 0]
        while ready:
            n = ready.pop(0)
            out.append(n)
            for d in self.downstream(n):
                indegree[d] -= 1
                if indegree[d] == 0:
                    ready.append(d)
                    ready.sort(key=names.index)
        if len(out) != len(names):
            loop = sorted(set(names) - set(out))
            raise PlanError(f"the stages form a cycle through {', '.join(loop)}")
        return out


def _num(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlanError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def from_split_dict(raw: Mapping[str, Any]) -> PlanView:
    stages_raw: Sequence[Any] = raw.get("stages") or []
    edges_raw: Sequence[Any] = raw.get("edges") or []
    stages = []
    for i, s in enumerate(stages_raw):
        where = f"plan stages[{i}]"
        if not isinstance(s, Mapping) or not isinstance(s.get("name"), str):
            raise PlanError(f"{where}: expected an object with a name")
        kind = s.get("kind", "engine")
        if kind not in KINDS:
            raise PlanError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        stages.append(
            StageLoad(
                str(s["name"]),
                int(_num(s, "neurons", where)),
                int(_num(s, "synapses", where)),
                int(-(-_num(s, "keps", where) * KEPS_HEADROOM // 1)),
                kind,
            )
        )
    edges = []
    for i, e in enumerate(edges_raw):
        where = f"plan edges[{i}]"
        if not isinstance(e, Mapping):
            raise PlanError(f"{where}: expected an object")
        edges.append(
            EdgeLoad(str(e.get("src")), str(e.get("dst")), _num(e, "spikes_per_step", where))
        )
    return PlanView(tuple(stages), tuple(edges))


def from_split_json(text: str) -> PlanView:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise PlanError(f"the split plan is not JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise PlanError("the split plan is not a JSON object")
    return from_split_dict(raw)
