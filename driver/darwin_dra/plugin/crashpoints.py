"""Crash points, for tests only: the plugin stops at a named step of prepare or unprepare, to be
killed there with SIGKILL.

Off unless the plugin is started with ``--crash-points-file PATH`` (env
``DARWIN_CRASH_POINTS_FILE``; the chart's ``kubeletPlugin.crashPointsFile``, empty by default).
Then, at each step below, the plugin reads that file; when it names the step, the plugin removes
it (so the restarted plugin passes the step), writes ``PATH.reached`` naming the step, and holds
there, the node lock taken and the kubelet's call unanswered, until it is killed. The killer is
the test, from outside: in its container the plugin is its PID namespace's init, and the kernel
ignores a SIGKILL that init sends itself. A test on real nodes writes the file through the
node's hostPath, waits for ``.reached``, kills the plugin's process with SIGKILL and watches the
kubelet restart its container and retry. The steps are PREPARE and UNPREPARE below, in the order
a prepare and an unprepare reach them, each just after its side effect
(tests/integration/test_plugin_kill_real.py kills at each).
"""

from __future__ import annotations

import time
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

    @property
    def reached_path(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.name + ".reached")

    def hold(self) -> None:
        while True:  # until SIGKILL
            time.sleep(3600)

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
        assert self.reached_path is not None
        self.reached_path.write_text(f"{point}\n")
        log.warning("crash point reached: holding here until killed", point=point)
        self.hold()
