"""`darwin-dra inventory`: the chips, domains and cores the engine discovers from an inventory."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from darwin_dra.cli.flags import env_option
from darwin_dra.engine import Engine
from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.inventory import load_inventory
from darwin_dra.hardware.profiles import load_profiles


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inventory", help="print the chips, domains and cores found")
    env_option(p, "--inventory", "DARWIN_INVENTORY", "inventory YAML", type=Path)
    env_option(p, "--profiles", "DARWIN_PROFILES", "directory of chip profiles (default: "
               "built in)", type=Path)  # fmt: skip
    env_option(p, "--node", "NODE_NAME", "only this node (default: every node)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--cores", action="store_true", help="list every core (long)")
    p.set_defaults(func=run)


def discover(
    inventory: Path, profiles_dir: Path | None, node: str | None, with_cores: bool
) -> list[dict[str, Any]]:
    profiles = load_profiles(profiles_dir)
    inv = load_inventory(inventory, profiles)
    names = [node] if node else [n.name for n in inv.nodes]
    out: list[dict[str, Any]] = []
    for name in names:
        with Engine.for_node(inv, profiles, name) as engine:
            chips = []
            for chip in engine.chips():
                entry = asdict(chip)
                if with_cores:
                    entry["cores"] = [asdict(c) for c in engine.cores(chip.id)]
                chips.append(entry)
            out.append({"node": name, "chips": chips})
    return out


def _table(nodes: list[dict[str, Any]]) -> str:
    lines = []
    for node in nodes:
        lines.append(f"node {node['node']}: {len(node['chips'])} chip(s)")
        for c in node["chips"]:
            health = "healthy" if c["healthy"] else "FAILED"
            lines.append(
                f"  chip {c['id']}  {c['model']}  serial {c['serial']}  fabric {c['fabric']}  "
                f"numa {c['numa_node']}  mesh {c['mesh_w']}x{c['mesh_h']}  "
                f"{c['n_domains']} domains  {c['n_cores']} cores  "
                f"{c['n_cores'] * c['neurons_per_core']:,} neurons  "
                f"{c['synapses_per_chip']:,} synapses  {health}"
            )
            doms = c["domains"]
            lines.append("    domain  tiles (x0,y0)-(x1,y1)  cores  failed")
            for d in doms:
                lines.append(
                    f"    {d['domain']:>6}  ({d['x0']:>2},{d['y0']:>2})-({d['x1']:>2},"
                    f"{d['y1']:>2})      {d['n_cores']:>5}  {d['failed_cores']:>6}"
                )
            for core in c.get("cores", []):
                lines.append(
                    f"      core {core['core']:>3} at ({core['x']:>2},{core['y']:>2}) "
                    f"domain {core['domain']:>2} "
                    f"{'ok' if core['healthy'] else 'FAILED'}"
                )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.inventory is None:
        print(
            "darwin-dra inventory: --inventory FILE (or DARWIN_INVENTORY) is required",
            file=sys.stderr,
        )
        return 2
    try:
        nodes = discover(args.inventory, args.profiles, args.node, args.cores)
    except HardwareFileError as exc:
        print(f"darwin-dra inventory: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        print(f"darwin-dra inventory: {exc.args[0]}", file=sys.stderr)
        return 1
    print(json.dumps(nodes, indent=2) if args.json else _table(nodes))
    return 0
