"""The demo's scenarios, in order. Each creates real workloads (the driver's image running
`darwin-dra run` on the partition its claim got, or a SpikingPipeline's stages), then prints what
was asked, what the scheduler gave and why, and the workload's log line that proves it ran."""

from __future__ import annotations

import time
from collections.abc import Callable

from darwin_dra.demo.context import Context
from darwin_dra.demo.examples import examples
from darwin_dra.demo.fault import chip_failure
from darwin_dra.demo.pipeline import spiking_pipeline
from darwin_dra.demo.record import Scenario
from darwin_dra.demo.sharing import meps_selection, shared_service

# what it saw.
Runner = Callable[[Context], list[Scenario]]
SCENARIOS: tuple[tuple[str, str, Runner], ...] = (
    ("examples", "Every example of deploy/examples, as real pods", examples),
    ("shared", "A KEPS-shared service, scaled until the next replica waits", shared_service),
    ("meps", "A CEL selection on MEPS picks the stronger chip", meps_selection),
    ("pipeline", "A SpikingPipeline: a NIR model split over two nodes", spiking_pipeline),
    ("fault", "A chip fails: taint, eviction, the workload placed again", chip_failure),
)


def run_all(ctx: Context, only: set[str] | None = None) -> None:
    for key, title, runner in SCENARIOS:
        if only and key not in only:
            continue
        ctx.story.chapter(title)
        started = time.monotonic()
        ctx.record.scenarios.extend(runner(ctx))
        ctx.story.say(f"  [dim]({time.monotonic() - started:.1f} s)[/]")
