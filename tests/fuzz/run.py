"""Run one fuzz target under atheris: `python -m tests.fuzz.run TARGET [libFuzzer flags]`.

libFuzzer's own `Done N runs in S second(s)` ends a clean run; a finding (an exception other
than the target's documented error) stops the run with atheris's report and a non-zero exit,
and leaves the input in the working directory as crash-<sha1>. Only the project's own modules
are instrumented for coverage (the libraries under them are not the target).

The driver's log lines (a few an input for the dra target: a million inputs would write
gigabytes) are rendered by the services' own JSON chain and dropped; FUZZ_LOGS=1 keeps them on
stderr.
"""

from __future__ import annotations

import os
import sys

import atheris
import structlog

from tests.fuzz.targets import TARGETS


def _logs() -> None:
    from darwin_dra.logs import configure

    configure("INFO")
    if os.environ.get("FUZZ_LOGS") != "1":
        sink = open(os.devnull, "w")  # noqa: SIM115 (the process's whole life)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(f"usage: run.py TARGET [libFuzzer flags]; targets: {', '.join(TARGETS)}")
        return 2
    _logs()
    atheris.Setup([argv[0], *argv[2:]], TARGETS[argv[1]])
    atheris.Fuzz()  # exits the process when the runs are done
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
