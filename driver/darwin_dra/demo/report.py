"""The demo's report: one HTML page with its pictures (matplotlib), written from the Record:
every workload's placement on its chip's mesh of tiles, the SpikingPipeline's spike raster and
traffic between stages (pipeline_pictures.py), the fault's timeline, each scenario's question,
answer and reason, and how long each set-up step took."""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

from darwin_dra.demo.explain import Placement
from darwin_dra.demo.pipeline_pictures import raster_picture, traffic_picture
from darwin_dra.demo.record import Chip, PipelineRun, Record

COLOURS = {
    "examples": "#1f77b4",
    "shared": "#2ca02c",
    "meps": "#9467bd",
    "pipeline": "#ff7f0e",
    "fault": "#d62728",
}


_REPLICA = re.compile(r"^(.*)-[a-z0-9]{6,10}-[a-z0-9]{5}$")  # a Deployment's pod


def _label(group: list[Placement]) -> str:
    names = sorted({p.workload for p in group})
    stems = sorted({m.group(1) if (m := _REPLICA.match(n)) else n for n in names})
    if len(names) > 1:
        return f"{stems[0]} x{len(names)}"
    return stems[0]


def placement_picture(record: Record, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    chips = record.chips
    fig, axes = plt.subplots(1, len(chips), figsize=(3.4 * len(chips), 4.2), squeeze=False)
    evicted = {(p.workload, p.device) for p in record.evicted}
    for ax, chip in zip(axes[0], chips, strict=True):
        _mesh(ax, chip)
        here = [p for p in record.placements if p.chip_key == (chip.node, chip.chip)]
        by_device: dict[str, list[Placement]] = defaultdict(list)
        for p in here:
            by_device[f"{p.device}/{p.workload if p.kind != 'shared' else p.scenario}"].append(p)
        # a shared device's sharers from several scenarios: one band of its half each
        bands: dict[str, list[str]] = defaultdict(list)
        for key, group in by_device.items():
            if group[0].kind == "shared":
                bands[group[0].device].append(key)
        for key, group in by_device.items():
            p = group[0]
            x, y, w, h = float(p.x), float(p.y), float(p.width), float(p.height)
            if p.kind == "shared":
                h = p.height / len(bands[p.device])
                y = p.y + bands[p.device].index(key) * h
            gone = any((q.workload, q.device) in evicted for q in group)
            if p.kind != "shared":  # a partition over a share shows its own colour, not a mix
                ax.add_patch(Rectangle((x, y), w, h, facecolor="white",
                                       edgecolor="none", zorder=1.5))  # fmt: skip
            ax.add_patch(
                Rectangle((x, y), w, h, facecolor=COLOURS.get(p.scenario, "grey"),
                          alpha=0.25 if gone else 0.6, edgecolor="black",
                          hatch="//" if gone else None, linewidth=1.2,
                          # a share spans its half: partitions drawn over it stay visible
                          zorder=1 if p.kind == "shared" else 2)
            )  # fmt: skip
            wide = p.width >= 2 * chip.domain_w
            text = _label(group) + ("\n(evicted)" if gone and wide else "")
            ax.text(x + w / 2, y + h / 2, text, ha="center", va="center",
                    fontsize=7 if wide else 5, rotation=0 if wide else 90)  # fmt: skip
        failed = record.failed_chip == (chip.node, chip.chip)
        title = f"{chip.node} chip {chip.chip}\n{chip.model}" + ("  FAILED" if failed else "")
        ax.set_title(title, fontsize=9, color="#d62728" if failed else "black")
    handles = [Rectangle((0, 0), 1, 1, facecolor=c, alpha=0.6) for c in COLOURS.values()]
    handles.append(Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//"))
    labels = [*COLOURS, "evicted (its chip failed)"]
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle("Where every workload ran: partitions on each chip's mesh of tiles", fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _mesh(ax: object, chip: Chip) -> None:
    """The chip's tiles as a grid, its asynchronous domains outlined, tile (0, 0) at the top."""
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    ax.set_xlim(0, chip.mesh_w)
    ax.set_ylim(chip.mesh_h, 0)
    ax.set_aspect("equal")
    ax.set_xticks(range(0, chip.mesh_w + 1, chip.domain_w))
    ax.set_yticks(range(0, chip.mesh_h + 1, chip.domain_h))
    ax.tick_params(labelsize=6)
    ax.grid(True, color="#bbbbbb", linewidth=0.6)
    ax.set_xlabel(
        f"{chip.mesh_w} x {chip.mesh_h} tiles, domains of {chip.domain_w} x {chip.domain_h}",
        fontsize=7,
    )


def timeline_picture(record: Record, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = sorted(record.timeline, key=lambda e: e.seconds)
    fig, ax = plt.subplots(figsize=(10, 0.5 + 0.42 * len(events)))
    for i, e in enumerate(events):
        ax.plot([e.seconds], [i], "o", color="#d62728")
        ax.annotate(f"+{e.seconds:.1f} s  {e.what}", (e.seconds, i), xytext=(8, -3),
                    textcoords="offset points", fontsize=8)  # fmt: skip
    end = max((e.seconds for e in events), default=1.0)
    ax.set_xlim(-0.05 * end, end * 1.9 + 1)
    ax.set_ylim(len(events) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_xlabel("seconds since the chip failed")
    ax.set_title("The fault: taint, eviction, the workload placed again", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pipeline_section(run: PipelineRun, directory: Path) -> list[str]:
    """The pipeline's raster and traffic pictures and the table of its streams."""
    e = html.escape
    raster = raster_picture(run, directory / "pipeline-raster.png")
    traffic = traffic_picture(run, directory / "pipeline-traffic.png")
    rows = []
    for st in run.streams():
        planned = "" if st.planned_per_second is None else f"{st.planned_per_second:,.0f}"
        where = "<b>across nodes</b>" if st.cross_node else "same node"
        rows.append(
            f"<tr><td>{e(st.source)} &rarr; {e(st.target)}</td><td>{e(st.source_node)} &rarr; "
            f"{e(st.target_node)}</td><td>{where}</td><td>{st.spikes:,}</td>"
            f"<td>{st.per_second:,.0f}</td><td>{planned}</td></tr>"
        )
    return [
        f"<h3>Spike raster</h3><img id='raster' src='{raster.name}' alt='spike raster'>",
        f"<h3>Traffic between stages</h3><img id='traffic' src='{traffic.name}' alt='traffic'>",
        "<table id='streams'><tr><th>stream</th><th>nodes</th><th></th><th>spikes</th>"
        "<th>spikes/s (measured)</th><th>spikes/s (planned)</th></tr>",
        *rows,
        "</table><p>Measured: the spikes each stage counted from each upstream (its "
        "<code>stage finished</code> log line) over its run. Planned: the controller's figure "
        "at the pipeline's target rate.</p>",
    ]


def write(record: Record, directory: Path) -> Path:
    """The report's index.html (and its pictures) in `directory`; returns the page's path."""
    directory.mkdir(parents=True, exist_ok=True)
    pictures = [placement_picture(record, directory / "placement.png")]
    if record.timeline:
        pictures.append(timeline_picture(record, directory / "fault-timeline.png"))
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Darwin DRA demo report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "td,th{padding:2px 10px;text-align:left}pre{background:#f4f4f4;padding:6px;"
        "white-space:pre-wrap}img{max-width:100%}dt{font-weight:bold}</style></head><body>",
        "<h1>Darwin DRA demo report</h1>",
        "<p>Real kube-apiserver, kube-scheduler, kube-controller-manager and kubelets with "
        "containerd and runc; the driver installed with its Helm chart; simulated chips "
        "(the chip host's engine). Every workload is a container running "
        "<code>darwin-dra run</code> on the partition its claim got.</p>",
        "<h2>Chips</h2><table><tr><th>node</th><th>chip</th><th>model</th><th>mesh</th></tr>",
        *(f"<tr><td>{e(c.node)}</td><td>{c.chip}</td><td>{e(c.model)}</td>"
          f"<td>{c.mesh_w} x {c.mesh_h}</td></tr>" for c in record.chips),
        "</table>",
        f"<h2>Placements</h2><img id='placement' src='{pictures[0].name}' alt='placements'>",
    ]  # fmt: skip
    for sc in record.scenarios:
        parts.append(f"<h2>{e(sc.title)}</h2><dl>")
        for label, text in (("asked", sc.asked), ("given", sc.given), ("why", sc.why),
                            ("waits", sc.waits)):  # fmt: skip
            if text:
                parts.append(f"<dt>{label}</dt><dd>{e(text)}</dd>")
        parts.append("</dl>")
        if sc.logs:
            parts.append("<pre>" + e("\n".join(sc.logs)) + "</pre>")
        if sc.key == "pipeline" and record.pipeline is not None:
            parts += _pipeline_section(record.pipeline, directory)
        if sc.key == "fault" and len(pictures) > 1:
            parts.append(f"<img id='timeline' src='{pictures[1].name}' alt='fault timeline'>")
    parts.append("<h2>Set-up</h2><table><tr><th>step</th><th>seconds</th></tr>")
    parts += [f"<tr><td>{e(t)}</td><td>{s:.1f}</td></tr>" for t, s in record.setup]
    parts.append("</table></body></html>")
    page = directory / "index.html"
    page.write_text("\n".join(parts) + "\n")
    # the data behind the page and its pictures
    (directory / "record.json").write_text(json.dumps(asdict(record), indent=1) + "\n")
    return page
