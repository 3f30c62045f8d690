"""What a pipeline stage is told (its flags, as PipelineStageConfig) and the checks of them
and of the peers that connect to it, as pure functions: the flags against the plan
(``check_stage``) and a peer's hello against the plan, the stage and its certificate
(``admit``)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from darwin_dra.engine.network import Reset
from darwin_dra.pipeline.inputs import InputSpec
from darwin_dra.pipeline.samples import SampleLayout
from darwin_dra.pipeline.split import INPUT, SplitPlan
from darwin_dra.runtime import framing
from darwin_dra.runtime.tls import TlsFiles

PRODUCER = "producer"  # the sender's name on a socket input
MAX_INPUT_QUEUE = 1 << 24


def step_capacities(n_inputs: int, n_export: int, window: int) -> tuple[int, int]:
    """(export, input) capacity of an engine stage's partition, in spikes: what one Step of at
    most ``window`` steps can carry, each neuron or input at most once a step (pure). The
    chip's side holds buffers of these sizes for the stage, so a stage asks for no more."""
    return max(1, n_export * window), min(MAX_INPUT_QUEUE, max(1, n_inputs * window))


def plan_digest(plan: SplitPlan) -> str:
    """Both ends of an edge must run the same plan: the hello carries this."""
    return hashlib.sha256(plan.to_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PipelineStageConfig:
    model: Path
    plan: Path
    stage: str
    endpoint: str | None = None
    listen: str | None = None
    downstream: Mapping[str, str] = field(default_factory=dict)
    tls: TlsFiles | None = None
    input: InputSpec | None = None
    steps: int | None = None  # model steps
    window: int = 10
    lookahead: int = 4
    rate: float | None = None
    metrics_port: int | None = None
    output: Path | None = None
    connect_timeout_s: float = 120.0
    dt: float | None = None
    reset: Reset | None = None
    samples: SampleLayout | None = None  # the input file's samples, and where a readout is read
    # neighbours whose partitions are on this stage's chip: their edges go over the chip's
    # router (runtime/pipeline_routes.py), no stream
    on_chip: frozenset[str] = frozenset()

    @property
    def credit_steps(self) -> int:
        """How far a sender may run past a receiver's acknowledgement: what a stage's senders
        wait for and what it refuses a frame beyond (so what it buffers of an edge)."""
        return self.lookahead * self.window

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("--window must be at least 1 step")
        if self.lookahead < 1:
            raise ValueError("--lookahead must be at least 1 window")
        if self.steps is not None and self.steps < 0:
            raise ValueError("--steps must be >= 0")
        if self.rate is not None and not self.rate > 0:
            raise ValueError("--rate must be > 0 steps per second")


def check_stage(
    cfg: PipelineStageConfig,
    kind: str,
    downstream: Collection[str],
    upstreams: Collection[str],
) -> None:
    """The flags of stage ``cfg.stage`` (of ``kind``) against the plan's ``downstream`` and
    ``upstreams`` of it; ValueError naming the flag."""
    name = cfg.stage
    ups = list(upstreams)
    routed = set(cfg.on_chip)
    if routed - set(downstream) - set(ups):
        raise ValueError(
            f"stage {name}: --on-chip {', '.join(sorted(routed - set(downstream) - set(ups)))} "
            "is not a neighbour of it in the plan"
        )
    if routed and kind != "engine":
        raise ValueError(f"--on-chip is for engine stages, not {kind} stage {name}")
    if routed & set(cfg.downstream):
        raise ValueError(
            f"stage {name}: {', '.join(sorted(routed & set(cfg.downstream)))} is --on-chip, "
            "so it takes no --downstream"
        )
    downs = set(downstream) - routed
    ups = [u for u in ups if u not in routed]
    if kind == "engine" and cfg.input is not None:
        check_drawn_input(cfg.input.kind, name, ups)
        ups = [u for u in ups if u != INPUT]
    given = set(cfg.downstream)
    if downs - given:
        raise ValueError(
            f"stage {name}: no --downstream for {', '.join(sorted(downs - given))} "
            f"(the plan sends to {', '.join(sorted(downs)) or 'nobody'})"
        )
    if given - downs:
        raise ValueError(
            f"stage {name}: --downstream {', '.join(sorted(given - downs))} is not a "
            f"downstream of it in the plan ({', '.join(sorted(downs)) or 'none'})"
        )
    if ups and not cfg.listen:
        raise ValueError(f"stage {name} has upstreams ({', '.join(ups)}): give --listen")
    if kind == "engine" and not cfg.endpoint:
        raise ValueError(f"engine stage {name} needs --endpoint or DARWIN_SPIKE_ENDPOINT")
    if kind == "input":
        if cfg.input is None:
            raise ValueError("the input stage needs --input")
        if cfg.samples is not None and cfg.input.kind != "file":
            raise ValueError(
                f"--samples {cfg.samples} reads a file of samples, not {cfg.input.kind}"
            )
    elif cfg.input is not None and kind != "engine":
        raise ValueError(
            f"--input is for the input stage or an engine stage that reads the model's input, "
            f"not {kind} stage {name}"
        )
    if cfg.rate is not None and not (kind == "input" or cfg.input is not None):
        raise ValueError(f"--rate paces the stage that reads the input, not {kind} stage {name}")
    if cfg.output is not None and kind not in ("output", "engine"):
        raise ValueError(f"--output is for the output stage or a readout, not {kind} stage {name}")


def check_drawn_input(kind: str, stage: str, upstreams: Collection[str]) -> None:
    """An engine stage may draw the model's input itself (``--input`` on it) instead of
    receiving it from the input stage: for a Poisson input (drawn per (seed, step), so every
    stage draws the same spikes) or a file (each reads its own copy), never for a socket (one
    producer connects to one place); and only a stage that reads the input in the plan."""
    if kind == "socket":
        raise ValueError(
            f"--input socket on engine stage {stage}: a producer connects to the input stage "
            "only; draw a poisson or file input in place"
        )
    if INPUT not in upstreams:
        raise ValueError(f"--input on engine stage {stage}: it reads no model input in the plan")


def check_reset(samples: SampleLayout, window: int, latency: int) -> None:
    """Samples that start from rest: every sample must begin a window (the stages load afresh
    between two windows) and its outputs must come out before the next one begins."""
    if samples.period % window:
        raise ValueError(
            f"--samples {samples}: a period of {samples.period} steps is not a multiple of "
            f"--window {window}"
        )
    if samples.gap < latency:
        raise ValueError(
            f"--samples {samples}: the gap must be at least the model's latency ({latency} "
            "steps), or the last outputs of a sample are lost in the reset"
        )


class PeerRefused(ValueError):
    """A peer's hello (or certificate) that this stage does not admit (the message says why)."""


def admit(
    h: framing.Hello,
    cn: str | None,
    *,
    stage: str,
    digest: str,
    wanted: Mapping[str, int],
    connected: Collection[str],
    tls: bool,
) -> None:
    """A peer's hello (and, with ``tls``, its certificate's name ``cn``) against this stage:
    the same plan, meant for this stage, an upstream of it in the plan (``wanted``: upstream ->
    id space) with the space the plan says, not connected already. PeerRefused saying why."""
    if h.plan != digest:
        raise PeerRefused(f"{h.sender} runs plan {h.plan}, this stage runs {digest}")
    if h.receiver != stage:
        raise PeerRefused(f"{h.sender} meant stage {h.receiver}, this is {stage}")
    if h.sender not in wanted:
        raise PeerRefused(f"{h.sender} is not an upstream of {stage} in the plan")
    if tls and h.sender != PRODUCER and cn != h.sender:
        raise PeerRefused(f"a certificate for {cn!r} says it is {h.sender}")
    if h.space != wanted[h.sender]:
        raise PeerRefused(f"{h.sender} sends {h.space} ids, the plan says {wanted[h.sender]}")
    if h.sender in connected:
        raise PeerRefused(f"{h.sender} is already connected")
