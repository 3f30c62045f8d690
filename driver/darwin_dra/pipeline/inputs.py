"""The model's input spikes as the input stage sends them (pure): a Poisson generator drawn per
step from (seed, step), so any window size gives the same spikes, or a file of AER spikes or
dense counts (models.run.load_spikes). ``input_spikes`` gives the whole run at once, for the
unsplit reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from darwin_dra.models.compile import CompiledModel
from darwin_dra.models.run import load_spikes
from darwin_dra.pipeline.samples import SampleLayout, load_samples

I64 = npt.NDArray[np.int64]


class InputError(ValueError):
    """An input source that cannot be used (the message names it)."""


@dataclass(frozen=True)
class InputSpec:
    kind: str  # "poisson", "file" or "socket"
    rate_hz: float = 0.0
    seed: int = 1
    path: Path | None = None
    listen: str | None = None

    @staticmethod
    def parse(text: str, rate_hz: float | None, seed: int, listen: str | None) -> InputSpec:
        """``poisson``, ``file:PATH`` or ``socket`` as the --input flag takes it."""
        if text == "poisson":
            if rate_hz is None or not rate_hz >= 0:
                raise InputError("--input poisson needs --input-rate-hz >= 0")
            return InputSpec("poisson", rate_hz=rate_hz, seed=seed)
        if text.startswith("file:"):
            return InputSpec("file", path=Path(text[len("file:") :]))
        if text == "socket":
            if not listen:
                raise InputError("--input socket needs --input-listen")
            return InputSpec("socket", listen=listen)
        raise InputError(f"--input {text!r}: expected poisson, file:PATH or socket")


def poisson_window(
    n_inputs: int, dt_s: float, rate_hz: float, seed: int, start: int, steps: int
) -> tuple[I64, I64]:
    """(step, input index) of a Poisson input over [start, start + steps), sorted."""
    p = min(1.0, rate_hz * dt_s)
    ts: list[I64] = []
    ids: list[I64] = []
    for t in range(start, start + steps):
        fire = np.flatnonzero(np.random.default_rng([seed, t]).random(n_inputs) < p)
        ts.append(np.full(fire.size, t, np.int64))
        ids.append(fire.astype(np.int64))
    empty = np.zeros(0, np.int64)
    return np.concatenate([empty, *ts]), np.concatenate([empty, *ids])


class InputSource:
    """Windows of the model's input, in model steps (the engine's, for inputs). With
    ``samples``, the file holds samples (pipeline/samples.py), laid out one after another."""

    def __init__(
        self, spec: InputSpec, model: CompiledModel, samples: SampleLayout | None = None
    ) -> None:
        if spec.kind not in ("poisson", "file"):
            raise InputError(f"input {spec.kind!r} is not read from here")
        if samples is not None and spec.kind != "file":
            raise InputError(f"--samples {samples} reads a file of samples, not {spec.kind}")
        self.spec = spec
        self.model = model
        self.n_inputs = model.network.n_inputs
        self.steps: int | None = None
        if spec.kind == "file":
            assert spec.path is not None
            if samples is None:
                t, i, n = load_spikes(spec.path, model)
            else:
                t, i, n = load_samples(spec.path, self.n_inputs, samples)
            order = np.lexsort((i, t))
            self._t, self._i = t[order], i[order]
            self.steps = n

    def peak_rate_hz(self) -> float:
        """A file's firing rate per input at its busiest step (spikes in that step / inputs /
        dt): the split's rate estimate for a file input, on the high side, because the engine
        holds a stage to its KEPS grant step by step."""
        if self.spec.kind != "file" or self._t.size == 0 or self.n_inputs == 0:
            return 0.0
        busiest = int(np.bincount(self._t).max())
        return busiest / self.n_inputs / self.model.dt_s

    def window(self, start: int, steps: int) -> tuple[I64, I64]:
        if self.spec.kind == "poisson":
            return poisson_window(
                self.n_inputs, self.model.dt_s, self.spec.rate_hz, self.spec.seed, start, steps
            )
        a, b = np.searchsorted(self._t, [start, start + steps])
        return self._t[a:b], self._i[a:b]


def input_spikes(spec: InputSpec, model: CompiledModel, steps: int) -> tuple[I64, I64]:
    """The input of a whole run of ``steps`` model steps, as the input stage sends it."""
    return InputSource(spec, model).window(0, steps)
