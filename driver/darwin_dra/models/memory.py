"""Engine bytes per synapse for each layer type, measured by loading single-layer models on one
chip (`darwin-dra model memory`; the table in docs/models.md)."""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from darwin_dra.models.compile import compile_graph
from darwin_dra.models.report import inspect_model


def _lif(n: int) -> Any:
    o = np.ones(n)
    return nir.LIF(tau=5e-3 * o, r=o, v_leak=0 * o, v_threshold=o, v_reset=0 * o)


def _pool(kind: Any) -> Any:
    two = np.array([2, 2])
    return kind(kernel_size=two, stride=two, padding=np.array([0, 0]))


def cases(scale: int = 1) -> list[tuple[str, list[Any]]]:
    rng = np.random.default_rng(0)
    n, hw = 1024 // scale, 32 // scale

    def inp(*shape: int) -> Any:
        return nir.Input(input_type={"input": np.array(shape)})

    def conv2(ci: int, co: int) -> Any:
        return nir.Conv2d(
            input_shape=(hw, hw),
            weight=rng.normal(size=(co, ci, 3, 3)),
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=np.zeros(co),
        )

    conv1 = nir.Conv1d(
        input_shape=8 * hw,
        weight=rng.normal(size=(16, 8, 5)),
        stride=1,
        padding=2,
        dilation=1,
        groups=1,
        bias=np.zeros(16),
    )
    return [
        (
            f"Linear {n} -> {n}, N(0,1) weights",
            [inp(n), nir.Linear(weight=rng.normal(size=(n, n))), _lif(n)],
        ),
        (
            f"Linear {n} -> {n}, 16 weight values",
            [inp(n), nir.Linear(weight=rng.integers(-8, 8, (n, n)) / 8.0), _lif(n)],
        ),
        (
            f"Conv2d 8x{hw}x{hw} -> 16x{hw}x{hw}, 3x3",
            [inp(8, hw, hw), conv2(8, 16), _lif(16 * hw * hw)],
        ),
        (
            f"SumPool2d 16x{hw}x{hw}, 2x2",
            [inp(16, hw, hw), _pool(nir.SumPool2d), _lif(16 * hw * hw // 4)],
        ),
        (
            f"AvgPool2d 16x{hw}x{hw}, 2x2",
            [inp(16, hw, hw), _pool(nir.AvgPool2d), _lif(16 * hw * hw // 4)],
        ),
        (f"Conv1d 8x{8 * hw} -> 16x{8 * hw}, k=5", [inp(8, 8 * hw), conv1, _lif(16 * 8 * hw)]),
    ]


def measure(scale: int = 1) -> list[dict[str, Any]]:
    rows = []
    for name, nodes in cases(scale):
        model = compile_graph(nir.NIRGraph.from_list(*nodes, type_check=False), dt=1e-3)
        e = inspect_model(model)["engine"]
        n = model.network.n_synapses
        rows.append(
            {
                "layer": name,
                "neurons": model.network.n_neurons,
                "synapses": n,
                "synapse_bytes": e["synapse_bytes"],
                "bytes_per_synapse": e["synapse_bytes"] / n,
                "network_bytes_per_synapse": e["network_bytes"] / n,
                "distinct_weights": int(np.unique(model.network.weight).size),
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| layer | neurons | synapses | synapse bytes | B/synapse | all network B/synapse "
        "| distinct weights |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['layer']} | {r['neurons']} | {r['synapses']} | {r['synapse_bytes']} | "
            f"{r['bytes_per_synapse']:.2f} | {r['network_bytes_per_synapse']:.2f} | "
            f"{r['distinct_weights']} |"
        )
    return "\n".join(out)
