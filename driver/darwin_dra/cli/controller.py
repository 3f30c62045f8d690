"""`darwin-dra controller`: DeviceClasses, fabric slices, binding conditions (a Deployment of
two replicas in a cluster; one leads through a Lease). Every flag has an environment twin; a
flag given on the command line wins."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.kubeapi import KubeApiError

if TYPE_CHECKING:
    from darwin_dra.controller.app import ControllerOptions


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(name) or default


def _keps_for(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        fabric, sep, value = item.partition("=")
        if not sep or not fabric or not value.isdigit():
            raise ValueError(
                f"--fabric-keps-for {item!r}: expected FABRIC=KEPS, e.g. wafer-0=500000"
            )
        out[fabric] = int(value)
    return out


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("controller", help="run the cluster-level controller")
    inv = _env("DARWIN_INVENTORY", None)
    p.add_argument(
        "--inventory",
        type=Path,
        default=Path(inv) if inv else None,
        help="inventory YAML: nodes, fabrics, chips (env DARWIN_INVENTORY)",
    )
    prof = _env("DARWIN_PROFILES", None)
    p.add_argument(
        "--profiles",
        type=Path,
        default=Path(prof) if prof else None,
        help="directory of chip profiles (env DARWIN_PROFILES; default: built in)",
    )
    kc = _env("KUBECONFIG", None)
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path(kc) if kc else None,
        help="kubeconfig (env KUBECONFIG; default: in-cluster service account)",
    )
    p.add_argument(
        "--namespace",
        default=_env("POD_NAMESPACE", "darwin-dra"),
        help="namespace of the leader Lease (env POD_NAMESPACE)",
    )
    p.add_argument(
        "--lease-name", default=_env("LEASE_NAME", "darwin-dra-controller"), help="env LEASE_NAME"
    )
    p.add_argument(
        "--identity",
        default=_env("POD_NAME", socket.gethostname()),
        help="this replica's name in the Lease (env POD_NAME; default: hostname)",
    )
    p.add_argument(
        "--lease-duration",
        type=int,
        default=int(_env("LEASE_DURATION_SECONDS", "15") or 15),
        help="seconds (env LEASE_DURATION_SECONDS)",
    )
    p.add_argument(
        "--renew-deadline",
        type=float,
        default=float(_env("RENEW_DEADLINE_SECONDS", "10") or 10),
        help="seconds (env RENEW_DEADLINE_SECONDS)",
    )
    p.add_argument(
        "--retry-period",
        type=float,
        default=float(_env("RETRY_PERIOD_SECONDS", "2") or 2),
        help="seconds (env RETRY_PERIOD_SECONDS)",
    )
    p.add_argument(
        "--resync",
        type=float,
        default=float(_env("RESYNC_SECONDS", "30") or 30),
        help="seconds between full reconciles (env RESYNC_SECONDS)",
    )
    p.add_argument(
        "--route-setup-seconds",
        type=float,
        default=float(_env("ROUTE_SETUP_SECONDS", "2") or 2),
        help="simulated time to program a fabric's routes (env ROUTE_SETUP_SECONDS)",
    )
    p.add_argument(
        "--fabric-keps",
        type=int,
        default=int(_env("FABRIC_KEPS", "1000000") or 0),
        help="bandwidth of each fabric, thousands of events/s (env FABRIC_KEPS)",
    )
    p.add_argument(
        "--fabric-keps-for",
        action="append",
        default=[s for s in (_env("FABRIC_KEPS_FOR", "") or "").split(",") if s],
        metavar="FABRIC=KEPS",
        help="per-fabric bandwidth, repeatable (env FABRIC_KEPS_FOR, comma separated)",
    )
    p.add_argument(
        "--fast-min-meps",
        type=int,
        default=int(_env("FAST_MIN_MEPS", "100000") or 0),
        help="maxMeps threshold of darwin-fast.snn.io (env FAST_MIN_MEPS)",
    )
    p.add_argument(
        "--no-device-classes",
        action="store_true",
        default=_env("INSTALL_DEVICE_CLASSES", "true") == "false",
        help="do not install DeviceClasses (env INSTALL_DEVICE_CLASSES=false)",
    )
    p.add_argument(
        "--no-binding-conditions",
        action="store_true",
        default=_env("BINDING_CONDITIONS", "true") == "false",
        help="publish fabric devices without binding conditions (env BINDING_CONDITIONS=false)",
    )
    port = _env("METRICS_PORT", None)
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(port) if port else None,
        help="serve Prometheus metrics on this port (env METRICS_PORT; default off)",
    )
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"), help="env LOG_LEVEL")
    p.set_defaults(func=run)


def options(args: argparse.Namespace) -> ControllerOptions:
    from darwin_dra.controller.app import ControllerOptions
    from darwin_dra.controller.deviceclasses import ClassSettings
    from darwin_dra.controller.fabric import FabricSettings
    from darwin_dra.controller.leader import LeaseConfig

    if not args.inventory:
        raise ValueError("--inventory required (or DARWIN_INVENTORY)")
    return ControllerOptions(
        inventory=args.inventory,
        profiles=args.profiles,
        kubeconfig=args.kubeconfig,
        metrics_port=args.metrics_port,
        resync_s=args.resync,
        setup_s=args.route_setup_seconds,
        lease=LeaseConfig(
            namespace=args.namespace,
            name=args.lease_name,
            identity=args.identity,
            duration_s=args.lease_duration,
            renew_deadline_s=args.renew_deadline,
            retry_s=args.retry_period,
        ),
        classes=ClassSettings(fast_min_meps=args.fast_min_meps),
        fabric=FabricSettings(
            keps=args.fabric_keps,
            keps_for=_keps_for(args.fabric_keps_for),
            binding_conditions=not args.no_binding_conditions,
        ),
        install_classes=not args.no_device_classes,
    )


def run(args: argparse.Namespace) -> int:
    from darwin_dra.controller.app import run_until_signal
    from darwin_dra.controller.fabric import FabricError
    from darwin_dra.plugin import logs

    logs.configure(args.log_level.upper())
    try:
        return run_until_signal(options(args))
    except (ValueError, FabricError, HardwareFileError, KubeApiError) as exc:
        print(f"darwin-dra controller: {exc}", file=sys.stderr)
        return 2
