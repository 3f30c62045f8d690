"""The surrogate-gradient pieces: the backward passes are the exact gradients of the same
recurrences with the spike replaced by the surrogate's smooth function (numerical check), and
the surrogate's gradient is its smooth function's derivative."""

from __future__ import annotations

import numpy as np
import pytest
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart
from darwin_dra.splitlearn.snn import FastSigmoid, softmax_xent
from hypothesis import given, settings
from hypothesis import strategies as st


@given(st.floats(-20, 20), st.floats(0.5, 20))
@settings(max_examples=200, deadline=None)
def test_surrogate_grad_is_the_soft_functions_derivative(x: float, slope: float) -> None:
    sg = FastSigmoid(slope)
    # The derivative has a cusp at 0: a central difference across it is off by about slope * h
    # relative, so h stays small enough (float64 keeps the round-off far below that).
    h = 1e-6
    xs = np.array([x - h, x + h], np.float64)
    soft = 0.5 + slope * xs / (2 * (1 + slope * np.abs(xs)))
    numeric = (soft[1] - soft[0]) / (2 * h)
    got = float(sg.grad(np.array([x], np.float32))[0])
    assert got == pytest.approx(numeric, rel=2e-3, abs=1e-5)
    assert 0 <= float(sg.soft(np.array([x], np.float32))[0]) <= 1


def _loss(edge: EdgePart, server: ServerPart, x: np.ndarray, y: np.ndarray) -> float:
    s = edge.forward(x, soft=True)
    z, _, _ = server.logits(s, soft=True)
    return softmax_xent(z, y)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_backward_matches_numerical_gradient(seed: int) -> None:
    """Edge and server gradients through the cut (BPTT, reset path included) against central
    differences of the loss, with every spike replaced by the smooth surrogate."""
    cfg = Config(hidden=6, hidden2=5, steps=5, decay=0.8, threshold=0.5, slope=2.0)
    rng = np.random.default_rng(seed)
    x = (rng.random((4, cfg.steps, 7)) < 0.4).astype(np.float32)
    y = rng.integers(0, 10, 4).astype(np.int64)
    edge, server = EdgePart(cfg, seed, n_in=7), ServerPart(cfg, seed)
    s = edge.forward(x, soft=True)
    _, g_cut, g_server = server.grads(s, y, soft=True)
    g_edge = edge.grads(g_cut)
    checks = [
        (edge.layer.w, g_edge["w"]),
        (edge.layer.b, g_edge["b"]),
        (server.l2.w, g_server["w2"]),
        (server.l2.b, g_server["b2"]),
        (server.l3.w, g_server["w3"]),
    ]
    h = np.float32(1e-2)
    for param, grad in checks:
        flat, gflat = param.reshape(-1), grad.reshape(-1)
        for i in rng.choice(flat.size, size=min(8, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + h
            up = _loss(edge, server, x, y)
            flat[i] = old - h
            down = _loss(edge, server, x, y)
            flat[i] = old
            numeric = (up - down) / (2 * float(h))
            assert float(gflat[i]) == pytest.approx(numeric, rel=5e-2, abs=2e-4)


def test_hard_forward_spikes_are_binary_and_reset() -> None:
    cfg = Config(hidden=3, hidden2=2, steps=8)
    edge = EdgePart(cfg, 0, n_in=2)
    edge.layer.w[:] = 0.6
    edge.layer.b[:] = 0.0
    x = np.ones((1, 8, 2), np.float32)  # input 1.2 a step: fires every step (1.2 > 1)
    s = edge.forward(x)
    assert set(np.unique(s)) <= {0.0, 1.0}
    assert s.sum() == 8 * 3
    edge.layer.w[:] = 0.3  # 0.6 a step: u = 0.6, 1.14 -> fires every second step
    s = edge.forward(x)
    assert s[0, :, 0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
