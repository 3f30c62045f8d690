"""Flags with environment-variable twins: a pod sets the environment (downward API, Helm
values), a person types flags, and a flag on the command line wins."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any


def env_option(
    parser: argparse.ArgumentParser,
    flag: str,
    env: str,
    help: str,
    *,
    default: str | None = None,
    type: Callable[[str], Any] = str,
    **kwargs: Any,
) -> None:
    """An option whose default is $env, else ``default``. Both are strings that argparse
    converts with ``type`` like a typed flag, so a bad value in the environment gets the same
    clear usage error as a bad flag."""
    note = f"env {env}" + (f"; default {default}" if default else "")
    parser.add_argument(
        flag, type=type, default=os.environ.get(env) or default, help=f"{help} ({note})", **kwargs
    )


def env_switch(
    parser: argparse.ArgumentParser, flag: str, env: str, help: str, *, when: str = "true"
) -> None:
    """A store_true switch that $env=``when`` (or 1 for "true") also turns on."""
    value = (os.environ.get(env) or "").lower()
    on = value == when or (when == "true" and value == "1")
    parser.add_argument(flag, action="store_true", default=on, help=f"{help} (env {env}={when})")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value
