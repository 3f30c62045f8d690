"""Every fuzz target runs in CI: the Makefile's FUZZ_TARGETS (make fuzz-short, make fuzz) lists
exactly the targets of tests/fuzz/targets.py. Read as text: importing the targets would
instrument the driver's modules for coverage in this test process."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_fuzz_runs_every_target() -> None:
    source = (ROOT / "tests/fuzz/targets.py").read_text()
    table = source[source.index("TARGETS: dict") :]
    targets = re.findall(r'^\s+"([a-z-]+)": \w+,$', table, re.MULTILINE)
    [line] = [
        x for x in (ROOT / "Makefile").read_text().splitlines() if x.startswith("FUZZ_TARGETS")
    ]
    assert "stage-wire" in targets
    assert line.split(":=")[1].split() == targets
