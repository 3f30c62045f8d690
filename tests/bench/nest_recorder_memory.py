"""What NEST's resident memory pays for recording: a script, not a test (docs/engine.md, "NEST
on the conv model", quotes it). Needs the bench extra (nest-simulator).

    .venv/bin/python tests/bench/nest_recorder_memory.py [N ...]

For each N: N iaf_psc_delta neurons connected to one spike_recorder, and N connected to one
neuron, each in a fresh kernel; prints the VmRSS growth of each Connect in MiB and per
connection in bytes, one JSON line per N.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any


def rss_kib() -> int:
    found = re.search(r"^VmRSS:\s+(\d+) kB$", Path("/proc/self/status").read_text(), re.M)
    assert found is not None
    return int(found.group(1))


def connect_cost(nest: Any, n: int, target_model: str) -> int:
    """KiB the process grew by connecting ``n`` neurons to one ``target_model`` node."""
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": 1})
    sources = nest.Create("iaf_psc_delta", n)
    target = nest.Create(target_model)
    before = rss_kib()
    nest.Connect(sources, target)
    return rss_kib() - before


def main() -> None:
    import nest

    for n in [int(a) for a in sys.argv[1:]] or [20_000, 65_802]:
        row = {"n": n}
        for model in ("spike_recorder", "iaf_psc_delta"):
            kib = connect_cost(nest, n, model)
            row[f"to_{model}_mib"] = round(kib / 1024, 1)
            row[f"to_{model}_bytes_each"] = round(kib * 1024 / n)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
