"""ResourceSlice bodies (resource.k8s.io/v1) for one node: a pure function of the chips.

Per chip (see docs/resource-model.md): counter sets ``chip-c-top`` and ``chip-c-bottom`` (one
counter per domain of that half, value its cores, plus the half's keps, neurons and synapses)
and the devices ``chip-c``, ``chip-c-half-h``, ``chip-c-quad-q``, ``chip-c-domain-d`` and
``chip-c-shared-h``, which consume those counters so overlapping partitions never share cores.

API limits shape the layout: a slice holds devices or shared counters, never both; at most 8
counter sets per slice (4 chips); at most 64 devices per slice when counters or taints are used
(50 per chip, so one chip per device slice). The scheduler takes the first device that fits, so
device slices are named in priority order (healthy chips first) and, within a chip, the
shared devices come first (only the shared class selects them, so a share request finds them
without checking the exclusive ones), then the smallest exclusive partitions, so a generic
request does not break up a whole chip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.engine import keps as kepsdef
from darwin_dra.resources import API_VERSION
from darwin_dra.resources.chips import ChipView, Health
from darwin_dra.resources.limits import (
    MAX_COUNTER_SETS_PER_SLICE,
    MAX_DEVICES_PER_SLICE,
    check_limits,
)
from darwin_dra.resources.partitions import (
    CAPACITY,
    PARTITION_KINDS,
    ROUTERS_PER_CHIP,
    Partition,
    health_of,
    partitions,
    taints_of,
    usable_domains,
)
from darwin_dra.resources.routers import router_device

PCIE_ROOT = "resource.kubernetes.io/pcieRoot"

_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


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


def _half_counters(chip: ChipView, half: int, domains: Iterable[int]) -> dict[str, dict[str, str]]:
    """The counters of ``domains`` in one half: each domain's cores, and their budget summed:
    what a counter set holds (all its domains) and what a device consumes from it (its own)."""
    by_index = {d.index: d for d in chip.domains}
    budgets = _domain_budgets(chip)
    members = [by_index[i] for i in domains if _half_of(chip, i) == half]
    counters = {f"d{_local_index(chip, d.index)}": _q(d.cores) for d in members}
    budget = _sum(budgets[d.index] for d in members)
    return counters | {
        "keps": _q(budget.keps),
        "neurons": _q(budget.neurons),
        "synapses": _q(budget.synapses),
    }


def counter_sets(chip: ChipView) -> list[dict[str, Any]]:
    """The chip's two shared counter sets."""
    every = [d.index for d in chip.domains]
    return [
        {"name": counter_set_name(chip.chip, half), "counters": _half_counters(chip, half, every)}
        for half in (0, 1)
    ]


def _consumes(chip: ChipView, domains: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {
            "counterSet": counter_set_name(chip.chip, half),
            "counters": _half_counters(chip, half, domains),
        }
        for half in (0, 1)
        if any(_half_of(chip, i) == half for i in domains)
    ]


def _router_links(w: int, h: int) -> int:
    # Links between neighbouring tiles inside a w x h block of the mesh.
    return (w - 1) * h + w * (h - 1)


def _attributes(chip: ChipView, part: Partition, budget: _Budget) -> dict[str, Any]:
    healthy = health_of(chip, part) is Health.OK
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
        # the chip's working fabric links and their spikes per second together, in millions:
        # a fabric fault lowers both (docs/engine.md, "Chips on one fabric")
        "fabricLinks": {"int": chip.fabric_links},
        "fabricMeps": {"int": int(chip.fabric_events_per_s // 1_000_000)},
    }
    if chip.pcie_root:
        attrs[PCIE_ROOT] = {"string": chip.pcie_root}
    if chip.firmware:
        kind = "version" if _SEMVER.match(chip.firmware) else "string"
        attrs["firmware"] = {kind: chip.firmware}
    return attrs


def _capacity(
    chip: ChipView, part: Partition, budget: _Budget, policy: SharePolicy
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


def _policy(default: int, minimum: int, step: int, maximum: int | None = None) -> dict[str, Any]:
    valid = {"min": str(minimum), "step": str(step)}
    if maximum is not None:
        valid["max"] = str(maximum)
    return {"default": str(default), "validRange": valid}


def _capacity_device(
    chip: ChipView, part: Partition, budget: _Budget, policy: SharePolicy
) -> dict[str, Any]:
    """The capacity layout's one device a chip: allocated many times, each allocation a number
    of whole domains (the plugin picks which) and a KEPS budget the engine enforces. Domains
    are counted over the usable ones (hurt domains shrink the capacity, see
    partitions.health_of); a request that names no KEPS gets one domain's share."""
    usable = len(usable_domains(chip))
    one_domain = kepsdef.share(chip.keps, 1, max(len(chip.domains), 1))
    step = policy.keps_step
    keps_default = max(policy.keps_min, one_domain // step * step)
    device: dict[str, Any] = {
        "name": part.name,
        "attributes": _attributes(chip, part, budget),
        "capacity": {
            "domains": {"value": str(usable), "requestPolicy": _policy(1, 1, 1, max(usable, 1))},
            "keps": {
                "value": str(budget.keps),
                "requestPolicy": _policy(keps_default, policy.keps_min, step),
            },
        },
        "allowMultipleAllocations": True,
    }
    taints = taints_of(chip, part)
    if taints:
        device["taints"] = taints
    return device


def chip_devices(
    chip: ChipView, policy: SharePolicy | None = None, kinds: Sequence[str] = PARTITION_KINDS
) -> list[dict[str, Any]]:
    """The device entries of one chip, in publishing order (pure)."""
    policy = policy or SharePolicy()
    budgets = _domain_budgets(chip)
    devices = []
    for part in partitions(chip, kinds):
        budget = _sum(budgets[i] for i in part.domains)
        if part.kind == CAPACITY:
            devices.append(_capacity_device(chip, part, budget, policy))
            continue
        device: dict[str, Any] = {
            "name": part.name,
            "attributes": _attributes(chip, part, budget),
            "capacity": _capacity(chip, part, budget, policy),
            "consumesCounters": _consumes(chip, part.domains),
        }
        if part.shared:
            device["allowMultipleAllocations"] = True
        taints = taints_of(chip, part)
        if taints:
            device["taints"] = taints
        devices.append(device)
    if "shared" in kinds:  # the routers serve the shared devices' pipelines
        devices += [router_device(chip, r) for r in range(ROUTERS_PER_CHIP)]
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


def node_owner(node: str, uid: str) -> dict[str, Any]:
    """The Node object as the owner of its slices: when the node is deleted, the garbage
    collector deletes them with it (what upstream's kubelet plugin helper does too)."""
    return {"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid, "controller": True}


def build_slices(
    node: str,
    chips: Sequence[ChipView],
    generation: int = 1,
    measured_keps: Mapping[int, int] | None = None,
    layout: SliceLayout | None = None,
    owner: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """All ResourceSlices of the node's pool (pool name = node name), sorted by name; each
    owned by ``owner`` (``node_owner``) when given.

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
    if layout.partitions == (CAPACITY,):
        # No counters; a device a chip, so one slice holds many chips (in priority order).
        for i in range(0, len(ordered), MAX_DEVICES_PER_SLICE):
            devices = [
                d
                for chip in ordered[i : i + MAX_DEVICES_PER_SLICE]
                for d in chip_devices(chip, layout.policy, layout.partitions)
            ]
            name = f"{node}-darwin-b-devices-{i // MAX_DEVICES_PER_SLICE:02d}"
            specs.append((name, {"devices": devices}))
    else:
        for i in range(0, len(by_id), per):
            sets = [s for chip in by_id[i : i + per] for s in counter_sets(chip)]
            specs.append((f"{node}-darwin-a-counters-{i // per:02d}", {"sharedCounters": sets}))
        for rank, chip in enumerate(ordered):
            devices = chip_devices(chip, layout.policy, layout.partitions)
            specs.append((f"{node}-darwin-b-devices-{rank:02d}", {"devices": devices}))
    pool = {"name": node, "generation": generation, "resourceSliceCount": len(specs)}
    slices = [_slice(node, name, {"pool": dict(pool), **spec}) for name, spec in specs]
    if owner is not None:
        for body in slices:
            body["metadata"]["ownerReferences"] = [dict(owner)]
    check_limits(slices)
    return slices
