"""The spiking layers and their surrogate gradients (pure numpy, float32).

A LIF layer at model step t, exactly as the engine runs a NIR LIF node with ``v_leak = 0``,
``v_reset = 0`` (reset by value), ``r = 1 / (1 - a)`` and ``a = exp(-dt / tau)``
(docs/models.md, "Semantics"):

    i_t = x_t W + b
    u_t = a v_{t-1} + i_t          (the potential before the threshold)
    s_t = H(u_t - theta)           (fires when u_t > theta)
    v_t = u_t (1 - s_t)            (a spike resets the potential to 0)

An LI readout is ``v_t = a v_{t-1} + i_t`` and the logits are the final potential ``v_{T-1}``.
Training replaces dH/du by a surrogate (the fast sigmoid's derivative). The backward pass is the
exact gradient of the same recurrence with H replaced by the surrogate's smooth function, reset
path included, so a numerical gradient check can verify it (``soft=True`` forward)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F = np.float32


@dataclass(frozen=True)
class FastSigmoid:
    """The surrogate: soft(x) = 1/2 + k x / (2 (1 + k |x|)), grad = k / (2 (1 + k |x|)^2)."""

    slope: float = 5.0

    def soft(self, x: F32) -> F32:
        k = F(self.slope)
        return (F(0.5) + k * x / (F(2) * (F(1) + k * np.abs(x)))).astype(F)

    def grad(self, x: F32) -> F32:
        k = F(self.slope)
        return (k / (F(2) * (F(1) + k * np.abs(x)) ** 2)).astype(F)


@dataclass
class Adam:
    lr: float = 3e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: dict[str, F32] = field(default_factory=dict)
    v: dict[str, F32] = field(default_factory=dict)

    def step(self, params: dict[str, F32], grads: dict[str, F32]) -> None:
        self.t += 1
        for k, g in grads.items():
            m = self.m.setdefault(k, np.zeros_like(g))
            v = self.v.setdefault(k, np.zeros_like(g))
            m *= F(self.b1)
            m += F(1 - self.b1) * g
            v *= F(self.b2)
            v += F(1 - self.b2) * g * g
            mh = m / F(1 - self.b1**self.t)
            vh = v / F(1 - self.b2**self.t)
            params[k] -= (F(self.lr) * mh / (np.sqrt(vh) + F(self.eps))).astype(F)


@dataclass
class Dense:
    """Weights of one layer: w (inputs, outputs), b (outputs)."""

    w: F32
    b: F32

    @staticmethod
    def init(rng: np.random.Generator, n_in: int, n_out: int, gain: float) -> Dense:
        w = rng.normal(0.0, gain / np.sqrt(n_in), (n_in, n_out)).astype(F)
        return Dense(w, np.zeros(n_out, F))


@dataclass
class LifCache:
    x: F32
    u: F32
    s: F32


def lif_forward(
    x: F32, layer: Dense, a: float, theta: float, sg: FastSigmoid, soft: bool = False
) -> tuple[F32, LifCache]:
    """x (batch, steps, inputs) -> spikes (batch, steps, outputs)."""
    bsz, steps, _ = x.shape
    i = (x @ layer.w + layer.b).astype(F)
    u = np.zeros_like(i)
    s = np.zeros_like(i)
    v = np.zeros((bsz, i.shape[2]), F)
    for t in range(steps):
        u[:, t] = F(a) * v + i[:, t]
        d = u[:, t] - F(theta)
        s[:, t] = sg.soft(d) if soft else (d > 0).astype(F)
        v = u[:, t] * (F(1) - s[:, t])
    return s, LifCache(x, u, s)


def lif_backward(
    gs: F32, c: LifCache, layer: Dense, a: float, theta: float, sg: FastSigmoid
) -> tuple[F32, F32, F32]:
    """dL/ds -> (dL/dx, dL/dw, dL/db), back through time (reset path included)."""
    steps = gs.shape[1]
    di = np.zeros_like(gs)
    dv = np.zeros((gs.shape[0], gs.shape[2]), F)
    for t in range(steps - 1, -1, -1):
        u, s = c.u[:, t], c.s[:, t]
        ds = gs[:, t] - dv * u
        du = dv * (F(1) - s) + ds * sg.grad(u - F(theta))
        di[:, t] = du
        dv = F(a) * du
    dw = np.einsum("bti,bto->io", c.x, di).astype(F)
    db = di.sum(axis=(0, 1)).astype(F)
    dx = (di @ layer.w.T).astype(F)
    return dx, dw, db


def li_forward(x: F32, layer: Dense, a: float) -> F32:
    """x (batch, steps, inputs) -> the final potential (batch, outputs)."""
    i = (x @ layer.w + layer.b).astype(F)
    v = np.zeros((x.shape[0], i.shape[2]), F)
    for t in range(x.shape[1]):
        v = F(a) * v + i[:, t]
    return v


def li_backward(g: F32, x: F32, layer: Dense, a: float) -> tuple[F32, F32, F32]:
    steps = x.shape[1]
    decay = (F(a) ** np.arange(steps - 1, -1, -1)).astype(F)  # a^(T-1-t)
    di = (decay[None, :, None] * g[:, None, :]).astype(F)
    dw = np.einsum("bti,bto->io", x, di).astype(F)
    db = di.sum(axis=(0, 1)).astype(F)
    return (di @ layer.w.T).astype(F), dw, db


def softmax_xent(logits: F32, labels: npt.NDArray[np.int64]) -> tuple[float, F32]:
    """Mean cross-entropy and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = float(-np.log(p[np.arange(n), labels] + 1e-12).mean())
    g = p.copy()
    g[np.arange(n), labels] -= 1
    return loss, (g / F(n)).astype(F)


def per_sample_xent(logits: F32, labels: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    out: npt.NDArray[np.float64] = -logp[np.arange(logits.shape[0]), labels]
    return out
