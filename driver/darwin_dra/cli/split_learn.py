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

from darwin_dra.models.errors import ModelError
from darwin_dra.splitlearn.experiment import format_report, split_learn
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
    p.add_argument("--decoder-epochs", type=int, default=200)
    p.add_argument("--plots", type=Path, help="--attack: write the PNG pictures here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = Config(
            hidden=args.hidden,
            hidden2=args.hidden2,
            epochs=args.epochs,
            rate_penalty=args.rate_penalty,
            cut_noise=args.cut_noise,
        )
        cfg.check()
        if args.limit is not None and args.limit < 20:
            raise ValueError(f"--limit {args.limit}: at least 20 digits")
        with tempfile.TemporaryDirectory(prefix="split-learn-") as tmp:
            work = args.work or Path(tmp)
            report = split_learn(work, cfg, args.seed, args.limit, args.ann_epochs, args.export)
    except (ValueError, RuntimeError, OSError, ModelError) as exc:
        print(f"split-learn: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)) if args.json else format_report(report), flush=True)
    if args.attack:
        return _attack(args, cfg)
    return 0


def _attack(args: argparse.Namespace, cfg: Config) -> int:
    from darwin_dra.splitlearn.data import load
    from darwin_dra.splitlearn.privacy import defence_curve, format_privacy, per_seed

    try:
        levels = [float(v) for v in args.noise_levels.split(",") if v.strip()]
    except ValueError:
        print(f"split-learn: --noise-levels {args.noise_levels!r}: not numbers", file=sys.stderr)
        return 2
    seeds = list(range(args.seed, args.seed + args.seeds))
    data = load(limit=args.limit)
    results = per_seed(data, cfg, seeds, args.decoder_epochs)
    curve = defence_curve(data, cfg, levels, seeds, args.decoder_epochs) if levels else None
    print()
    print(format_privacy(results, curve))
    if args.plots is not None:
        from darwin_dra.splitlearn import plots

        args.plots.mkdir(parents=True, exist_ok=True)
        plots.rebuilt_digits(args.plots / "split-rebuilt.png", data.test_x[:10], results[0])
        if curve is not None:
            plots.defence_curve(args.plots / "split-defence.png", curve, results)
    return 0
