"""`darwin-dra demo`, the main job, run the way a user runs it: every example pod runs, a
failed domain taints its devices and evicts the pod on it, deleting pods unprepares claims."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_end_to_end(tmp_path_factory: pytest.TempPathFactory) -> None:
    # a short path: plugin sockets below it must fit a unix socket address
    work = Path(tmp_path_factory.mktemp("demo", numbered=True))
    out = subprocess.run(
        [sys.executable, "-m", "darwin_dra.cli.main", "demo", "--dir", str(work)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    text = out.stdout
    assert out.returncode == 0, text[-3000:] + out.stderr[-3000:]
    table = text[text.index("4. what each pod got") : text.index("5. domain")]
    for pod in ("legacy", "pipeline", "quad-or-domains", "shared-250k", "two-domains"):
        row = next(line for line in table.splitlines() if line.strip().startswith(pod + " "))
        assert " Running " in row, row
        assert "(not allocated)" not in row, row
    # the legacy pod asked darwin.snn.io/domain: 2 in its limits and got two domain devices
    assert re.search(r"legacy .*/chip-\d-domain-\d+ .*/chip-\d-domain-\d+", table)
    assert "fabric-wafer-0/fabric-wafer-0" in table  # the pipeline holds fabric bandwidth
    assert "DARWIN_CORES=" in table
    assert "darwin.snn.io/unhealthy on:" in text
    assert "kube-controller-manager evicted the pods on those devices" in text
    assert "CDI specs left: 0; claims left in darwin-demo: 0" in text
