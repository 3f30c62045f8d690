"""Placements drawn on the chips' meshes: one panel per chip, each 4 x 4-tile domain coloured
by the model layer holding most of its synapses (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from darwin_dra.planner.bins import Bins
from darwin_dra.planner.graph import ModelGraph


def plot_placement(
    graph: ModelGraph,
    bins: Bins,
    placements: list[tuple[str, npt.NDArray[np.int64]]],
    path: Path,
    title: str,
    mesh: int = 24,
    domain: int = 4,
) -> None:
    """Placements side by side, each as a grid of chips (a row per node)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    layers = list(dict.fromkeys(g.layer for g in graph.groups))
    cmap = plt.get_cmap("tab10" if len(layers) <= 10 else "tab20")
    colour = {name: cmap(i % cmap.N) for i, name in enumerate(layers)}
    chips = sorted(set(bins.chip.tolist()))
    nodes = sorted(set(bins.node.tolist()))
    per_node = max(sum(1 for c in chips if bins.node[bins.chip == c][0] == n) for n in nodes)
    cols = per_node * len(placements)
    fig, axes = plt.subplots(
        len(nodes), cols, figsize=(1.9 * cols, 2.0 * len(nodes) + 0.9), squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for p, (label, assign) in enumerate(placements):
        col = dict.fromkeys(nodes, 0)
        for c in chips:
            n = int(bins.node[bins.chip == c][0])
            ax = axes[nodes.index(n)][p * per_node + col[n]]
            col[n] += 1
            ax.set_axis_on()
            ax.set_xlim(0, mesh)
            ax.set_ylim(mesh, 0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label}  {bins.chip_names[c]}", fontsize=6.5)
            for b in np.flatnonzero(bins.chip == c):
                members = np.flatnonzero(assign == b)
                face: object = "white"
                if members.size:
                    weight: dict[str, int] = {}
                    for i in members:
                        g = graph.groups[int(i)]
                        weight[g.layer] = weight.get(g.layer, 0) + g.synapses
                    face = colour[max(weight, key=lambda k: weight[k])]
                ax.add_patch(
                    Rectangle((bins.x[b], bins.y[b]), domain, domain, facecolor=face,
                              edgecolor="grey", linewidth=0.4)
                )  # fmt: skip
    handles = [Patch(facecolor=colour[k], label=k) for k in layers]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(layers), 10), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)
