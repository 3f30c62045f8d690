"""The command index of `darwin-dra`: each run imports only its command's modules."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import darwin_dra.cli
import pytest
from darwin_dra.cli.main import COMMANDS, build_parser


def _choices(parser: argparse.ArgumentParser) -> set[str]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_commands_modules_register_that_command_and_no_other(command: str) -> None:
    assert _choices(build_parser([command])) == {command}


def test_every_module_that_registers_a_command_is_in_the_index() -> None:
    indexed = {m for modules in COMMANDS.values() for m in modules}
    registering = {
        info.name
        for info in pkgutil.iter_modules(darwin_dra.cli.__path__)
        if hasattr(importlib.import_module(f"darwin_dra.cli.{info.name}"), "register")
    }
    assert registering == indexed


def test_help_and_unknown_words_see_every_command() -> None:
    assert _choices(build_parser(["--help"])) == set(COMMANDS)
    assert _choices(build_parser(["no-such-command"])) == set(COMMANDS)


def test_a_short_command_does_not_import_the_kubernetes_client_or_scipy() -> None:
    code = (
        "import sys\n"
        "from darwin_dra.cli.main import main\n"
        "try:\n"
        "    main(['fault', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('kubernetes', 'scipy', 'nir') if m in sys.modules)\n"
        "print('heavy=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "heavy="


def test_the_console_script_runs_a_command() -> None:
    script = Path(sys.executable).with_name("darwin-dra")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("darwin-dra ")
