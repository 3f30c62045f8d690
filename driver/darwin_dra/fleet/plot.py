"""Plots of a fleet run (matplotlib, from the bench extra): utilisation over time, waits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from darwin_dra.fleet.metrics import Summary


def plot_utilisation(summaries: Sequence[Summary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(6 * len(summaries), 4), sharey=True)
    axes = axes if len(summaries) > 1 else [axes]
    for ax, s in zip(axes, summaries, strict=True):
        hours = [t / 3600 for t in s.times]
        ax.plot(hours, [100 * v for v in s.cores_held], label="cores held")
        ax.plot(hours, [100 * v for v in s.cores_busy], label="cores busy")
        ax.plot(hours, [100 * v for v in s.keps_used], label="KEPS used")
        ax.set_title(s.model)
        ax.set_xlabel("trace time (h)")
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("% of the fleet")
    axes[0].legend(loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_waits(summaries: Sequence[Summary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for s in summaries:
        waits = sorted(w / 60 for w in s.waits)
        if not waits:
            continue
        frac = [(i + 1) / s.jobs for i in range(len(waits))]
        ax.step(waits, frac, where="post", label=f"{s.model} ({len(waits)} started)")
    ax.set_xlabel("wait until all of the job's devices were allocated (trace minutes)")
    ax.set_ylabel("fraction of the trace's jobs")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
