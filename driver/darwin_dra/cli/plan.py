"""`darwin-dra plan`: place a model on the free cluster and compare with the baselines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from darwin_dra import DRIVER_NAME
from darwin_dra.hardware.errors import HardwareFileError
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.planner import baselines, partitioners
from darwin_dra.planner.bins import bins_of, groups_of
from darwin_dra.planner.graph import ModelGraph
from darwin_dra.planner.models import ModelSourceError, from_nir, generated
from darwin_dra.planner.place import CapacityError, place
from darwin_dra.planner.report import (
    Row,
    failed,
    plan_json,
    render,
    render_stages,
    row,
    stages,
)
from darwin_dra.planner.topology import Topology, TopologyError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="place a model on the free chips, traffic first")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="a NIR file (.nir)")
    src.add_argument("--network", type=Path, help="an engine network (.npz, as `stage` reads)")
    src.add_argument("--generate", metavar="NAME", help="a generated model: conv-unet, "
                     "conv-snn, cortical-sheet, layered")  # fmt: skip
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--kubeconfig", type=Path, help="read the live cluster's ResourceSlices")
    where.add_argument("--topology", type=Path, help="a topology YAML file")
    p.add_argument("--profiles", type=Path, help="chip profile directory (default: built in)")
    p.add_argument(
        "--partitioner",
        choices=list(partitioners.PARTITIONERS),
        help="default: the first installed of " + ", ".join(partitioners.PARTITIONERS),
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tile", type=int, default=256, help="--network, --model: neurons per group")
    p.add_argument("--probe-steps", type=int, default=2000,
                   help="--network: steps of the engine run that measures the rates")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def load_graph(args: argparse.Namespace) -> ModelGraph:
    if args.generate:
        return generated(args.generate)
    if args.model:
        return from_nir(args.model, args.tile)
    from darwin_dra.planner.from_network import model_graph_of
    from darwin_dra.planner.probe import spike_counts
    from darwin_dra.runtime.stage import load_stage

    try:
        net = load_stage(args.network).network
    except (OSError, ValueError, KeyError) as exc:
        raise ModelSourceError(f"--network {args.network}: {exc}") from exc
    from darwin_dra.engine import EngineError

    profile = load_profiles(args.profiles)["darwin3"]
    try:
        counts = spike_counts(net, profile, args.probe_steps)
    except EngineError as exc:
        raise ModelSourceError(
            f"--network {args.network}: the run that measures its rates needs the network on"
            f" one simulated {profile.model} chip: {exc}"
        ) from exc
    return model_graph_of(net, counts, args.probe_steps * net.dt_ms / 1000.0, args.tile)


def load_topology_arg(args: argparse.Namespace) -> Topology:
    if args.topology:
        from darwin_dra.planner.topology_file import load_topology

        return load_topology(args.topology, load_profiles(args.profiles))
    from darwin_dra import kubeapi
    from darwin_dra.planner.topology import parse_slices

    try:
        kube = kubeapi.connect_controller(args.kubeconfig)
        try:
            slices = kube.list_driver_slices(DRIVER_NAME)
            claims, _ = kube.list_claims()
        finally:
            kube.close()
    except kubeapi.KubeApiError as exc:
        raise TopologyError(f"--kubeconfig {args.kubeconfig}: {exc}") from exc
    return parse_slices(slices, claims, source=str(args.kubeconfig))


def run(args: argparse.Namespace) -> int:
    try:
        graph = load_graph(args)
        topo = load_topology_arg(args)
    except (ModelSourceError, HardwareFileError, TopologyError) as exc:
        print(f"darwin-dra plan: {exc}", file=sys.stderr)
        return 2
    groups, bins = groups_of(graph), bins_of(topo)
    name = args.partitioner or partitioners.default_partitioner()
    if not partitioners.available(name):
        print(f"darwin-dra plan: partitioner {name} is not installed", file=sys.stderr)
        return 2
    try:
        plan = place(graph, topo, name, seed=args.seed)
    except CapacityError as exc:
        print(f"darwin-dra plan: {exc}", file=sys.stderr)
        return 1
    rows: list[Row] = [row(graph.name, plan, groups, bins)]
    for method in ("naive", "random"):
        try:
            other = (
                baselines.naive(graph, topo)
                if method == "naive"
                else baselines.random_placement(graph, topo, args.seed)
            )
            rows.append(row(graph.name, other, groups, bins))
        except CapacityError as exc:
            rows.append(failed(graph.name, method, str(exc)))
    if args.json:
        print(plan_json(graph, groups, bins, plan, rows, topo))
        return 0
    neurons, synapses = (int(x) for x in groups.demand[:, :2].sum(axis=0))
    print(
        f"model {graph.name}: {groups.size} groups, {neurons:,} neurons, {synapses:,} synapses;"
        f" topology {topo.source}: {len(topo.nodes)} nodes, {len(topo.chips)} chips,"
        f" {bins.size} free domains"
    )
    print(f"\nplacement ({plan.method}): one stage per chip used\n")
    print(render_stages(stages(graph, groups, bins, plan.assign)))
    print("\nspike traffic (estimated from the model's rates; multicast counted once per unit)\n")
    print(render(rows))
    return 0
