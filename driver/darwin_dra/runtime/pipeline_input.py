"""The model's input as a pipeline stage takes it: paced to ``--rate`` timesteps per second of
wall clock (``Pacer``), and, for an engine stage given ``--input``, drawn in place
(``DrawnInput``): the input source's spikes of each window, those of the inputs the stage
reads, so it injects exactly what the input stage would have sent it, on no wire."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import numpy.typing as npt

from darwin_dra.models.compile import CompiledModel
from darwin_dra.pipeline.inputs import InputSource
from darwin_dra.pipeline.split import INPUT, StagePart
from darwin_dra.runtime import links
from darwin_dra.runtime.pipeline_config import PipelineStageConfig

I64 = npt.NDArray[np.int64]


class Pacer:
    """Holds the stage that reads the input to ``rate`` steps per second (None: no pacing)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.start = time.monotonic()

    async def wait(self, step: int) -> None:
        if self.rate is None:
            return
        delay = self.start + step / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class DrawnInput:
    """An engine stage's share of the model's input, drawn where it is read."""

    def __init__(self, cfg: PipelineStageConfig, model: CompiledModel, part: StagePart) -> None:
        assert cfg.input is not None
        self.source = InputSource(cfg.input, model, cfg.samples)
        self.reads = part.receives.get(INPUT, np.zeros(0, np.uint32)).astype(np.int64)
        self.offset = model.network.n_neurons  # an input's global id: n_neurons + its index
        self.pacer = Pacer(cfg.rate)
        self.drawn = 0

    @property
    def steps(self) -> int | None:
        """A file's steps; None for a Poisson input (it never ends)."""
        return self.source.steps

    async def window(self, start: int, steps: int) -> tuple[I64, I64]:
        """(step, global id) of the inputs it reads over [start, start + steps), paced."""
        await self.pacer.wait(start)
        t, i = self.source.window(start, steps)
        g = i + self.offset
        mine = links.positions(self.reads, g)[1]
        self.drawn += int(mine.sum())
        return t[mine], g[mine]
