"""What the demo saw, kept for its report: the set-up times, each scenario's question, answer
and reason with its workload's log lines, every placement, the pipeline's spikes, and the
fault's timeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from darwin_dra.demo.explain import Placement


@dataclass
class Scenario:
    key: str
    title: str
    asked: str = ""
    given: str = ""
    why: str = ""
    waits: str = ""  # the scheduler's reason for a pod it could not place
    logs: list[str] = field(default_factory=list)  # the workloads' `darwin-dra run` lines


@dataclass(frozen=True)
class Event:
    seconds: float  # since the fault was injected
    what: str


@dataclass(frozen=True)
class Chip:
    node: str
    chip: int
    model: str
    mesh_w: int
    mesh_h: int
    domain_w: int
    domain_h: int


@dataclass(frozen=True)
class StageRun:
    """One SpikingPipeline stage's run, from its `stage finished` log line."""

    stage: str
    kind: str  # input | engine | output
    node: str
    window_spikes: list[int]  # per window: sent (input, engine) or received (output)
    received: dict[str, int]  # spikes from each upstream stage
    run_s: float  # from every stream connected to the end


@dataclass(frozen=True)
class Stream:
    """The spikes one stage sent another over the run, as the receiver counted them."""

    source: str
    target: str
    spikes: int
    per_second: float
    source_node: str
    target_node: str
    planned_per_second: float | None  # the controller's plan at the target rate

    @property
    def cross_node(self) -> bool:
        return self.source_node != self.target_node


@dataclass
class PipelineRun:
    name: str
    window: int  # steps per window
    stages: list[StageRun] = field(default_factory=list)  # in the plan's order
    outputs: dict[str, list[list[int]]] = field(default_factory=dict)  # name: [steps, indices]
    planned: dict[str, float] = field(default_factory=dict)  # "a->b": spikes/s at target rate

    def streams(self) -> list[Stream]:
        node = {s.stage: s.node for s in self.stages}
        out = []
        for s in self.stages:
            for peer, spikes in s.received.items():
                rate = spikes / s.run_s if s.run_s > 0 else 0.0
                planned = self.planned.get(f"{peer}->{s.stage}")
                out.append(
                    Stream(peer, s.stage, spikes, rate, node.get(peer, "?"), s.node, planned)
                )
        return out


@dataclass
class Record:
    setup: list[tuple[str, float]] = field(default_factory=list)
    chips: list[Chip] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    evicted: list[Placement] = field(default_factory=list)  # held when their chip failed
    failed_chip: tuple[str, int] | None = None
    timeline: list[Event] = field(default_factory=list)
    pipeline: PipelineRun | None = None
