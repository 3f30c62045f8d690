"""Model graphs generated directly (tiles as groups), for the benchmark and for tests.

conv: a deep convolutional SNN (DVS-sized 2x128x128 input, six 3x3 convolutions, two of
stride 1 and three of stride 2 after the first, a dense layer and a readout), each layer cut
into a 16 x 16 grid of spatial tiles holding all of the layer's channels. Edge traffic is exact
for the connectivity: the spikes of the source neurons whose 3x3 fan-out reaches the target
tile, per axis, times the source channels.

sheet: a cortical sheet of columns on a square grid, each column with the eight populations of
the Potjans-Diesmann microcircuit in its proportions and firing rates; synapses go mostly to
the own column, some to the 8 neighbouring columns, and a few long-range ones, made by a small
fraction of the excitatory neurons, to the layer 2/3 pyramidal cells of two distant patches
(patchy horizontal connections). Edge traffic is the expected
spikes of source neurons with at least one synapse onto the target group (Poisson fan-out).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.planner.graph import Edge, Group, ModelGraph

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ConvLayer:
    name: str
    channels: int
    size: int  # square maps
    stride: int  # from the layer before
    rate_hz: float


CONV_LAYERS = (
    ConvLayer("input", 2, 128, 1, 20.0),
    ConvLayer("conv1", 32, 128, 1, 8.0),
    ConvLayer("conv2", 64, 64, 2, 6.0),
    ConvLayer("conv3", 128, 32, 2, 5.0),
    ConvLayer("conv4", 128, 32, 1, 5.0),
    ConvLayer("conv5", 256, 16, 2, 4.0),
    ConvLayer("conv6", 256, 16, 1, 4.0),
)


def _axis(
    src_size: int, dst_size: int, stride: int, tiles: int, kernel: int = 3
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per axis, for source tile a and target tile b: how many source coordinates of a reach
    b, and how many (source, target, tap) connections join them (same padding). A target
    larger than the source is a transposed convolution (upsampling by dst/src)."""
    pad = kernel // 2
    m = np.zeros((src_size, dst_size), dtype=np.int64)
    if dst_size > src_size:
        up = dst_size // src_size
        for i in range(src_size):
            for k in range(kernel):
                o = i * up + k - pad
                if 0 <= o < dst_size:
                    m[i, o] += 1
    for o in range(dst_size if dst_size <= src_size else 0):
        for k in range(kernel):
            i = o * stride + k - pad
            if 0 <= i < src_size:
                m[i, o] += 1
    st = np.arange(src_size) * tiles // src_size
    dt = np.arange(dst_size) * tiles // dst_size
    pairs = np.zeros((tiles, tiles), dtype=np.int64)
    reach = np.zeros((src_size, tiles), dtype=bool)
    for o in range(dst_size):
        reach[:, dt[o]] |= m[:, o] > 0
    count = np.zeros((tiles, tiles), dtype=np.int64)
    for a in range(tiles):
        rows = st == a
        count[a] = reach[rows].sum(axis=0)
        for b in range(tiles):
            pairs[a, b] = m[np.ix_(rows, dt == b)].sum()
    return count, pairs


def _tile_name(layer: str, ty: int, tx: int) -> str:
    return f"{layer}/{ty}-{tx}"


def _conv_edges(
    pairs: list[tuple[ConvLayer, ConvLayer]], tiles: int, edges: list[Edge], syn: dict[str, int]
) -> None:
    """The edges of 3x3 convolutions between tiled layers (stride or upsampling from sizes)."""
    tile_name = _tile_name
    for a, b in pairs:
        stride = max(1, a.size // b.size)
        cnt, prs = _axis(a.size, b.size, stride, tiles)
        for sy in range(tiles):
            for sx in range(tiles):
                s = tile_name(a.name, sy, sx)
                for ty in range(max(0, sy - 1), min(tiles, sy + 2)):
                    for tx in range(max(0, sx - 1), min(tiles, sx + 2)):
                        n_reach = int(cnt[sy, ty] * cnt[sx, tx]) * a.channels
                        n_syn = int(prs[sy, ty] * prs[sx, tx]) * a.channels * b.channels
                        if n_syn == 0:
                            continue
                        edges.append(Edge(s, tile_name(b.name, ty, tx), n_reach * a.rate_hz, n_syn))
                        syn[s] = syn.get(s, 0) + n_syn


def _tiled_groups(
    layers: tuple[ConvLayer, ...], tiles: int, syn: dict[str, int], groups: list[Group]
) -> None:
    for layer in layers:
        neurons = layer.channels * (layer.size // tiles) ** 2
        for ty in range(tiles):
            for tx in range(tiles):
                name = _tile_name(layer.name, ty, tx)
                groups.append(Group(name, layer.name, neurons, syn.get(name, 0), layer.rate_hz))


def conv_snn(
    layers: tuple[ConvLayer, ...] = CONV_LAYERS,
    tiles: int = 16,
    dense: int = 512,
    classes: int = 10,
    dense_rate_hz: float = 5.0,
) -> ModelGraph:
    """A feed-forward classifier: each layer a 3x3 convolution of the one before."""
    groups: list[Group] = []
    edges: list[Edge] = []
    syn: dict[str, int] = {}
    tile_name = _tile_name
    _conv_edges(list(itertools.pairwise(layers)), tiles, edges, syn)
    last = layers[-1]
    per_tile = last.channels * (last.size // tiles) ** 2
    for ty in range(tiles):
        for tx in range(tiles):
            s = tile_name(last.name, ty, tx)
            edges.append(Edge(s, "dense", per_tile * last.rate_hz, per_tile * dense))
            syn[s] = per_tile * dense
    edges.append(Edge("dense", "readout", dense * dense_rate_hz, dense * classes))
    _tiled_groups(layers, tiles, syn, groups)
    groups.append(Group("dense", "dense", dense, dense * classes, dense_rate_hz))
    groups.append(Group("readout", "readout", classes, 0, 0.0))
    return ModelGraph("conv-snn", tuple(groups), tuple(edges))


UNET_LAYERS = (
    ConvLayer("input", 2, 128, 1, 20.0),
    ConvLayer("enc1", 32, 128, 1, 8.0),
    ConvLayer("enc2", 64, 64, 2, 6.0),
    ConvLayer("enc3", 128, 32, 2, 5.0),
    ConvLayer("bottleneck", 256, 16, 2, 4.0),
    ConvLayer("dec3", 128, 32, 1, 5.0),
    ConvLayer("dec2", 64, 64, 1, 6.0),
    ConvLayer("dec1", 32, 128, 1, 8.0),
    ConvLayer("flow", 2, 128, 1, 0.0),
)


def conv_unet(tiles: int = 16) -> ModelGraph:
    """A spiking U-Net as used for event-camera optical flow and segmentation: an encoder of
    strided 3x3 convolutions, a decoder of upsampling ones, and skip connections (3x3) from
    each encoder stage to the decoder stage of the same resolution; a non-spiking readout."""
    by = {layer.name: layer for layer in UNET_LAYERS}
    chain = list(itertools.pairwise(UNET_LAYERS))
    skips = [(by["enc1"], by["dec1"]), (by["enc2"], by["dec2"]), (by["enc3"], by["dec3"])]
    groups: list[Group] = []
    edges: list[Edge] = []
    syn: dict[str, int] = {}
    _conv_edges(chain + skips, tiles, edges, syn)
    _tiled_groups(UNET_LAYERS, tiles, syn, groups)
    return ModelGraph("conv-unet", tuple(groups), tuple(edges))


# Potjans & Diesmann (2014): population sizes under 1 mm^2 and spontaneous rates (Hz).
PD_POPULATIONS = (
    ("L23E", 20683, 0.9),
    ("L23I", 5834, 2.8),
    ("L4E", 21915, 4.4),
    ("L4I", 5479, 5.7),
    ("L5E", 4850, 7.0),
    ("L5I", 1065, 8.1),
    ("L6E", 14395, 1.1),
    ("L6I", 2948, 7.8),
)


@dataclass(frozen=True)
class SheetConfig:
    grid: int = 24  # columns per side
    column_neurons: int = 1800
    synapses_per_neuron: int = 1000
    local: float = 0.80  # of a neuron's synapses, into its own column
    lateral: float = 0.18  # into the 8 neighbouring columns
    long_range: float = 0.02  # to two distant patches, made by long_range_cells only
    long_range_cells: float = 0.05  # fraction of excitatory neurons with long-range axons
    patches: int = 2
    seed: int = 1


def _reach(n: int, k_per_neuron: float) -> float:
    """Expected neurons (of n) with at least one of their synapses onto a target group, when
    each sends a Poisson number with mean k_per_neuron there."""
    return n * (1.0 - math.exp(-k_per_neuron))


def cortical_sheet(cfg: SheetConfig = SheetConfig()) -> ModelGraph:
    rng = np.random.default_rng(cfg.seed)
    total = sum(p[1] for p in PD_POPULATIONS)
    pops = [
        (name, max(1, round(cfg.column_neurons * size / total)), rate)
        for name, size, rate in PD_POPULATIONS
    ]
    col_neurons = sum(p[1] for p in pops)
    g = cfg.grid
    # Local and lateral targets are chosen in proportion to their size (a uniform random graph
    # within each distance class).
    share = np.array([p[1] / col_neurons for p in pops])
    excit = np.array([p[0].endswith("E") for p in pops])
    patches = {
        (y, x): [
            (int(py), int(px))
            for py, px in rng.integers(0, g, size=(cfg.patches, 2))
            if max(abs(int(py) - y), abs(int(px) - x)) > 3
        ]
        for y in range(g)
        for x in range(g)
    }
    groups: list[Group] = []
    edges: list[Edge] = []
    k = cfg.synapses_per_neuron

    def name(p: int, y: int, x: int) -> str:
        return f"{pops[p][0]}/{y}-{x}"

    # "Layers in order": population by population over the whole sheet.
    for p, (pname, n, rate) in enumerate(pops):
        for y in range(g):
            for x in range(g):
                groups.append(Group(name(p, y, x), pname, n, n * k, rate))
    for p, (_, n, rate) in enumerate(pops):
        for y in range(g):
            for x in range(g):
                s = name(p, y, x)
                nbrs = [
                    (y + dy, x + dx)
                    for dy in (-1, 0, 1)
                    for dx in (-1, 0, 1)
                    if (dy or dx) and 0 <= y + dy < g and 0 <= x + dx < g
                ]
                local_k = k * cfg.local
                lateral_k = k * (cfg.lateral + (cfg.lateral * (8 - len(nbrs)) / 8)) / len(nbrs)
                for q in range(len(pops)):
                    kk = local_k * share[q]
                    edges.append(
                        Edge(s, name(q, y, x), _reach(n, kk) * rate, max(1, round(n * kk)))
                    )
                    for ny, nx in nbrs:
                        kk = lateral_k * share[q]
                        edges.append(
                            Edge(s, name(q, ny, nx), _reach(n, kk) * rate, max(1, round(n * kk)))
                        )
                if excit[p] and patches[(y, x)]:
                    # Patchy horizontal connections: the long-range axons of a few pyramidal
                    # cells end on the layer 2/3 pyramidal cells of the patch.
                    cells = n * cfg.long_range_cells
                    kk = k * cfg.long_range / cfg.long_range_cells / len(patches[(y, x)])
                    for py, px in patches[(y, x)]:
                        edges.append(
                            Edge(
                                s,
                                name(0, py, px),
                                _reach(round(cells), kk) * rate,
                                max(1, round(cells * kk)),
                            )
                        )
    return ModelGraph("cortical-sheet", tuple(groups), tuple(edges))


def layered(layers: int = 4, width: int = 8, neurons: int = 100, seed: int = 1) -> ModelGraph:
    """A small feed-forward model with local fan-out (for tests and ``plan --generate``)."""
    rng = np.random.default_rng(seed)
    groups = []
    edges = []
    for layer in range(layers):
        for t in range(width):
            rate = float(rng.uniform(2, 20))
            fan = [u for u in (t - 1, t, t + 1) if 0 <= u < width] if layer + 1 < layers else []
            groups.append(
                Group(f"l{layer}/{t}", f"l{layer}", neurons, neurons * 30 * len(fan), rate)
            )
            for u in fan:
                edges.append(
                    Edge(f"l{layer}/{t}", f"l{layer + 1}/{u}", neurons * rate * 0.9, neurons * 30)
                )
    return ModelGraph("layered", tuple(groups), tuple(edges))


GENERATORS: dict[str, Callable[[], ModelGraph]] = {
    "conv-unet": conv_unet,
    "conv-snn": conv_snn,
    "cortical-sheet": cortical_sheet,
    "layered": layered,
}
