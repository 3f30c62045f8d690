"""A picture of the engine benchmark: throughput per simulator, and where the engine's time
goes. matplotlib is imported only here and only when a plot is asked for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from darwin_dra.bench.brunel import BenchResult
from darwin_dra.bench.table import Row


def plot_engine_bench(rows: Sequence[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    done = [r for r in rows if isinstance(r, BenchResult)]
    if not done:
        raise ValueError("no results to plot")
    labels = [f"{r.name}\n{r.threads} thread{'s' if r.threads > 1 else ''}" for r in done]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    bars = left.bar(
        labels,
        [r.events_per_s / 1e6 for r in done],
        color=["#2b6cb0" if r.name == "darwin engine" else "#a0aec0" for r in done],
    )
    left.bar_label(bars, fmt="%.0f")
    left.set_ylabel("synaptic events per second (millions)")
    left.set_title("throughput, Brunel network, same machine, same run")
    left.tick_params(axis="x", labelsize=8)
    engines = [r for r in done if r.name == "darwin engine"]
    sim_ms = [r.sim_s * 1e3 for r in engines]
    upd = [r.extra["update_ns_per_neuron_step"] for r in engines]
    dlv = [r.extra["deliver_ns_per_event"] for r in engines]
    x = range(len(engines))
    right.bar([i - 0.2 for i in x], upd, width=0.4, label="update + drive, ns per neuron-step")
    right.bar([i + 0.2 for i in x], dlv, width=0.4, label="routing + delivery, ns per event")
    right.set_xticks(
        list(x),
        [f"{r.threads} thread(s)\n{s:.0f} ms" for r, s in zip(engines, sim_ms, strict=True)],
    )
    right.set_title("engine cost split")
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
