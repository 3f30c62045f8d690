"""`darwin-dra bench run`: a network through the chip host's spike port (`darwin-dra run`, as a
workload runs it) against the same network run directly on an engine in this process.

The network is the Brunel benchmark's (darwin_dra.bench); both sides run it on a whole darwin3
chip, single-threaded (a SpikePort steps with one thread), a window of steps per call, after
the same warm-up, each in a fresh process (bench/direct.py; `darwin-dra run` against a chip
host that lives for the whole benchmark, as on a node). The runs alternate, so the machine's
load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from darwin_dra.bench.brunel import DEFAULT_SEED, BrunelConfig
from darwin_dra.bench.peer_engine import brunel_network
from darwin_dra.chiphost.app import default_socket
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.cli.bench import bench_subparsers
from darwin_dra.cluster.chiphost import start_chip_host
from darwin_dra.runtime.stage import save_stage

NODE = "bench-node"


@dataclass(frozen=True)
class Measured:
    events_per_s: float
    rate_hz: float
    wall_s: float
    events: int


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = bench_subparsers(sub, "darwin_dra.cli.bench_run")
    p = actions.add_parser(
        "run", help="darwin-dra run through the chip host vs the same network on the engine"
    )
    p.add_argument("--scale", type=float, default=1.0, help="Brunel size factor (1 = 10 k)")
    p.add_argument("--steps", type=int, default=10000, help="timed steps per run")
    p.add_argument("--warmup-steps", type=int, default=2000)
    p.add_argument("--window", type=int, default=1000, help="steps per Step call")
    p.add_argument("--repeat", type=int, default=5, help="runs per side; medians are shown")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _json_run(cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:4])} failed ({out.returncode}): {out.stderr.strip()}")
    r = json.loads(out.stdout)
    return Measured(r["events_per_s"], r["rate_hz"], r["wall_s"], r["events"])


def direct(path: Path, steps: int, warmup: int, window: int) -> Measured:
    """The same network straight on an engine, in a fresh process like `darwin-dra run`."""
    return _json_run(
        [sys.executable, "-m", "darwin_dra.bench.direct", "--network", str(path),
         "--steps", str(steps), "--warmup-steps", str(warmup), "--window", str(window)]
    )  # fmt: skip


def through_chip_host(path: Path, endpoint: str, steps: int, warmup: int, window: int) -> Measured:
    """`darwin-dra run` as a workload runs it: its own process, the endpoint from the env."""
    cmd = [sys.executable, "-m", "darwin_dra.cli.main", "run", "--network", str(path),
           "--steps", str(steps), "--warmup-steps", str(warmup), "--window", str(window),
           "--json"]  # fmt: skip
    return _json_run(cmd, {**os.environ, "DARWIN_SPIKE_ENDPOINT": endpoint})


def summary(sides: dict[str, list[Measured]]) -> dict[str, dict[str, float]]:
    """Per side: the median events/s with its spread, and the medians of the rest."""
    rows = {}
    for name, runs in sides.items():
        eps = sorted(r.events_per_s for r in runs)
        rows[name] = {
            "events_per_s": statistics.median(eps),
            "events_per_s_min": eps[0],
            "events_per_s_max": eps[-1],
            "rate_hz": statistics.median(r.rate_hz for r in runs),
            "wall_s": statistics.median(r.wall_s for r in runs),
            "events": statistics.median(r.events for r in runs),
        }
    return rows


def print_table(
    rows: dict[str, dict[str, float]], labels: tuple[tuple[str, str], ...], baseline: str
) -> None:
    """The table of `summary`'s rows; x is each side's events/s divided by the baseline's."""
    width = max(34, *(len(label) + 2 for _, label in labels))
    print(f"\n{'path':<{width}}{'M events/s':>12}{'min..max':>16}{'rate Hz':>9}{'wall s':>8}"
          f"{'x':>7}")  # fmt: skip
    for name, label in labels:
        r = rows[name]
        spread = f"{r['events_per_s_min'] / 1e6:.1f}..{r['events_per_s_max'] / 1e6:.1f}"
        x = r["events_per_s"] / rows[baseline]["events_per_s"]
        print(f"{label:<{width}}{r['events_per_s'] / 1e6:>12.2f}{spread:>16}{r['rate_hz']:>9.2f}"
              f"{r['wall_s']:>8.3f}{x:>7.3f}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if min(args.steps, args.window, args.repeat) < 1 or args.warmup_steps < 0:
        print("--steps, --window and --repeat must be >= 1", file=sys.stderr)
        return 2
    cfg = BrunelConfig().scaled(args.scale) if args.scale != 1.0 else BrunelConfig()
    with tempfile.TemporaryDirectory(prefix="dra-bench-") as tmp:
        work = Path(tmp)
        net_file = work / "brunel.npz"
        save_stage(net_file, brunel_network(cfg, DEFAULT_SEED))
        inventory = work / "inventory.yaml"
        inventory.write_text(
            "apiVersion: darwin.snn.io/v1alpha1\nkind: Inventory\nnodes:\n"
            f"  - name: {NODE}\n    fabrics:\n      - id: b\n        chips:\n"
            "          - {model: darwin3, serial: B-0}\n"
        )
        host = start_chip_host(NODE, inventory, work / "state", work / "chip-host.log")
        try:
            sock = work / "state" / "partitions" / "bench" / "spike.sock"
            with ChipHostClient(default_socket(work / "state")) as chip:
                n_domains = chip.chips()[0].n_domains
                part = chip.create_partition(0, domains=list(range(n_domains)))
                failed = chip.serve_ports({sock: part})
                if failed:
                    raise RuntimeError(f"the chip host could not serve {sock}: {failed}")
                sides: dict[str, list[Measured]] = {"engine": [], "chip host": []}
                for i in range(args.repeat):
                    if not args.json:
                        print(f"run {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
                    sides["engine"].append(
                        direct(net_file, args.steps, args.warmup_steps, args.window)
                    )
                    sides["chip host"].append(
                        through_chip_host(
                            net_file, f"unix://{sock}", args.steps, args.warmup_steps, args.window
                        )
                    )
        finally:
            host.terminate()
            host.wait(timeout=30)
    rows = summary(sides)
    ratio = rows["chip host"]["events_per_s"] / rows["engine"]["events_per_s"]
    if args.json:
        print(json.dumps({"network": cfg.to_dict(), "sides": rows, "ratio": ratio}, indent=2))
        return 0
    print_table(
        rows,
        (("engine", "engine, own process"), ("chip host", "darwin-dra run -> chip host")),
        "engine",
    )
    print(
        f"\nnetwork: Brunel N={cfg.n}, {cfg.n_synapses:,} synapses; {args.steps} steps timed "
        f"after {args.warmup_steps}, {args.window} per call, {args.repeat} runs per side, "
        "single-threaded engine on a whole darwin3 chip"
    )
    print(f"chip host / engine: {ratio:.3f} (x: events/s divided by the engine's)")
    return 0
