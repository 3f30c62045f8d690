"""Running a compiled model on a local engine: one chip of a profile, the whole chip as the
partition. Input spikes are given in model time; outputs come back in model time (the engine's
per-layer latency taken out), as spike counts and spikes of spiking outputs and the potential
trace of LI / CubaLI readouts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from darwin_dra.engine import CapacityExceeded, Engine, Telemetry
from darwin_dra.engine.network import Model
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.errors import ModelError, ModelTooLarge

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class OutputTrace:
    name: str  # the Output node
    layer: str
    kind: str
    spiking: bool
    counts: I64  # spikes per neuron over the run (zeros for readouts)
    spike_steps: I64  # model step of each spike
    spike_ids: I64  # neuron index within the layer
    potentials: F32 | None  # steps x neurons, readouts only
    currents: F32 | None  # steps x neurons, CubaLI readouts only


@dataclass(frozen=True)
class RunResult:
    steps: int
    latency: int
    outputs: dict[str, OutputTrace]
    telemetry: Telemetry


def default_profile() -> ChipProfile:
    return load_profiles()["darwin3"]


def capacity_check(model: CompiledModel, profile: ChipProfile) -> None:
    """Refuses a model bigger than one chip of the profile, with the numbers."""
    net = model.network
    cores = profile.n_cores
    if net.n_neurons > cores * profile.neurons_per_core:
        raise ModelTooLarge(
            f"model {model.name!r}: {net.n_neurons} neurons exceed a {profile.model} chip's "
            f"{cores * profile.neurons_per_core} ({cores} cores x {profile.neurons_per_core})"
        )
    if net.n_synapses > profile.synapses_per_chip:
        raise ModelTooLarge(
            f"model {model.name!r}: {net.n_synapses} synapses exceed a {profile.model} chip's "
            f"{profile.synapses_per_chip}"
        )


def load_spikes(path: Path, model: CompiledModel) -> tuple[I64, I64, int]:
    """Input spikes from a file: .npy, a dense (steps, inputs...) array of spike counts over
    the model's inputs in order; or .npz with `steps` and `ids` (AER: model step, input index).
    Returns (steps, ids, number of steps)."""
    n = model.network.n_inputs
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "steps" not in z or "ids" not in z:
                    raise ModelError(f"{path}: an .npz spike file needs arrays 'steps' and 'ids'")
                steps, ids = np.asarray(z["steps"]), np.asarray(z["ids"])
            if steps.shape != ids.shape or steps.ndim != 1:
                raise ModelError(f"{path}: 'steps' and 'ids' must be 1-D arrays of equal length")
            if steps.size and (steps.min() < 0 or ids.min() < 0 or ids.max() >= n):
                raise ModelError(f"{path}: steps must be >= 0 and ids in [0, {n})")
            return (
                steps.astype(np.int64),
                ids.astype(np.int64),
                int(steps.max() + 1) if steps.size else 0,
            )
        dense = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read spikes: {exc}") from exc
    dense = dense.reshape(dense.shape[0], -1) if dense.ndim > 1 else dense.reshape(-1, 1)
    if dense.shape[1] != n:
        raise ModelError(f"{path}: {dense.shape[1]} input channels per step, the model has {n}")
    return (*dense_to_aer(dense), int(dense.shape[0]))


def dense_to_aer(dense: npt.NDArray[np.generic]) -> tuple[I64, I64]:
    """(steps, ids) of a (steps, inputs) array of spike counts (each count repeats the spike)."""
    counts = np.asarray(dense)
    whole = np.issubdtype(counts.dtype, np.integer) or np.issubdtype(counts.dtype, np.bool_)
    if not whole and np.any(counts != np.round(counts)):
        raise ModelError("input spikes must be whole counts per step")
    c = counts.astype(np.int64)
    if c.size and c.min() < 0:
        raise ModelError("input spike counts must be >= 0")
    t, i = np.nonzero(c)
    reps = c[t, i]
    return np.repeat(t, reps).astype(np.int64), np.repeat(i, reps).astype(np.int64)


class LocalRunner:
    """A model loaded on one local chip; `run` may be called once per input (the network is
    loaded afresh for each, so every run starts from rest)."""

    def __init__(self, model: CompiledModel, profile: ChipProfile | None = None, threads: int = 1):
        self.model = model
        self.profile = profile or default_profile()
        self.threads = threads
        capacity_check(model, self.profile)
        self.engine = Engine()
        self.engine.add_chip(
            self.profile, ChipEntry(model=self.profile.model, serial="local-0", fabric="local")
        )
        n_domains = self.engine.chip(0).n_domains
        self.part = self.engine.create_partition(0, domains=list(range(n_domains)))
        self._loaded = False

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self) -> None:
        if self._loaded:
            self.engine.unload(self.part)
            self._loaded = False
        try:
            self.engine.load(self.part, self.model.network)
        except CapacityExceeded as exc:
            raise ModelTooLarge(f"model {self.model.name!r}: {exc.message}") from exc
        self._loaded = True

    def run(self, steps: int, in_steps: I64, in_ids: I64) -> RunResult:
        model, eng, part = self.model, self.engine, self.part
        if steps < 0:
            raise ModelError("steps must be >= 0")
        self.load()
        outs = [(o, model.layer(layer)) for o, layer in model.outputs.items()]
        groups = {
            layer.name: model.network.groups[model.groups_of[layer.name][0]] for _, layer in outs
        }
        spiking = {name: groups[name].model.spiking for name in groups}
        record = [
            i
            for _, lay in outs
            if spiking[lay.name]
            for i in range(lay.first, lay.first + lay.count)
        ]
        # every recorded neuron fires at most once a step: room for all of it, no more
        capacity = max(1, (steps + model.latency) * len(record))
        if record:
            eng.record(part, record, capacity=capacity)
        keep = in_steps < steps
        if np.any(keep):
            eng.set_input_capacity(part, max(int(keep.sum()), 1))
            order = np.argsort(in_steps[keep], kind="stable")
            eng.inject(part, in_steps[keep][order], in_ids[keep][order])
        latency = model.latency
        total = steps + latency
        readouts = [(o, lay) for o, lay in outs if not spiking[lay.name]]
        traces: dict[str, list[tuple[F32, F32]]] = {o: [] for o, _ in readouts}
        if readouts:
            for e_step in range(total):
                eng.run(part, 1, self.threads)
                for o, lay in readouts:
                    if lay.depth <= e_step < lay.depth + steps:
                        traces[o].append(eng.potentials(part, lay.first, lay.count))
        elif total:
            eng.run(part, total, self.threads)
        s_steps, s_ids = (
            eng.read_spikes(part, max_spikes=1 << 22)
            if record
            else (
                np.zeros(0, np.uint64),
                np.zeros(0, np.uint32),
            )
        )
        result: dict[str, OutputTrace] = {}
        for o, lay in outs:
            if spiking[lay.name]:
                sel = (s_ids >= lay.first) & (s_ids < lay.first + lay.count)
                t = s_steps[sel].astype(np.int64) - lay.depth
                i = s_ids[sel].astype(np.int64) - lay.first
                ok = (t >= 0) & (t < steps)
                t, i = t[ok], i[ok]
                counts = np.bincount(i, minlength=lay.count).astype(np.int64)
                result[o] = OutputTrace(o, lay.name, lay.kind, True, counts, t, i, None, None)
            else:
                tr = traces[o]
                v = np.stack([a for a, _ in tr]) if tr else np.zeros((0, lay.count), np.float32)
                c = np.stack([b for _, b in tr]) if tr else np.zeros((0, lay.count), np.float32)
                has_current = groups[lay.name].model is Model.CUBA_LI
                empty = np.zeros(0, np.int64)
                result[o] = OutputTrace(
                    o,
                    lay.name,
                    lay.kind,
                    False,
                    np.zeros(lay.count, np.int64),
                    empty,
                    empty,
                    v,
                    c if has_current else None,
                )
        return RunResult(steps, latency, result, eng.telemetry(part))


def run_model(
    model: CompiledModel,
    steps: int,
    in_steps: I64,
    in_ids: I64,
    *,
    profile: ChipProfile | None = None,
    threads: int = 1,
) -> RunResult:
    """Runs the model for `steps` model steps on a local chip and returns its outputs."""
    with LocalRunner(model, profile, threads) as runner:
        return runner.run(steps, in_steps, in_ids)
