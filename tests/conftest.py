"""Shared fixtures: the shipped chip profile and engines built from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.hardware.profiles import load_profiles


@pytest.fixture(scope="session")
def darwin3() -> ChipProfile:
    return load_profiles()["darwin3"]


@pytest.fixture
def engine(darwin3: ChipProfile) -> Iterator[Engine]:
    """An engine with two darwin3 chips on one fabric."""
    with Engine() as eng:
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="T-0", fabric="f0"))
        eng.add_chip(darwin3, ChipEntry(model="darwin3", serial="T-1", fabric="f0"))
        yield eng
