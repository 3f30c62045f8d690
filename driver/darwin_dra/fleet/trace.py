"""A trace of SNN jobs: arrivals, durations and what each job needs (pure, seeded).

Five kinds, each described by what it needs from the hardware, not by how a resource model
asks for it (claims.py turns a job into black-box or Darwin requests):

- ``infer``: a small inference service on 1 to 4 domains of one chip;
- ``share``: an inference service that needs only a KEPS share and a few cores' neurons;
- ``spike``: a spike-heavy job whose rate only a strong router sustains (a chip-level rate);
- ``train``: whole-chip training on 1 or 2 chips;
- ``pipeline``: three stages (encoder domain, reservoir quad, readout domain) with spike
  traffic between consecutive stages.

Times are trace seconds. Rates are in millions of events per second (Meps), the unit of the
slices' ``maxMeps`` attribute.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from darwin_dra.engine import keps as kepsdef

KINDS = ("infer", "share", "spike", "train", "pipeline")


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    arrival: float  # trace seconds from the start
    duration: float  # trace seconds it holds its devices once started
    domains: int = 0  # infer: domains on one chip
    chips: int = 0  # train: whole chips
    cores: int = 0  # share, spike: cores its neurons occupy
    rate_meps: int = 0  # spike: the chip-level rate it needs; others: the rate it generates
    keps: int = 0  # share: thousands of events/s asked from a shared device
    stage_meps: tuple[int, ...] = ()  # pipeline: traffic encoder->reservoir, reservoir->readout

    @property
    def name(self) -> str:
        return f"job-{self.id:05d}-{self.kind}"


@dataclass(frozen=True)
class TraceConfig:
    """The trace's parameters; docs/fleet.md prints them with each result."""

    seed: int = 11
    length_s: float = 4 * 3600.0
    arrivals_per_hour: float = 1200.0
    mix: dict[str, float] = field(
        default_factory=lambda: {
            "infer": 0.65,
            "share": 0.10,
            "spike": 0.05,
            "train": 0.05,
            "pipeline": 0.15,
        }
    )
    # Mean durations (trace seconds) by kind; durations are log-normal (sigma 0.5) around them.
    mean_duration_s: dict[str, float] = field(
        default_factory=lambda: {
            "infer": 3600.0,
            "share": 3600.0,
            "spike": 2700.0,
            "train": 5400.0,
            "pipeline": 3600.0,
        }
    )
    # The spike-heavy rates: above a darwin3 chip's nominal 1,000,000 Meps, below the
    # assumed darwin3-fastroute's 2,000,000.
    duration_scale: float = 1.0  # multiplies every mean duration (short traces for tests)
    spike_meps: tuple[int, int] = (1_100_000, 1_800_000)
    spike_cores: tuple[int, int] = (128, 240)

    def __post_init__(self) -> None:
        unknown = set(self.mix) - set(KINDS)
        if unknown:
            raise ValueError(f"mix: unknown job kinds {sorted(unknown)} (known: {KINDS})")
        if not math.isclose(sum(self.mix.values()), 1.0, abs_tol=1e-6):
            raise ValueError(f"mix: shares must add up to 1, got {sum(self.mix.values())}")
        if any(v < 0 for v in self.mix.values()):
            raise ValueError("mix: shares must not be negative")
        missing = set(KINDS) - set(self.mean_duration_s)
        if missing:
            raise ValueError(f"mean_duration_s: no duration for {sorted(missing)}")
        if self.length_s <= 0 or self.arrivals_per_hour <= 0 or self.duration_scale <= 0:
            raise ValueError("length_s, arrivals_per_hour and duration_scale must be positive")


def _duration(rng: random.Random, mean: float) -> float:
    sigma = 0.5
    # Log-normal with the given mean: mu = ln(mean) - sigma^2 / 2.
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def generate(cfg: TraceConfig) -> list[Job]:
    """Poisson arrivals over ``length_s``, kinds drawn from ``mix``; same config, same trace."""
    rng = random.Random(cfg.seed)
    kinds = [k for k in KINDS if cfg.mix.get(k, 0.0) > 0]
    weights = [cfg.mix[k] for k in kinds]
    rate = cfg.arrivals_per_hour / 3600.0
    jobs: list[Job] = []
    t = rng.expovariate(rate)
    while t < cfg.length_s:
        kind = rng.choices(kinds, weights)[0]
        duration = _duration(rng, cfg.mean_duration_s[kind] * cfg.duration_scale)
        jid = len(jobs)
        if kind == "infer":
            n = rng.choice((1, 2, 2, 3, 4))
            job = Job(jid, kind, t, duration, domains=n, rate_meps=n * rng.randint(5_000, 20_000))
        elif kind == "share":
            keps = 5_000_000 * rng.randint(2, 10)  # 10 k to 50 k Meps, in steps of 5 k
            cores = rng.randint(2, 8)
            job = Job(jid, kind, t, duration, cores=cores, keps=keps, rate_meps=kepsdef.meps(keps))
        elif kind == "spike":
            lo, hi = cfg.spike_meps
            job = Job(
                jid,
                kind,
                t,
                duration,
                cores=16 * rng.randint(cfg.spike_cores[0] // 16, cfg.spike_cores[1] // 16),
                rate_meps=100_000 * rng.randint(lo // 100_000, hi // 100_000),
            )
        elif kind == "train":
            chips = rng.choice((1, 1, 1, 2))
            job = Job(
                jid, kind, t, duration, chips=chips, rate_meps=chips * rng.randint(200_000, 600_000)
            )
        else:
            stages = (rng.randint(5_000, 20_000), rng.randint(5_000, 20_000))
            job = Job(jid, kind, t, duration, stage_meps=stages, rate_meps=sum(stages))
        jobs.append(job)
        t += rng.expovariate(rate)
    return jobs


def parse_mix(text: str) -> dict[str, float]:
    """``"infer=0.3,train=0.2,..."`` -> shares by kind; kinds not named get no share.
    TraceConfig checks the kinds and that the shares add up to 1."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        kind, sep, share = part.partition("=")
        if not sep:
            raise ValueError(f"mix: expected kind=share, got {part.strip()!r}")
        try:
            mix[kind.strip()] = float(share)
        except ValueError:
            raise ValueError(f"mix: share of {kind.strip()!r} is not a number: {share!r}") from None
    if not mix:
        raise ValueError("mix: no kinds given")
    return mix
