"""The neuron groups of a compiled model: NIR neuron parameters as engine groups."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.engine.network import Model, NeuronGroup, Reset
from darwin_dra.models.compiled import NEURONS
from darwin_dra.models.errors import (
    ModelError,
    PrecisionError,
    ShapeMismatch,
)

F64 = npt.NDArray[np.float64]


def neuron_params(name: str, node: Any, kind: str, n: int) -> dict[str, F64]:
    keys = {
        "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
        "IF": ("r", "v_threshold", "v_reset"),
        "LI": ("tau", "r", "v_leak"),
        "CubaLIF": ("tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
        "CubaLI": ("tau_mem", "tau_syn", "r", "v_leak", "w_in"),
        "Threshold": ("threshold",),
    }[kind]
    if n == 0:
        raise ShapeMismatch(f"node {name!r} ({kind}) has no neurons: its shape has a zero")
    out: dict[str, F64] = {}
    for key in keys:
        raw = getattr(node, key, None)
        if raw is None:
            raw = 0.0 if key == "v_reset" else 1.0
        arr = np.asarray(raw, dtype=np.float64).ravel()
        if arr.size not in (1, n):
            raise ShapeMismatch(
                f"node {name!r} ({kind}): {key} has {arr.size} values for {n} neurons"
            )
        if not np.all(np.isfinite(arr)):
            raise ModelError(f"node {name!r} ({kind}): {key} has values that are not finite")
        if key.startswith("tau") and np.any(arr <= 0):
            raise ModelError(f"node {name!r} ({kind}): {key} must be > 0 seconds")
        out[key] = np.broadcast_to(arr, (n,))
    return out


def neuron_groups(
    ms_per_s: float,
    name: str,
    kind: str,
    p: Mapping[str, F64],
    n: int,
    scale: float,
    reset: Reset,
    depth: int,
    dt: float,
) -> list[NeuronGroup]:
    model = NEURONS[kind]
    cols = np.stack([p[k] for k in sorted(p)], axis=1) if p else np.zeros((n, 0))
    starts = [0, *(np.nonzero(np.any(cols[1:] != cols[:-1], axis=1))[0] + 1).tolist()]
    groups = []
    for a, b in zip(starts, [*starts[1:], n], strict=True):

        def v(key: str, default: float = 0.0, a: int = a) -> float:
            return float(p[key][a]) if key in p else default

        if kind == "Threshold":
            groups.append(
                NeuronGroup.nir(model, b - a, v_th=v("threshold") / scale, bias_start=depth)
            )
            continue
        tau_m = ms_per_s * v("tau", v("tau_mem", 1.0))
        r = v("r", 1.0)
        w_in = v("w_in", 1.0)
        if model in (Model.CUBA_LIF, Model.CUBA_LI):
            w_in *= scale
        else:
            r *= scale
        if model is Model.IF:
            r /= ms_per_s  # per engine ms
        v_th = v("v_threshold", 1.0)
        v_reset = v("v_reset", 0.0)
        if model.spiking and not v_reset < v_th:
            raise ModelError(
                f"node {name!r} ({kind}): v_reset {v_reset} must lie below v_threshold {v_th}"
            )
        groups.append(
            NeuronGroup.nir(
                model,
                b - a,
                tau_m=tau_m if model is not Model.IF else 0.0,
                tau_syn=ms_per_s * v("tau_syn", 0.0),
                r=r,
                w_in=w_in if model in (Model.CUBA_LIF, Model.CUBA_LI) else 0.0,
                v_th=v_th,
                v_reset=v_reset,
                e_l=v("v_leak", 0.0),
                reset=reset if model.spiking else Reset.VALUE,
                bias_start=depth,
            )
        )
    return groups


def check_f32(name: str, what: str, value: float) -> None:
    if not math.isfinite(value) or abs(value) > 3.0e38 or (value != 0 and abs(value) < 1.2e-38):
        raise PrecisionError(f"layer {name!r}: {what} {value:g} does not fit a float32")
