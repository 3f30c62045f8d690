"""What the demo saw, kept for its report: the set-up times, each scenario's question, answer
and reason with its workload's log lines, every placement, and the fault's timeline."""

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


@dataclass
class Record:
    setup: list[tuple[str, float]] = field(default_factory=list)
    chips: list[Chip] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    evicted: list[Placement] = field(default_factory=list)  # held when their chip failed
    failed_chip: tuple[str, int] | None = None
    timeline: list[Event] = field(default_factory=list)
