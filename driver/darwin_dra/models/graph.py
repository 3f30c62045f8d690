"""A NIR graph with its nested graphs inlined into one (models/compile.py reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from darwin_dra.models.compiled import PASS, SUPPORTED
from darwin_dra.models.errors import (
    ModelError,
    UnsupportedNode,
)


@dataclass
class Graph:
    nodes: dict[str, Any]
    kinds: dict[str, str]
    edges: list[tuple[str, str]]

    def preds(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]


def node_kind(node: Any) -> str:
    return type(node).__name__


def inline_graph(graph: Any, prefix: str, g: Graph) -> None:
    for name, node in graph.nodes.items():
        full = prefix + name
        kind = node_kind(node)
        if kind == "NIRGraph":
            inline_graph(node, full + ".", g)
            continue
        if kind not in SUPPORTED:
            raise UnsupportedNode(
                f"node {full!r} is of type {kind}, which the engine does not run; supported: "
                + ", ".join(SUPPORTED)
            )
        g.nodes[full] = node
        g.kinds[full] = PASS if prefix and kind in ("Input", "Output") else kind

    def end(name: str, as_source: bool) -> str:
        full = prefix + name
        if full in g.nodes:
            return full
        node = graph.nodes.get(name)
        if node is not None and node_kind(node) == "NIRGraph":
            want = "Output" if as_source else "Input"
            ends = [k for k, v in node.nodes.items() if node_kind(v) == want]
            if len(ends) != 1:
                raise ModelError(
                    f"subgraph {full!r}: an edge {'from' if as_source else 'into'} it needs "
                    f"exactly one {want} node, it has {len(ends)}"
                )
            return f"{full}.{ends[0]}"
        raise ModelError(
            f"an edge of graph {prefix[:-1] or '(top)'!r} names node {full!r}, which does not exist"
        )

    for a, b in graph.edges:
        g.edges.append((end(str(a), True), end(str(b), False)))
