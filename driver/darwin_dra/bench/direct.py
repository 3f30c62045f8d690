"""A network file run directly on an engine, the baseline of `darwin-dra bench run`.

    python -m darwin_dra.bench.direct --network FILE --steps N --warmup-steps W --window K

A process of its own: one darwin3 chip, a whole-chip partition, the network loaded, W steps
of warm-up, then N steps K at a time with the engine's counters read after each window (what a
SpikePort Step does, without the socket). Prints one JSON object.

The whole sequence runs twice on one engine and the second is reported: the chip host it is
compared with is a long-lived process whose engine has run networks before, and a fresh
engine's first network runs slower (memory touched for the first time).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from darwin_dra.engine import Engine, Network
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.runtime.run import load_network


def run(path: Path, steps: int, warmup: int, window: int) -> dict[str, float]:
    net = load_network(path).network
    profile = load_profiles()["darwin3"]
    with Engine() as engine:
        chip = engine.add_chip(profile, ChipEntry(model="darwin3", serial="B-0", fabric="b"))
        part = engine.create_partition(chip, domains=list(range(profile.n_domains)))
        for first in (True, False):
            out = _once(engine, part, net, steps, warmup, window)
            if first:
                engine.unload(part)
    return out


def _once(
    engine: Engine, part: int, net: Network, steps: int, warmup: int, window: int
) -> dict[str, float]:
    engine.load(part, net)
    engine.run(part, warmup)
    before = engine.telemetry(part)
    started = time.perf_counter()
    done = 0
    while done < steps:
        n = min(window, steps - done)
        engine.run(part, n)
        after = engine.telemetry(part)
        done += n
    wall = time.perf_counter() - started
    events = after.events - before.events
    rate = (after.spikes - before.spikes) / net.n_neurons / (steps * net.dt_ms / 1e3)
    return {"events_per_s": events / wall, "rate_hz": rate, "wall_s": wall, "events": events}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m darwin_dra.bench.direct")
    p.add_argument("--network", type=Path, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--window", type=int, default=1000)
    a = p.parse_args(argv)
    print(json.dumps(run(a.network, a.steps, a.warmup_steps, a.window)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
