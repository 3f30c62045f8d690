"""`darwin-dra cluster`: a local Kubernetes control plane built from the upstream Go modules."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from darwin_dra import __version__
from darwin_dra.cluster import build, hostdeps, images, launcher
from darwin_dra.cluster.errors import ClusterError
from darwin_dra.cluster.state import ClusterState

DEFAULT_DIR = Path(".cluster")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("cluster", help="run a local Kubernetes control plane")
    sub = parser.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")

    up = sub.add_parser("up", help="build (cached) and start the cluster in DIR")
    up.add_argument("--nodes", type=int, default=2, help="nodes (default 2)")
    up.add_argument(
        "--node-kind",
        choices=("real", "harness"),
        default="real",
        help="real: a kubelet, containerd and runc per node, pods run (default); harness: "
        "simulated nodes that register plugins and prepare claims but run no containers",
    )
    up.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cluster directory")
    up.add_argument("--apiserver-port", type=int, default=None, help="default: a free port")
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="stop every process of the cluster in DIR")
    down.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    down.set_defaults(func=_down)

    status = sub.add_parser("status", help="show the processes of the cluster in DIR")
    status.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    status.set_defaults(func=_status)

    bld = sub.add_parser(
        "build",
        help="build the Kubernetes binaries and containerd, install the nodes' Debian packages, "
        "make the nodes' images (each reused when cached)",
    )
    bld.add_argument("--force", action="store_true", help="rebuild even when cached")
    bld.add_argument(
        "--harness-only", action="store_true", help="only what harness nodes need (no root)"
    )
    bld.set_defaults(func=_build)

    img = sub.add_parser(
        "image",
        help="build the driver image (OCI tar, cached by content) and import it into every "
        "real node of the cluster in DIR",
    )
    img.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    img.add_argument("--no-import", action="store_true", help="only build the OCI tar")
    img.set_defaults(func=_image)


def _fail(exc: ClusterError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1


def _build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        bins = build.ensure_binaries(force=args.force)
        elapsed = time.monotonic() - started
        print(f"kubernetes {bins.version} binaries in {bins.directory} ({elapsed:.1f}s)")
        if args.harness_only:
            return 0
        started = time.monotonic()
        installed = hostdeps.ensure(hostdeps.NODE_PACKAGES)
        ctrd = build.ensure_containerd()
        busybox, pause = images.busybox_images()
        elapsed = time.monotonic() - started
    except ClusterError as exc:
        return _fail(exc)
    if installed:
        print(f"installed Debian packages: {', '.join(installed)}")
    print(f"containerd {build.CONTAINERD_VERSION} in {ctrd}")
    print(f"node images: {busybox.name}, {pause.name} ({elapsed:.1f}s)")
    return 0


def _image(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[3]
    try:
        result = images.driver_image(root, __version__, python=sys.executable)
        size = result.image.tar.stat().st_size
        how = f"built in {result.seconds:.0f}s" if result.built else "cached"
        print(f"{result.image.name} (also {result.version_name}): {result.image.tar}")
        print(f"  {size / 1e6:.1f} MB compressed, {how}")
        if args.no_import:
            return 0
        state = ClusterState.load(args.dir.resolve())
        if state is None:
            print(f"error: no cluster recorded in {args.dir}", file=sys.stderr)
            return 1
        nodes = launcher.import_image(state, result.image.tar)
    except ClusterError as exc:
        return _fail(exc)
    print(f"  imported into {', '.join(nodes) if nodes else 'no real node'}")
    return 0


def _up(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        print("error: --nodes must be at least 1", file=sys.stderr)
        return 2
    config = launcher.ClusterConfig(
        directory=args.dir,
        nodes=args.nodes,
        apiserver_port=args.apiserver_port,
        node_kind=args.node_kind,
    )
    try:
        if build.cached() is None:
            print("building the Kubernetes binaries (first run: tens of minutes)...", flush=True)
        cluster = launcher.LocalCluster(config, build.ensure_binaries())
        state = cluster.up()
    except ClusterError as exc:
        return _fail(exc)
    print(f"cluster up: kubernetes {state.version} at {state.server}")
    print(f"  nodes: {', '.join(n.name for n in state.nodes)}")
    for node in state.nodes:
        print(f"  {node.name} ({node.kind}) plugins_registry: {node.plugins_registry}")
    print(f"  logs: {Path(state.directory) / 'logs'}")
    # kubectl is built with the cluster: the machines this runs on usually have none.
    print(f"\n  export KUBECONFIG={state.kubeconfig}")
    print(f"  export PATH={state.bin_dir}:$PATH")
    print("  kubectl get nodes,resourceslices,deviceclasses")
    print(f"\n  stop with: darwin-dra cluster down --dir {args.dir}")
    return 0


def _down(args: argparse.Namespace) -> int:
    try:
        stopped = launcher.down(args.dir)
    except ClusterError as exc:
        return _fail(exc)
    print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing running in {args.dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = ClusterState.load(args.dir.resolve())
    running = launcher.status(args.dir)
    if state is None or not running:
        print(f"no cluster recorded in {args.dir}")
        return 1
    print(f"kubernetes {state.version} at {state.server}, kubeconfig {state.kubeconfig}")
    for name, alive in running.items():
        print(f"  {name:40s} {'running' if alive else 'STOPPED'}")
    return 0 if all(running.values()) else 1
