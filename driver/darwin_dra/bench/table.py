"""Render benchmark results as a plain-text table or JSON.

The first row is the reference (the engine); each later row gets the ratios
first/row of throughput (events/s: above 1 means the first row is faster) and of peak
memory (above 1 means the first row uses more).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from darwin_dra.bench.brunel import BenchResult
from darwin_dra.bench.peers import PeerUnavailable

Row = BenchResult | PeerUnavailable

HEADERS = (
    "simulator",
    "thr",
    "build s",
    "sim s",
    "spikes",
    "rate Hz",
    "events",
    "Mev/s",
    "ns/ev",
    "peak MB",
    "speed x",
    "mem x",
)


def ratios(reference: BenchResult, other: BenchResult) -> dict[str, float]:
    """reference/other for throughput and memory; nan where undefined."""

    def div(a: float, b: float) -> float:
        return a / b if b > 0 and math.isfinite(a) and math.isfinite(b) else math.nan

    return {
        "events_per_s": div(reference.events_per_s, other.events_per_s),
        "peak_rss": div(reference.peak_rss_mb, other.peak_rss_mb),
    }


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if math.isfinite(x) else "-"


def _cells(row: Row, reference: BenchResult | None, is_first: bool) -> list[str]:
    if isinstance(row, PeerUnavailable):
        return [row.name, row.reason, *[""] * (len(HEADERS) - 2)]
    if is_first or reference is None:
        speed = mem = "1" if is_first else "-"
    else:
        r = ratios(reference, row)
        speed, mem = _fmt(r["events_per_s"], ".2f"), _fmt(r["peak_rss"], ".2f")
    return [
        row.name,
        str(row.threads),
        _fmt(row.build_s, ".2f"),
        _fmt(row.sim_s, ".3f"),
        str(row.spikes),
        _fmt(row.rate_hz, ".2f"),
        f"{row.events:.3e}",
        _fmt(row.events_per_s / 1e6, ".1f"),
        _fmt(row.ns_per_event, ".1f"),
        _fmt(row.peak_rss_mb, ".0f"),
        speed,
        mem,
    ]


def render(rows: Sequence[Row]) -> str:
    """Plain-text table; ratios are of the first row to each other row."""
    if not rows:
        return "(no results)"
    first = rows[0]
    reference = first if isinstance(first, BenchResult) else None
    body = [_cells(r, reference, i == 0) for i, r in enumerate(rows)]
    # An unavailable row's reason may be wider than the column it sits in: let it spill.
    widths = [
        max(
            [len(HEADERS[c])]
            + [
                len(b[c])
                for b, r in zip(body, rows, strict=True)
                if not (isinstance(r, PeerUnavailable) and c == 1)
            ]
        )
        for c in range(len(HEADERS))
    ]

    def line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])] + [
            cell.rjust(w) for cell, w in zip(cells[1:], widths[1:], strict=True)
        ]
        return "  ".join(out).rstrip()

    lines = [line(HEADERS), line(["-" * w for w in widths])]
    for cells, row in zip(body, rows, strict=True):
        if isinstance(row, PeerUnavailable):
            lines.append(f"{cells[0].ljust(widths[0])}  {row.reason}")
        else:
            lines.append(line(cells))
    return "\n".join(lines)


def as_dict(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """JSON-ready rows: results with ratio_to_first, unavailable peers with their reason."""
    first = rows[0] if rows else None
    reference = first if isinstance(first, BenchResult) else None
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if isinstance(row, PeerUnavailable):
            out.append(
                {"name": row.name, "available": False, "reason": row.reason, "detail": row.detail}
            )
            continue
        d: dict[str, Any] = {"available": True, **row.to_dict()}
        if reference is not None and i > 0:
            d["ratio_first_to_this"] = {
                k: (v if math.isfinite(v) else None) for k, v in ratios(reference, row).items()
            }
        out.append(d)
    return out


def to_json(rows: Sequence[Row], indent: int | None = 2) -> str:
    """JSON text of `as_dict`; non-finite numbers become null so the output is strict JSON."""
    return json.dumps(_finite(as_dict(rows)), indent=indent, allow_nan=False)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
