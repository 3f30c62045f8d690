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

from darwin_dra.cli.flags import env_option, env_switch
from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.kubeapi import KubeApiError

if TYPE_CHECKING:
    from darwin_dra.controller.app import ControllerOptions


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
    env_option(p, "--inventory", "DARWIN_INVENTORY", "inventory YAML: nodes, fabrics, chips",
               type=Path)  # fmt: skip
    env_option(p, "--profiles", "DARWIN_PROFILES", "directory of chip profiles (default: "
               "built in)", type=Path)  # fmt: skip
    env_option(p, "--kubeconfig", "KUBECONFIG", "kubeconfig (default: in-cluster service "
               "account)", type=Path)  # fmt: skip
    env_option(p, "--namespace", "POD_NAMESPACE", "namespace of the leader Lease",
               default="darwin-dra")  # fmt: skip
    env_option(p, "--lease-name", "LEASE_NAME", "name of the leader Lease",
               default="darwin-dra-controller")  # fmt: skip
    env_option(p, "--identity", "POD_NAME", "this replica's name in the Lease",
               default=socket.gethostname())  # fmt: skip
    env_option(p, "--lease-duration", "LEASE_DURATION_SECONDS", "seconds", default="15",
               type=int)  # fmt: skip
    env_option(p, "--renew-deadline", "RENEW_DEADLINE_SECONDS", "seconds", default="10",
               type=float)  # fmt: skip
    env_option(p, "--retry-period", "RETRY_PERIOD_SECONDS", "seconds", default="2", type=float)
    env_option(p, "--resync", "RESYNC_SECONDS", "seconds between full reconciles",
               default="30", type=float)  # fmt: skip
    env_option(p, "--fabric-keps", "FABRIC_KEPS", "bandwidth of each fabric, thousands of "
               "events/s (default: one link's, from the chips' profiles)", type=int)  # fmt: skip
    p.add_argument(
        "--fabric-keps-for",
        action="append",
        default=[s for s in (os.environ.get("FABRIC_KEPS_FOR") or "").split(",") if s],
        metavar="FABRIC=KEPS",
        help="per-fabric bandwidth, repeatable (env FABRIC_KEPS_FOR, comma separated)",
    )
    env_option(p, "--fast-min-meps", "FAST_MIN_MEPS", "maxMeps threshold of "
               "darwin-fast.snn.io", default="100000", type=int)  # fmt: skip
    env_switch(p, "--no-device-classes", "INSTALL_DEVICE_CLASSES", "do not install "
               "DeviceClasses", when="false")  # fmt: skip
    env_option(p, "--metrics-port", "METRICS_PORT", "serve Prometheus metrics on this port "
               "(default off)", type=int)  # fmt: skip
    env_option(p, "--stage-image", "STAGE_IMAGE", "image of SpikingPipeline stage pods (the "
               "driver's own; default: pipelines are not reconciled)")  # fmt: skip
    env_option(p, "--stage-pull-policy", "STAGE_PULL_POLICY", "imagePullPolicy of stage pods",
               default="IfNotPresent", choices=["Always", "IfNotPresent", "Never"])  # fmt: skip
    env_option(p, "--log-level", "LOG_LEVEL", "log level", default="INFO")
    p.set_defaults(func=run)


def options(args: argparse.Namespace) -> ControllerOptions:
    from darwin_dra.controller.app import ControllerOptions
    from darwin_dra.controller.deviceclasses import ClassSettings
    from darwin_dra.controller.leader import LeaseConfig
    from darwin_dra.pipeline.objects import StageSettings
    from darwin_dra.resources.fabric import FabricSettings

    if not args.inventory:
        raise ValueError("--inventory required (or DARWIN_INVENTORY)")
    return ControllerOptions(
        inventory=args.inventory,
        profiles=args.profiles,
        kubeconfig=args.kubeconfig,
        metrics_port=args.metrics_port,
        resync_s=args.resync,
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
        ),
        install_classes=not args.no_device_classes,
        stages=(
            StageSettings(image=args.stage_image, pull_policy=args.stage_pull_policy)
            if args.stage_image
            else None
        ),
    )


def run(args: argparse.Namespace) -> int:
    from darwin_dra import logs
    from darwin_dra.controller.app import run_until_signal
    from darwin_dra.resources.fabric import FabricError

    logs.configure(args.log_level.upper())
    try:
        return run_until_signal(options(args))
    except (ValueError, FabricError, HardwareFileError, KubeApiError) as exc:
        print(f"darwin-dra controller: {exc}", file=sys.stderr)
        return 2
