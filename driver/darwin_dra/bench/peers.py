"""Run the peer simulators (NEST, Brian2) each in its own subprocess.

A separate process per peer keeps its peak RSS its own and keeps a crash, a hang or a
library that prints to stdout from touching the caller. The child prints one marker line
with its JSON result; everything else it prints is ignored (NEST prints a banner).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_dra.bench.brunel import DEFAULT_SEED, BenchResult, BrunelConfig
from darwin_dra.bench.conv import CONV_KIND, ConvConfig

# The networks of the benchmark: the Brunel family (brunel, trained) and the conv model.
Config = BrunelConfig | ConvConfig

RESULT_MARKER = "DARWIN_BENCH_RESULT "
UNAVAILABLE_MARKER = "DARWIN_BENCH_UNAVAILABLE "
# Exit status of a peer whose simulator cannot be imported.
EXIT_UNAVAILABLE = 3

PEER_MODULES: dict[str, str] = {
    "engine": "darwin_dra.bench.peer_engine",
    "nest": "darwin_dra.bench.peer_nest",
    "brian2": "darwin_dra.bench.peer_brian2",
}


@dataclass(frozen=True)
class PeerUnavailable:
    """A peer that produced no result; `reason` is what the table prints in its row."""

    name: str
    reason: str
    detail: str = ""


def config_from_dict(data: dict[str, Any]) -> Config:
    """A config from its JSON form: ConvConfig if it says kind 'conv', else BrunelConfig."""
    if data.get("kind") == CONV_KIND:
        return ConvConfig.from_dict(data)
    return BrunelConfig.from_dict(data)


def run_peer(
    name: str,
    cfg: Config,
    timeout: float,
    *,
    seed: int = DEFAULT_SEED,
    python: str | None = None,
    extra_args: Sequence[str] = (),
) -> BenchResult | PeerUnavailable:
    """Run peer `name` ("nest" or "brian2") on `cfg` in a subprocess and parse its result.

    `python` is the interpreter to use (default: this one); the peer's simulator must be
    importable there. A missing simulator gives PeerUnavailable(reason="not installed").
    """
    module = PEER_MODULES.get(name)
    if module is None:
        raise ValueError(f"unknown peer {name!r}; known: {sorted(PEER_MODULES)}")
    cmd = [
        python or sys.executable,
        "-m",
        module,
        "--json",
        "--config",
        json.dumps(cfg.to_dict()),
        "--seed",
        str(seed),
        *extra_args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return PeerUnavailable(name, f"timeout after {timeout:g} s")
    return parse_peer_output(name, proc.returncode, proc.stdout, proc.stderr)


def parse_peer_output(
    name: str, returncode: int, stdout: str, stderr: str
) -> BenchResult | PeerUnavailable:
    """Turn a peer process's exit status and output into its result."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(UNAVAILABLE_MARKER):
            return PeerUnavailable(name, "not installed", line[len(UNAVAILABLE_MARKER) :])
        if line.startswith(RESULT_MARKER) and returncode == 0:
            try:
                return BenchResult.from_dict(json.loads(line[len(RESULT_MARKER) :]))
            except (ValueError, KeyError, TypeError) as exc:
                return PeerUnavailable(name, "bad output", str(exc))
    tail = "\n".join((stderr or stdout).strip().splitlines()[-5:])
    return PeerUnavailable(name, f"failed (exit {returncode})", tail)


def child_env() -> dict[str, str]:
    """Environment for a benchmark subprocess: this package importable, one thread."""
    env = dict(os.environ)
    # The child must import this package even when it is run from a source tree.
    pkg_root = str(Path(__file__).resolve().parents[2])
    parts = [pkg_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env["PYNEST_QUIET"] = "1"
    # One thread everywhere, including any BLAS numpy might call while building.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


# Older name, still imported by the CLI.
_child_env = child_env


# ---- helpers used inside the peer processes -------------------------------------------


def peak_rss_mb() -> float:
    """High-water RSS of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """Current RSS of this process in MiB, or 0 where /proc is unavailable."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024.0
    return 0.0


def peer_main(
    name: str,
    argv: Sequence[str] | None,
    import_check: Callable[[], str | None],
    run: Callable[[Config, int], BenchResult],
) -> int:
    """Shared command line of the peer modules.

    `import_check` returns None when the simulator imports, else a message; `run` builds
    and simulates the network and returns the result.
    """
    parser = argparse.ArgumentParser(prog=f"python -m darwin_dra.bench.peer_{name}")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--config", help="BrunelConfig as a JSON object (default: full size)")
    parser.add_argument("--scale", type=float, default=1.0, help="BrunelConfig.scaled factor")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)

    cfg = config_from_dict(json.loads(args.config)) if args.config else BrunelConfig()
    if args.scale != 1.0:
        cfg = cfg.scaled(args.scale)

    problem = import_check()
    if problem is not None:
        print(UNAVAILABLE_MARKER + problem, flush=True)
        print(f"{name}: not installed ({problem})", file=sys.stderr)
        return EXIT_UNAVAILABLE

    result = run(cfg, args.seed)
    if args.json:
        print(RESULT_MARKER + json.dumps(result.to_dict()), flush=True)
    else:
        from darwin_dra.bench.table import render

        print(render([result]))
    return 0
