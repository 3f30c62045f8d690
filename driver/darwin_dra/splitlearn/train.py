"""The edge's training loop, the same for split and unsplit training: only the link to the
server half differs (``ServerLink``: in this process, or the authenticated stream of
transport.py). Batches, noise and the edge's updates come from the edge's seed, so a split run
computes what the unsplit run computes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from darwin_dra.splitlearn.data import Split, spikes
from darwin_dra.splitlearn.noise import spike_noise
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart
from darwin_dra.splitlearn.ratelimit import rate_limit
from darwin_dra.splitlearn.snn import F32

I64 = npt.NDArray[np.int64]


class ServerLink(Protocol):
    def train(self, cut: F32, labels: I64) -> tuple[float, F32]: ...

    def predict(self, cut: F32) -> I64: ...


@dataclass
class LocalLink:
    server: ServerPart

    def train(self, cut: F32, labels: I64) -> tuple[float, F32]:
        return self.server.train_step(cut, labels)

    def predict(self, cut: F32) -> I64:
        return self.server.predict(cut)


@dataclass
class EdgeResult:
    accuracy: float  # held-out
    train_accuracy: float
    losses: list[float] = field(default_factory=list)  # mean per epoch
    spikes_per_sample: float = 0.0  # at the cut, held-out
    seconds: float = 0.0


def cut_and_mask(
    edge: EdgePart, x: F32, cfg: Config, rng: np.random.Generator
) -> tuple[F32, F32 | None]:
    """What the edge sends (its spikes, the noise, then the rate limit) and the mask the
    gradient at the cut passes through (None: all of it)."""
    cut = spike_noise(edge.forward(x), cfg.cut_noise, rng)
    if cfg.cut_rate_limit >= cfg.steps:
        return cut, None
    return rate_limit(cut, cfg.cut_rate_limit)


def cut_traffic(edge: EdgePart, x: F32, cfg: Config, rng: np.random.Generator) -> F32:
    return cut_and_mask(edge, x, cfg, rng)[0]


def evaluate(
    edge: EdgePart, link: ServerLink, x: F32, y: I64, cfg: Config, rng: np.random.Generator
) -> tuple[float, float]:
    correct, spk = 0, 0.0
    for i in range(0, len(x), 256):
        cut = cut_traffic(edge, x[i : i + 256], cfg, rng)
        spk += float(cut.sum())
        correct += int((link.predict(cut) == y[i : i + 256]).sum())
    return correct / len(x), spk / len(x)


def train_edge(
    data: Split, cfg: Config, seed: int, link: ServerLink
) -> tuple[EdgePart, EdgeResult]:
    cfg.check()
    t0 = time.perf_counter()
    edge = EdgePart(cfg, seed)
    rng = np.random.default_rng([seed, 3])
    xtr, xte = spikes(data.train_x, cfg.steps), spikes(data.test_x, cfg.steps)
    losses = []
    for _ in range(cfg.epochs):
        order = rng.permutation(len(xtr))
        total = 0.0
        for i in range(0, len(order), cfg.batch):
            idx = order[i : i + cfg.batch]
            cut, mask = cut_and_mask(edge, xtr[idx], cfg, rng)
            loss, g = link.train(cut, data.train_y[idx])
            edge.backward(g if mask is None else (g * mask).astype(np.float32))
            total += loss * len(idx)
        losses.append(total / len(order))
    train_acc, _ = evaluate(edge, link, xtr, data.train_y, cfg, rng)
    acc, spk = evaluate(edge, link, xte, data.test_y, cfg, rng)
    return edge, EdgeResult(acc, train_acc, losses, spk, time.perf_counter() - t0)


def train_unsplit(data: Split, cfg: Config, seed: int) -> tuple[EdgePart, ServerPart, EdgeResult]:
    """Both halves in one process (the baseline the split run is compared with)."""
    server = ServerPart(cfg, seed)
    edge, result = train_edge(data, cfg, seed, LocalLink(server))
    return edge, server, result
