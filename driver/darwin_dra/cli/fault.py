"""`darwin-dra fault inject|clear|list`: edit the fault file a running chip host polls."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from darwin_dra.chiphost import faults


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fault", help="inject or clear simulated hardware faults on a node")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("inject", "add a fault"), ("clear", "remove a fault")):
        a = actions.add_parser(name, help=text)
        _common(a)
        a.add_argument("--chip", type=int, required=True, help="chip index on the node")
        what = a.add_mutually_exclusive_group(required=name == "inject")
        what.add_argument("--domain", type=int, help="a whole asynchronous domain")
        what.add_argument("--core", type=int, help="one neuron core")
        what.add_argument("--link", type=int, help="one router link (engine link index)")
        what.add_argument("--whole-chip", action="store_true", help="the whole chip")
        what.add_argument(
            "--fabric-to",
            type=int,
            metavar="CHIP",
            help="the fabric link from --chip to this chip (neighbours of one fabric)",
        )
        if name == "clear":
            what.add_argument("--all", action="store_true", help="every fault of this chip")
        a.set_defaults(func=run)
    ls = actions.add_parser("list", help="print the faults the file lists")
    _common(ls)
    ls.set_defaults(func=run)


def _common(p: argparse.ArgumentParser) -> None:
    default = os.environ.get("DARWIN_STATE_DIR", "/var/lib/darwin-dra")
    p.add_argument("--state-dir", type=Path, default=Path(default), help="env DARWIN_STATE_DIR")


def _fault(args: argparse.Namespace) -> faults.Fault | None:
    for kind, value in (
        (faults.Kind.DOMAIN, args.domain),
        (faults.Kind.CORE, args.core),
        (faults.Kind.LINK, args.link),
        (faults.Kind.FABRIC, args.fabric_to),
    ):
        if value is not None:
            if value < 0:
                flag = "fabric-to" if kind is faults.Kind.FABRIC else kind.value
                raise ValueError(f"--{flag} must be >= 0")
            return faults.Fault(args.chip, kind, value)
    if args.whole_chip:
        return faults.Fault(args.chip, faults.Kind.CHIP, 0)
    return None


def run(args: argparse.Namespace) -> int:
    path = faults.fault_path(args.state_dir)
    try:
        if args.action == "list":
            current = faults.load(path)
        elif args.chip < 0:
            raise ValueError("--chip must be >= 0")
        elif args.action == "inject":
            fault = _fault(args)
            assert fault is not None  # the group is required
            current = faults.edit(path, add=[fault])
        else:
            fault = _fault(args)
            if fault is None:  # --all, or nothing named: every fault of the chip
                drop = [f for f in faults.load(path) if f.chip == args.chip]
            else:
                drop = [fault]
            current = faults.edit(path, remove=drop)
    except (ValueError, OSError) as exc:
        print(f"darwin-dra fault: {exc}", file=sys.stderr)
        return 2
    for f in sorted(current):
        print(
            f"chip {f.chip} {f.kind.value}" + ("" if f.kind is faults.Kind.CHIP else f" {f.index}")
        )
    if not current:
        print("no faults")
    return 0
