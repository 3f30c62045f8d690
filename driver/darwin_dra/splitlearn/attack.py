"""Attacks on the traffic at the cut (pure numpy).

Reconstruction (a FORA-style inverse network, made stronger: the attacker has pairs of an
auxiliary input and its cut traffic, from digits disjoint from the victims'): a decoder MLP
(traffic -> 256 ReLU -> 64 sigmoid) trained with MSE on the auxiliary pairs rebuilds the
victims' held-out digits from their traffic alone. Quality: MSE and PSNR of pixels in [0, 1],
and SSIM (3 x 3 uniform windows over the 8 x 8 image, the usual constants for a range of 1).

Membership inference (the server is the attacker; in split learning it sees the traffic and the
labels and holds its half): the score is minus the per-sample loss the server computes from the
traffic (a loss threshold attack), and the AUC separates the training digits from held-out
ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.splitlearn.snn import F32, Adam, Dense

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Quality:
    mse: float
    psnr: float
    ssim: float


def _windows(x: F64, k: int = 3) -> F64:
    """(n, 8, 8) -> (n, 8-k+1, 8-k+1) means over k x k windows."""
    n, h, w = x.shape
    out = np.zeros((n, h - k + 1, w - k + 1))
    for i in range(k):
        for j in range(k):
            out += x[:, i : i + h - k + 1, j : j + w - k + 1]
    return out / (k * k)


def ssim(a: F64, b: F64) -> F64:
    """Per image SSIM of (n, 8, 8) images in [0, 1]."""
    c1, c2 = 0.01**2, 0.03**2
    ma, mb = _windows(a), _windows(b)
    va = _windows(a * a) - ma * ma
    vb = _windows(b * b) - mb * mb
    cov = _windows(a * b) - ma * mb
    m = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    out: F64 = m.mean(axis=(1, 2))
    return out


def quality(truth: F64, rebuilt: F64) -> Quality:
    """Means over images; truth and rebuilt are (n, 64) in [0, 1]."""
    err = ((truth - rebuilt) ** 2).mean(axis=1)
    psnr = 10 * np.log10(1.0 / np.maximum(err, 1e-10))
    s = ssim(truth.reshape(-1, 8, 8), rebuilt.reshape(-1, 8, 8))
    return Quality(float(err.mean()), float(psnr.mean()), float(s.mean()))


def _sigmoid(x: F32) -> F32:
    out: F32 = (1 / (1 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)
    return out


@dataclass
class Decoder:
    l1: Dense
    l2: Dense
    mean: F32
    std: F32

    def __call__(self, feats: F32) -> F32:
        z = ((feats - self.mean) / self.std).astype(np.float32)
        h = np.maximum(z @ self.l1.w + self.l1.b, 0)
        out: F32 = _sigmoid(h @ self.l2.w + self.l2.b).astype(np.float32)
        return out


def train_decoder(
    feats: F32, pixels: F32, seed: int, epochs: int = 300, hidden: int = 256, batch: int = 32
) -> Decoder:
    """feats (n, d) traffic, pixels (n, 64) in [0, 1]."""
    rng = np.random.default_rng([seed, 7])
    mean = feats.mean(axis=0).astype(np.float32)
    std = (feats.std(axis=0) + 1e-3).astype(np.float32)
    dec = Decoder(
        Dense.init(rng, feats.shape[1], hidden, np.sqrt(2)),
        Dense.init(rng, hidden, pixels.shape[1], 1.0),
        mean,
        std,
    )
    z = ((feats - mean) / std).astype(np.float32)
    params = {"w1": dec.l1.w, "b1": dec.l1.b, "w2": dec.l2.w, "b2": dec.l2.b}
    opt = Adam(lr=1e-3)
    for _ in range(epochs):
        order = rng.permutation(len(z))
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            xb, yb = z[idx], pixels[idx]
            h = np.maximum(xb @ dec.l1.w + dec.l1.b, 0)
            p = _sigmoid(h @ dec.l2.w + dec.l2.b)
            g = 2 * (p - yb) / yb.size * p * (1 - p)  # d mean squared error / d logit
            gh = (g @ dec.l2.w.T) * (h > 0)
            grads = {"w1": xb.T @ gh, "b1": gh.sum(0), "w2": h.T @ g, "b2": g.sum(0)}
            opt.step(params, {k: v.astype(np.float32) for k, v in grads.items()})
    return dec


def auc(members: F64, others: F64) -> float:
    """P(score of a member > score of a non-member), ties counted half (Mann-Whitney)."""
    scores = np.concatenate([members, others])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_s = scores[order]
    # average ranks of ties
    _, start, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = start + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    n1, n0 = len(members), len(others)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
