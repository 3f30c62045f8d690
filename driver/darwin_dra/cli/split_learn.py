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
            report = split_learn(work, cfg, args.seed, args.limit, args.ann_epochs)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"split-learn: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)) if args.json else format_report(report))
    return 0
