"""`darwin-dra bench scheduler` end to end on 3 simulated nodes, run the way a user runs it:
every pod bound by the real kube-scheduler for each layout (the capacity layout's claims
included), the scheduler's CPU cost per pod read, and a CPU profile of the scheduler written
for each run; the scheduler runs from a KubeSchedulerConfiguration (--nodes-to-score) and
drains a backlog (--backlog)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_scheduler_bench_binds_every_pod_and_profiles_the_scheduler(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable, "-m", "darwin_dra.cli.main", "bench", "scheduler",
            "--nodes", "3", "--pods", "9", "--layouts", "darwin,capacity,plain",
            "--timeout", "300", "--profile-dir", str(tmp_path), "--profile-seconds", "3",
            "--nodes-to-score", "50", "--backlog",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    lines = run.stdout.splitlines()  # the logs go there too: the table is the last one
    head = ["nodes", "score%", "start", "layout"]
    start = max(i for i, line in enumerate(lines) if line.split()[:4] == head)
    assert lines[start].rstrip().endswith("sched CPU ms/pod  plane CPU ms/pod"), lines[start]
    rows = lines[start + 2 : start + 5]
    by_layout = {r.split()[3]: r.split() for r in rows}
    assert set(by_layout) == {"darwin", "capacity", "plain"}
    for layout, cells in by_layout.items():
        assert cells[1:3] == ["50", "backlog"], cells
        assert cells[6] == cells[7], f"{layout}: not every pod was bound: {cells}"
        # The lease keeper's samples: every node Ready through the window, so the rate counts.
        assert cells[-7:-5] == ["0/0", "yes"], cells
        # Darwin pods cost the scheduler CPU it can count (10 ms clock ticks); 9 plain pods on
        # 3 nodes may cost less than a tick.
        sched_cpu = float(cells[-2])  # the column before the whole control plane's
        assert sched_cpu > 0 if layout == "darwin" else sched_cpu >= 0, cells
        # The plane's split (api, etcd, kcm, sched) adds up to its total, to rounding; the API
        # server answers every ungate, bind and status write, so it always counts ticks.
        api, etcd, kcm, plane = (float(c) for c in (*cells[-5:-2], cells[-1]))
        assert api > 0, cells
        assert abs(api + etcd + kcm + sched_cpu - plane) <= 2, cells
        profile = (tmp_path / f"sched-{layout}-3.pprof").read_bytes()
        assert profile[:2] == b"\x1f\x8b", f"{layout}: not a pprof (gzip) profile"
