"""The engine as it ships: a portable build (no -march=native) that picks its vector path at
run time, and says which."""

from __future__ import annotations

import importlib.util
import platform
from pathlib import Path

import pytest
from darwin_dra.engine import Engine

BUILD = Path(__file__).resolve().parents[2] / "native" / "build_engine.py"


def _compile_args() -> list[str]:
    spec = importlib.util.spec_from_file_location("build_engine", BUILD)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args: list[str] = mod.compile_args()
    return args


def test_the_shipped_build_targets_no_particular_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DARWIN_MARCH", raising=False)
    assert not any(a.startswith("-march") for a in _compile_args())
    monkeypatch.setenv("DARWIN_MARCH", "native")
    assert "-march=native" in _compile_args()  # only when asked for


def test_the_vector_path_is_chosen_at_run_time() -> None:
    path = Engine.simd_path()
    if platform.machine() == "x86_64":
        assert path in ("avx512f", "avx2", "x86-64 baseline")
        flags = Path("/proc/cpuinfo").read_text().split()
        assert (path == "avx512f") == ("avx512f" in flags)
    else:
        assert path.startswith("portable baseline")
