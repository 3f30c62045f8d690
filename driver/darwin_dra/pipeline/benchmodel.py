"""The model of `darwin-dra bench pipeline` (pure): a two-pathway convolutional SNN, as NIR.

The input (two channels, an image of side ``size``) feeds two pathways of ``depth``
convolutional LIF layers each (3x3 kernels, ``channels`` channels in groups of two), each
ending in a pooled LIF layer (8 x 8 sums, 1/64 of a layer), read together by a small LIF
output layer: fan-out at the input, fan-in at the head, like a two-stream (say ON and OFF, or
two sensors) network. The graph lists the
layers breadth first (A1, B1, A2, B2, ...), as an exporter that walks the graph by depth does,
so neuron ids interleave the pathways. Weights are multiples of 1/8 with largest magnitude 1,
so any order of summation is exact and the split run must equal the unsplit one bit for bit.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np


def _lif(shape: tuple[int, ...], th: float) -> Any:
    o = np.ones(shape)
    return nir.LIF(tau=5e-3 * o, r=2 * o, v_leak=0 * o, v_threshold=th * o, v_reset=0 * o)


def _kernel(rng: np.random.Generator, out_ch: int, in_per_group: int) -> np.ndarray:
    k = rng.integers(0, 9, size=(out_ch, in_per_group, 3, 3)).astype(np.float64)
    k[:, :, 1, 1] = 8
    return k / 8.0


def two_pathway(
    size: int = 128, channels: int = 8, depth: int = 4, outputs: int = 10, seed: int = 1
) -> Any:
    """About 2 * depth * channels * size^2 neurons (1.05 M for the defaults)."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([2, size, size])})}
    edges: list[tuple[str, str]] = []
    prev = {"a": "input", "b": "input"}
    in_ch = {"a": 2, "b": 2}
    for d in range(depth):
        for p in ("a", "b"):
            groups = channels // 2 if d else 1
            conv = f"{p}{d}_conv"
            nodes[conv] = nir.Conv2d(
                input_shape=(size, size),
                weight=_kernel(rng, channels, in_ch[p] // groups),
                stride=1,
                padding=1,
                dilation=1,
                groups=groups,
                bias=np.zeros(channels),
            )
            lif = f"{p}{d}"
            nodes[lif] = _lif((channels, size, size), th=1.0 if d == 0 else 2.0)
            edges += [(prev[p], conv), (conv, lif)]
            prev[p] = lif
            in_ch[p] = channels
    pooled = size // 8
    feat = channels * pooled * pooled
    nodes["head"] = _lif((outputs,), th=0.5)
    for p in ("a", "b"):
        # each pathway ends in a small pooled layer (8 x 8 sums): the narrow waist of the model
        nodes[f"{p}_pool"] = nir.SumPool2d(
            kernel_size=np.array([8, 8]), stride=np.array([8, 8]), padding=np.array([0, 0])
        )
        nodes[f"{p}_sum"] = _lif((channels, pooled, pooled), th=8.0)
        nodes[f"{p}_flat"] = nir.Flatten(
            input_type={"input": np.array([channels, pooled, pooled])}, start_dim=0
        )
        w = rng.integers(0, 3, size=(outputs, feat)).astype(np.float64)
        w[0, 0] = 8
        nodes[f"{p}_read"] = nir.Linear(weight=w / 8.0)
        edges += [
            (prev[p], f"{p}_pool"),
            (f"{p}_pool", f"{p}_sum"),
            (f"{p}_sum", f"{p}_flat"),
            (f"{p}_flat", f"{p}_read"),
            (f"{p}_read", "head"),
        ]
    nodes["output"] = nir.Output(output_type={"output": np.array([outputs])})
    edges.append(("head", "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
