"""`darwin-dra split` as the controller's split pod runs it: the plan of a NIR model, read back
from the output the way the controller reads the pod's log; a bad file is one clear line."""

from __future__ import annotations

from pathlib import Path

from darwin_dra.pipeline.plan import from_split_json
from darwin_dra.pipeline.splitter import plan_from_log
from darwin_dra.testing.cli import Ran, run_cli

MODEL = Path(__file__).resolve().parents[1] / "data" / "digits_snntorch.nir"


def _cli(*args: str) -> Ran:
    return run_cli("split", *args)


def test_split_prints_the_plan_the_controller_reads() -> None:
    out = _cli("--model", str(MODEL), "--stages", "3", "--input-rate-hz", "200")
    assert out.returncode == 0, out.stderr
    text = plan_from_log("some log line\n" + out.stdout + "\nanother\n")
    assert text is not None
    plan = from_split_json(text)
    assert [s.name for s in plan.stages] == ["input", "s0", "s1", "s2", "output"]
    assert [s.kind for s in plan.stages] == ["input", "engine", "engine", "engine", "output"]


def test_split_of_a_bad_file_or_count_says_which() -> None:
    out = _cli("--model", "/nonexistent/model.nir")
    assert out.returncode == 1
    assert "splitting model.nir" in out.stderr
    assert plan_from_log(out.stdout) is None
    bad = _cli("--model", str(MODEL), "--stages", "lots")
    assert bad.returncode == 2
    assert "'lots': a number from 1 to 64, or auto" in bad.stderr
