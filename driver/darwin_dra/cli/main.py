"""Entry point of the `darwin-dra` command: each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from darwin_dra import __version__

# Each command and the modules (under darwin_dra.cli) that register it and its subcommands, in
# registration order. A run imports only its command's modules: importing all of them (the
# Kubernetes client, scipy, the NIR tooling) costs about a second, paid by every short command.
# tests/cli/test_main.py checks that each module registers exactly the command listed here.
COMMANDS: dict[str, tuple[str, ...]] = {
    "inventory": ("inventory",),
    "bench": ("bench", "bench_plugin", "bench_run", "bench_pod", "bench_pipeline", "fleet"),
    "cluster": ("cluster",),
    "kubelet-plugin": ("kubelet_plugin",),
    "chip-host": ("chip_host",),
    "controller": ("controller",),
    "fault": ("fault",),
    "status": ("status",),
    "demo": ("demo",),
    "stage": ("stage",),
    "plan": ("plan",),
    "run": ("run",),
    "model": ("model",),
    "split-learn": ("split_learn",),
    "split": ("split",),
}


def _modules_for(argv: Sequence[str]) -> tuple[str, ...]:
    # The top-level parser has no option that takes a value, so the first word that is not an
    # option names the command. Help, a typo or no command at all needs every command.
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in COMMANDS:
        return COMMANDS[command]
    return tuple(m for modules in COMMANDS.values() for m in modules)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser of ``argv``'s command, or of every command when ``argv`` names none."""
    parser = argparse.ArgumentParser(
        prog="darwin-dra",
        description="Kubernetes DRA driver for Darwin-class neuromorphic chips.",
    )
    parser.add_argument("--version", action="version", version=f"darwin-dra {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _modules_for(argv):
        importlib.import_module(f"darwin_dra.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(args_in).parse_args(args_in)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
