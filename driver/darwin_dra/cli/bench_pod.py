"""`darwin-dra bench run-pod`: `darwin-dra run` inside a real pod on a real node (the driver's
image, a whole-chip claim, the node's chip host behind the CDI-injected spike socket) against
the same network run directly on an engine on the host, in the same run.

It brings up its own local cluster of one real node with the chart installed (the demo's
set-up steps, cached), then alternates: one direct run on the host (bench/direct.py, a fresh
process), one pod. Each pod builds the Brunel network from the same config and seed as the
host side (the package is in the image), runs it with `darwin-dra run --json`, and the report
comes back through its log. Medians, their spread, and the pod/host ratio are printed. The
cluster is taken down at the end. Run it under `flock /work/wt/cluster.lock` where clusters
are shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from darwin_dra.bench.brunel import DEFAULT_SEED, BrunelConfig
from darwin_dra.bench.peer_engine import brunel_network
from darwin_dra.cli.bench import bench_subparsers
from darwin_dra.cli.bench_run import Measured, direct, print_table, summary
from darwin_dra.cluster import launcher
from darwin_dra.demo import bringup, manifests
from darwin_dra.demo.story import Story, wait_for
from darwin_dra.runtime.stage import save_stage

NS = "darwin-bench"
SPECS = (manifests.NodeSpec("wafer-0", ("darwin3",)),)
POD_TIMEOUT_S = 600.0  # a loaded 2-core machine: pull-free start, prepare, the run itself


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = bench_subparsers(sub, "darwin_dra.cli.bench_pod")
    p = actions.add_parser(
        "run-pod",
        help="darwin-dra run in a pod on a real node vs the same network on the host's engine",
    )
    p.add_argument("--scale", type=float, default=1.0, help="Brunel size factor (1 = 10 k)")
    p.add_argument("--steps", type=int, default=10000, help="timed steps per run")
    p.add_argument("--warmup-steps", type=int, default=2000)
    p.add_argument("--window", type=int, default=1000, help="steps per Step call")
    p.add_argument("--repeat", type=int, default=3, help="runs per side; medians are shown")
    p.add_argument("--dir", type=Path, help="working directory (default: a new temporary one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def pod_script(scale: float, steps: int, warmup: int, window: int) -> str:
    """The container's command: the network built in the container, then `darwin-dra run`."""
    build = (
        "from darwin_dra.bench.brunel import BrunelConfig, DEFAULT_SEED; "
        "from darwin_dra.bench.peer_engine import brunel_network; "
        "from darwin_dra.runtime.stage import save_stage; "
        f"c = BrunelConfig().scaled({scale!r}) if {scale!r} != 1.0 else BrunelConfig(); "
        "save_stage('/tmp/brunel.npz', brunel_network(c, DEFAULT_SEED))"
    )
    return (
        f'python -c "{build}" && darwin-dra run --network /tmp/brunel.npz --steps {steps} '
        f"--warmup-steps {warmup} --window {window} --json"
    )


def pod(name: str, image: str, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "run",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                    "resources": {"claims": [{"name": "chip"}]},
                }
            ],
            "resourceClaims": [{"name": "chip", "resourceClaimTemplateName": "chip"}],
        },
    }


def chip_template() -> dict[str, Any]:
    request = {"name": "chip", "exactly": {"deviceClassName": "darwin-chip.snn.io"}}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "chip"},
        "spec": {"spec": {"devices": {"requests": [request]}}},
    }


def _in_pod(running: bringup.Running, name: str, script: str) -> Measured:
    kubectl = running.kubectl
    kubectl.apply([pod(name, running.image, script)], NS)

    def finished() -> str | None:
        phase = (kubectl.get("pod", name, "-n", NS).get("status") or {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(f"pod {name} done", finished, POD_TIMEOUT_S)
    logs = kubectl.logs(name, NS)
    kubectl.run("delete", "pod", name, "-n", NS, "--wait=true")
    if phase != "Succeeded":
        raise RuntimeError(f"pod {name} failed: {logs.strip()[-2000:]}")
    r = json.loads(logs.strip().splitlines()[-1])
    return Measured(r["events_per_s"], r["rate_hz"], r["wall_s"], r["events"])


def measure(args: argparse.Namespace, work: Path, story: Story) -> dict[str, list[Measured]]:
    cfg = BrunelConfig().scaled(args.scale) if args.scale != 1.0 else BrunelConfig()
    net_file = work / "brunel.npz"
    save_stage(net_file, brunel_network(cfg, DEFAULT_SEED))
    binaries, tar, image = bringup.prepare(story, None)
    cluster = launcher.LocalCluster(
        launcher.ClusterConfig(work / "cluster", nodes=1, node_kind="real"), binaries
    )
    try:
        state = bringup.start_cluster(story, cluster, SPECS)
        running = bringup.install_driver(story, cluster, state, SPECS, tar, image, work)
        running.kubectl.run("create", "namespace", NS)
        wait_for("the default service account",
                 lambda: "default" in running.kubectl.run("get", "sa", "-n", NS), 60)  # fmt: skip
        running.kubectl.apply([chip_template()], NS)
        script = pod_script(args.scale, args.steps, args.warmup_steps, args.window)
        sides: dict[str, list[Measured]] = {"host": [], "pod": []}
        for i in range(args.repeat):
            with story.step(f"run {i + 1}/{args.repeat}: on the host's engine, then in a pod"):
                sides["host"].append(direct(net_file, args.steps, args.warmup_steps, args.window))
                sides["pod"].append(_in_pod(running, f"run-{i}", script))
        return sides
    finally:
        cluster.down()


def run(args: argparse.Namespace) -> int:
    if min(args.steps, args.window, args.repeat) < 1 or args.warmup_steps < 0:
        print("--steps, --window and --repeat must be >= 1", file=sys.stderr)
        return 2
    work = (args.dir or Path(tempfile.mkdtemp(prefix="dra-bench-pod-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    bringup.configure_logs(work / "logs" / "bench.log")
    story = Story(Console(stderr=True), follow=work / "logs" / "bench.log")
    started = time.monotonic()
    sides = measure(args, work, story)
    rows = summary(sides)
    ratio = rows["pod"]["events_per_s"] / rows["host"]["events_per_s"]
    cfg = BrunelConfig().scaled(args.scale) if args.scale != 1.0 else BrunelConfig()
    if args.json:
        print(json.dumps({"network": cfg.to_dict(), "sides": rows, "ratio": ratio}, indent=2))
        return 0
    print_table(
        rows,
        (
            ("host", "engine on the host, own process"),
            ("pod", "darwin-dra run in a pod -> chip host"),
        ),
        "host",
    )
    print(
        f"\nnetwork: Brunel N={cfg.n}, {cfg.n_synapses:,} synapses; {args.steps} steps timed "
        f"after {args.warmup_steps}, {args.window} per call, {args.repeat} runs per side, "
        "single-threaded engine on a whole darwin3 chip; the pod on a real node of a local "
        f"cluster; {time.monotonic() - started:.0f} s in all"
    )
    print(f"pod / host: {ratio:.3f} (x: events/s divided by the host engine's)")
    return 0
