"""Crash points, for tests only: the plugin SIGKILLs itself at a named step of prepare or unprepare.

Off unless the plugin is started with ``--crash-points-file PATH`` (env
``DARWIN_CRASH_POINTS_FILE``; the chart's ``kubeletPlugin.crashPointsFile``, empty by default).
Then, at each step below, the plugin reads that file; when it names the step, the plugin removes
the file (so the restarted plugin goes on) and kills itself with SIGKILL, as a node's OOM killer
or a power cut would: no handler, no flush, no clean-up. A test on real nodes writes the file
through the node's hostPath and watches the kubelet restart the plugin's container and retry.
The steps are PREPARE and UNPREPARE below, in the order a prepare and an unprepare reach them,
each just after its side effect (tests/integration/test_plugin_kill_real.py kills at each).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

# After PrepareStarted is on disk; after the claim's first partition exists in the chip host;
# after its CDI spec is written; after PrepareCompleted is on disk; after its status.devices is
# written (the last step before the kubelet's reply).
PREPARE = (
    "prepare-started-saved",
    "partition-created",
    "cdi-written",
    "prepare-completed-saved",
    "status-written",
)
# After the claim's first partition is destroyed; after its CDI spec and spike socket
# directories are removed; after the checkpoint without the claim is on disk (before the reply).
UNPREPARE = ("partition-destroyed", "files-removed", "unprepare-saved")
POINTS = PREPARE + UNPREPARE


class CrashPoints:
    """``reached(step)`` at each step; does nothing unless armed by a file naming that step."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    def reached(self, point: str) -> None:
        if point not in POINTS:
            raise ValueError(f"unknown crash point {point!r}; known: {', '.join(POINTS)}")
        if self.path is None:
            return
        try:
            armed = self.path.read_text().strip()
        except FileNotFoundError:
            return
        if armed not in POINTS:
            log.error("the crash points file names no known step", path=str(self.path),
                      content=armed[:80], known=list(POINTS))  # fmt: skip
            return
        if armed != point:
            return
        self.path.unlink()  # one shot: the restarted plugin passes this step
        log.warning("crash point reached: killing this process with SIGKILL", point=point)
        os.kill(os.getpid(), signal.SIGKILL)
