"""Shared fixtures: the shipped chip profile and engines built from it; and the rule that a
test that starts a cluster carries the `integration` marker (so `make unit` never starts one)."""

from __future__ import annotations

import os

# One BLAS thread per test process, set before numpy loads: the tests' matrices are small, and
# with pytest-xdist workers and chip-host subprocesses sharing two cores, OpenBLAS's spinning
# threads made a 60-epoch decoder test take 10 s instead of 0.4 s. A caller's setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from darwin_dra.engine import Engine  # noqa: E402
from darwin_dra.hardware.model import ChipEntry, ChipProfile  # noqa: E402
from darwin_dra.hardware.profiles import load_profiles  # noqa: E402


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


# The session fixtures of tests/integration/conftest.py that start a local cluster.
CLUSTER_FIXTURES = frozenset({"cluster", "real_cluster"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a run in which a test starts a cluster (it lives in tests/integration or uses a
    cluster fixture) without the `integration` marker: `-m "not integration"` must not start
    one."""
    unmarked = [
        item.nodeid
        for item in items
        if item.get_closest_marker("integration") is None
        and (
            item.nodeid.startswith("tests/integration/")
            or CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that start a cluster need @pytest.mark.integration: " + ", ".join(unmarked)
        )
