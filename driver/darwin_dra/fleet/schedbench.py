"""`darwin-dra bench scheduler`: the real kube-scheduler on N simulated nodes, Darwin slices
against plain slices (one device per chip), in the same run.

For each layout a fresh control plane (no nodes) gets N Node objects kept Ready by their
Leases, the slices of the layout, and P pods created with a scheduling gate (so the
kube-controller-manager makes their claims before the clock starts). The gates are then
removed as fast as the bench can patch, and every pod's bind is observed on a watch:
pods/s = bound pods / (last bind - first ungate); latency = bind seen - ungate returned.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from darwin_dra import kubeapi
from darwin_dra.controller.deviceclasses import device_classes
from darwin_dra.fleet import claims, replay
from darwin_dra.fleet.layout import FleetShape, fleet_inventory, plain_slices
from darwin_dra.fleet.leases import LeaseKeeper
from darwin_dra.fleet.readiness import judge
from darwin_dra.fleet.run import bench_cluster, fleet_views
from darwin_dra.fleet.schedclaims import CLAIM_KINDS, capacity_claim, darwin_claim, plain_mix
from darwin_dra.kubetypes import Obj
from darwin_dra.resources.chips import ChipView
from darwin_dra.resources.partitions import (
    CAPACITY_PARTITIONS,
    LIGHT_PARTITIONS,
    PARTITION_KINDS,
)
from darwin_dra.resources.slices import SliceLayout, build_slices

NAMESPACE = "sched"
GATE = "darwin.snn.io/bench"
LAYOUTS = ("darwin", "light", "capacity", "plain")


def gated_pod(name: str, template: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "schedulingGates": [{"name": GATE}],
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "job",
                    "image": claims.SIM_IMAGE,
                    "resources": {"claims": [{"name": "devices"}]},
                }
            ],
            "resourceClaims": [{"name": "devices", "resourceClaimTemplateName": template}],
        },
    }


def layout_slices(layout: str, node: str, views: Sequence[ChipView]) -> list[Obj]:
    """``darwin``: the plugin's default slices; ``light`` and ``capacity``: its layouts of
    those names (--partitions); ``plain``: one counted device a chip."""
    if layout == "plain":
        return plain_slices(node, views)
    kinds = {"light": LIGHT_PARTITIONS, "capacity": CAPACITY_PARTITIONS}.get(
        layout, PARTITION_KINDS
    )
    return build_slices(node, views, layout=SliceLayout(partitions=kinds))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class LayoutResult:
    layout: str
    nodes: int
    slices: int
    devices: int
    pods: int
    bound: int
    pods_per_s: float
    latency_p50_s: float
    latency_p99_s: float
    ungate_per_s: float
    setup_s: float
    not_ready: int = 0  # fleet nodes not Ready (or tainted) when the measurement ended
    # The most fleet nodes not Ready at once during the measured window, and the verdict on it
    # (fleet/readiness.py): a rate measured while nodes were NotReady is not the fleet's.
    not_ready_max: int = 0
    valid: bool = True
    validity: str = ""
    # kube-scheduler CPU time (user + system) from the first ungate to the end, per bound pod:
    # what a pod costs the scheduler, whatever share of the loaded machine it got.
    cpu_ms_per_pod: float = math.nan
    nodes_to_score: int | None = None  # percentageOfNodesToScore; None: the flags' default
    backlog: bool = False  # measured from a full queue (the scheduler paused while ungating)
    # bound / (last bind - first bind): the rate once binding has started, without the time
    # to the first bind (which, from a backlog, is the scheduler catching up on its watches)
    binding_per_s: float = math.nan
    # The same for every control-plane process (etcd, kube-apiserver, kube-scheduler,
    # kube-controller-manager): what a pod costs the machine, and so the rate its cores cap.
    plane_cpu_ms_per_pod: float = math.nan
    # The plane's CPU per bound pod split by process (name -> ms), to say where it goes.
    plane_split: Mapping[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.bound == self.pods


def cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from the text of /proc/<pid>/stat (fields 14 and 15)."""
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    return cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


# The split columns of the table, in order; the scheduler has its own column after them.
SPLIT = (("kube-apiserver", "api"), ("etcd", "etcd"), ("kube-controller-manager", "kcm"))


def per_pod_ms(
    before: Mapping[str, float], after: Mapping[str, float], pods: int
) -> dict[str, float]:
    """CPU ms per bound pod of each process (name -> ms) between two readings of CPU seconds;
    NaN for all when no pod was bound."""
    return {
        name: 1000 * (after[name] - before[name]) / pods if pods else math.nan for name in before
    }


def _measure(
    kube: kubeapi.FleetKube,
    names: Sequence[str],
    timeout_s: float,
    paused: Callable[[bool], None] | None = None,
) -> tuple[dict[str, float], dict[str, float], float]:
    """Ungate every pod and watch the binds: (ungated at, bound at, ungate span). With
    ``paused`` (called True before the first gate goes, False once the last is gone), every
    pod's "ungated at" is the moment the scheduler resumed: it found them all queued."""
    bound: dict[str, float] = {}
    ungated: dict[str, float] = {}
    lock = threading.Lock()
    wanted = set(names)
    done = threading.Event()
    _, rv = kube.list_pods(NAMESPACE)

    def watch() -> None:
        nonlocal rv
        while not done.is_set():
            try:
                for _kind, pod in kube.watch_pods(NAMESPACE, rv, timeout_s=30):
                    now = time.monotonic()
                    rv = str(pod["metadata"].get("resourceVersion") or rv)
                    name = pod["metadata"]["name"]
                    if (pod.get("spec") or {}).get("nodeName") and name in wanted:
                        with lock:
                            bound.setdefault(name, now)
                            if len(bound) == len(wanted):
                                done.set()
                    if done.is_set():
                        return
            except kubeapi.KubeApiError:
                time.sleep(0.2)

    watcher = threading.Thread(target=watch, name="watch-binds", daemon=True)
    watcher.start()
    time.sleep(0.5)  # the watch is open before the first gate goes

    def ungate(name: str) -> None:
        kube.ungate_pod(NAMESPACE, name)
        with lock:
            ungated[name] = time.monotonic()

    start = time.monotonic()
    if paused is not None:
        paused(True)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(ungate, names))
        span = time.monotonic() - start
    finally:
        if paused is not None:
            resumed = time.monotonic()
            paused(False)
            ungated = dict.fromkeys(ungated, resumed)
    done.wait(timeout_s)
    done.set()
    watcher.join(timeout=40)
    return ungated, bound, span


def run_layout(
    layout: str,
    shape: FleetShape,
    pods: int,
    timeout_s: float,
    progress: Callable[[str], None],
    directory: Path | None = None,
    claim_kinds: Sequence[str] = CLAIM_KINDS[:3],
    profile: Path | None = None,
    profile_s: int = 30,
    nodes_to_score: int | None = None,
    backlog: bool = False,
) -> LayoutResult:
    """One layout on a fresh control plane; with ``profile`` (a file), kube-scheduler runs
    with profiling on and a CPU profile of its first ``profile_s`` seconds after the
    first ungate is written there (read it with `go tool pprof`). ``nodes_to_score``: the
    scheduler's percentageOfNodesToScore (0 is its adaptive default), set through a
    KubeSchedulerConfiguration file; None runs it on flags alone, as before. ``backlog``:
    the scheduler is stopped (SIGSTOP) while the gates are removed and continued (SIGCONT)
    after the last, so pods/s measures it draining a full queue, whatever the bench's client
    manages; latencies then count from that moment."""
    inventory = fleet_inventory(shape)
    fleet = fleet_views(inventory)
    workdir = directory or Path(tempfile.mkdtemp(prefix="sb-"))
    extra = (("kube-scheduler", ("--profiling=true",)),) if profile else ()
    settings: dict[str, object] | None = None
    if nodes_to_score is not None:
        settings = {"percentageOfNodesToScore": nodes_to_score, "enableProfiling": bool(profile)}
    cluster, binaries = bench_cluster(workdir, extra, settings)
    t0 = time.monotonic()
    cluster.up()
    keeper: LeaseKeeper | None = None
    try:
        kube = kubeapi.connect_fleet(cluster.kubeconfig, timeout_s=60)
        keeper = LeaseKeeper(kube, cluster.kubeconfig, list(fleet), binaries.version)
        keeper.register()
        slices = [s for node, views in fleet.items() for s in layout_slices(layout, node, views)]
        devices = sum(len(s["spec"].get("devices", [])) for s in slices)
        model = "blackbox" if layout == "plain" else "darwin"
        replay.install(kube, slices, model, NAMESPACE)
        if layout == "plain":
            for body in device_classes():  # the same classes in the API server for both
                with contextlib.suppress(kubeapi.Conflict):
                    kube.create_device_class(body)
        if layout == "plain":
            specs = plain_mix()
        elif layout == "capacity":
            specs = [capacity_claim(k) for k in claim_kinds]
        else:
            # The light layout has no single domains: its pods ask for a quad instead.
            kinds = [("quad" if k in ("domains", "domain") and layout == "light" else k)
                     for k in claim_kinds]  # fmt: skip
            specs = [darwin_claim(k) for k in kinds]
        for spec in {claims.template_name(x): x for x in specs}.values():
            with contextlib.suppress(kubeapi.Conflict):  # equal specs share one template
                kube.create_claim_template(NAMESPACE, claims.claim_template(spec))
        n = pods if layout != "plain" else min(pods, sum(len(v) for v in fleet.values()))
        names = [f"p-{i:05d}" for i in range(n)]
        progress(f"{layout}: {len(fleet)} nodes, {len(slices)} slices, {devices} devices; "
                 f"creating {n} gated pods")  # fmt: skip
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: kube.create_pod(
                        NAMESPACE, gated_pod(names[i], claims.template_name(specs[i % len(specs)]))
                    ),
                    range(n),
                )
            )
        deadline = time.monotonic() + 600
        while (made := kube.count_claims(NAMESPACE)) < n:
            if time.monotonic() > deadline:
                raise kubeapi.KubeApiError(f"only {made} of {n} claims made by the controller")
            time.sleep(2)
        setup = time.monotonic() - t0
        progress(f"{layout}: {n} claims ready after {setup:.0f} s; ungating")
        sched_pid = next(p.pid for p in cluster.processes if p.name == "kube-scheduler")
        plane = {p.name: p.pid for p in cluster.processes}
        plane_before = {name: _process_cpu(pid) for name, pid in plane.items()}
        profiler = None
        if profile is not None:
            assert cluster.state is not None
            port = cluster.state.ports["kube-scheduler"]
            url = f"https://127.0.0.1:{port}/debug/pprof/profile?seconds={profile_s}"
            out = profile
            profiler = threading.Thread(
                target=lambda: out.write_bytes(cluster.fetch(url, profile_s + 60)),
                name="pprof",
                daemon=True,
            )
            profiler.start()
        pause = None
        if backlog:

            def pause(stop: bool) -> None:
                os.kill(sched_pid, signal.SIGSTOP if stop else signal.SIGCONT)

        keeper.sample_now()  # the fleet's state as the window opens
        ungated, bound, span = _measure(kube, names, timeout_s, pause)
        split = per_pod_ms(
            plane_before, {name: _process_cpu(pid) for name, pid in plane.items()}, len(bound)
        )
        if profiler is not None:
            profiler.join(profile_s + 60)
        not_ready = keeper.not_ready()
        lat = [bound[p] - ungated[p] for p in bound if p in ungated]
        first = min(ungated.values()) if ungated else 0.0
        last = max(bound.values()) if bound else first
        ready = judge(keeper.samples(), len(fleet), first, max(last, first))
        rate = len(bound) / (last - first) if bound and last > first else float("nan")
        return LayoutResult(
            layout=layout,
            nodes=len(fleet),
            slices=len(slices),
            devices=devices,
            pods=n,
            bound=len(bound),
            pods_per_s=rate,
            latency_p50_s=statistics.median(lat) if lat else float("nan"),
            latency_p99_s=percentile(lat, 99),
            ungate_per_s=n / span if span > 0 else float("nan"),
            setup_s=setup,
            not_ready=not_ready,
            not_ready_max=ready.worst,
            valid=ready.valid,
            validity=ready.reason,
            cpu_ms_per_pod=split["kube-scheduler"],
            plane_cpu_ms_per_pod=sum(split.values()) if bound else math.nan,
            plane_split=split,
            nodes_to_score=nodes_to_score,
            backlog=backlog,
            binding_per_s=(len(bound) - 1) / (last - min(bound.values()))
            if len(bound) > 1 and last > min(bound.values())
            else math.nan,
        )
    finally:
        if keeper is not None:
            keeper.stop()
        cluster.down()
        if directory is None:
            shutil.rmtree(workdir, ignore_errors=True)


def table(results: Sequence[LayoutResult]) -> str:
    head = ["nodes", "score%", "start", "layout", "slices", "devices", "pods", "bound", "pods/s",
            "vs plain", "binding/s", "p50 s", "p99 s", "ungate/s", "not ready max/end", "valid",
            *(f"{short} CPU ms/pod" for _, short in SPLIT),
            "sched CPU ms/pod", "plane CPU ms/pod"]  # fmt: skip
    plain = {r.nodes: r.pods_per_s for r in results if r.layout == "plain"}
    rows = [head]
    for r in results:
        base = plain.get(r.nodes)
        rows.append(
            [
                str(r.nodes),
                "default" if r.nodes_to_score is None else str(r.nodes_to_score),
                "backlog" if r.backlog else "ungate",
                r.layout,
                f"{r.slices:,}",
                f"{r.devices:,}",
                f"{r.pods:,}",
                f"{r.bound:,}",
                f"{r.pods_per_s:.1f}",
                f"{r.pods_per_s / base:.2f}" if base else "-",
                f"{r.binding_per_s:.1f}",
                f"{r.latency_p50_s:.2f}",
                f"{r.latency_p99_s:.2f}",
                f"{r.ungate_per_s:.0f}",
                f"{r.not_ready_max}/{r.not_ready}",
                "yes" if r.valid else "NO",
                *(f"{r.plane_split.get(name, math.nan):.0f}" for name, _ in SPLIT),
                f"{r.cpu_ms_per_pod:.0f}",
                f"{r.plane_cpu_ms_per_pod:.0f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
