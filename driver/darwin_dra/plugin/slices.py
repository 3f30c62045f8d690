"""ResourceSlice bodies (resource.k8s.io/v1) for one node: a pure function of the chips.

Per chip (see docs/resource-model.md): counter sets ``chip-c-top`` and ``chip-c-bottom`` (one
counter per domain of that half, value its cores, plus the half's keps, neurons and synapses)
and the devices ``chip-c``, ``chip-c-half-h``, ``chip-c-quad-q``, ``chip-c-domain-d`` and
``chip-c-shared-h``, which consume those counters so overlapping partitions never share cores.

API limits shape the layout: a slice holds devices or shared counters, never both; at most 8
counter sets per slice (4 chips); at most 64 devices per slice when counters or taints are used
(50 per chip, so one chip per device slice). The scheduler takes the first device that fits, so
device slices are named in priority order (healthy chips first) and, within a chip, the
smallest partitions come first so a generic request does not break up a whole chip.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.engine import keps as kepsdef
from darwin_dra.hardware.model import ChipEntry, ChipInfo, ChipProfile

API_VERSION = "resource.k8s.io/v1"
TAINT_KEY = "darwin.snn.io/unhealthy"
PCIE_ROOT = "resource.kubernetes.io/pcieRoot"

MAX_DEVICES_PER_SLICE = 64  # with counters or taints
MAX_COUNTER_SETS_PER_SLICE = 8
MAX_COUNTERS_PER_SET = 32
MAX_CONSUMES_PER_DEVICE = 2
MAX_ATTRS_AND_CAPS = 32
MAX_STRING = 64
MAX_TAINTS = 16

_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


class Health(enum.IntEnum):
    # Ordered: the worse state wins when parts combine.
    OK = 0
    DEGRADED = 1  # still works, with fewer cores or links: no new pods
    FAILED = 2  # unusable: running pods must leave


@dataclass(frozen=True)
class DomainView:
    index: int
    cores: int
    health: Health = Health.OK


@dataclass(frozen=True)
class ChipView:
    """What the slice builder needs to know about one chip; plain data, no engine."""

    chip: int
    model: str
    serial: str
    fabric: str
    domains: tuple[DomainView, ...]
    domains_x: int
    domains_y: int
    domain_w: int  # tiles per domain, x
    domain_h: int
    neurons_per_core: int
    synapses_per_chip: int
    keps: int  # KEPS (engine/keps.py): thousands of events per second of model time
    max_fan_in: int
    max_fan_out: int
    sparse_routing: bool
    on_chip_learning: bool
    numa_node: int = 0
    pcie_root: str = ""
    firmware: str = ""
    health: Health = Health.OK
    keps_measured: bool = False

    @property
    def n_cores(self) -> int:
        return sum(d.cores for d in self.domains)

    @classmethod
    def nominal(cls, chip: int, entry: ChipEntry, profile: ChipProfile) -> ChipView:
        """A healthy chip as its profile describes it, with the nominal router throughput: for
        planning and benchmarks that need no engine (pure)."""
        if entry.model != profile.model:
            raise ValueError(f"chip {entry.serial} is a {entry.model}, not a {profile.model}")
        ctrl = (profile.controller_y // profile.domain_h) * profile.domains_x + (
            profile.controller_x // profile.domain_w
        )
        tiles = profile.domain_w * profile.domain_h
        return cls(
            chip=chip,
            model=profile.model,
            serial=entry.serial,
            fabric=entry.fabric,
            # A domain's cores are its tiles, less the controller tile where it sits.
            domains=tuple(
                DomainView(d, tiles - (1 if d == ctrl else 0)) for d in range(profile.n_domains)
            ),
            domains_x=profile.domains_x,
            domains_y=profile.domains_y,
            domain_w=profile.domain_w,
            domain_h=profile.domain_h,
            neurons_per_core=profile.neurons_per_core,
            synapses_per_chip=profile.synapses_per_chip,
            keps=kepsdef.chip_keps(profile.router_events_per_s),
            max_fan_in=profile.max_fan_in,
            max_fan_out=profile.max_fan_out,
            sparse_routing=profile.sparse_routing,
            on_chip_learning=profile.on_chip_learning,
            numa_node=entry.numa_node,
            pcie_root=entry.pcie_root,
            firmware=entry.firmware,
        )

    @classmethod
    def from_info(
        cls, info: ChipInfo, profile: ChipProfile, measured_keps: int | None = None
    ) -> ChipView:
        def domain_health(ok: bool, failed_cores: int, n_cores: int) -> Health:
            # The engine reports a domain unhealthy as soon as one core fails; the domain still
            # runs on the rest, so it is failed only with no working core (a domain fault fails
            # all of them) or when unhealthy for a reason other than its cores.
            if failed_cores >= n_cores or (not ok and not failed_cores):
                return Health.FAILED
            return Health.DEGRADED if failed_cores else Health.OK

        domains = tuple(
            DomainView(d.domain, d.n_cores, domain_health(d.healthy, d.failed_cores, d.n_cores))
            for d in sorted(info.domains, key=lambda d: d.domain)
        )
        # Failed cores are a domain's business (its devices get tainted); failed links can
        # slow routes anywhere on the chip, so they degrade the chip as a whole.
        if not info.healthy:
            health = Health.FAILED
        elif info.failed_links:
            health = Health.DEGRADED
        else:
            health = Health.OK
        nominal = kepsdef.chip_keps(info.router_events_per_s)
        return cls(
            chip=info.id,
            model=info.model,
            serial=info.serial,
            fabric=info.fabric,
            domains=domains,
            domains_x=profile.domains_x,
            domains_y=profile.domains_y,
            domain_w=profile.domain_w,
            domain_h=profile.domain_h,
            neurons_per_core=info.neurons_per_core,
            synapses_per_chip=info.synapses_per_chip,
            keps=nominal if measured_keps is None else measured_keps,
            max_fan_in=profile.max_fan_in,
            max_fan_out=profile.max_fan_out,
            sparse_routing=profile.sparse_routing,
            on_chip_learning=profile.on_chip_learning,
            numa_node=info.numa_node,
            pcie_root=info.pcie_root,
            firmware=info.firmware,
            health=health,
            keps_measured=measured_keps is not None,
        )


@dataclass(frozen=True)
class SharePolicy:
    """Request granularity of the shared devices' consumable capacity."""

    keps_min: int = 10
    keps_step: int = 10
    neuron_cores_step: int = 1  # neurons are granted in whole cores' worth


@dataclass(frozen=True)
class _Budget:
    cores: int
    keps: int
    neurons: int
    synapses: int

    def __add__(self, other: _Budget) -> _Budget:
        return _Budget(
            self.cores + other.cores,
            self.keps + other.keps,
            self.neurons + other.neurons,
            self.synapses + other.synapses,
        )


_ZERO = _Budget(0, 0, 0, 0)


def _domain_budgets(chip: ChipView) -> dict[int, _Budget]:
    """Each domain's share of the chip's keps and synapses, by cores.

    Shares are cut at cumulative boundaries (floor of the running total), so they add up to the
    chip's figure exactly and every larger partition is the exact sum of its domains.
    """
    total = max(chip.n_cores, 1)
    out: dict[int, _Budget] = {}
    before = 0
    for d in sorted(chip.domains, key=lambda d: d.index):
        after = before + d.cores
        out[d.index] = _Budget(
            cores=d.cores,
            keps=kepsdef.share(chip.keps, after, total) - kepsdef.share(chip.keps, before, total),
            neurons=d.cores * chip.neurons_per_core,
            synapses=(
                chip.synapses_per_chip * after // total - chip.synapses_per_chip * before // total
            ),
        )
        before = after
    return out


def _sum(budgets: Iterable[_Budget]) -> _Budget:
    out = _ZERO
    for b in budgets:
        out = out + b
    return out


def _q(value: int) -> dict[str, str]:
    return {"value": str(value)}


def counter_set_name(chip: int, half: int) -> str:
    return f"chip-{chip}-{'top' if half == 0 else 'bottom'}"


def _half_of(chip: ChipView, domain: int) -> int:
    return 0 if domain // chip.domains_x < chip.domains_y // 2 else 1


def _local_index(chip: ChipView, domain: int) -> int:
    return domain - _half_of(chip, domain) * (chip.domains_x * chip.domains_y // 2)


def counter_sets(chip: ChipView) -> list[dict[str, Any]]:
    """The chip's two shared counter sets."""
    out = []
    for half in (0, 1):
        members = [d for d in chip.domains if _half_of(chip, d.index) == half]
        counters = {f"d{_local_index(chip, d.index)}": _q(d.cores) for d in members}
        budgets = _domain_budgets(chip)
        total = _sum(budgets[d.index] for d in members)
        counters |= {
            "keps": _q(total.keps),
            "neurons": _q(total.neurons),
            "synapses": _q(total.synapses),
        }
        out.append({"name": counter_set_name(chip.chip, half), "counters": counters})
    return out


def _consumes(chip: ChipView, domains: Sequence[int]) -> list[dict[str, Any]]:
    by_index = {d.index: d for d in chip.domains}
    budgets = _domain_budgets(chip)
    out = []
    for half in (0, 1):
        members = [by_index[i] for i in domains if _half_of(chip, i) == half]
        if not members:
            continue
        budget = _sum(budgets[d.index] for d in members)
        counters = {f"d{_local_index(chip, d.index)}": _q(d.cores) for d in members}
        counters |= {
            "keps": _q(budget.keps),
            "neurons": _q(budget.neurons),
            "synapses": _q(budget.synapses),
        }
        out.append({"counterSet": counter_set_name(chip.chip, half), "counters": counters})
    return out


def partition_health(chip: ChipView, domains: Sequence[int]) -> Health:
    """The worst of the chip's own state and that of the domains the partition spans."""
    by_index = {d.index: d for d in chip.domains}
    return max([chip.health, *(by_index[i].health for i in domains)])


def device_taints(chip: ChipView, domains: Sequence[int]) -> list[dict[str, str]]:
    """Taints of a partition: NoSchedule when degraded, NoExecute when failed (pure)."""
    health = partition_health(chip, domains)
    if health is Health.OK:
        return []
    effect = "NoExecute" if health is Health.FAILED else "NoSchedule"
    return [{"key": TAINT_KEY, "value": health.name.lower(), "effect": effect}]


RESET_TAINT = {"key": TAINT_KEY, "value": "reset", "effect": "NoExecute"}


def with_reset_taints(
    slices: Sequence[dict[str, Any]], lost: frozenset[str]
) -> list[dict[str, Any]]:
    """The slices with a NoExecute ``reset`` taint on every device in ``lost`` (pure): their
    claims' partitions died in a chip reset, so the pods using them must leave."""
    if not lost:
        return list(slices)
    out = []
    for sl in slices:
        devices = sl["spec"].get("devices")
        if devices is None or not any(d["name"] in lost for d in devices):
            out.append(sl)
            continue
        marked = [
            {**d, "taints": [*d.get("taints", []), dict(RESET_TAINT)]} if d["name"] in lost else d
            for d in devices
        ]
        out.append({**sl, "spec": {**sl["spec"], "devices": marked}})
    return out


def _router_links(w: int, h: int) -> int:
    # Links between neighbouring tiles inside a w x h block of the mesh.
    return (w - 1) * h + w * (h - 1)


@dataclass(frozen=True)
class _Partition:
    name: str
    kind: str  # chip | half | quad | domain | shared
    domains: tuple[int, ...]
    origin: tuple[int, int]  # domain grid coordinates of the top-left domain
    size: tuple[int, int]  # in domains
    shared: bool = False


PARTITION_KINDS = ("domain", "quad", "half", "chip", "shared")
# A lighter layout for large clusters: no single domains, so a chip publishes 14 devices
# instead of 50 (the scheduler checks every device of every node it filters; see docs/fleet.md).
LIGHT_PARTITIONS = ("quad", "half", "chip", "shared")


def parse_partitions(text: str) -> tuple[str, ...]:
    """A comma-separated list of partition kinds, checked (ValueError names the bad kind)."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if text.strip() == "light":
        return LIGHT_PARTITIONS
    if text.strip() in ("all", "full"):
        return PARTITION_KINDS
    bad = [k for k in kinds if k not in PARTITION_KINDS]
    if bad or not kinds:
        raise ValueError(
            f"partitions: unknown kind(s) {bad or [text]}; use a list of "
            f"{', '.join(PARTITION_KINDS)}, or 'full' or 'light'"
        )
    return tuple(k for k in PARTITION_KINDS if k in kinds)


def partitions(chip: ChipView, kinds: Sequence[str] = PARTITION_KINDS) -> list[_Partition]:
    """The chip's partitions of ``kinds`` in publishing order: smallest first, shared last."""
    return [p for p in _all_partitions(chip) if p.kind in kinds]


def _all_partitions(chip: ChipView) -> list[_Partition]:
    dx, dy = chip.domains_x, chip.domains_y
    c = chip.chip
    out: list[_Partition] = []
    for d in range(dx * dy):
        out.append(_Partition(f"chip-{c}-domain-{d}", "domain", (d,), (d % dx, d // dx), (1, 1)))
    qx = dx // 2
    for q in range(qx * (dy // 2)):
        x0, y0 = (q % qx) * 2, (q // qx) * 2
        members = tuple(y * dx + x for y in (y0, y0 + 1) for x in (x0, x0 + 1))
        out.append(_Partition(f"chip-{c}-quad-{q}", "quad", members, (x0, y0), (2, 2)))
    half_rows = dy // 2
    for h in (0, 1):
        members = tuple(range(h * half_rows * dx, (h + 1) * half_rows * dx))
        out.append(
            _Partition(f"chip-{c}-half-{h}", "half", members, (0, h * half_rows), (dx, half_rows))
        )
    out.append(_Partition(f"chip-{c}", "chip", tuple(range(dx * dy)), (0, 0), (dx, dy)))
    for h in (0, 1):
        members = tuple(range(h * half_rows * dx, (h + 1) * half_rows * dx))
        out.append(
            _Partition(
                f"chip-{c}-shared-{h}", "shared", members, (0, h * half_rows), (dx, half_rows), True
            )
        )
    return out


def _attributes(chip: ChipView, part: _Partition, budget: _Budget) -> dict[str, Any]:
    healthy = partition_health(chip, part.domains) is Health.OK
    attrs: dict[str, Any] = {
        "model": {"string": chip.model},
        "partition": {"string": part.kind},
        "chip": {"int": chip.chip},
        "serial": {"string": chip.serial},
        "domains": {"int": len(part.domains)},
        "cores": {"int": budget.cores},
        "meshX": {"int": part.origin[0] * chip.domain_w},
        "meshY": {"int": part.origin[1] * chip.domain_h},
        "fabric": {"string": chip.fabric},
        "numaNode": {"int": chip.numa_node},
        "sparseRouting": {"bool": chip.sparse_routing},
        "onChipLearning": {"bool": chip.on_chip_learning},
        "maxFanIn": {"int": chip.max_fan_in},
        "maxFanOut": {"int": chip.max_fan_out},
        "maxMeps": {"int": kepsdef.meps(budget.keps)},
        "healthy": {"bool": healthy},
        "kepsSource": {"string": "measured" if chip.keps_measured else "nominal"},
    }
    if chip.pcie_root:
        attrs[PCIE_ROOT] = {"string": chip.pcie_root}
    if chip.firmware:
        kind = "version" if _SEMVER.match(chip.firmware) else "string"
        attrs["firmware"] = {kind: chip.firmware}
    return attrs


def _capacity(
    chip: ChipView, part: _Partition, budget: _Budget, policy: SharePolicy
) -> dict[str, Any]:
    links = _router_links(part.size[0] * chip.domain_w, part.size[1] * chip.domain_h)
    cap: dict[str, Any] = {
        "cores": _q(budget.cores),
        "neurons": _q(budget.neurons),
        "synapses": _q(budget.synapses),
        "keps": _q(budget.keps),
        "routerLinks": _q(links),
    }
    if part.shared:
        # A share is sized by throughput, neurons and synapses; its cores and router links
        # are everybody's. Left as capacities without a requestPolicy, every allocation would
        # consume all of them and a shared device would hold one claim (seen on the API
        # server), so they stay attributes only.
        del cap["cores"], cap["routerLinks"]
        per_core_synapses = max(chip.synapses_per_chip // max(chip.n_cores, 1), 1)
        neuron_step = chip.neurons_per_core * policy.neuron_cores_step
        for name, minimum, step in (
            ("keps", policy.keps_min, policy.keps_step),
            ("neurons", neuron_step, neuron_step),
            ("synapses", per_core_synapses, per_core_synapses),
        ):
            cap[name] = {
                **cap[name],
                "requestPolicy": {
                    "default": str(minimum),
                    "validRange": {"min": str(minimum), "step": str(step)},
                },
            }
    return cap


def chip_devices(
    chip: ChipView, policy: SharePolicy | None = None, kinds: Sequence[str] = PARTITION_KINDS
) -> list[dict[str, Any]]:
    """The device entries of one chip, in publishing order (pure)."""
    policy = policy or SharePolicy()
    budgets = _domain_budgets(chip)
    devices = []
    for part in partitions(chip, kinds):
        budget = _sum(budgets[i] for i in part.domains)
        device: dict[str, Any] = {
            "name": part.name,
            "attributes": _attributes(chip, part, budget),
            "capacity": _capacity(chip, part, budget, policy),
            "consumesCounters": _consumes(chip, part.domains),
        }
        if part.shared:
            device["allowMultipleAllocations"] = True
        taints = device_taints(chip, part.domains)
        if taints:
            device["taints"] = taints
        devices.append(device)
    return devices


def _slice(node: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceSlice",
        "metadata": {"name": name, "labels": {"darwin.snn.io/node": node}},
        "spec": {"driver": DRIVER_NAME, "nodeName": node, **spec},
    }


def _priority(chip: ChipView) -> tuple[int, int, int]:
    # Whole-chip health first, then how many of its domains are hurt, then a stable tie-break.
    hurt = sum(1 for d in chip.domains if d.health is not Health.OK)
    return (int(chip.health), hurt, chip.chip)


@dataclass(frozen=True)
class SliceLayout:
    chips_per_counter_slice: int = MAX_COUNTER_SETS_PER_SLICE // 2
    policy: SharePolicy = field(default_factory=SharePolicy)
    partitions: tuple[str, ...] = PARTITION_KINDS  # which partition kinds to publish


def build_slices(
    node: str,
    chips: Sequence[ChipView],
    generation: int = 1,
    measured_keps: Mapping[int, int] | None = None,
    layout: SliceLayout | None = None,
) -> list[dict[str, Any]]:
    """All ResourceSlices of the node's pool (pool name = node name), sorted by name.

    ``measured_keps`` (chip id -> thousands of events/s from calibration) replaces the chip's
    nominal figure and marks it ``kepsSource: measured``. Names are
    ``<node>-darwin-a-counters-NN`` (counters) and ``<node>-darwin-b-devices-NN`` (one per chip,
    NN = rank: healthy chips first, then degraded, then failed; fewer hurt domains first;
    by chip id last).
    """
    measured = measured_keps or {}
    layout = layout or SliceLayout()
    views = [
        replace(c, keps=measured[c.chip], keps_measured=True) if c.chip in measured else c
        for c in chips
    ]
    if len({c.chip for c in views}) != len(views):
        raise ValueError("chip ids must be unique on a node")
    ordered = sorted(views, key=_priority)
    by_id = sorted(views, key=lambda c: c.chip)
    per = layout.chips_per_counter_slice
    specs: list[tuple[str, dict[str, Any]]] = []
    for i in range(0, len(by_id), per):
        sets = [s for chip in by_id[i : i + per] for s in counter_sets(chip)]
        specs.append((f"{node}-darwin-a-counters-{i // per:02d}", {"sharedCounters": sets}))
    for rank, chip in enumerate(ordered):
        devices = chip_devices(chip, layout.policy, layout.partitions)
        specs.append((f"{node}-darwin-b-devices-{rank:02d}", {"devices": devices}))
    pool = {"name": node, "generation": generation, "resourceSliceCount": len(specs)}
    slices = [_slice(node, name, {"pool": dict(pool), **spec}) for name, spec in specs]
    check_limits(slices)
    return slices


class SliceLimitError(ValueError):
    pass


def _dns_label(value: str) -> bool:
    return len(value) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) is not None


def check_limits(slices: Sequence[dict[str, Any]]) -> None:
    """Raise SliceLimitError naming the first resource.k8s.io/v1 limit a slice breaks."""
    names = [s["metadata"]["name"] for s in slices]
    if names != sorted(names) or len(set(names)) != len(names):
        raise SliceLimitError("slice names must be unique and in priority order")
    counts = {s["spec"]["pool"]["resourceSliceCount"] for s in slices}
    if counts != {len(slices)}:
        raise SliceLimitError(f"resourceSliceCount {counts} does not match {len(slices)} slices")
    for s in slices:
        spec, where = s["spec"], s["metadata"]["name"]
        if len(s["metadata"]["name"]) > 253:
            raise SliceLimitError(f"{where}: name longer than 253 characters")
        devices = spec.get("devices", [])
        sets = spec.get("sharedCounters", [])
        if devices and sets:
            raise SliceLimitError(f"{where}: holds both devices and sharedCounters")
        if len(sets) > MAX_COUNTER_SETS_PER_SLICE:
            raise SliceLimitError(
                f"{where}: {len(sets)} counter sets > {MAX_COUNTER_SETS_PER_SLICE}"
            )
        for cs in sets:
            if len(cs["counters"]) > MAX_COUNTERS_PER_SET:
                raise SliceLimitError(
                    f"{where}/{cs['name']}: more than {MAX_COUNTERS_PER_SET} counters"
                )
            for name in (cs["name"], *cs["counters"]):
                if not _dns_label(name):
                    raise SliceLimitError(f"{where}: {name!r} is not a DNS label")
        if len(devices) > MAX_DEVICES_PER_SLICE:
            raise SliceLimitError(f"{where}: {len(devices)} devices > {MAX_DEVICES_PER_SLICE}")
        for dev in devices:
            _check_device(where, dev)


def _check_device(where: str, dev: dict[str, Any]) -> None:
    name = dev["name"]
    if not _dns_label(name):
        raise SliceLimitError(f"{where}: device name {name!r} is not a DNS label")
    n = len(dev.get("attributes", {})) + len(dev.get("capacity", {}))
    if n > MAX_ATTRS_AND_CAPS:
        raise SliceLimitError(f"{where}/{name}: {n} attributes + capacities > {MAX_ATTRS_AND_CAPS}")
    consumes = dev.get("consumesCounters", [])
    if len(consumes) > MAX_CONSUMES_PER_DEVICE:
        raise SliceLimitError(f"{where}/{name}: consumes more than {MAX_CONSUMES_PER_DEVICE} sets")
    if any(len(c["counters"]) > MAX_COUNTERS_PER_SET for c in consumes):
        raise SliceLimitError(f"{where}/{name}: consumes more than {MAX_COUNTERS_PER_SET} counters")
    if len(dev.get("taints", [])) > MAX_TAINTS:
        raise SliceLimitError(f"{where}/{name}: more than {MAX_TAINTS} taints")
    for attr in dev.get("attributes", {}).values():
        for kind in ("string", "version"):
            if kind in attr and len(attr[kind]) > MAX_STRING:
                raise SliceLimitError(f"{where}/{name}: attribute value over {MAX_STRING} chars")
    has_policy = any("requestPolicy" in c for c in dev.get("capacity", {}).values())
    if has_policy and not dev.get("allowMultipleAllocations"):
        raise SliceLimitError(f"{where}/{name}: requestPolicy needs allowMultipleAllocations")
