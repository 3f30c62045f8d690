"""`darwin-dra split-learn`'s run: the split model trained by two processes, the same model
trained unsplit in this process, and the ANN of the same shape; what crosses the cut, per
sample, for each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from darwin_dra.splitlearn.ann import train_ann
from darwin_dra.splitlearn.data import Split, load
from darwin_dra.splitlearn.nirexport import export_and_check
from darwin_dra.splitlearn.parts import Config, EdgePart, ServerPart, load_weights
from darwin_dra.splitlearn.run import run_split
from darwin_dra.splitlearn.train import train_unsplit


@dataclass
class Report:
    dataset: str
    config: dict[str, float | int]
    seed: int
    train_samples: int
    test_samples: int
    split_accuracy: float
    unsplit_accuracy: float
    ann_accuracy: float
    spikes_per_sample: float  # at the cut, held-out
    split_bytes_per_sample: float  # BATCH messages of the held-out digits, as sent
    ann_bytes_per_sample: float  # dense float32 activations (payload only)
    split_grad_bytes_per_sample: float  # GRAD messages back, per training sample
    ann_grad_bytes_per_sample: float  # its gradient at the cut, float32
    split_seconds: float
    unsplit_seconds: float
    edge: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    nir: dict[str, Any] | None = None  # export_and_check of the split run's weights
    deploy: dict[str, Any] | None = None  # deploy_and_check: the export as a 2-stage pipeline


def trained_parts(work: Path, cfg: Config, seed: int) -> tuple[EdgePart, ServerPart]:
    """The halves as the two processes left them (each wrote its own weights)."""
    edge, server = EdgePart(cfg, seed), ServerPart(cfg, seed)
    e = load_weights(work / "edge" / "edge.npz")
    s = load_weights(work / "server" / "server.npz")
    edge.layer.w[:], edge.layer.b[:] = e["edge_w"], e["edge_b"]
    server.l2.w[:], server.l2.b[:] = s["server_w2"], s["server_b2"]
    server.l3.w[:], server.l3.b[:] = s["server_w3"], s["server_b3"]
    return edge, server


# Trains the split model somewhere (two processes, two pods): (edge report, server report),
# each party's weights left in work/<role>/<role>.npz.
SplitRunner = Callable[[Path, Config, int, Split], tuple[dict[str, Any], dict[str, Any]]]


def split_learn(
    work: Path,
    cfg: Config,
    seed: int,
    limit: int | None = None,
    ann_epochs: int = 30,
    export: Path | None = None,
    runner: SplitRunner | None = None,
    dataset: str = "digits",
    deploy_gap: int | None = None,
) -> Report:
    """``runner``: where the two parties run; by default two processes on this machine.
    ``deploy_gap``: also run the export as a pipeline cut at the training cut, samples this
    many steps apart (splitlearn/deploy.py)."""
    data = load(limit=limit, dataset=dataset)
    cfg = replace(cfg, inputs=int(data.train_x.shape[1]))
    cfg.check()
    edge, server = (runner or run_split)(work, cfg, seed, data)
    check = None
    if export is not None:
        e_part, s_part = trained_parts(work, cfg, seed)
        check = asdict(export_and_check(export, e_part, s_part, data.test_x, data.test_y))
    deployed = None
    if deploy_gap is not None:
        from darwin_dra.splitlearn.deploy import deploy_and_check

        if export is None:
            raise ValueError("deploying needs the export (--export FILE.nir)")
        pipe = deploy_and_check(
            export, work / "deploy", data.test_x, data.test_y, cfg.steps, deploy_gap
        )
        deployed = asdict(pipe)
    _, _, unsplit = train_unsplit(data, cfg, seed)
    _, ann_acc = train_ann(data, seed, cfg.hidden, cfg.hidden2, epochs=ann_epochs)
    trained = cfg.epochs * len(data.train_x)
    return Report(
        dataset=dataset,
        config=cfg.to_dict(),
        seed=seed,
        train_samples=len(data.train_x),
        test_samples=len(data.test_x),
        split_accuracy=float(edge["accuracy"]),
        unsplit_accuracy=unsplit.accuracy,
        ann_accuracy=ann_acc,
        spikes_per_sample=float(edge["spikes_per_sample"]),
        split_bytes_per_sample=float(edge["cut_bytes_per_sample"]),
        ann_bytes_per_sample=4.0 * cfg.hidden,
        split_grad_bytes_per_sample=float(server["sent"].get("G", 0)) / trained,
        ann_grad_bytes_per_sample=4.0 * cfg.hidden,
        split_seconds=float(edge["seconds"]),
        unsplit_seconds=unsplit.seconds,
        edge=edge,
        server=server,
        nir=check,
        deploy=deployed,
    )


def format_report(r: Report) -> str:
    c = r.config
    where = "2 processes, mTLS"
    if r.edge.get("node"):
        where = f"pods on {r.edge['node']} and {r.server['node']}, mTLS"
    rows = [
        ("model", "held-out accuracy", "cut bytes/sample (forward)", "bytes/sample back (train)"),
        (
            f"SNN split ({where})",
            f"{100 * r.split_accuracy:.2f}%",
            f"{r.split_bytes_per_sample:.1f} ({r.spikes_per_sample:.1f} spikes)",
            f"{r.split_grad_bytes_per_sample:.0f}",
        ),
        ("SNN unsplit (1 process)", f"{100 * r.unsplit_accuracy:.2f}%", "-", "-"),
        (
            f"ANN {c['inputs']}-{c['hidden']}-{c['hidden2']}-10 (ReLU)",
            f"{100 * r.ann_accuracy:.2f}%",
            f"{r.ann_bytes_per_sample:.0f} (dense float32)",
            f"{r.ann_grad_bytes_per_sample:.0f}",
        ),
    ]
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [" | ".join(cell.ljust(w[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * n for n in w))
    ratio = r.ann_bytes_per_sample / max(r.split_bytes_per_sample, 1e-9)
    lines += [
        "",
        f"{r.dataset}: {r.train_samples} training, {r.test_samples} held out; rate code, "
        f"{c['steps']} steps; cut = {c['hidden']} LIF neurons; seed {r.seed}; "
        f"{c['epochs']} epochs; rate penalty {c['rate_penalty']}; cut noise {c['cut_noise']}",
        f"split - unsplit accuracy: {100 * (r.split_accuracy - r.unsplit_accuracy):+.2f} points; "
        f"ANN / SNN bytes per sample at the cut: {ratio:.1f}x",
        f"training time: split {r.split_seconds:.1f} s, unsplit {r.unsplit_seconds:.1f} s",
    ]
    if r.nir is not None:
        n = r.nir
        lines.append(
            f"NIR export of the split run's weights, on the engine: "
            f"{100 * n['engine_accuracy']:.2f}% against the training code's "
            f"{100 * n['training_accuracy']:.2f}% "
            f"({100 * (n['engine_accuracy'] - n['training_accuracy']):+.2f} points; same class "
            f"for {100 * n['agreement']:.1f}% of {n['samples']} digits)"
        )
        lines.append(
            "the same digits as one stream on the engine (no reset; gap steps between): "
            + ", ".join(
                f"gap {g}: {100 * acc:.2f}%" for g, acc in sorted(n["stream_accuracy"].items())
            )
        )
    if r.deploy is not None:
        d, n = r.deploy, r.nir or {}
        lines += [
            f"deployed as a pipeline cut at the training cut ({' -> '.join(d['stages'])}, "
            f"mTLS), {d['samples']} samples in one stream {d['gap']} steps apart, "
            f"{d['cut_bytes_per_sample']:.1f} bytes per sample across the cut, "
            f"{d['seconds']:.1f} s:",
            f"  each sample from rest: {100 * d['pipeline_accuracy']:.2f}% (training code "
            f"{100 * n.get('training_accuracy', float('nan')):.2f}%, one piece on the engine "
            f"{100 * d['one_piece_accuracy']:.2f}%, same class for {100 * d['agreement']:.1f}%)",
            f"  state decaying in the gap: {100 * d['decay_accuracy']:.2f}% (one piece, same "
            f"stream: {100 * d['decay_one_piece_accuracy']:.2f}%, same class for "
            f"{100 * d['decay_agreement']:.1f}%)",
        ]
    return "\n".join(lines)
