"""Generated models: convolution traffic against a neuron-by-neuron count, and sizes."""

from __future__ import annotations

import pytest
from darwin_dra.planner.generate import (
    ConvLayer,
    SheetConfig,
    _conv_edges,
    conv_snn,
    conv_unet,
    cortical_sheet,
)
from darwin_dra.planner.graph import Edge


def brute_conv(a: ConvLayer, b: ConvLayer, tiles: int) -> dict[tuple[str, str], tuple[float, int]]:
    """3x3 same-padded convolution (strided, or transposed when b is larger), neuron by neuron."""
    reach: dict[tuple[str, str], set[tuple[int, int, int]]] = {}
    syn: dict[tuple[str, str], int] = {}

    def tile(layer: ConvLayer, y: int, x: int) -> str:
        t = layer.size // tiles
        return f"{layer.name}/{y // t}-{x // t}"

    for c in range(a.channels):
        for y in range(a.size):
            for x in range(a.size):
                targets = []
                if b.size > a.size:
                    up = b.size // a.size
                    targets = [
                        (y * up + ky - 1, x * up + kx - 1) for ky in range(3) for kx in range(3)
                    ]
                else:
                    s = a.size // b.size
                    targets = [
                        (oy, ox)
                        for oy in range(b.size)
                        for ox in range(b.size)
                        if 0 <= y - (oy * s - 1) < 3 and 0 <= x - (ox * s - 1) < 3
                    ]
                for oy, ox in targets:
                    if not (0 <= oy < b.size and 0 <= ox < b.size):
                        continue
                    key = (tile(a, y, x), tile(b, oy, ox))
                    reach.setdefault(key, set()).add((c, y, x))
                    syn[key] = syn.get(key, 0) + b.channels
    return {k: (len(v) * a.rate_hz, syn[k]) for k, v in reach.items()}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (ConvLayer("a", 2, 8, 1, 3.0), ConvLayer("b", 3, 8, 1, 1.0)),
        (ConvLayer("a", 2, 8, 1, 3.0), ConvLayer("b", 3, 4, 2, 1.0)),
        (ConvLayer("a", 2, 4, 1, 3.0), ConvLayer("b", 1, 8, 1, 1.0)),
    ],
)
def test_conv_edges_equal_a_neuron_by_neuron_count(a: ConvLayer, b: ConvLayer) -> None:
    edges: list[Edge] = []
    _conv_edges([(a, b)], 4, edges, {})
    got = {(e.source, e.target): (e.spikes_per_s, e.synapses) for e in edges}
    assert got == brute_conv(a, b, 4)


def test_benchmark_models_have_a_million_neurons() -> None:
    for graph in (conv_unet(), conv_snn()):
        assert sum(g.neurons for g in graph.groups) >= 1_000_000
    small = cortical_sheet(SheetConfig(grid=4))
    assert len(small.groups) == 8 * 16
    assert sum(g.neurons for g in small.groups) == pytest.approx(16 * 1800, rel=0.01)
    assert SheetConfig().grid ** 2 * SheetConfig().column_neurons >= 1_000_000
