"""What a replay achieved, from its records: pure functions over plain data.

A replay records, per unit (pod), when it was created, bound and released (trace seconds) and
which devices its claim got. A job starts when all its units are bound and ends when they are
released. Utilisation counts three things over time, each as a fraction of the fleet:

- cores held: cores of the devices allocated (a whole chip for the black box; a shared
  device holds its half's cores while any share of it is allocated);
- cores busy: cores the running jobs' neurons occupy (the job's need, at most what it holds);
- KEPS used: the running jobs' spike rates, at most their devices' router share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from darwin_dra.engine.keps import KEPS_PER_MEPS
from darwin_dra.fleet.catalogue import Catalogue
from darwin_dra.fleet.claims import NOMINAL_DOMAIN_CORES, PIPELINE_STAGES
from darwin_dra.fleet.trace import Job, TraceConfig, generate

GRANTED = ("shared", "capacity")  # devices allocated many times: a grant holds what it consumed


@dataclass(frozen=True)
class Allocated:
    request: str
    pool: str
    device: str
    keps: int = 0  # consumedCapacity.keps on a shared or capacity device
    neurons: int = 0
    domains: int = 0  # consumedCapacity.domains on a capacity device


@dataclass(frozen=True)
class UnitRecord:
    job_id: int
    index: int
    created: float
    bound: float | None = None
    released: float | None = None
    devices: tuple[Allocated, ...] = ()


@dataclass(frozen=True)
class JobOutcome:
    job: Job
    start: float | None
    end: float | None
    units: tuple[UnitRecord, ...]

    @property
    def wait(self) -> float | None:
        return None if self.start is None else self.start - self.job.arrival


@dataclass
class Summary:
    model: str
    jobs: int
    started: int
    completed: int
    completed_by_kind: dict[str, int]
    wait_mean_s: float
    wait_p50_s: float
    wait_p99_s: float
    never_started: int
    cores_held_mean: float
    cores_busy_mean: float
    keps_used_mean: float
    cores_busy_saturated: float  # mean over the second half of the trace
    # What the trace asks, whatever the model: jobs that would end within the trace had none
    # waited, and the cores its jobs would keep busy with no wait (mean over the 2nd half):
    # above 1, the trace saturates the fleet; below, cores busy cannot reach it.
    completable: int
    # The bench's own lag: trace seconds from a job's arrival to its pods' creation (p99), and
    # the trace's jobs whose pods were never created (the client fell behind): part of "wait".
    creation_lag_p99_s: float
    not_created: int
    cores_offered_saturated: float
    spike_started: int
    spike_sufficient: int
    pipeline_traffic_events: float
    pipeline_cross_node_events: float
    pipeline_cross_chip_events: float
    times: list[float] = field(default_factory=list)
    cores_held: list[float] = field(default_factory=list)
    cores_busy: list[float] = field(default_factory=list)
    keps_used: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    @property
    def spike_sufficient_fraction(self) -> float:
        return self.spike_sufficient / self.spike_started if self.spike_started else float("nan")

    @property
    def cross_chip_fraction(self) -> float:
        t = self.pipeline_traffic_events
        return self.pipeline_cross_chip_events / t if t else float("nan")

    @property
    def cross_node_fraction(self) -> float:
        t = self.pipeline_traffic_events
        return self.pipeline_cross_node_events / t if t else float("nan")


def outcomes(jobs: Sequence[Job], records: Sequence[UnitRecord]) -> list[JobOutcome]:
    by_job: dict[int, list[UnitRecord]] = {}
    for r in records:
        by_job.setdefault(r.job_id, []).append(r)
    out = []
    for job in jobs:
        units = tuple(sorted(by_job.get(job.id, []), key=lambda u: u.index))
        bound = [u.bound for u in units]
        start = max(b for b in bound if b is not None) if units and None not in bound else None
        released = [u.released for u in units]
        end = (
            max(r for r in released if r is not None)
            if start is not None and None not in released
            else None
        )
        out.append(JobOutcome(job, start, end, units))
    return out


def _demand_cores(job: Job, held: int) -> int:
    need = {
        "infer": job.domains * NOMINAL_DOMAIN_CORES,
        "share": job.cores,
        "spike": job.cores,
        "train": held,  # training uses the whole chips it asked for
        "pipeline": 6 * NOMINAL_DOMAIN_CORES,  # a domain, a quad, a domain
    }[job.kind]
    return min(need, held)


def offered_need(job: Job, whole_chip_cores: int) -> int:
    """Cores a job would keep busy had it not waited (training: its chips at the largest)."""
    return job.chips * whole_chip_cores if job.kind == "train" else _demand_cores(job, 1 << 30)


def arrivals_for_load(
    cfg: TraceConfig, load: float, fleet_cores: int, whole_chip_cores: int, sample_jobs: int = 20000
) -> float:
    """Arrivals an hour at which the trace offers ``load`` of the fleet's cores in steady state.

    Little's law: cores offered = arrivals a second x the mean of (need x duration) over the
    mix. The mean is taken over a long sample trace of the same config and seed (pure, so the
    same parameters give the same rate); the bench prints the offered load it got.
    """
    if load <= 0 or fleet_cores <= 0:
        raise ValueError("load and fleet_cores must be positive")
    rate_h = 3600.0
    sample = generate(
        replace(cfg, length_s=sample_jobs * 3600.0 / rate_h, arrivals_per_hour=rate_h)
    )
    core_seconds = float(np.mean([offered_need(j, whole_chip_cores) * j.duration for j in sample]))
    return load * fleet_cores / core_seconds * 3600.0


def _held_cores(a: Allocated, cat: Catalogue) -> int:
    """Cores an allocation holds: a capacity grant its domains' share of the chip's cores
    (the plugin picks which domains; the bench sees only how many)."""
    info = cat.device(a.pool, a.device)
    if info.partition != "capacity":
        return info.cores
    chip = cat.chips[info.chip_key]
    return round(chip.n_cores * a.domains / max(len(chip.domains), 1))


def _unit_cores(unit: UnitRecord, cat: Catalogue) -> int:
    return sum(_held_cores(a, cat) for a in unit.devices)


def _job_keps(o: JobOutcome, cat: Catalogue) -> int:
    held = 0
    for u in o.units:
        for a in u.devices:
            info = cat.device(a.pool, a.device)
            held += a.keps if info.partition in GRANTED else info.max_meps * KEPS_PER_MEPS
    return min(o.job.rate_meps * KEPS_PER_MEPS, held)


def _sustains(a: Allocated, cat: Catalogue, rate_meps: int) -> bool:
    """The device's router carries the rate, and a capacity grant's KEPS budget does too."""
    info = cat.device(a.pool, a.device)
    budget = a.keps >= rate_meps * KEPS_PER_MEPS if info.partition == "capacity" else True
    return info.max_meps >= rate_meps and budget


def _step(times: np.ndarray, start: float, end: float, value: float, acc: np.ndarray) -> None:
    acc[(times >= start) & (times < end)] += value


def _stage_places(o: JobOutcome) -> list[tuple[str, int] | None]:
    """(node, chip) of each pipeline stage, or None where unknown."""
    places: dict[str, tuple[str, int]] = {}
    for u in o.units:
        for a in u.devices:
            stage = PIPELINE_STAGES[u.index] if len(o.units) > 1 else a.request
            chip = int(a.device.split("-")[1])
            places[stage] = (a.pool, chip)
    if len(places) == 1 and not places.keys() & set(PIPELINE_STAGES):
        # One grant for the whole pipeline (the capacity model): every stage on its chip.
        return [next(iter(places.values()))] * len(PIPELINE_STAGES)
    return [places.get(s) for s in PIPELINE_STAGES]


def summarise(
    model: str,
    jobs: Sequence[Job],
    records: Sequence[UnitRecord],
    cat: Catalogue,
    length_s: float,
    samples: int = 240,
) -> Summary:
    outs = outcomes(jobs, records)
    times = np.linspace(0.0, length_s, samples, endpoint=False)
    held = np.zeros(samples)
    busy = np.zeros(samples)
    keps = np.zeros(samples)
    shared_spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for o in outs:
        for u in o.units:
            if u.bound is None:
                continue
            until = u.released if u.released is not None else length_s
            for a in u.devices:
                info = cat.device(a.pool, a.device)
                if info.partition == "shared":
                    shared_spans.setdefault((a.pool, a.device), []).append((u.bound, until))
                else:
                    _step(times, u.bound, until, _held_cores(a, cat), held)
        if o.start is None:
            continue
        until = o.end if o.end is not None else length_s
        unit_cores = sum(_unit_cores(u, cat) for u in o.units)
        if o.job.kind == "share":
            unit_cores = o.job.cores
        _step(times, o.start, until, _demand_cores(o.job, unit_cores), busy)
        _step(times, o.start, until, _job_keps(o, cat), keps)
    for (pool, device), spans in shared_spans.items():
        count = np.zeros(samples)
        for s, e in spans:
            _step(times, s, e, 1.0, count)
        held += np.where(count > 0, cat.device(pool, device).cores, 0)
    total_cores, total_keps = cat.total_cores, cat.total_keps
    held /= total_cores
    busy /= total_cores
    keps /= total_keps

    started = [o for o in outs if o.start is not None]
    waits = np.array([o.wait for o in started if o.wait is not None])
    completed = [o for o in started if o.end is not None and o.end <= length_s]
    by_kind: dict[str, int] = {}
    for o in completed:
        by_kind[o.job.kind] = by_kind.get(o.job.kind, 0) + 1

    spikes = [o for o in started if o.job.kind == "spike"]
    sufficient = sum(
        1
        for o in spikes
        if all(_sustains(a, cat, o.job.rate_meps) for u in o.units for a in u.devices)
    )
    traffic = cross_node = cross_chip = 0.0
    for o in started:
        if o.job.kind != "pipeline" or o.start is None:
            continue
        run = min(o.end if o.end is not None else length_s, length_s) - o.start
        places = _stage_places(o)
        for i, meps in enumerate(o.job.stage_meps):
            events = meps * 1e6 * max(run, 0.0)
            traffic += events
            here, there = places[i], places[i + 1]
            if here is None or there is None:
                continue
            if here[0] != there[0]:
                cross_node += events
            if here != there:
                cross_chip += events
    half = times >= length_s / 2
    offered = np.zeros(samples)
    biggest = max((c.n_cores for c in cat.chips.values()), default=0)
    for job in jobs:
        _step(times, job.arrival, job.arrival + job.duration, offered_need(job, biggest), offered)
    offered /= total_cores
    arrival = {j.id: j.arrival for j in jobs}
    lags = np.array([r.created - arrival[r.job_id] for r in records if r.job_id in arrival])
    return Summary(
        model=model,
        jobs=len(jobs),
        started=len(started),
        completed=len(completed),
        completed_by_kind=by_kind,
        wait_mean_s=float(waits.mean()) if waits.size else float("nan"),
        wait_p50_s=float(np.percentile(waits, 50)) if waits.size else float("nan"),
        wait_p99_s=float(np.percentile(waits, 99)) if waits.size else float("nan"),
        never_started=len(outs) - len(started),
        cores_held_mean=float(held.mean()),
        cores_busy_mean=float(busy.mean()),
        keps_used_mean=float(keps.mean()),
        cores_busy_saturated=float(busy[half].mean()) if half.any() else float("nan"),
        completable=sum(1 for j in jobs if j.arrival + j.duration <= length_s),
        creation_lag_p99_s=float(np.percentile(lags, 99)) if lags.size else float("nan"),
        not_created=len(jobs) - len({r.job_id for r in records}),
        cores_offered_saturated=float(offered[half].mean()) if half.any() else float("nan"),
        spike_started=len(spikes),
        spike_sufficient=sufficient,
        pipeline_traffic_events=traffic,
        pipeline_cross_node_events=cross_node,
        pipeline_cross_chip_events=cross_chip,
        times=[float(t) for t in times],
        cores_held=[float(v) for v in held],
        cores_busy=[float(v) for v in busy],
        keps_used=[float(v) for v in keps],
        waits=[float(w) for w in waits],
    )


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def kinds_line(by_kind: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()))
