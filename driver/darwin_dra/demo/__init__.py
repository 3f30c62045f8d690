"""The demo: Darwin DRA's whole job on a local cluster with real nodes, the way a user runs it.

It builds (or finds cached) everything the cluster needs, starts a control plane and three real
nodes (two with two darwin3 chips on one fabric each, one with a darwin3-fastroute chip),
installs the driver with its Helm chart, shows `darwin-dra status`, runs the scenarios
(scenarios.py) with real workloads, and writes a report (report.py). Everything it started is
stopped on exit, on failure and on Ctrl-C, unless --keep leaves it running to explore.
"""

from __future__ import annotations

import signal
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from rich.console import Console

from darwin_dra import kubeapi
from darwin_dra.cluster import launcher
from darwin_dra.cluster.errors import ClusterError
from darwin_dra.demo import bringup, context, manifests, report, scenarios
from darwin_dra.demo.record import Chip
from darwin_dra.demo.story import Story
from darwin_dra.demo.tools import ToolError
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.status.view import render, snapshot


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def show_status(story: Story, kubeconfig: Path) -> None:
    story.say(f"  $ darwin-dra status --kubeconfig {kubeconfig}", style="dim")
    kube = kubeapi.connect_fleet(kubeconfig)
    try:
        story.console.print(render(snapshot(kube, None)))
    finally:
        kube.close()


def save_pod_logs(running: bringup.Running) -> int:
    """Every pod's log (the driver's and the workloads') into the demo's log directory."""
    count = 0
    for ns in (manifests.RELEASE_NAMESPACE, manifests.NAMESPACE):
        for pod in running.kubectl.items("pods", "-n", ns):
            name = pod["metadata"]["name"]
            text = running.kubectl.run("logs", "-n", ns, name, "--all-containers", check=False)
            (running.logs / f"pod-{ns}-{name}.log").write_text(text)
            count += 1
    return count


def _chips(
    running: bringup.Running,
    specs: tuple[manifests.NodeSpec, ...],
    profiles: Mapping[str, ChipProfile],
) -> list[Chip]:
    out = []
    for node, spec in zip(running.nodes, specs, strict=True):
        for i, model in enumerate(spec.models):
            p = profiles[model]
            out.append(Chip(node, i, model, p.mesh_w, p.mesh_h, p.domain_w, p.domain_h))
    return out


def run(
    directory: Path | None,
    keep: bool,
    image_tar: Path | None = None,
    only: set[str] | None = None,
) -> int:
    work = (directory or Path(tempfile.mkdtemp(prefix="darwin-demo-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    console = Console(width=None if Console().is_terminal else 180)
    story = Story(console, follow=work / "logs" / "demo.log")
    bringup.configure_logs(work / "logs" / "demo.log")
    signal.signal(signal.SIGTERM, _terminate)
    specs = manifests.FULL
    cluster: launcher.LocalCluster | None = None
    started = time.monotonic()
    story.say(
        "[bold]Darwin DRA demo[/]: a Kubernetes DRA driver for neuromorphic chips, on a local "
        f"cluster with real nodes. Working directory {work}; component logs in "
        f"{work / 'cluster' / 'logs'}, the driver's and the workloads' in {work / 'logs'}"
    )
    kept = False
    code = 1
    try:
        story.chapter("Setting up (each step is cached after its first run)")
        binaries, tar, image = bringup.prepare(story, image_tar)
        cluster = launcher.LocalCluster(
            launcher.ClusterConfig(work / "cluster", nodes=len(specs), node_kind="real"), binaries
        )
        state = bringup.start_cluster(story, cluster, specs)
        running = bringup.install_driver(story, cluster, state, specs, tar, image, work)
        profiles = load_profiles()
        ctx = context.Context(story, running, profiles)
        ctx.record.setup = list(story.timings)
        ctx.record.chips = _chips(running, specs, profiles)

        story.chapter("What the cluster offers: every chip as DRA devices")
        show_status(story, cluster.kubeconfig)
        context.setup_namespace(ctx)
        scenarios.run_all(ctx, only)

        story.chapter("After the scenarios")
        show_status(story, cluster.kubeconfig)
        page = report.write(ctx.record, work / "report")
        saved = save_pod_logs(running)
        story.say(f"  report: [bold]{page}[/]")
        story.say(
            f"  logs: {work / 'cluster' / 'logs'} (every component), {work / 'logs'} "
            f"(kubectl, helm, and {saved} pods: the driver's and the workloads')"
        )
        story.say(f"  the whole demo took {time.monotonic() - started:.0f} s")
        code = 0
        kept = keep
    except KeyboardInterrupt:
        story.say("\n[yellow]interrupted[/]: stopping everything")
        code = 130
    except (ClusterError, ToolError, TimeoutError, RuntimeError, ValueError) as exc:
        story.say(f"[red]error[/]: {exc}")
        story.say(f"  logs of every component: {work / 'cluster' / 'logs'}, {work / 'logs'}")
        kept = keep
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up
        if cluster is not None and not kept:
            with story.step("clean-up: every process of the cluster and the nodes' leftovers"):
                cluster.down()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if kept and cluster is not None:
        _explain_keep(story, cluster)
    return code


def _explain_keep(story: Story, cluster: launcher.LocalCluster) -> None:
    state = cluster.state
    bin_dir = state.bin_dir if state else ""
    story.chapter("Still running (--keep): explore it")
    story.say(f"  export KUBECONFIG={cluster.kubeconfig}")
    story.say(f"  export PATH={bin_dir}:$PATH")
    story.say(f"  kubectl get pods -A -o wide; kubectl -n {manifests.NAMESPACE} logs <pod>")
    story.say("  kubectl get resourceslices,deviceclasses,resourceclaims -A")
    story.say(f"  .venv/bin/darwin-dra status --kubeconfig {cluster.kubeconfig} --watch")
    story.say(f"  stop it all: .venv/bin/darwin-dra cluster down --dir {cluster.dir}")
