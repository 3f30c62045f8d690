"""What the planner places: a model as groups of neurons and the spike traffic between them.

A group is the planner's atom: it may share a partition with other groups but is never split.
Whoever turns a model into a graph (the NIR importer, an engine network, a benchmark generator)
tiles layers too big for one partition into groups, so that locality inside a layer (a
convolution's receptive fields, a cortical sheet's neighbourhoods) is visible as edges.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """``neurons`` consecutive neurons of one layer, with the synapses they hold (the engine
    stores synapses at their source) and their estimated mean firing rate."""

    name: str
    layer: str
    neurons: int
    synapses: int
    rate_hz: float


@dataclass(frozen=True)
class Edge:
    """Spikes per second that ``source`` sends to ``target``: the spikes of the source neurons
    having at least one synapse onto the target group (a spike crosses to a group once, however
    many of its neurons it reaches), with the number of synapses that carry them."""

    source: str
    target: str
    spikes_per_s: float
    synapses: int


@dataclass(frozen=True)
class ModelGraph:
    name: str
    groups: tuple[Group, ...]
    edges: tuple[Edge, ...]

    def __post_init__(self) -> None:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"model graph {self.name!r}: group names repeat")
        known = set(names)
        for e in self.edges:
            for end in (e.source, e.target):
                if end not in known:
                    raise ValueError(f"model graph {self.name!r}: edge names unknown group {end!r}")
        for g in self.groups:
            if g.neurons <= 0 or g.synapses < 0 or g.rate_hz < 0:
                raise ValueError(f"model graph {self.name!r}: group {g.name!r} has bad sizes")
