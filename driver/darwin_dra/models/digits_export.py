"""Trains small spiking classifiers of scikit-learn's digits in snnTorch and in Norse, exports
them to NIR with each framework's own exporter, and records each framework's accuracy on the
held-out split, then the engine's on the same split (the `export` extra; see docs/models.md):

    python -m darwin_dra.models.digits_export --out tests/data

Both models are 64 -> 64 LIF -> 10 LIF, read out by output spike counts over 16 steps of the
deterministic rate code of darwin_dra.models.digits. snnTorch: Leaky neurons with beta 0.9 and
reset to zero (its default, reset by subtraction, subtracts after the leak, which is not NIR's
reset). Norse: LIFBoxCell (LIF without a synaptic current), dt 1 ms, reset to v_reset = 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import nir
import numpy as np

from darwin_dra.engine.network import Reset
from darwin_dra.models.compile import compile_graph
from darwin_dra.models.digits import STEPS, evaluate, rate_code
from darwin_dra.models.nirfile import read_graph

SEED = 0
HIDDEN = 64
EPOCHS = 25
SNNTORCH_DT = 1e-4  # snntorch.export_nir writes tau = 1e-4 / (1 - beta), r = tau / 1e-4
NORSE_DT = 1e-3
# norse 1.1 writes tau = dt / tau_mem_inv (not 1 / tau_mem_inv): its step is dt * tau_mem_inv of
# a time constant, so its files are read with a time step of dt squared.
NORSE_FILE_DT = NORSE_DT * NORSE_DT


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        d.data.astype(np.int64), d.target, test_size=0.25, random_state=SEED, stratify=d.target
    )
    return x_tr, x_te, y_tr, y_te


def _train(net: Any, forward: Any, x: np.ndarray, y: np.ndarray) -> None:
    import torch

    spikes = torch.tensor(rate_code(x), dtype=torch.float32).transpose(0, 1)  # steps, batch, 64
    target = torch.tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        order = torch.randperm(len(y), generator=gen)
        for a in range(0, len(y), 64):
            idx = order[a : a + 64]
            counts = forward(spikes[:, idx])
            loss = torch.nn.functional.cross_entropy(counts, target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def _accuracy(forward: Any, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    with torch.no_grad():
        counts = forward(torch.tensor(rate_code(x), dtype=torch.float32).transpose(0, 1))
    return float((counts.argmax(dim=1).numpy() == y).mean())


def snntorch_model(
    x: np.ndarray, y: np.ndarray, x_te: np.ndarray, y_te: np.ndarray
) -> tuple[Any, float]:
    import snntorch as snn
    import torch
    from snntorch import surrogate
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(SEED)
    grad = surrogate.fast_sigmoid(slope=25)

    def leaky(n: int, **kw: Any) -> Any:
        # per-neuron beta and threshold: with scalars, the exported LIF has shape () and NIR's
        # type inference (run by export_to_nir) refuses the graph
        return snn.Leaky(
            beta=torch.full((n,), 0.9),
            threshold=torch.ones(n),
            spike_grad=grad,
            init_hidden=True,
            reset_mechanism="zero",
            **kw,
        )

    net = torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN),
        leaky(HIDDEN),
        torch.nn.Linear(HIDDEN, 10),
        leaky(10, output=True),
    )

    def forward(spikes: Any) -> Any:
        for m in net:
            if isinstance(m, snn.Leaky):
                m.reset_hidden()
        total = 0
        for t in range(spikes.shape[0]):
            out, _ = net(spikes[t])
            total = total + out
        return total

    _train(net, forward, x, y)
    acc = _accuracy(forward, x_te, y_te)
    graph = export_to_nir(net.cpu(), torch.zeros(1, 64), ignore_dims=[0])
    return graph, acc


def norse_model(
    x: np.ndarray, y: np.ndarray, x_te: np.ndarray, y_te: np.ndarray
) -> tuple[Any, float]:
    import norse.torch as norse
    import torch

    torch.manual_seed(SEED)

    def params(n: int) -> Any:
        # per-neuron tensors: scalars become 0-d datasets, which nir.write cannot compress
        return norse.LIFBoxParameters(
            tau_mem_inv=torch.full((n,), 100.0),
            v_th=torch.ones(n),
            v_reset=torch.zeros(n),
            v_leak=torch.zeros(n),
            alpha=torch.tensor(25.0),
        )

    fc1, fc2 = torch.nn.Linear(64, HIDDEN), torch.nn.Linear(HIDDEN, 10)
    lif1 = norse.LIFBoxCell(params(HIDDEN), dt=NORSE_DT)
    lif2 = norse.LIFBoxCell(params(10), dt=NORSE_DT)
    net = norse.SequentialState(fc1, lif1, fc2, lif2)

    def forward(spikes: Any) -> Any:
        state = None
        total = 0
        for t in range(spikes.shape[0]):
            out, state = net(spikes[t], state)
            total = total + out
        return total

    # Norse's Euler step moves v by dt * tau_mem_inv * input: scale the first weights up so the
    # hidden layer fires from the start
    with torch.no_grad():
        fc1.weight.mul_(10.0)
        fc2.weight.mul_(10.0)
    _train(net, forward, x, y)
    acc = _accuracy(forward, x_te, y_te)
    graph = norse.to_nir(net, torch.zeros(1, 64), dt=NORSE_DT)
    return graph, acc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", choices=("snntorch", "norse"), help="frameworks to redo")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    x_tr, x_te, y_tr, y_te = split()
    np.savez_compressed(
        args.out / "digits_test.npz", pixels=x_te.astype(np.uint8), labels=y_te.astype(np.uint8)
    )
    results: dict[str, Any] = {
        "dataset": "sklearn.datasets.load_digits, 25% held out (stratified, random_state 0)",
        "test_samples": len(y_te),
        "coding": f"deterministic rate code, {STEPS} steps (darwin_dra.models.digits.rate_code)",
    }
    out_json = args.out / "digits_accuracy.json"
    old = json.loads(out_json.read_text()) if out_json.exists() else {}
    for name, fn, dt in (
        ("snntorch", snntorch_model, SNNTORCH_DT),
        ("norse", norse_model, NORSE_FILE_DT),
    ):
        path = args.out / f"digits_{name}.nir"
        if args.only and name not in args.only:
            if name in old:
                results[name] = old[name]
            continue
        graph, acc = fn(x_tr, y_tr, x_te, y_te)
        nir.write(path, graph)
        model = compile_graph(read_graph(path), dt=dt, reset=Reset.VALUE, name=f"digits_{name}")
        engine = evaluate(model, x_te, y_te)
        results[name] = {
            "file": path.name,
            "framework_accuracy": acc,
            "engine_accuracy": engine.accuracy,
            "dt_s": dt,
            "reset": "value",
            "weight_error_rms": model.weight_error,
        }
        print(f"{name}: framework {acc:.4f}, engine {engine.accuracy:.4f}", flush=True)
        out_json.write_text(json.dumps({**old, **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
