"""The peer at the cut: an ANN of the same shape (64 -> hidden ReLU | cut | -> hidden2 ReLU ->
10), trained with Adam on the same training digits (pixels / 16). Its cut traffic is the dense
float32 activation vector of the first layer: 4 x hidden bytes per sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from darwin_dra.splitlearn.data import Split
from darwin_dra.splitlearn.snn import F32, Adam, Dense, softmax_xent

I64 = npt.NDArray[np.int64]


@dataclass
class Ann:
    l1: Dense
    l2: Dense
    l3: Dense

    @staticmethod
    def init(seed: int, hidden: int, hidden2: int, inputs: int = 64) -> Ann:
        rng = np.random.default_rng([seed, 5])
        return Ann(
            Dense.init(rng, inputs, hidden, np.sqrt(2)),
            Dense.init(rng, hidden, hidden2, np.sqrt(2)),
            Dense.init(rng, hidden2, 10, 1.0),
        )

    def cut(self, pixels: I64) -> F32:
        x = (np.asarray(pixels, np.float32) / np.float32(16)).astype(np.float32)
        h: F32 = np.maximum(x @ self.l1.w + self.l1.b, 0).astype(np.float32)
        return h

    def head(self, h1: F32) -> tuple[F32, F32]:
        h2 = np.maximum(h1 @ self.l2.w + self.l2.b, 0).astype(np.float32)
        return (h2 @ self.l3.w + self.l3.b).astype(np.float32), h2

    def predict(self, pixels: I64) -> I64:
        z, _ = self.head(self.cut(pixels))
        out: I64 = np.argmax(z, axis=1).astype(np.int64)
        return out


def train_ann(
    data: Split, seed: int, hidden: int, hidden2: int, epochs: int = 30, batch: int = 32
) -> tuple[Ann, float]:
    """The trained ANN and its held-out accuracy."""
    m = Ann.init(seed, hidden, hidden2, data.train_x.shape[1])
    opt = Adam(lr=3e-3)
    rng = np.random.default_rng([seed, 6])
    x = (data.train_x.astype(np.float32) / np.float32(16)).astype(np.float32)
    params = {
        "w1": m.l1.w, "b1": m.l1.b, "w2": m.l2.w, "b2": m.l2.b, "w3": m.l3.w, "b3": m.l3.b,
    }  # fmt: skip
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            xb = x[idx]
            h1 = np.maximum(xb @ m.l1.w + m.l1.b, 0).astype(np.float32)
            z, h2 = m.head(h1)
            _, gz = softmax_xent(z, data.train_y[idx])
            g2 = (gz @ m.l3.w.T) * (h2 > 0)
            g1 = (g2 @ m.l2.w.T) * (h1 > 0)
            grads = {
                "w1": xb.T @ g1, "b1": g1.sum(0), "w2": h1.T @ g2, "b2": g2.sum(0),
                "w3": h2.T @ gz, "b3": gz.sum(0),
            }  # fmt: skip
            opt.step(params, {k: v.astype(np.float32) for k, v in grads.items()})
    acc = float(np.mean(m.predict(data.test_x) == data.test_y))
    return m, acc
