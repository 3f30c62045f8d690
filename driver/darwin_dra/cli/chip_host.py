"""`darwin-dra chip-host`: the node's device process, which owns the (simulated) chips.

It runs beside the kubelet plugin (its own DaemonSet in a cluster) and outlives it: the
partitions and spike ports of running workloads live here. Restarting it is a chip reset.
Every flag has an environment-variable twin; a flag given on the command line wins.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from darwin_dra.cli.flags import env_option, env_switch
from darwin_dra.engine import EngineError
from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.unixsock import SocketInUseError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("chip-host", help="run the node's chip host (the device process)")
    env_option(p, "--node-name", "NODE_NAME", "this node")
    env_option(p, "--inventory", "DARWIN_INVENTORY", "inventory YAML listing this node's chips",
               type=Path)  # fmt: skip
    env_option(p, "--profiles", "DARWIN_PROFILES", "directory of chip profiles (default: built "
               "in)", type=Path)  # fmt: skip
    env_option(p, "--state-dir", "DARWIN_STATE_DIR", "the fault file, the partitions' socket "
               "directories", default="/var/lib/darwin-dra", type=Path)  # fmt: skip
    env_option(p, "--socket", "DARWIN_CHIP_HOST", "where to listen (default: "
               "<state-dir>/chip-host.sock)", type=Path)  # fmt: skip
    env_option(p, "--metrics-port", "METRICS_PORT", "serve Prometheus metrics on this port "
               "(default off)", type=int)  # fmt: skip
    env_switch(p, "--calibrate", "DARWIN_CALIBRATE", "publish calibrated KEPS (the chip model's "
               "capacity, lower with faults) and this host's speed as a metric")  # fmt: skip
    env_option(p, "--fault-poll-seconds", "DARWIN_FAULT_POLL_SECONDS", "how often the fault "
               "file is read", default="1.0", type=float)  # fmt: skip
    env_option(p, "--spike-socket-group", "DARWIN_SPIKE_SOCKET_GROUP", "also let this group id "
               "connect to the partitions' spike sockets (0660; default: only the owner, 0600)",
               type=int)  # fmt: skip
    env_option(p, "--log-level", "LOG_LEVEL", "log level", default="INFO")
    p.set_defaults(func=run)


def options(args: argparse.Namespace) -> Any:
    from darwin_dra.chiphost.app import ChipHostOptions

    missing = [
        f for f, v in (("--node-name", args.node_name), ("--inventory", args.inventory)) if not v
    ]
    if missing:
        raise ValueError(f"{' and '.join(missing)} required (or NODE_NAME / DARWIN_INVENTORY)")
    if args.fault_poll_seconds <= 0:
        raise ValueError("--fault-poll-seconds must be > 0")
    if args.spike_socket_group is not None and args.spike_socket_group < 0:
        raise ValueError(
            f"--spike-socket-group must be a group id >= 0, not {args.spike_socket_group}"
        )
    return ChipHostOptions(
        node=args.node_name,
        inventory=args.inventory,
        state_dir=args.state_dir,
        socket=args.socket,
        profiles=args.profiles,
        metrics_port=args.metrics_port,
        calibrate=args.calibrate,
        fault_poll_s=args.fault_poll_seconds,
        spike_socket_gid=args.spike_socket_group,
    )


def run(args: argparse.Namespace) -> int:
    from darwin_dra import logs
    from darwin_dra.chiphost.app import run_until_signal

    logs.configure(args.log_level.upper())
    try:
        return asyncio.run(run_until_signal(options(args)))
    except (ValueError, KeyError, HardwareFileError, SocketInUseError, EngineError) as exc:
        print(f"darwin-dra chip-host: {exc}", file=sys.stderr)
        return 2
