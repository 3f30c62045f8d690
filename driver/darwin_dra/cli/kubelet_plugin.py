"""`darwin-dra kubelet-plugin`: the per-node DRA plugin process (a DaemonSet pod in a cluster).

Every flag has an environment-variable twin (the DaemonSet sets the env from the downward API);
a flag given on the command line wins.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from darwin_dra.chiphost.client import ChipHostUnavailable
from darwin_dra.cli.flags import env_option
from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.kubeapi import KubeApiError
from darwin_dra.unixsock import SocketInUseError

# flag, env, default, help
_PATHS: tuple[tuple[str, str, str | None, str], ...] = (
    ("--profiles", "DARWIN_PROFILES", None, "directory of chip profiles (default: built in)"),
    ("--kubeconfig", "KUBECONFIG", None, "kubeconfig (default: in-cluster service account)"),
    (
        "--plugins-registry-dir",
        "PLUGINS_REGISTRY_DIR",
        "/var/lib/kubelet/plugins_registry",
        "kubelet plugin registration directory",
    ),
    ("--plugins-dir", "PLUGINS_DIR", "/var/lib/kubelet/plugins", "kubelet plugins directory"),
    ("--cdi-dir", "CDI_DIR", "/var/run/cdi", "where CDI specs are written"),
    ("--state-dir", "DARWIN_STATE_DIR", "/var/lib/darwin-dra", "checkpoint, lock, fault file"),
    ("--chip-host", "DARWIN_CHIP_HOST", None, "the chip host's socket (default: "
     "<state-dir>/chip-host.sock)"),
)  # fmt: skip


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("kubelet-plugin", help="run the node's DRA kubelet plugin")
    env_option(p, "--node-name", "NODE_NAME", "this node")
    for flag, env, default, text in _PATHS:
        env_option(p, flag, env, text, default=default, type=Path)
    env_option(p, "--pod-uid", "POD_UID", "pod UID for per-instance socket names during "
               "rolling updates")  # fmt: skip
    env_option(p, "--metrics-port", "METRICS_PORT", "serve Prometheus metrics on this port "
               "(default off)", type=int)  # fmt: skip
    env_option(p, "--health-port", "HEALTH_PORT", "also serve grpc.health.v1 on this TCP port, "
               "for a liveness probe (default off)", type=int)  # fmt: skip
    env_option(p, "--fault-poll-seconds", "DARWIN_FAULT_POLL_SECONDS", "how often the chips' "
               "health is read", default="1.0", type=float)  # fmt: skip
    env_option(p, "--drain-seconds", "DARWIN_DRAIN_SECONDS", "at stop, how long the DRA socket "
               "still serves after the registration is withdrawn", default="3.0",
               type=float)  # fmt: skip
    env_option(p, "--partitions", "DARWIN_PARTITIONS", "partition kinds to publish: a list of "
               "domain,quad,half,chip,shared, or full, or light (no single domains: 14 devices "
               "a chip instead of 50, for large clusters), or capacity (one device a chip, "
               "allocated by domains and KEPS; the plugin picks the domains)",
               default="full")  # fmt: skip
    env_option(p, "--crash-points-file", "DARWIN_CRASH_POINTS_FILE", "for tests only: a file "
               "naming a step of prepare or unprepare at which the plugin SIGKILLs itself "
               "(plugin/crashpoints.py; default off)", type=Path)  # fmt: skip
    env_option(p, "--log-level", "LOG_LEVEL", "log level", default="INFO")
    p.set_defaults(func=run)


def options(args: argparse.Namespace) -> Any:
    from darwin_dra.plugin.app import PluginOptions
    from darwin_dra.resources.partitions import parse_partitions

    if not args.node_name:
        raise ValueError("--node-name required (or NODE_NAME)")
    return PluginOptions(
        node=args.node_name,
        profiles=args.profiles,
        kubeconfig=args.kubeconfig,
        plugins_registry=args.plugins_registry_dir,
        plugins_dir=args.plugins_dir,
        cdi_dir=args.cdi_dir,
        state_dir=args.state_dir,
        pod_uid=args.pod_uid or None,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        chip_host=args.chip_host,
        fault_poll_s=args.fault_poll_seconds,
        drain_s=args.drain_seconds,
        partitions=parse_partitions(args.partitions),
        crash_points=args.crash_points_file,
    )


def run(args: argparse.Namespace) -> int:
    from darwin_dra import logs
    from darwin_dra.plugin.app import run_until_signal

    logs.configure(args.log_level.upper())
    try:
        opts = options(args)
        return asyncio.run(run_until_signal(opts))
    except (
        ValueError,
        KeyError,
        HardwareFileError,
        KubeApiError,
        SocketInUseError,
        ChipHostUnavailable,
    ) as exc:
        print(f"darwin-dra kubelet-plugin: {exc}", file=sys.stderr)
        return 2
