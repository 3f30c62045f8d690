"""A NIR file split into a pipeline's stages: the file read and pipeline/split.py's
``plan_split`` called, with every failure one ModelError that names the file."""

from __future__ import annotations

from pathlib import Path

# `darwin-dra split` prints the plan as one line after this marker (a pod's log mixes streams).
PLAN_PREFIX = "darwin-dra split plan: "


class ModelError(ValueError):
    """The model cannot be read or split; the message says which object or file and why."""


def split_model(path: Path, stages: int | None, rate: float) -> str:
    """The SplitPlan JSON of the NIR file at ``path``, ``stages`` engine stages (None: auto)
    at ``rate`` timesteps per second."""
    from darwin_dra.models.nirfile import load_model
    from darwin_dra.pipeline.split import plan_split

    try:
        plan = plan_split(load_model(path), stages, steps_per_s=float(rate))
    except (ValueError, OSError, KeyError) as exc:
        raise ModelError(f"splitting {path.name}: {exc}") from None
    return plan.to_json()


def plan_from_log(log: str) -> str | None:
    """The plan a `darwin-dra split` run printed, from its log; None if it printed none."""
    for line in reversed(log.splitlines()):
        if line.startswith(PLAN_PREFIX):
            return line[len(PLAN_PREFIX) :]
    return None
