"""A workload that steps a network on a partition's spike port until told to stop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from darwin_dra.runtime.client import SpikePortClient

from tests.runtime.nets import relay

WINDOW = 10


class Stepper(threading.Thread):
    """A workload: steps its network WINDOW steps at a time, one input spike per window,
    until told to stop; records every answer and every error."""

    def __init__(self, sock: Path) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.stop = threading.Event()
        self.calls = 0
        self.steps: list[int] = []
        self.fired: list[tuple[int, int]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        async with SpikePortClient(self.sock, timeout_s=10) as port:
            await port.load(relay(4, 2), export=range(4))
            while not self.stop.is_set():
                start = self.calls * WINDOW
                try:
                    out = await port.step(WINDOW, [start], [self.calls % 4])
                except Exception as exc:  # recorded: the test fails on any
                    self.errors.append(repr(exc))
                    return
                self.calls += 1
                self.steps.append(out.counters.steps)
                self.fired += zip(out.steps.tolist(), out.ids.tolist(), strict=True)
                await asyncio.sleep(0.005)

    def lost_nothing(self) -> bool:
        """Each call ran exactly one window, and each input spike came out two steps later."""
        return self.steps == [WINDOW * (i + 1) for i in range(self.calls)] and self.fired == [
            (i * WINDOW + 2, i % 4) for i in range(self.calls)
        ]
