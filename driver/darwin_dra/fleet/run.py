"""`darwin-dra bench fleet`: the same trace replayed on a fresh local control plane per model.

Each model gets its own cluster (real etcd, kube-apiserver, kube-scheduler and
kube-controller-manager from driver/darwin_dra/cluster, started with no nodes): the fleet's
Node objects, Leases and slices are created here through kubeapi, so no state of one run
leaks into the other.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_dra import kubeapi
from darwin_dra.cluster import build, launcher
from darwin_dra.fleet import replay
from darwin_dra.fleet.catalogue import Catalogue, darwin_catalogue, plain_catalogue
from darwin_dra.fleet.layout import FleetShape, chip_views, fleet_inventory
from darwin_dra.fleet.leases import LeaseKeeper
from darwin_dra.fleet.metrics import Summary, summarise
from darwin_dra.fleet.readiness import judge
from darwin_dra.fleet.trace import Job, TraceConfig, generate
from darwin_dra.hardware.model import Inventory
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.partitions import CAPACITY_PARTITIONS, PARTITION_KINDS

NAMESPACE = "fleet"

# Client rate limits raised for benchmarks (docs/fleet.md): kube-scheduler's default 50 QPS is
# used up by two writes a DRA pod (the claim's allocation, the binding), and the controller
# manager's default 20 QPS by creating and deleting generated claims.
BENCH_FLAGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kube-scheduler", ("--kube-api-qps=500", "--kube-api-burst=1000")),
    ("kube-controller-manager", ("--kube-api-qps=300", "--kube-api-burst=600")),
    ("kube-apiserver", ("--max-requests-inflight=1000", "--max-mutating-requests-inflight=500")),
)


# The same client limits as KubeSchedulerConfiguration fields: with --config, kube-scheduler
# ignores its --kube-api-qps/--kube-api-burst flags.
BENCH_SCHEDULER_CLIENT = {"clientConnection": {"qps": 500, "burst": 1000}}


def bench_cluster(
    directory: Path,
    extra: tuple[tuple[str, tuple[str, ...]], ...] = (),
    scheduler: Mapping[str, Any] | None = None,
) -> tuple[launcher.LocalCluster, build.Binaries]:
    """A local control plane with no nodes, the benchmark's rate limits and ``extra`` flags
    (by component; a flag given again wins over the default). ``scheduler``:
    KubeSchedulerConfiguration fields (e.g. ``{"percentageOfNodesToScore": 10}``); the
    scheduler then runs with --config, its client limits in the file instead of flags."""
    binaries = build.ensure_binaries()
    flags = BENCH_FLAGS + extra
    settings = None
    if scheduler is not None:
        flags = tuple((comp, more) for comp, more in flags if comp != "kube-scheduler")
        settings = {**BENCH_SCHEDULER_CLIENT, **scheduler}
    config = launcher.ClusterConfig(directory, nodes=0, extra_args=flags, scheduler_config=settings)
    return launcher.LocalCluster(config, binaries), binaries


@dataclass(frozen=True)
class FleetRun:
    shape: FleetShape
    trace: TraceConfig
    compression: float  # trace seconds per wall second
    models: tuple[str, ...] = ("blackbox", "darwin")
    keep_dir: Path | None = None


def fleet_views(inventory: Inventory) -> dict[str, list[ChipView]]:
    profiles = load_profiles()
    return {n.name: chip_views(inventory, profiles, n.name) for n in inventory.nodes}


def fleet_cores(shape: FleetShape) -> tuple[int, int]:
    """The fleet's cores and its largest chip's (what a whole-chip training job keeps busy)."""
    chips = [c for views in fleet_views(fleet_inventory(shape)).values() for c in views]
    return sum(c.n_cores for c in chips), max(c.n_cores for c in chips)


# The slice layout each resource model publishes (the plugin's --partitions for Darwin).
MODEL_LAYOUTS = {"blackbox": "plain", "darwin": "darwin", "capacity": "capacity"}


def catalogue(model: str, fleet: Mapping[str, Sequence[ChipView]]) -> Catalogue:
    if model == "blackbox":
        return plain_catalogue(fleet)
    return darwin_catalogue(fleet, CAPACITY_PARTITIONS if model == "capacity" else PARTITION_KINDS)


def whole_chip_domains(fleet: Mapping[str, Sequence[ChipView]]) -> dict[str, int]:
    """Chip model -> the domains a whole chip of it has, most domains first (the weaker
    router: training leaves the strong routers to the spike-heavy jobs)."""
    found = {c.model: len(c.domains) for views in fleet.values() for c in views}
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def replay_on_cluster(
    model: str,
    jobs: Sequence[Job],
    fleet: Mapping[str, Sequence[ChipView]],
    run: FleetRun,
    directory: Path,
    progress: Callable[[str], None],
) -> tuple[Summary, list[str]]:
    cluster, binaries = bench_cluster(directory)
    cluster.up()
    keeper: LeaseKeeper | None = None
    try:
        kube = kubeapi.connect_fleet(cluster.kubeconfig)
        keeper = LeaseKeeper(kube, cluster.kubeconfig, list(fleet), binaries.version)
        keeper.register()
        slices = replay.fleet_slices(fleet, MODEL_LAYOUTS[model])
        replay.install(kube, slices, model, NAMESPACE)
        progress(f"{model}: {len(fleet)} nodes, {len(slices)} slices, {len(jobs)} jobs")
        rep = replay.Replay(
            kube, jobs, model, NAMESPACE, run.compression, run.trace.length_s, progress,
            whole_chip_domains(fleet),
        )  # fmt: skip
        start = keeper.sample_now().at_s  # the fleet's state as the trace begins
        records = rep.run()
        keeper.sample_now()
        ready = judge(keeper.samples(), len(fleet), start, time.monotonic())
        if not ready.valid:
            rep.errors.append(f"{model}: {ready.reason}")
        summary = summarise(model, jobs, records, catalogue(model, fleet), run.trace.length_s)
        return summary, rep.errors
    finally:
        if keeper is not None:
            keeper.stop()
        cluster.down()


def run_fleet(run: FleetRun, progress: Callable[[str], None]) -> tuple[list[Summary], list[str]]:
    inventory = fleet_inventory(run.shape)
    fleet = fleet_views(inventory)
    jobs = generate(run.trace)
    summaries: list[Summary] = []
    errors: list[str] = []
    for model in run.models:
        directory = run.keep_dir / model if run.keep_dir else Path(tempfile.mkdtemp(prefix="fl-"))
        try:
            summary, errs = replay_on_cluster(model, jobs, fleet, run, directory, progress)
        finally:
            if run.keep_dir is None:
                shutil.rmtree(directory, ignore_errors=True)
        summaries.append(summary)
        errors += [f"{model}: {e}" for e in errs]
    return summaries, errors
