"""A picture of `darwin-dra bench pipeline`: each run's stages on their nodes and the spikes on
every edge. matplotlib is imported only here and only when a plot is asked for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def plot_pipeline(runs: Mapping[str, Mapping[str, Any]], nodes: Sequence[str], path: Path) -> None:
    """``runs``: name -> {"stages": [(name, node)], "edges": [(src, dst, spikes)]}."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cols = min(2, len(runs))  # two runs a row: split and naive, then the same drawn in place
    rows_n = -(-len(runs) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.5 * cols, 4.5 * rows_n), squeeze=False)
    for ax in axes.flat[len(runs) :]:
        ax.axis("off")
    biggest = max((s for r in runs.values() for _, _, s in r["edges"]), default=1) or 1
    for ax, (title, run) in zip(axes.flat, runs.items(), strict=False):
        col = {n: i for i, n in enumerate(nodes)}
        rows: dict[str, int] = {}
        pos: dict[str, tuple[float, float]] = {}
        for name, node in run["stages"]:
            rows[node] = rows.get(node, 0) + 1
            pos[name] = (col[node] * 2.0, -float(rows[node]))
        for i, n in enumerate(nodes):
            ax.add_patch(
                Rectangle((i * 2.0 - 0.7, -max(rows.values()) - 0.6), 1.4,
                              max(rows.values()) + 0.2, fill=False, ls="--", ec="#718096")
            )  # fmt: skip
            ax.text(i * 2.0, 0.05, n, ha="center", va="bottom", color="#4a5568")
        for src, dst, spikes in run["edges"]:
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            cross = x0 != x1
            width = 0.5 + 6.0 * spikes / biggest
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops={
                    "arrowstyle": "-|>",
                    "lw": width,
                    "color": "#c53030" if cross else "#2b6cb0",
                    "connectionstyle": "arc3,rad=0.15",
                    "shrinkA": 14,
                    "shrinkB": 14,
                },
            )
            ax.text((x0 + x1) / 2 + 0.1, (y0 + y1) / 2, f"{spikes:,}", fontsize=8)
        for name, (x, y) in pos.items():
            ax.text(x, y, name, ha="center", va="center",
                    bbox={"boxstyle": "round", "fc": "#edf2f7", "ec": "#2d3748"})  # fmt: skip
        ax.set_title(title)
        ax.set_xlim(-1.2, 2.0 * (len(nodes) - 1) + 1.2)
        ax.set_ylim(-max(rows.values()) - 0.8, 0.5)
        ax.axis("off")
    fig.suptitle("stages on nodes; edges: spikes sent (red: across nodes)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
