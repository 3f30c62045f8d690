"""The exported model deployed as a two-stage pipeline whose cut is the training cut, and its
accuracy from the pipeline's output (the process edge: chip hosts and `darwin-dra stage`
processes on this machine, as `pipeline.local` runs them for the stage CLI test).

Stage s0 holds the edge's LIF layer, s1 the server's layer and the LI readout
(``split_at_layers``); s0 and s1 run on partitions of two chip hosts (node-a, node-b), every
edge TCP with mutual TLS. The input stage reads the held-out samples' rate-coded spikes as one
file of samples, one after another ``gap`` steps apart; the stream runs twice: with every
engine stage loading afresh at each sample's first step (``--samples ...,reset``: each sample
from rest, as the unsplit evaluation runs digit by digit), and with the state left to decay
in the gap. s1 reads the readout's potentials after every step through the
SpikePort and reports the class (argmax) at each sample's last step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from darwin_dra.models.digits import rate_code
from darwin_dra.models.nirfile import load_model
from darwin_dra.models.run import default_profile
from darwin_dra.pipeline.local import Slot, chip_hosts, launch, stage_certificates
from darwin_dra.pipeline.samples import SampleLayout
from darwin_dra.pipeline.split import split_at_layers
from darwin_dra.splitlearn.nirexport import CUT, engine_accuracy, stream_predictions

TRAINING_CUT = [[CUT], ["server", "readout"]]  # the layers of s0 and s1
READOUT_STAGE = "s1"


@dataclass(frozen=True)
class DeployCheck:
    """Two runs of the same stream: ``reset`` (every stage loads afresh at each sample, as the
    unsplit engine evaluation runs digit by digit) and ``decay`` (the state left to decay in
    the gap, as the unsplit engine's one-stream check)."""

    pipeline_accuracy: float  # reset: the classes the pipeline's s1 reported
    one_piece_accuracy: float  # the unsplit engine, digit by digit from rest
    agreement: float  # share of samples where both give the same class
    decay_accuracy: float  # decay: the pipeline's classes
    decay_one_piece_accuracy: float  # the unsplit engine on the same one stream
    decay_agreement: float
    samples: int
    gap: int  # silent steps between samples
    stages: list[str]
    cut_spikes_per_sample: float  # s0 -> s1 in the reset run, as the pipeline carried them
    cut_bytes_per_sample: float  # the same edge's bytes on the wire (frames, hello, end)
    seconds: float  # the reset run's slowest stage's wall time


def deploy_and_check(
    nir_file: Path,
    work: Path,
    pixels: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int64],
    steps: int,
    gap: int,
    window: int = 16,
    timeout_s: float = 900.0,
) -> DeployCheck:
    """Runs the held-out ``pixels`` through the pipeline of ``nir_file`` and compares its
    classes with ``labels`` and with the unsplit engine's."""
    work.mkdir(parents=True, exist_ok=True)
    model = load_model(nir_file)
    plan = split_at_layers(model, TRAINING_CUT)
    plan_file = work / "plan.json"
    plan_file.write_text(plan.to_json())
    x = rate_code(pixels, steps)
    samples_file = work / "samples.npy"
    np.save(samples_file, x)
    names = [s.name for s in plan.stages]
    tls, _ = stage_certificates(work, names)
    nodes = {"s0": "node-a", "s1": "node-b"}
    whole = tuple(range(default_profile().n_domains))  # a whole chip each, as the unsplit run
    slots = {s.name: Slot(nodes[s.name], 0, whole) for s in plan.engine_stages()}
    runs: dict[bool, tuple[npt.NDArray[np.int64], dict[str, dict[str, Any]]]] = {}
    with chip_hosts(work, slots, chips_per_node=1) as endpoints:
        for reset in (True, False):
            layout = SampleLayout(steps, gap, reset)
            run_dir = work / ("reset" if reset else "decay")
            run_dir.mkdir(exist_ok=True)
            readout_file = run_dir / "readout.npz"
            run = launch(
                run_dir, nir_file, plan_file, plan, endpoints,
                ["--input", f"file:{samples_file}"], steps=len(x) * layout.period,
                window=window, tls=tls, extra=["--samples", str(layout)],
                stage_outputs={READOUT_STAGE: readout_file},
            )  # fmt: skip
            reports = run.wait(timeout_s)
            runs[reset] = (_classes(reports, readout_file, len(x)), reports)
    rest = engine_accuracy(model, pixels, labels, steps)
    stream = stream_predictions(model, pixels, steps, gap)
    (classes, reports), (decayed, _) = runs[True], runs[False]
    cut = reports["s0"]["sent"][READOUT_STAGE]
    return DeployCheck(
        pipeline_accuracy=float(np.mean(classes == labels)),
        one_piece_accuracy=float(np.mean(rest == labels)),
        agreement=float(np.mean(classes == rest)),
        decay_accuracy=float(np.mean(decayed == labels)),
        decay_one_piece_accuracy=float(np.mean(stream == labels)),
        decay_agreement=float(np.mean(decayed == stream)),
        samples=len(x),
        gap=gap,
        stages=names,
        cut_spikes_per_sample=cut["spikes"] / len(x),
        cut_bytes_per_sample=cut["bytes"] / len(x),
        seconds=max(float(r["wall_s"]) for r in reports.values()),
    )


def _classes(
    reports: dict[str, dict[str, Any]], readout_file: Path, samples: int
) -> npt.NDArray[np.int64]:
    """The classes s1 reported for every sample, checked against its --output file."""
    readout = reports[READOUT_STAGE].get("readout")
    if readout is None or readout["samples"] != samples:
        raise RuntimeError(f"stage {READOUT_STAGE} reported no readout of {samples} samples")
    if dropped := sum(int(r["dropped"]) for r in reports.values()):
        raise RuntimeError(f"the engine dropped {dropped} spikes or events in the pipeline")
    classes = np.asarray(readout["classes"], np.int64)
    with np.load(readout_file) as z:
        if not np.array_equal(z[f"{readout['output']}.classes"], classes):
            raise RuntimeError(f"{readout_file}: its classes are not the report's")
    return classes
