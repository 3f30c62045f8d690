"""`darwin-dra split-learn`: trains the spiking model cut in two (two processes over mutual
TLS), the same model unsplit, and an ANN of the same shape, and prints accuracy and bytes per
sample at the cut (see docs/split-learning.md)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from darwin_dra.kubeapi import KubeApiError
from darwin_dra.models.errors import ModelError
from darwin_dra.splitlearn.data import Split
from darwin_dra.splitlearn.experiment import SplitRunner, format_report, split_learn
from darwin_dra.splitlearn.parts import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = Config()
    p = sub.add_parser("split-learn", help="split learning with spikes at the cut (digits)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--hidden", type=int, default=d.hidden, help="LIF neurons at the cut")
    p.add_argument("--hidden2", type=int, default=d.hidden2, help="the server's LIF neurons")
    p.add_argument("--rate-penalty", type=float, default=d.rate_penalty)
    p.add_argument(
        "--cut-noise", type=float, default=d.cut_noise, help="defence: spike-count noise 0..1"
    )
    p.add_argument(
        "--cut-rate-limit",
        type=int,
        default=d.cut_rate_limit,
        help="defence: at most this many spikes per cut neuron and sample (16: no limit)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="at most this many training digits (quick runs)")
    p.add_argument("--ann-epochs", type=int, default=30)
    p.add_argument("--work", type=Path, help="directory for certificates, weights and logs")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--export",
        type=Path,
        help="write the split-trained model to this .nir file and check it on the engine",
    )
    p.add_argument(
        "--attack",
        action="store_true",
        help="also measure reconstruction and membership inference at the cut (slow)",
    )
    p.add_argument("--seeds", type=int, default=3, help="--attack: seeds for the error bars")
    p.add_argument(
        "--noise-levels",
        default="0,0.2,0.4,0.6,0.8,1",
        help="--attack: the defence curve's cut-noise levels (comma-separated; empty: none)",
    )
    p.add_argument(
        "--rate-limits",
        default="",
        help="--attack: the rate-limit curve's levels, spikes per neuron (e.g. 16,4,2,1)",
    )
    p.add_argument("--decoder-epochs", type=int, default=200)
    p.add_argument("--plots", type=Path, help="--attack: write the PNG pictures here")
    c = p.add_argument_group("on a cluster: the edge and the server as pods on two nodes")
    c.add_argument("--cluster", action="store_true", help="run the two parties as pods")
    c.add_argument("--kubeconfig", type=Path, help="--cluster: the cluster (default: in-cluster)")
    c.add_argument("--namespace", default="default")
    c.add_argument("--image", help="--cluster: the darwin-dra image the pods run")
    c.add_argument(
        "--pull-policy", default="IfNotPresent", choices=("IfNotPresent", "Never", "Always")
    )
    c.add_argument("--device-class", default="darwin-domain.snn.io", help="each party's claim")
    c.add_argument("--edge-node", help="--cluster: pin the edge pod to this node")
    c.add_argument("--server-node", help="--cluster: pin the server pod to this node")
    c.add_argument("--run-name", default="split-learn", help="--cluster: prefix of the objects")
    c.add_argument("--pod-timeout", type=float, default=900.0, help="--cluster: seconds")
    c.add_argument("--keep", action="store_true", help="--cluster: leave the pods and claims")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = Config(
            hidden=args.hidden,
            hidden2=args.hidden2,
            epochs=args.epochs,
            rate_penalty=args.rate_penalty,
            cut_noise=args.cut_noise,
            cut_rate_limit=args.cut_rate_limit,
        )
        cfg.check()
        if args.limit is not None and args.limit < 20:
            raise ValueError(f"--limit {args.limit}: at least 20 digits")
        runner = _cluster_runner(args) if args.cluster else None
        with tempfile.TemporaryDirectory(prefix="split-learn-") as tmp:
            work = args.work or Path(tmp)
            report = split_learn(
                work, cfg, args.seed, args.limit, args.ann_epochs, args.export, runner
            )
    except (ValueError, RuntimeError, OSError, ModelError, KubeApiError) as exc:
        print(f"split-learn: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)) if args.json else format_report(report), flush=True)
    if args.attack:
        return _attack(args, cfg)
    return 0


def _cluster_runner(args: argparse.Namespace) -> SplitRunner:
    from darwin_dra import kubeapi
    from darwin_dra.cli.split_learn_cluster import run_pods
    from darwin_dra.splitlearn.pods import PodSettings

    if not args.image:
        raise ValueError("--cluster needs --image (the darwin-dra image the pods run)")
    if args.edge_node and args.edge_node == args.server_node:
        raise ValueError(f"--edge-node and --server-node name the same node {args.edge_node!r}")
    settings = PodSettings(
        args.run_name, args.image, args.device_class, args.pull_policy,
        args.edge_node, args.server_node, args.pod_timeout,
    )  # fmt: skip
    kube = kubeapi.connect_pipelines(args.kubeconfig)

    def runner(
        work: Path, cfg: Config, seed: int, data: Split
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return run_pods(kube, args.namespace, settings, work, cfg, seed, data, args.keep)

    return runner


def _attack(args: argparse.Namespace, cfg: Config) -> int:
    from darwin_dra.splitlearn.data import load
    from darwin_dra.splitlearn.privacy import defence_curve, format_privacy, per_seed

    levels: dict[str, list[float]] = {}
    for knob, flag, text in (
        ("cut_noise", "--noise-levels", args.noise_levels),
        ("cut_rate_limit", "--rate-limits", args.rate_limits),
    ):
        try:
            levels[knob] = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            print(f"split-learn: {flag} {text!r}: not numbers", file=sys.stderr)
            return 2
    if any(v < 1 or v != int(v) for v in levels["cut_rate_limit"]):
        print(
            f"split-learn: --rate-limits {args.rate_limits!r}: whole numbers >= 1", file=sys.stderr
        )
        return 2
    seeds = list(range(args.seed, args.seed + args.seeds))
    data = load(limit=args.limit)
    results = per_seed(data, cfg, seeds, args.decoder_epochs)
    curves = [
        defence_curve(data, cfg, lv, seeds, args.decoder_epochs, knob)
        for knob, lv in levels.items()
        if lv
    ]
    print()
    print(format_privacy(results, curves))
    if args.plots is not None:
        from darwin_dra.splitlearn import plots

        args.plots.mkdir(parents=True, exist_ok=True)
        plots.rebuilt_digits(args.plots / "split-rebuilt.png", data.test_x[:10], results[0])
        if curves:
            plots.defence_curve(args.plots / "split-defence.png", curves, results)
    return 0
