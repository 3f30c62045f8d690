"""Many samples in one stream (pure): a pipeline runs one continuous stream of steps, so samples
go in one after another, sample n over model steps [n x period, n x period + steps), followed
by ``gap`` silent steps in which the state decays; with ``reset`` every engine stage also loads
its network afresh at each sample's first step (the SpikePort's Step.reset), so each sample
runs from rest as it does on its own (docs/split-learning.md measures both). A readout is read
at each sample's last step. Every stage is given the same layout (``--samples
STEPS+GAP[,reset]``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from darwin_dra.models.errors import ModelError
from darwin_dra.models.run import dense_to_aer

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SampleLayout:
    steps: int  # model steps of one sample
    gap: int = 0  # silent model steps after each sample
    reset: bool = False  # engine stages start each sample from rest

    def __post_init__(self) -> None:
        if self.steps < 1 or self.gap < 0:
            raise ValueError(f"--samples {self}: steps must be >= 1 and the gap >= 0")

    def __str__(self) -> str:
        return f"{self.steps}+{self.gap}" + (",reset" if self.reset else "")

    @property
    def period(self) -> int:
        return self.steps + self.gap

    @staticmethod
    def parse(text: str) -> SampleLayout:
        """``STEPS``, ``STEPS+GAP`` or either with ``,reset``, as the --samples flag takes it."""
        body, comma, mode = text.partition(",")
        head, _, tail = body.partition("+")
        try:
            if comma and mode != "reset":
                raise ValueError(mode)
            steps, gap = int(head), int(tail or 0)
        except ValueError:
            raise ValueError(f"--samples {text!r}: expected STEPS[+GAP][,reset]") from None
        return SampleLayout(steps, gap, bool(comma))

    def resets_at(self, step: int) -> bool:
        """Whether engine stages load afresh before running ``step`` (a later sample's first)."""
        return self.reset and step > 0 and step % self.period == 0

    def last_steps(self, model_steps: int) -> I64:
        """The model step of every sample's last step that a run of ``model_steps`` reaches."""
        n = max(0, (model_steps - self.steps) // self.period + 1) if model_steps > 0 else 0
        return (np.arange(n, dtype=np.int64) * self.period + self.steps - 1).astype(np.int64)


def lay_out(dense: npt.NDArray[np.generic], layout: SampleLayout) -> tuple[I64, I64, int]:
    """(step, input) spikes of samples (n, steps, inputs) of spike counts laid one after
    another, and the number of model steps they take (n x period)."""
    x = np.asarray(dense)
    if x.ndim != 3 or x.shape[1] != layout.steps:
        raise ModelError(
            f"samples of shape {x.shape}: expected (samples, {layout.steps} steps, inputs)"
        )
    n, _, inputs = x.shape
    stream = np.zeros((n, layout.period, inputs), x.dtype)
    stream[:, : layout.steps] = x
    steps, ids = dense_to_aer(stream.reshape(n * layout.period, inputs))
    return steps, ids, n * layout.period


def load_samples(path: Path, n_inputs: int, layout: SampleLayout) -> tuple[I64, I64, int]:
    """A samples file: .npy of (samples, steps, inputs) spike counts, or .npz with such an
    array ``samples``; laid out as ``lay_out`` does."""
    try:
        got = np.load(path, allow_pickle=False)  # .npy or .npz, whatever the file's name
        if isinstance(got, np.lib.npyio.NpzFile):
            with got as z:
                if "samples" not in z:
                    raise ModelError(f"{path}: a samples .npz needs an array 'samples'")
                x = np.asarray(z["samples"])
        else:
            x = np.asarray(got)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read samples: {exc}") from exc
    if x.ndim != 3 or x.shape[2] != n_inputs or x.shape[1] != layout.steps:
        raise ModelError(
            f"{path}: samples of shape {x.shape}, expected (samples, {layout.steps} steps "
            f"(--samples {layout}), {n_inputs} inputs)"
        )
    try:
        return lay_out(x, layout)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc
