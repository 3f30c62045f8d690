"""The demo's console: chapters, timed steps with a live progress display, and what each step
took. Component logs never come here (they go to files, see logs.py); only the story does. On a
terminal a running step also shows the last event of the demo's own JSON log (the builders' and
the launcher's: "building kubernetes binaries", "image: wheel built"), so a long step says
what it is doing."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from darwin_dra.polling import wait_for as wait_for  # the demo's steps import it from here

# Advance a step's bar: (done, total).
Tick = Callable[[int, int], None]


@dataclass
class Story:
    console: Console
    timings: list[tuple[str, float]] = field(default_factory=list)
    chapters: int = 0
    follow: Path | None = None  # the demo's JSON log, its last event shown by a running step

    def chapter(self, title: str) -> None:
        self.chapters += 1
        self.console.print()
        self.console.rule(f"[bold]{self.chapters}. {title}", align="left")

    def say(self, text: RenderableType = "", style: str | None = None) -> None:
        self.console.print(text, style=style, highlight=False)

    def note(self, label: str, text: str) -> None:
        """`  asked: ...`, `  given: ...`, `  why:   ...` lines of a scenario."""
        self.console.print(f"  [bold]{label + ':':<7}[/] {text}", highlight=False, soft_wrap=True)

    def table(self, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
        t = Table(*header, header_style="bold", box=None, pad_edge=False)
        for row in rows:
            t.add_row(*row)
        self.console.print(t)

    @contextlib.contextmanager
    def step(self, title: str, total: int | None = None) -> Iterator[Tick]:
        """A timed step: a spinner (or a bar when `total` is known) while it runs, then
        `done <title> (12.3 s)`; on failure `FAILED <title>` and the exception goes on."""
        started = time.monotonic()
        if not self.console.is_terminal:  # a log or a pipe: no live display, the result only
            try:
                yield lambda done, of: None
            except BaseException as exc:
                self._failed(title, started, exc)
                raise
            self._done(title, started)
            return
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.completed}/{task.total}" if total else ""),
            TimeElapsedColumn(),
        )
        progress = Progress(*columns, console=self.console, transient=True)
        task = progress.add_task(title, total=total)

        def tick(done: int, of: int) -> None:
            progress.update(task, completed=done, total=of)

        stop = threading.Event()

        def follow() -> None:
            while not stop.wait(0.5):
                event = last_event(self.follow) if self.follow else ""
                progress.update(task, description=f"{title}  [dim]{event}[/]" if event else title)

        watcher = threading.Thread(target=follow, daemon=True)
        try:
            with progress:
                watcher.start()
                yield tick
        except BaseException as exc:
            self._failed(title, started, exc)
            raise
        finally:
            stop.set()
        self._done(title, started)

    def _failed(self, title: str, started: float, exc: BaseException) -> None:
        what = "[yellow]interrupted[/]" if isinstance(exc, KeyboardInterrupt) else "[red]FAILED[/]"
        self.console.print(f"  {what} {title} after {time.monotonic() - started:.1f} s")

    def _done(self, title: str, started: float) -> None:
        seconds = time.monotonic() - started
        self.timings.append((title, seconds))
        self.console.print(f"  [green]done[/] {title} [dim]({seconds:.1f} s)[/]", highlight=False)


def last_event(path: Path, tail: int = 4096) -> str:
    """The `event` of the last JSON line of a structlog file ("" if there is none yet)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, 2) - tail))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            got = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(got, dict) and isinstance(got.get("event"), str):
            return str(got["event"])
    return ""
