"""The pacing of the stage that reads the input (runtime/pipeline_input.Pacer): no faster than
--rate steps per second of wall clock, and no wait at all without a rate. (DrawnInput, the
input drawn in place, is run end to end by tests/pipeline/test_stages.py.)"""

from __future__ import annotations

import asyncio
import time

from darwin_dra.runtime.pipeline_input import Pacer


def test_a_rate_holds_the_steps_to_the_wall_clock_and_none_does_not_wait() -> None:
    async def run(rate: float | None) -> float:
        pacer = Pacer(rate)
        t0 = time.monotonic()
        for step in range(0, 50, 10):  # windows of 10 steps up to step 40
            await pacer.wait(step)
        return time.monotonic() - t0

    assert asyncio.run(run(200.0)) >= 40 / 200.0  # step 40 not before 0.2 s
    assert asyncio.run(run(None)) < 0.05
