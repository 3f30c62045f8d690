"""The two halves of the split model and the unsplit model built from the very same halves.

Edge (where the data is): the rate-coded digit (64 inputs, 16 steps) -> Dense -> LIF (``hidden``
neurons). Its spikes are the cut. Server: Dense -> LIF (``hidden2``) -> Dense -> LI (10); the
class is the readout's largest final potential. Each half holds only its own weights; the edge
gets back the gradient at the cut, the server sees spikes and labels, never a pixel."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from darwin_dra.splitlearn.snn import (
    F32,
    Adam,
    Dense,
    FastSigmoid,
    LifCache,
    li_backward,
    li_forward,
    lif_backward,
    lif_forward,
    softmax_xent,
)

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Config:
    inputs: int = 64  # the data's features (digits: 64 pixels; MNIST-1D: 40 samples)
    hidden: int = 64  # edge LIF neurons: the width of the cut
    hidden2: int = 64  # server LIF neurons
    steps: int = 16  # model steps per sample (the rate code's)
    decay: float = 0.9  # a = exp(-dt / tau) of every layer
    threshold: float = 1.0
    slope: float = 5.0  # the surrogate's
    lr: float = 3e-3
    epochs: int = 20
    batch: int = 32
    cut_noise: float = 0.0  # the defence knob (noise.py): share of spikes moved at the cut
    rate_penalty: float = 1.0  # the edge adds rate_penalty x (its mean firing rate) to the loss
    cut_rate_limit: int = 16  # the other knob (ratelimit.py): spikes per cut neuron and sample

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def check(self) -> None:
        for name in ("inputs", "hidden", "hidden2", "steps", "epochs", "batch"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.decay < 1:
            raise ValueError(f"decay must lie in (0, 1), got {self.decay}")
        if self.cut_rate_limit < 1:
            raise ValueError(f"cut_rate_limit must be >= 1, got {self.cut_rate_limit}")
        if not 0 <= self.cut_noise <= 1:
            raise ValueError(f"cut_noise must lie in [0, 1], got {self.cut_noise}")


def save_weights(path: Path, weights: dict[str, F32]) -> None:
    np.savez(path, **weights)  # type: ignore[arg-type]


def load_weights(path: Path) -> dict[str, F32]:
    with np.load(path) as z:
        return {k: np.asarray(z[k], np.float32) for k in z.files}


class EdgePart:
    def __init__(self, cfg: Config, seed: int, n_in: int | None = None) -> None:
        n_in = cfg.inputs if n_in is None else n_in
        rng = np.random.default_rng([seed, 1])
        self.cfg = cfg
        self.layer = Dense.init(rng, n_in, cfg.hidden, gain=2.0)
        self.opt = Adam(lr=cfg.lr)
        self.sg = FastSigmoid(cfg.slope)
        self._cache: LifCache | None = None

    def forward(self, x: F32, soft: bool = False) -> F32:
        s, self._cache = lif_forward(
            x, self.layer, self.cfg.decay, self.cfg.threshold, self.sg, soft
        )
        return s

    def grads(self, g_cut: F32) -> dict[str, F32]:
        if self._cache is None:
            raise RuntimeError("backward before forward")
        _, dw, db = lif_backward(
            g_cut, self._cache, self.layer, self.cfg.decay, self.cfg.threshold, self.sg
        )
        return {"w": dw, "b": db}

    def backward(self, g_cut: F32) -> None:
        """The server's gradient at the cut plus the edge's own firing-rate penalty's."""
        if self.cfg.rate_penalty:
            g_cut = (g_cut + np.float32(self.cfg.rate_penalty / g_cut.size)).astype(np.float32)
        g = self.grads(g_cut)
        self.opt.step({"w": self.layer.w, "b": self.layer.b}, g)

    def weights(self) -> dict[str, F32]:
        return {"edge_w": self.layer.w, "edge_b": self.layer.b}


class ServerPart:
    def __init__(self, cfg: Config, seed: int, classes: int = 10) -> None:
        rng = np.random.default_rng([seed, 2])
        self.cfg = cfg
        self.l2 = Dense.init(rng, cfg.hidden, cfg.hidden2, gain=2.0)
        self.l3 = Dense.init(rng, cfg.hidden2, classes, gain=1.0)
        self.opt = Adam(lr=cfg.lr)
        self.sg = FastSigmoid(cfg.slope)

    def logits(self, s: F32, soft: bool = False) -> tuple[F32, F32, LifCache]:
        c = self.cfg
        s2, cache = lif_forward(s, self.l2, c.decay, c.threshold, self.sg, soft)
        return li_forward(s2, self.l3, c.decay), s2, cache

    def grads(self, s: F32, labels: I64, soft: bool = False) -> tuple[float, F32, dict[str, F32]]:
        """Loss, dL/d(cut spikes) and the server's own gradients."""
        c = self.cfg
        z, s2, cache = self.logits(s, soft)
        loss, gz = softmax_xent(z, labels)
        gs2, dw3, db3 = li_backward(gz, s2, self.l3, c.decay)
        g_cut, dw2, db2 = lif_backward(gs2, cache, self.l2, c.decay, c.threshold, self.sg)
        return loss, g_cut, {"w2": dw2, "b2": db2, "w3": dw3, "b3": db3}

    def train_step(self, s: F32, labels: I64) -> tuple[float, F32]:
        loss, g_cut, g = self.grads(s, labels)
        params = {"w2": self.l2.w, "b2": self.l2.b, "w3": self.l3.w, "b3": self.l3.b}
        self.opt.step(params, g)
        return loss, g_cut

    def predict(self, s: F32) -> I64:
        z, _, _ = self.logits(s)
        out: I64 = np.argmax(z, axis=1).astype(np.int64)
        return out

    def weights(self) -> dict[str, F32]:
        return {
            "server_w2": self.l2.w,
            "server_b2": self.l2.b,
            "server_w3": self.l3.w,
            "server_b3": self.l3.b,
        }
