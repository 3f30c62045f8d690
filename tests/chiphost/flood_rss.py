"""The chip host's resident memory under a long spike flood, message by message: a script, not
a test (docs/reliability.md, the spike flood, quotes it).

    PYTHONPATH=. .venv/bin/python tests/chiphost/flood_rss.py [ROUNDS]

Starts a chip host as tests/chiphost/test_spike_flood.py does, floods one partition (input
queue of 4,096) with ROUNDS Steps of 1,000,000 spikes, each refused, and an empty Step after
each, and prints one JSON line: the MALLOC* environment and the VmRSS in MiB after each round.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import grpc
import numpy as np
from darwin_dra.runtime.client import SpikePortClient

from tests.chiphost.conftest import Host, write_inventory
from tests.runtime.nets import relay

N, DELAY, WINDOW, CAPACITY, FLOOD = 64, 2, 50, 4096, 1_000_000


def rss_mib(pid: int) -> int:
    found = re.search(r"^VmRSS:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert found is not None
    return int(found.group(1)) >> 10


async def flood(sock: Path, pid: int, rounds: int) -> list[int]:
    ids = np.random.default_rng(4).integers(0, N, FLOOD).astype(np.uint32)
    out = []
    async with SpikePortClient(f"unix://{sock}") as port:
        await port.load(relay(N, DELAY), export=range(N), input_capacity=CAPACITY)
        for w in range(rounds):
            try:
                await port.step(WINDOW, np.full(FLOOD, w * WINDOW, dtype=np.uint64), ids)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
            await port.step(WINDOW)
            out.append(rss_mib(pid))
    return out


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    tmp = Path(tempfile.mkdtemp(prefix="flood-rss-"))
    host = Host(tmp / "state", write_inventory(tmp / "inv.yaml"), tmp / "chip-host.log")
    host.start()
    try:
        assert host.proc is not None
        sock = host.state_dir / "partitions" / "a" / "spike.sock"
        sock.parent.mkdir(parents=True)
        with host.client() as chip:
            part = chip.create_partition(0, domains=[0])
            assert chip.serve_ports({sock: part}) == {}
        rss = asyncio.run(flood(sock, host.proc.pid, rounds))
    finally:
        host.stop()
    env = {k: v for k, v in os.environ.items() if k.startswith("MALLOC")}
    print(json.dumps({"env": env, "rss_mib": rss}))


if __name__ == "__main__":
    main()
