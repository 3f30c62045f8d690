"""The demo's console: a running step on a terminal shows the last event of the demo's own log;
a log or a pipe gets the `done` lines only."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from darwin_dra.demo.story import Story, last_event
from rich.console import Console


def test_last_event_reads_the_last_json_line(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    assert last_event(log) == ""  # not written yet
    log.write_text(json.dumps({"event": "building kubernetes binaries"}) + "\nnot json\n")
    assert last_event(log) == "building kubernetes binaries"
    with log.open("a") as f:
        f.write("x" * 10_000 + "\n" + json.dumps({"event": "image: wheel built"}) + "\n")
    assert last_event(log) == "image: wheel built"


def test_a_running_step_shows_the_logs_last_event_on_a_terminal(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    out = io.StringIO()
    story = Story(Console(file=out, force_terminal=True, width=120), follow=log)
    with story.step("the driver's image"):
        log.write_text(json.dumps({"event": "image: layer written"}) + "\n")
        time.sleep(1.5)
    text = out.getvalue()
    assert "image: layer written" in text
    assert "done" in text
    assert story.timings[0][0] == "the driver's image"


def test_a_pipe_gets_the_done_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    log.write_text(json.dumps({"event": "image: layer written"}) + "\n")
    out = io.StringIO()
    story = Story(Console(file=out, force_terminal=False, width=120), follow=log)
    with story.step("the cluster"):
        time.sleep(0.6)
    assert out.getvalue().startswith("  done the cluster (")
    assert "layer written" not in out.getvalue()
