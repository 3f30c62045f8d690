"""The trained split model as one NIR graph, and its accuracy on the engine.

Input (64) -> Affine -> LIF "edge" (the cut) -> Affine -> LIF "server" -> Affine -> LI
"readout" -> Output. Every neuron node is NIR's LIF/LI with ``tau = -dt / ln(decay)``,
``r = 1 / (1 - decay)``, ``v_leak = 0`` and ``v_reset = 0`` (reset by value), so the engine's
exact step is the training code's recurrence (snn.py). The class is the readout's largest
potential at the last model step. The two halves' weights meet only here, at deploy time."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np
import numpy.typing as npt

from darwin_dra.engine.network import Reset
from darwin_dra.models.compile import CompiledModel, compile_graph
from darwin_dra.models.digits import rate_code
from darwin_dra.models.export import META_DT, META_RESET
from darwin_dra.models.nirfile import write_graph
from darwin_dra.models.run import LocalRunner, dense_to_aer
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart

DT_S = 1e-3
CUT = "edge"  # the NIR node whose spikes cross the training cut
STREAM_GAPS = (0, 16, 48)  # silent steps between samples in the one-stream check


def _neurons(kind: str, n: int, cfg: Config) -> Any:
    tau = np.full(n, -DT_S / np.log(cfg.decay))
    r = np.full(n, 1.0 / (1.0 - cfg.decay))
    zero = np.zeros(n)
    if kind == "LI":
        return nir.LI(tau=tau, r=r, v_leak=zero)
    return nir.LIF(tau=tau, r=r, v_leak=zero, v_threshold=np.full(n, cfg.threshold), v_reset=zero)


def split_graph(edge: EdgePart, server: ServerPart) -> Any:
    cfg = edge.cfg
    f64 = np.float64
    nodes = {
        "input": nir.Input(input_type={"input": np.array([cfg.inputs])}),
        "fc_edge": nir.Affine(weight=edge.layer.w.T.astype(f64), bias=edge.layer.b.astype(f64)),
        CUT: _neurons("LIF", cfg.hidden, cfg),
        "fc_server": nir.Affine(weight=server.l2.w.T.astype(f64), bias=server.l2.b.astype(f64)),
        "server": _neurons("LIF", cfg.hidden2, cfg),
        "fc_readout": nir.Affine(weight=server.l3.w.T.astype(f64), bias=server.l3.b.astype(f64)),
        "readout": _neurons("LI", server.l3.w.shape[1], cfg),
        "output": nir.Output(output_type={"output": np.array([server.l3.w.shape[1]])}),
    }
    order = ["input", "fc_edge", CUT, "fc_server", "server", "fc_readout", "readout", "output"]
    edges = list(itertools.pairwise(order))
    meta = {META_DT: DT_S, META_RESET: Reset.VALUE.name}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


@dataclass(frozen=True)
class EngineCheck:
    engine_accuracy: float
    training_accuracy: float  # the training code's forward, same digits, no cut noise
    agreement: float  # share of digits where both predict the same class
    samples: int
    # the engine's accuracy when the samples come as one stream (as into a pipeline), one
    # every steps + gap steps, the state decaying in the gap instead of reset: gap -> accuracy
    stream_accuracy: dict[int, float] = field(default_factory=dict)


def engine_accuracy(
    model: CompiledModel, pixels: npt.NDArray[np.int64], labels: npt.NDArray[np.int64],
    steps: int,
) -> npt.NDArray[np.int64]:  # fmt: skip
    """The engine's class per digit: argmax of the readout's potential at the last step."""
    x = rate_code(pixels, steps)
    preds = []
    with LocalRunner(model) as runner:
        for sample in x:
            in_steps, ids = dense_to_aer(sample)
            out = runner.run(steps, in_steps, ids).outputs["output"]
            if out.potentials is None or len(out.potentials) != steps:
                raise ValueError("the readout's potentials did not come back for every step")
            preds.append(int(np.argmax(out.potentials[-1])))
    return np.asarray(preds, np.int64)


def stream_predictions(
    model: CompiledModel, pixels: npt.NDArray[np.int64], steps: int, gap: int
) -> npt.NDArray[np.int64]:
    """The engine's class per sample when all samples run as one stream, sample n from step
    n x (steps + gap) on: the readout's argmax at each sample's last step (no reset between)."""
    x = rate_code(pixels, steps)
    period = steps + gap
    dense = np.zeros((len(x) * period, x.shape[2]), np.int64)
    for n, sample in enumerate(x):
        dense[n * period : n * period + steps] = sample
    in_steps, ids = dense_to_aer(dense)
    with LocalRunner(model) as runner:
        out = runner.run(len(dense), in_steps, ids).outputs["output"]
    if out.potentials is None or len(out.potentials) != len(dense):
        raise ValueError("the readout's potentials did not come back for every step")
    last = np.arange(len(x)) * period + steps - 1
    return np.asarray(np.argmax(out.potentials[last], axis=1), np.int64)


def export_and_check(
    path: Path, edge: EdgePart, server: ServerPart, pixels: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int64],
) -> EngineCheck:  # fmt: skip
    graph = split_graph(edge, server)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_graph(path, graph)
    model = compile_graph(graph, dt=DT_S, reset=Reset.VALUE, name=path.stem)
    steps = edge.cfg.steps
    eng = engine_accuracy(model, pixels, labels, steps)
    ours = server.predict(edge.forward(rate_code(pixels, steps).astype(np.float32)))
    stream = {
        gap: float(np.mean(stream_predictions(model, pixels, steps, gap) == labels))
        for gap in STREAM_GAPS
    }
    return EngineCheck(
        float(np.mean(eng == labels)),
        float(np.mean(ours == labels)),
        float(np.mean(eng == ours)),
        len(labels),
        stream,
    )
