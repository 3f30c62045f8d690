"""The privacy measurements at the cut, over seeds: reconstruction quality and membership
inference AUC for the spikes and for the ANN's activations, and the defence curve (accuracy
against reconstruction quality as the spike-count noise grows). The spiking model is trained
with the same code as the split run (train.train_unsplit: the split run computes the same
numbers, which `darwin-dra split-learn` checks on every run)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from darwin_dra.splitlearn.ann import Ann, train_ann
from darwin_dra.splitlearn.attack import Quality, auc, quality, train_decoder
from darwin_dra.splitlearn.data import Split, spikes
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart
from darwin_dra.splitlearn.snn import F32, per_sample_xent
from darwin_dra.splitlearn.train import cut_traffic, train_unsplit

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Side:
    accuracy: float
    quality: Quality
    auc: float
    rebuilt: F64  # the first held-out digits as rebuilt, (k, 64) in [0, 1]


@dataclass(frozen=True)
class SeedResult:
    seed: int
    snn: Side
    ann: Side
    mean_image: Quality  # the auxiliary set's mean digit for every victim: no information


KNOBS = {"cut_noise": "spike-count noise p", "cut_rate_limit": "rate limit k spikes/neuron"}


@dataclass
class Curve:
    knob: str = "cut_noise"  # a Config field of KNOBS
    levels: list[float] = field(default_factory=list)
    accuracy: list[list[float]] = field(default_factory=list)  # [level][seed]
    ssim: list[list[float]] = field(default_factory=list)
    mse: list[list[float]] = field(default_factory=list)
    spikes: list[list[float]] = field(default_factory=list)


def _pixels(x: npt.NDArray[np.int64]) -> F32:
    return (x.astype(np.float32) / np.float32(16)).astype(np.float32)


def _snn_traffic(edge: EdgePart, x: npt.NDArray[np.int64], cfg: Config, seed: int) -> F32:
    rng = np.random.default_rng([seed, 8])
    cut = cut_traffic(edge, spikes(x, cfg.steps), cfg, rng)
    return cut


def _reconstruct(
    aux: F32, aux_x: npt.NDArray[np.int64], victim: F32, test_x: npt.NDArray[np.int64],
    seed: int, epochs: int,
) -> tuple[Quality, F64]:  # fmt: skip
    dec = train_decoder(aux, _pixels(aux_x), seed, epochs=epochs)
    rebuilt = dec(victim).astype(np.float64)
    return quality(_pixels(test_x).astype(np.float64), rebuilt), rebuilt


def snn_side(
    data: Split, cfg: Config, seed: int, decoder_epochs: int, keep: int = 10
) -> tuple[Side, float]:
    edge, server, result = train_unsplit(data, cfg, seed)
    aux = _snn_traffic(edge, data.aux_x, cfg, seed)
    vic = _snn_traffic(edge, data.test_x, cfg, seed + 1000)
    q, rebuilt = _reconstruct(
        aux.reshape(len(aux), -1), data.aux_x, vic.reshape(len(vic), -1), data.test_x, seed,
        decoder_epochs,
    )  # fmt: skip
    members = _snn_traffic(edge, data.train_x, cfg, seed + 2000)
    a = auc(-_snn_loss(server, members, data.train_y), -_snn_loss(server, vic, data.test_y))
    return Side(result.accuracy, q, a, rebuilt[:keep]), float(vic.sum() / len(vic))


def _snn_loss(server: ServerPart, cut: F32, y: npt.NDArray[np.int64]) -> F64:
    z, _, _ = server.logits(cut)
    return per_sample_xent(z, y)


def _ann_loss(ann: Ann, h1: F32, y: npt.NDArray[np.int64]) -> F64:
    z, _ = ann.head(h1)
    return per_sample_xent(z, y)


def ann_side(data: Split, cfg: Config, seed: int, decoder_epochs: int, keep: int = 10) -> Side:
    ann, acc = train_ann(data, seed, cfg.hidden, cfg.hidden2)
    q, rebuilt = _reconstruct(
        ann.cut(data.aux_x), data.aux_x, ann.cut(data.test_x), data.test_x, seed, decoder_epochs
    )
    a = auc(
        -_ann_loss(ann, ann.cut(data.train_x), data.train_y),
        -_ann_loss(ann, ann.cut(data.test_x), data.test_y),
    )
    return Side(acc, q, a, rebuilt[:keep])


def per_seed(
    data: Split, cfg: Config, seeds: Sequence[int], decoder_epochs: int = 300
) -> list[SeedResult]:
    out = []
    truth = _pixels(data.test_x).astype(np.float64)
    mean = np.repeat(_pixels(data.aux_x).mean(axis=0, keepdims=True), len(truth), axis=0)
    for s in seeds:
        snn, _ = snn_side(data, cfg, s, decoder_epochs)
        out.append(SeedResult(s, snn, ann_side(data, cfg, s, decoder_epochs), quality(truth, mean)))
    return out


def defence_curve(
    data: Split, cfg: Config, levels: Sequence[float], seeds: Sequence[int],
    decoder_epochs: int = 300, knob: str = "cut_noise",
) -> Curve:  # fmt: skip
    """The SNN retrained at each level of ``knob`` (a Config field of KNOBS), per seed."""
    if knob not in KNOBS:
        raise ValueError(f"no defence knob {knob!r}: one of {', '.join(KNOBS)}")
    c = Curve(knob)
    for p in levels:
        acc, ss, mse, spk = [], [], [], []
        at = replace(cfg, cut_rate_limit=int(p)) if knob == "cut_rate_limit" else None
        at = at or replace(cfg, cut_noise=float(p))
        for s in seeds:
            side, n = snn_side(data, at, s, decoder_epochs)
            acc.append(side.accuracy)
            ss.append(side.quality.ssim)
            mse.append(side.quality.mse)
            spk.append(n)
        c.levels.append(p)
        c.accuracy.append(acc)
        c.ssim.append(ss)
        c.mse.append(mse)
        c.spikes.append(spk)
    return c


def _ms(values: Sequence[float]) -> str:
    v = np.asarray(values, np.float64)
    return f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"


def format_privacy(results: list[SeedResult], curves: Sequence[Curve] = ()) -> str:
    rows = [("traffic at the cut", "accuracy", "MSE", "PSNR (dB)", "SSIM", "membership AUC")]
    for name in ("snn", "ann"):
        sides = [getattr(r, name) for r in results]
        rows.append((
            "SNN spikes" if name == "snn" else "ANN float32 activations",
            _ms([s.accuracy for s in sides]),
            _ms([s.quality.mse for s in sides]),
            _ms([s.quality.psnr for s in sides]),
            _ms([s.quality.ssim for s in sides]),
            _ms([s.auc for s in sides]),
        ))  # fmt: skip
    m = results[0].mean_image
    rows.append(
        ("none (the mean digit)", "-", f"{m.mse:.4f}", f"{m.psnr:.2f}", f"{m.ssim:.4f}", "-")
    )
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "-+-".join("-" * n for n in w))
    lines.append(f"mean ± sample std over seeds {[r.seed for r in results]}")
    for curve in curves:
        lines += ["", f"defence ({KNOBS[curve.knob]} at the cut):",
                  "level | accuracy | reconstruction SSIM | MSE | spikes/sample"]  # fmt: skip
        for i, p in enumerate(curve.levels):
            lines.append(
                f"{p:.2f} | {_ms(curve.accuracy[i])} | {_ms(curve.ssim[i])} | "
                f"{_ms(curve.mse[i])} | {np.mean(curve.spikes[i]):.1f}"
            )
    return "\n".join(lines)
