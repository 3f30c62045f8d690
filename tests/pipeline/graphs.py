"""Small NIR graphs for the split and the stage runtime: layers with skip projections (so the
stage graph fans out and in), weights multiples of 1/8 with largest magnitude 1 (exact sums in
float32, whatever order the engine adds them in; see docs/pipeline.md on exactness)."""

from __future__ import annotations

from typing import Any

import nir
import numpy as np


def lif(n: int, th: float = 0.5) -> Any:
    o = np.ones(n)
    return nir.LIF(tau=5e-3 * o, r=2 * o, v_leak=0 * o, v_threshold=th * o, v_reset=0 * o)


def dyadic(rng: np.random.Generator, shape: tuple[int, int], density: float) -> np.ndarray:
    k = rng.integers(-4, 9, size=shape) * (rng.random(shape) < density)
    k.flat[int(rng.integers(0, k.size))] = 8
    return k / 8.0


def layered(
    widths: list[int], n_in: int = 8, skips: int = 1, seed: int = 1, density: float = 0.5
) -> Any:
    """Input -> LIF layers in a row, each also fed by up to ``skips`` earlier layers."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges: list[tuple[str, str]] = []
    size = {"input": n_in}
    prev = ["input"]
    for j, n in enumerate(widths):
        name = f"lif{j}"
        nodes[name] = lif(n)
        size[name] = n
        for s, src in enumerate(prev[-1 - skips :][::-1]):
            proj = f"w{j}_{s}"
            nodes[proj] = nir.Linear(weight=dyadic(rng, (n, size[src]), density))
            edges += [(src, proj), (proj, name)]
        prev.append(name)
    nodes["output"] = nir.Output(output_type={"output": np.array([widths[-1]])})
    edges.append((prev[-1], "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def input_spikes(n_in: int, steps: int, seed: int, p: float = 0.3) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    dense = (rng.random((steps, n_in)) < p).astype(np.int64)
    t, i = np.nonzero(dense)
    return t.astype(np.int64), i.astype(np.int64)
