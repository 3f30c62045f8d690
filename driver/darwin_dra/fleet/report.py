"""The fleet bench's tables: pure text from the summaries."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from darwin_dra.fleet.metrics import Summary, kinds_line, ratio


def _num(value: float, fmt: str = ",.0f") -> str:
    return "-" if math.isnan(value) else format(value, fmt)


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def _min(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds / 60:,.1f} min"


def cells(summaries: Sequence[Summary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one column per resource model, then each over the black box."""
    rows: list[tuple[str, Callable[[Summary], str]]] = [
        ("jobs in trace", lambda s: f"{s.jobs:,}"),
        ("jobs started", lambda s: f"{s.started:,}"),
        ("jobs completable (none waits)", lambda s: f"{s.completable:,}"),
        ("jobs whose pods the bench never created", lambda s: f"{s.not_created:,}"),
        ("pod creation lag p99 (the bench's client)", lambda s: _min(s.creation_lag_p99_s)),
        ("jobs completed within the trace", lambda s: f"{s.completed:,}"),
        ("never started", lambda s: f"{s.never_started:,}"),
        ("wait mean (trace time)", lambda s: _min(s.wait_mean_s)),
        ("wait p50 (trace time)", lambda s: _min(s.wait_p50_s)),
        ("wait p99 (trace time)", lambda s: _min(s.wait_p99_s)),
        ("cores held, mean", lambda s: _pct(s.cores_held_mean)),
        ("cores busy, mean", lambda s: _pct(s.cores_busy_mean)),
        ("cores offered, 2nd half (none waits)", lambda s: _pct(s.cores_offered_saturated)),
        ("cores busy, 2nd half (saturated)", lambda s: _pct(s.cores_busy_saturated)),
        ("KEPS used, mean", lambda s: _pct(s.keps_used_mean)),
        (
            "spike-heavy on a strong-enough router",
            lambda s: (
                f"{s.spike_sufficient}/{s.spike_started} ({_pct(s.spike_sufficient_fraction)})"
            ),
        ),
        ("pipeline traffic crossing nodes", lambda s: _pct(s.cross_node_fraction)),
        ("pipeline traffic crossing chips", lambda s: _pct(s.cross_chip_fraction)),
    ]
    head = ["", *(s.model for s in summaries)]
    body = [[label, *(fn(s) for s in summaries)] for label, fn in rows]
    base = next((s for s in summaries if s.model == "blackbox"), None)
    for other in summaries:
        if base is None or other is base:
            continue
        head.append(f"{other.model} / black box")
        extra = {
            "jobs completed within the trace": f"{ratio(other.completed, base.completed):.1f}x",
            "cores busy, mean": f"{ratio(other.cores_busy_mean, base.cores_busy_mean):.1f}x",
            "cores busy, 2nd half (saturated)": (
                f"{ratio(other.cores_busy_saturated, base.cores_busy_saturated):.1f}x"
            ),
            "KEPS used, mean": f"{ratio(other.keps_used_mean, base.keps_used_mean):.1f}x",
        }
        for row in body:
            row.append(extra.get(row[0], ""))
    return head, body


def table(summaries: Sequence[Summary]) -> str:
    head, body = cells(summaries)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = []
    for r in [head, *body]:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(padded))
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"completed by kind, {s.model}: {kinds_line(s.completed_by_kind)}" for s in summaries]
    return "\n".join(lines)


def markdown(summaries: Sequence[Summary]) -> str:
    """The same table in Markdown, for docs/fleet.md."""
    head, body = cells(summaries)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in body]
    out.append("")
    out += [f"- completed by kind, {s.model}: {kinds_line(s.completed_by_kind)}" for s in summaries]
    return "\n".join(out)
