"""What the scheduler gave and why, read from the API objects the demo fetched (pure).

A claim's allocation names pool/device pairs; the ResourceSlices say what each device is (its
chip, model, partition kind, tile origin on the chip's mesh, capacities, taints). From both
come the placements the demo prints and the report draws."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from darwin_dra import DRIVER_NAME
from darwin_dra.hardware.model import ChipProfile
from darwin_dra.quantity import parse_quantity


def keps(quantity: str) -> int:
    """A KEPS capacity or share as the API server writes it (`250`, `1M`, `1G`)."""
    return int(parse_quantity(quantity or "0"))


@dataclass(frozen=True)
class Device:
    """One published device: its slice's node and pool, plain attribute values, capacities."""

    pool: str
    name: str
    node: str
    attributes: Mapping[str, Any]
    capacity: Mapping[str, str]
    taints: tuple[str, ...] = ()

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attributes.get(key, default)


def _plain(value: Mapping[str, Any]) -> Any:
    for kind in ("int", "bool", "string", "version"):
        if kind in value:
            return value[kind]
    return None


def devices(slices: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Device]:
    """(pool, device) -> Device, for the driver's slices."""
    out: dict[tuple[str, str], Device] = {}
    for s in slices:
        spec = s.get("spec", {})
        if spec.get("driver") != DRIVER_NAME:
            continue
        pool = spec["pool"]["name"]
        for d in spec.get("devices") or []:
            attrs = {
                k.removeprefix(f"{DRIVER_NAME}/"): _plain(v)
                for k, v in d.get("attributes", {}).items()
            }
            caps = {k: str(v.get("value", "")) for k, v in d.get("capacity", {}).items()}
            taints = tuple(
                f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in d.get("taints") or []
            )
            node = spec.get("nodeName", "")
            out[(pool, d["name"])] = Device(pool, d["name"], node, attrs, caps, taints)
    return out


@dataclass(frozen=True)
class Given:
    """One allocated device of a claim."""

    request: str
    pool: str
    device: str
    consumed: Mapping[str, str] = field(default_factory=dict)
    binding: tuple[str, ...] = ()  # the conditions the pod waits for before it binds


def allocation(claim: Mapping[str, Any]) -> list[Given]:
    results = ((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}
    return [
        Given(
            r["request"],
            r["pool"],
            r["device"],
            dict(r.get("consumedCapacity") or {}),
            tuple(r.get("bindingConditions") or ()),
        )
        for r in results.get("results") or []
        if r.get("driver") == DRIVER_NAME
    ]


def extent(kind: str, profile: ChipProfile) -> tuple[int, int]:
    """Tiles (width, height) a partition of `kind` covers on its chip's mesh, as the slice
    builder cuts them (resources/slices.py: a quad is 2 x 2 domains, a half or a shared device
    the top or bottom half, a chip all of it)."""
    if kind == "domain":
        return profile.domain_w, profile.domain_h
    if kind == "quad":
        return 2 * profile.domain_w, 2 * profile.domain_h
    if kind in ("half", "shared"):
        return profile.mesh_w, (profile.domains_y // 2) * profile.domain_h
    if kind == "chip":
        return profile.mesh_w, profile.mesh_h
    raise ValueError(f"no extent for a partition of kind {kind!r}")


@dataclass(frozen=True)
class Placement:
    """Where one workload sits: a device, its chip, the tiles it covers."""

    scenario: str
    workload: str
    node: str
    device: str
    model: str
    chip: int
    kind: str
    x: int
    y: int
    width: int
    height: int
    keps: str  # what it holds: the device's keps, or its consumed share

    @property
    def chip_key(self) -> tuple[str, int]:
        return self.node, self.chip


def placements(
    scenario: str,
    workload: str,
    claim: Mapping[str, Any],
    known: Mapping[tuple[str, str], Device],
    profiles: Mapping[str, ChipProfile],
) -> list[Placement]:
    out = []
    for g in allocation(claim):
        dev = known.get((g.pool, g.device))
        if dev is None or dev.attr("partition") in ("fabric", "router"):
            continue  # a fabric's bandwidth and a chip's router hold no tiles
        kind = str(dev.attr("partition"))
        profile = profiles[str(dev.attr("model"))]
        w, h = extent(kind, profile)
        keps = g.consumed.get("keps") or dev.capacity.get("keps", "")
        out.append(
            Placement(scenario, workload, dev.node, g.device, str(dev.attr("model")),
                      int(dev.attr("chip", 0)), kind, int(dev.attr("meshX", 0)),
                      int(dev.attr("meshY", 0)), w, h, str(keps))
        )  # fmt: skip
    return out


def describe(given: Sequence[Placement]) -> str:
    """`darwin-node-0: chip-1-domain-3, chip-1-domain-4 (darwin3 chip 1)`."""
    if not given:
        return "(nothing allocated)"
    nodes = sorted({p.node for p in given})
    parts = []
    for node in nodes:
        mine = [p for p in given if p.node == node]
        chips = sorted({(p.model, p.chip) for p in mine})
        where = ", ".join(f"{m} chip {c}" for m, c in chips)
        parts.append(f"{node}: {', '.join(p.device for p in mine)} ({where})")
    return "; ".join(parts)


def pending_reason(pod: Mapping[str, Any]) -> str:
    """The scheduler's message on a pod it could not place ('' when it placed it)."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") != "True":
            return str(cond.get("message") or cond.get("reason") or "unschedulable")
    return ""


def meps_by_model(known: Mapping[tuple[str, str], Device], kind: str) -> dict[str, int]:
    """The largest maxMeps a device of partition `kind` publishes, per chip model."""
    out: dict[str, int] = {}
    for dev in known.values():
        if dev.attr("partition") == kind:
            model = str(dev.attr("model"))
            out[model] = max(out.get(model, 0), int(dev.attr("maxMeps", 0)))
    return out


def tainted(known: Mapping[tuple[str, str], Device], node: str) -> dict[str, tuple[str, ...]]:
    return {d.name: d.taints for d in known.values() if d.node == node and d.taints}


def claim_of(
    pod: Mapping[str, Any], claims: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The claim a pod names (a SpikingPipeline's stage pods do), or the one its claim template
    (or its extended resource) produced."""
    status = pod.get("status") or {}
    names = {s.get("resourceClaimName") for s in status.get("resourceClaimStatuses") or []}
    names |= {
        c.get("resourceClaimName") for c in (pod.get("spec") or {}).get("resourceClaims") or []
    }
    ext = status.get("extendedResourceClaimStatus") or {}
    if ext.get("resourceClaimName"):
        names.add(ext["resourceClaimName"])
    for claim in claims:
        if claim["metadata"]["name"] in names:
            return claim
    return None


def overlapping(
    dev: Device, held: Iterable[Placement], profiles: Mapping[str, ChipProfile]
) -> list[Placement]:
    """The placements of exclusive partitions on `dev`'s tiles (what rules a shared device
    out: it takes its half's cores on first use)."""
    w, h = extent(str(dev.attr("partition")), profiles[str(dev.attr("model"))])
    x, y = int(dev.attr("meshX", 0)), int(dev.attr("meshY", 0))
    return [
        p
        for p in held
        if (p.node, p.chip) == (dev.node, int(dev.attr("chip", 0)))
        and p.kind != "shared"
        and p.x < x + w
        and x < p.x + p.width
        and p.y < y + h
        and y < p.y + p.height
    ]


def _requests(claim: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = claim.get("spec") or {}
    found: list[Mapping[str, Any]] = (spec.get("devices") or {}).get("requests") or []
    return found


def reasons(claim: Mapping[str, Any], known: Mapping[tuple[str, str], Device]) -> list[str]:
    """Why the allocation satisfies the claim, read off both: each matchAttribute constraint
    with the value the devices share, the firstAvailable subrequest taken, each capacity share
    against its device's capacity, and the binding conditions the devices reached."""
    given = allocation(claim)
    out = []
    spec_devices = (claim.get("spec") or {}).get("devices") or {}
    for c in spec_devices.get("constraints") or []:
        attr = str(c.get("matchAttribute", ""))
        key = attr.removeprefix(f"{DRIVER_NAME}/")
        names = set(c.get("requests") or [r["name"] for r in _requests(claim)])
        mine = [g for g in given if g.request.split("/")[0] in names]
        values = {known[(g.pool, g.device)].attr(key) for g in mine if (g.pool, g.device) in known}
        if len(values) == 1:
            who = "the device publishes" if len(mine) == 1 else f"all {len(mine)} devices publish"
            out.append(f"{who} {attr}={values.pop()}: matchAttribute holds")
        else:
            out.append(f"the devices publish {attr} values {sorted(map(str, values))}")
    for r in _requests(claim):
        if "firstAvailable" in r:
            subs = [s["name"] for s in r["firstAvailable"]]
            taken = {
                g.request.split("/", 1)[1] for g in given if g.request.startswith(r["name"] + "/")
            }
            for t in sorted(taken):
                first = (
                    "the first choice"
                    if t == subs[0]
                    else f"not {', '.join(subs[: subs.index(t)])}"
                )
                out.append(f"firstAvailable {subs}: took {t} ({first})")
    for g in given:
        dev = known.get((g.pool, g.device))
        if g.consumed.get("keps") and dev is not None:
            out.append(
                f"{g.device} shares {keps(g.consumed['keps']):,} of its "
                f"{keps(dev.capacity.get('keps', '0')):,} KEPS with other claims"
            )
    binding = {(g.pool, g.device): g.binding for g in given}
    for entry in (claim.get("status") or {}).get("devices") or []:
        awaited = binding.get((entry.get("pool"), entry.get("device")), ())
        for cond in entry.get("conditions") or []:
            if cond.get("status") == "True" and cond.get("type") in awaited:
                why = f" ({cond['reason']})" if cond.get("reason") else ""
                out.append(f"{entry.get('device')}: {cond.get('type')}{why} before the pod bound")
    return out
