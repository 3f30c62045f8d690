"""The pictures of docs/split-learning.md (the matplotlib edge): rebuilt digits side by side,
and the defence curve."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from darwin_dra.splitlearn.privacy import KNOBS, Curve, SeedResult


def rebuilt_digits(path: Path, truth: npt.NDArray[np.int64], result: SeedResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        ("held-out digit", truth.astype(np.float64) / 16),
        ("rebuilt from spikes", result.snn.rebuilt),
        ("rebuilt from ANN activations", result.ann.rebuilt),
    ]
    k = result.snn.rebuilt.shape[0]
    fig, axes = plt.subplots(3, k, figsize=(1.1 * k, 3.8))
    for r, (label, imgs) in enumerate(rows):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(imgs[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"reconstruction from the cut's traffic (seed {result.seed})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def defence_curve(path: Path, curves: Sequence[Curve], ann: list[SeedResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for n, curve in enumerate(curves):
        acc = np.array(curve.accuracy) * 100
        ss = np.array(curve.ssim)
        ddof = 1 if ss.shape[1] > 1 else 0
        ax.errorbar(
            ss.mean(axis=1), acc.mean(axis=1), xerr=ss.std(axis=1, ddof=ddof),
            yerr=acc.std(axis=1, ddof=ddof), marker="o^"[n % 2], capsize=3, color=f"C{n}",
            label=f"SNN, {KNOBS[curve.knob]}",
        )  # fmt: skip
        tag = "p" if curve.knob == "cut_noise" else "k"
        for p, x, y in zip(curve.levels, ss.mean(axis=1), acc.mean(axis=1), strict=True):
            ax.annotate(f"{tag}={p:g}", (x, y), textcoords="offset points", xytext=(5, 5),
                        fontsize=8)  # fmt: skip
    a_ss = np.array([r.ann.quality.ssim for r in ann])
    a_acc = np.array([r.ann.accuracy for r in ann]) * 100
    ax.errorbar(
        [a_ss.mean()], [a_acc.mean()], xerr=[a_ss.std(ddof=1)], yerr=[a_acc.std(ddof=1)],
        marker="s", color="C3", capsize=3, label="ANN, float32 activations",
    )  # fmt: skip
    ax.axvline(ann[0].mean_image.ssim, color="grey", ls="--", lw=1, label="the mean digit")
    ax.set_xlabel("reconstruction SSIM of held-out digits (lower = more private)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
