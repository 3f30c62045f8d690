"""Runs `darwin-dra ARGS` in this process, the way its console script does, for tests.

The console script is `main(sys.argv[1:])` and an exit code; running that here rather than in a
new interpreter saves each test the interpreter's start and the imports (about a second each on
these machines), while the parsing, the command and its errors are the ones a user gets.
tests/cli/test_main.py still starts the real console script once.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass


@dataclass(frozen=True)
class Ran:
    """What a run printed and returned, shaped like subprocess.CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> Ran:
    from darwin_dra.cli.main import main  # here: the command's modules load on first use

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's errors and --help, or a command's sys.exit
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                err.write(exc.code + "\n")
    return Ran(code, out.getvalue(), err.getvalue())
