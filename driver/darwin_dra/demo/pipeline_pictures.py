"""The SpikingPipeline's pictures in the demo's report (matplotlib), drawn from what its stages
counted: the spike raster (each stage's spikes per window over the run, and every spike of the
model's outputs, neuron by neuron) and the traffic between the stages (spikes/s per stream,
the streams that cross nodes marked)."""

from __future__ import annotations

from pathlib import Path

from darwin_dra.demo.record import PipelineRun, Stream

RASTER = "#17becf"  # a stage's spikes per window
OUTPUT_DOT = "#8c564b"  # one output spike
CROSS_NODE = "#d62728"
SAME_NODE = "#444444"
NODE_FILLS = ("#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94")  # a stage's node


def raster_picture(run: PipelineRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = run.stages
    outputs = sorted(run.outputs.items())
    rows = len(stages) + len(outputs)
    heights = [1.0] * len(stages) + [2.2] * len(outputs)
    fig, axes = plt.subplots(
        rows, 1, figsize=(11, 0.3 + 0.95 * sum(heights)), sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    axs = list(axes[:, 0])
    end = max((len(s.window_spikes) * run.window for s in stages), default=run.window)
    for ax, s in zip(axs, stages, strict=False):
        starts = [i * run.window for i in range(len(s.window_spikes))]
        ax.bar(starts, s.window_spikes, width=run.window, align="edge", color=RASTER,
               linewidth=0)  # fmt: skip
        what = "got" if s.kind == "output" else "sent"
        ax.set_ylabel(f"{s.stage}\n{s.node}", fontsize=7, rotation=0, ha="right", va="center")
        ax.text(0.995, 0.95, f"{sum(s.window_spikes):,} spikes {what}", transform=ax.transAxes,
                ha="right", va="top", fontsize=7, backgroundcolor="white")  # fmt: skip
        ax.tick_params(labelsize=6)
    for ax, (name, (steps, ids)) in zip(axs[len(stages) :], outputs, strict=True):
        ax.scatter(steps, ids, s=40, marker="|", color=OUTPUT_DOT, linewidths=1.5)
        top = max(ids, default=0)
        ax.set_ylim(-0.5, top + 0.5)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(f"output {name}\nneuron", fontsize=7)
        ax.text(0.995, 0.97, f"{len(steps):,} output spikes", transform=ax.transAxes,
                ha="right", va="top", fontsize=7, backgroundcolor="white")  # fmt: skip
        ax.tick_params(labelsize=6)
    axs[0].set_xlim(0, end)
    axs[-1].set_xlabel("model step (each bar a window of the stages' synchronisation)")
    fig.suptitle(
        f"SpikingPipeline {run.name}: spikes per window of {run.window} steps, by stage (its "
        "node), and every output spike", fontsize=10,
    )  # fmt: skip
    fig.tight_layout(rect=(0.04, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def traffic_picture(run: PipelineRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    names = [s.stage for s in run.stages]
    node_of = {s.stage: s.node for s in run.stages}
    nodes = sorted(set(node_of.values()))
    fill = {n: NODE_FILLS[i % len(NODE_FILLS)] for i, n in enumerate(nodes)}
    x = {n: 2.2 * i for i, n in enumerate(names)}
    streams = run.streams()
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for n in names:
        box = FancyBboxPatch((x[n] - 0.6, -0.35), 1.2, 0.7, boxstyle="round,pad=0.05",
                             facecolor=fill[node_of[n]], edgecolor="black", zorder=2)  # fmt: skip
        ax.add_patch(box)
        ax.text(x[n], 0, n, ha="center", va="center", fontsize=10, weight="bold", zorder=3)
    for st in streams:
        _arrow(ax, FancyArrowPatch, st, x)
    ax.set_xlim(-1.2, 2.2 * (len(names) - 1) + 1.2)
    span = max((abs(x[st.target] - x[st.source]) for st in streams), default=2.2)
    ax.set_ylim(-0.9 - 0.2 * span, 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    handles = [Patch(facecolor=fill[n], edgecolor="black", label=n) for n in nodes]
    handles.append(Patch(facecolor=CROSS_NODE, label="a stream across nodes"))
    ax.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
              bbox_to_anchor=(0.5, -0.12), frameon=False)  # fmt: skip
    ax.set_title(
        f"SpikingPipeline {run.name}: spikes/s between stages over the run (as each receiver "
        "counted them), boxes coloured by node", fontsize=10,
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _arrow(ax: object, arrow: type, st: Stream, x: dict[str, float]) -> None:
    """A stream as an arc from its source to its target, above the boxes for a neighbour, a
    wider arc below for a stage further on; labelled with its rate."""
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    a, b = x.get(st.source, 0.0), x.get(st.target, 0.0)
    far = abs(b - a) > 2.3
    rad = 0.35 if far else -0.5
    y0 = -0.35 if far else 0.35
    colour = CROSS_NODE if st.cross_node else SAME_NODE
    ax.add_patch(
        arrow((a + 0.3, y0), (b - 0.3, y0), connectionstyle=f"arc3,rad={rad}",
              arrowstyle="-|>", mutation_scale=14, color=colour,
              linewidth=3.0 if st.cross_node else 1.4, zorder=1)
    )  # fmt: skip
    lift = -rad * (b - a) / 2  # the arc's peak (arc3 bends in display space: equal aspect)
    label = f"{st.per_second:,.0f}/s" + ("\nacross nodes" if st.cross_node else "")
    ax.text((a + b) / 2, y0 + lift, label, ha="center", va="bottom" if lift > 0 else "top",
            fontsize=8, color=colour, backgroundcolor="white", zorder=3)  # fmt: skip
