"""Where each stage of a split plan goes (pure): which stages share a chip, which fabric each
group of them is pinned to, what crosses a chip, a fabric or the network.

DRA constraints (``matchAttribute``) hold between the requests of one claim, and one claim's
devices sit on one node. So the stages that must share a chip share a claim: a *group*, one
request per stage, constrained to one ``darwin.snn.io/chip``. Groups are pinned to a fabric
by a CEL selector, which is how the stages joined by heavy edges but on different chips still
meet on one fabric; the fabric's bandwidth is claimed for the edges that cross it.

The decision is greedy, in two passes, both deterministic:
1. Merge: take the edges by spikes per second, heaviest first; join the two groups of an
   edge when some healthy chip can hold both (their KEPS, neurons and synapses packed into
   the chip's two shared halves, first-fit decreasing) and every hint of theirs allows its
   node.
2. Assign: groups by traffic, heaviest first, each to the chip that keeps most of its
   traffic to the groups already placed on its fabric (then on its node), then the first in
   order; capacity is taken as it goes. A *routed* group (two of its stages exchange spikes,
   which then go on the chip's router: pipeline/chiproutes.py) also takes one of the chip's
   free routers (``ChipSlot.routers``: resources/partitions.ROUTERS_PER_CHIP a chip, less what
   other claims hold); after the traffic, a chip with a free router is preferred. A routed group
   that no chip holding it has a router left for is placed without one (``routed=False``): its
   claim asks for no router and its stages' edges stay on sockets, so the scheduler can still
   allocate it.
3. Claims: two groups planned on one node and one fabric whose stages exchange spikes join one
   claim (``join_on_fabric``), so that the route between them is one claim's (the chip host
   joins only the partitions of one owner, the claim's uid) and goes over the engine's fabric
   link between their chips instead of a socket; each group keeps its own chip constraint, and
   the claim holds one router (its binding gate) on one of its chips.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from darwin_dra.pipeline.cluster import ChipSlot, ClusterView, Half
from darwin_dra.pipeline.fabricjoin import join_on_fabric
from darwin_dra.pipeline.plan import PlanView, StageLoad
from darwin_dra.resources.fabric import FABRIC_KEPS_STEP

Link = Literal["chip", "fabric", "network"]
HOSTNAME_LABEL = "kubernetes.io/hostname"


class PlacementError(ValueError):
    """No placement on the healthy hardware; the message names the stages and what they need."""


@dataclass(frozen=True)
class Group:
    name: str
    stages: tuple[str, ...]
    node: str  # the planned node (the scheduler may pick another node of the fabric)
    chip: int  # the planned chip
    fabric: str
    node_selector: Mapping[str, str] = field(default_factory=dict)
    fabric_keps: int = 0  # inter-chip bandwidth this group's claim asks of its fabric
    routed: bool = True  # it holds one of its chip's routers (when its stages exchange spikes)
    claim: str = ""  # the claim it shares with other groups of its node (join_on_fabric)

    @property
    def claim_id(self) -> str:
        """The claim its stages' requests are in: its own unless joined with others."""
        return self.claim or self.name


@dataclass(frozen=True)
class Host:
    """Where a stage that runs on no chip (the input or output stage) goes: a node."""

    node: str
    node_selector: Mapping[str, str]


@dataclass(frozen=True)
class Placement:
    groups: tuple[Group, ...]
    links: Mapping[tuple[str, str], Link]
    spikes_per_s: Mapping[tuple[str, str], float]
    hosts: Mapping[str, Host] = field(default_factory=dict)
    # serials of chips its claims keep off: a fabric link had failed there when it was made
    # (the devices carry no taint the scheduler would heed; cluster.fabric_faulted)
    avoid: tuple[str, ...] = ()

    def group_of(self, stage: str) -> Group | None:
        return next((g for g in self.groups if stage in g.stages), None)

    def claims(self) -> dict[str, tuple[Group, ...]]:
        """Each claim's groups, in group order."""
        out: dict[str, tuple[Group, ...]] = {}
        for g in self.groups:
            out[g.claim_id] = (*out.get(g.claim_id, ()), g)
        return out

    def claim_of(self, stage: str) -> tuple[Group, ...]:
        group = self.group_of(stage)
        return () if group is None else self.claims()[group.claim_id]

    def node_of(self, stage: str) -> str:
        group = self.group_of(stage)
        return group.node if group is not None else self.hosts[stage].node

    def crossing(self, *links: Link) -> float:
        return sum(v for k, v in self.spikes_per_s.items() if self.links[k] in links)

    def cross_node(self) -> float:
        return sum(
            v for (a, b), v in self.spikes_per_s.items() if self.node_of(a) != self.node_of(b)
        )


def _pack(loads: Sequence[StageLoad], halves: Sequence[Half]) -> list[Half] | None:
    """The halves left after packing ``loads`` first-fit decreasing, None if they do not fit."""
    free = list(halves)
    for s in sorted(loads, key=lambda s: (-s.keps, -s.neurons, s.name)):
        for i, h in enumerate(free):
            if s.keps <= h.keps and s.neurons <= h.neurons and s.synapses <= h.synapses:
                free[i] = Half(
                    h.pool,
                    h.device,
                    h.keps - s.keps,
                    h.neurons - s.neurons,
                    h.synapses - s.synapses,
                )
                break
        else:
            return None
    return free


def _allows(chip: ChipSlot, selectors: Sequence[Mapping[str, str]], view: ClusterView) -> bool:
    labels = view.node_labels.get(chip.node, {})
    return all(labels.get(k) == v for sel in selectors for k, v in sel.items())


def fabric_keps(spikes_per_s: float) -> int:
    """The fabric request for a traffic: thousands of events/s, up to the request step."""
    k = -(-int(spikes_per_s) // 1000)
    return max(FABRIC_KEPS_STEP, -(-k // FABRIC_KEPS_STEP) * FABRIC_KEPS_STEP)


def place(
    plan: PlanView,
    view: ClusterView,
    target_rate: int,
    hints: Mapping[str, Mapping[str, str]] | None = None,
) -> Placement:
    """``hints``: stage name -> the node labels its node must have."""
    hints = hints or {}
    for name in hints:
        if name not in {s.name for s in plan.stages}:
            raise PlacementError(f"a hint names stage {name!r}, which the plan does not have")
    every: dict[tuple[str, str], float] = {}
    for e in plan.edges:
        every[(e.src, e.dst)] = every.get((e.src, e.dst), 0.0) + e.spikes_per_step * target_rate
    loads = {s.name: s for s in plan.stages if s.on_chip}
    traffic = {k: v for k, v in every.items() if k[0] in loads and k[1] in loads}
    group: dict[str, tuple[str, ...]] = {name: (name,) for name in loads}
    # Stages on no chip with a hint sit on the first node it allows; their traffic pulls the
    # groups they talk to towards that node.
    hosts: dict[str, Host] = {}
    for s in plan.stages:
        if not s.on_chip and s.name in hints:
            fits = sorted(
                n
                for n, labels in view.node_labels.items()
                if all(labels.get(k) == v for k, v in hints[s.name].items())
            )
            if not fits:
                raise PlacementError(
                    f"stage {s.name}: no node has the labels {dict(hints[s.name])}"
                )
            hosts[s.name] = Host(fits[0], dict(hints[s.name]))

    def selectors(members: Sequence[str]) -> list[Mapping[str, str]]:
        return [hints[m] for m in members if m in hints]

    def some_chip_holds(members: Sequence[str]) -> bool:
        return any(
            _allows(c, selectors(members), view)
            and _pack([loads[m] for m in members], c.halves) is not None
            for c in view.chips
        )

    for (a, b), _ in sorted(traffic.items(), key=lambda kv: (-kv[1], kv[0])):
        ga, gb = group[a], group[b]
        if ga == gb:
            continue
        merged = tuple(sorted(ga + gb, key=plan.index))
        if some_chip_holds(merged):
            for m in merged:
                group[m] = merged
    order = {s.name: i for i, s in enumerate(plan.stages)}
    if not loads:
        raise PlacementError("the plan has no stage that runs on a chip")
    groups = sorted(set(group.values()), key=lambda g: order[g[0]])

    def exchanges(members: Sequence[str]) -> bool:
        """Two of the stages exchange spikes: on the chip's router if it has one free."""
        return any(a in members and b in members for a, b in traffic)

    def weight(members: Sequence[str]) -> float:
        return sum(v for (a, b), v in traffic.items() if (a in members) != (b in members))

    free = {(c.node, c.chip): list(c.halves) for c in view.chips}
    routers = {(c.node, c.chip): c.routers for c in view.chips}
    placed: dict[tuple[str, ...], ChipSlot] = {}
    routed: set[tuple[str, ...]] = set()
    for members in sorted(groups, key=lambda g: (-weight(g), order[g[0]])):
        wants_router = exchanges(members)
        best: tuple[tuple[float, float, bool, int], ChipSlot, list[Half]] | None = None
        for rank, c in enumerate(view.chips):
            if not _allows(c, selectors(members), view):
                continue
            left = _pack([loads[m] for m in members], free[(c.node, c.chip)])
            if left is None:
                continue
            on_fabric = on_node = 0.0
            for host_stage, host in hosts.items():
                on_node += sum(
                    v
                    for (a, b), v in every.items()
                    if host.node == c.node and {a, b} & {host_stage} and {a, b} & set(members)
                )
            for other, oc in placed.items():
                t = sum(
                    v
                    for (a, b), v in traffic.items()
                    if (a in members and b in other) or (b in members and a in other)
                )
                on_fabric += t if oc.fabric == c.fabric else 0.0
                on_node += t if oc.node == c.node else 0.0
            no_router = wants_router and routers[(c.node, c.chip)] <= 0
            score = (-on_fabric, -on_node, no_router, rank)
            if best is None or score < best[0]:
                best = (score, c, left)
        if best is None:
            need = sum(loads[m].keps for m in members)
            where = f" on nodes labelled {selectors(members)}" if selectors(members) else ""
            raise PlacementError(
                f"no healthy chip{where} has room for stage(s) {', '.join(members)} "
                f"({need} keps, {sum(loads[m].neurons for m in members)} neurons); "
                f"{len(view.chips)} chips seen"
            )
        _, chip, left = best
        free[(chip.node, chip.chip)] = left
        placed[members] = chip
        if wants_router and routers[(chip.node, chip.chip)] > 0:
            routers[(chip.node, chip.chip)] -= 1
            routed.add(members)
    # Stages on no chip and no hint: beside the group they exchange most spikes with.
    for s in plan.stages:
        if s.on_chip or s.name in hosts:
            continue
        talk = sorted(
            ((v, b if a == s.name else a) for (a, b), v in every.items() if s.name in (a, b)),
            key=lambda t: (-t[0], t[1]),
        )
        peer = next((p for _, p in talk if p in group), None)
        node = placed[group[peer]].node if peer else (view.chips[0].node if view.chips else "")
        if not node:
            raise PlacementError(f"stage {s.name}: no node to run on")
        hosts[s.name] = Host(node, {HOSTNAME_LABEL: node})
    links: dict[tuple[str, str], Link] = {}
    for a, b in every:
        if a in hosts or b in hosts:
            links[(a, b)] = "network"
        elif group[a] == group[b]:
            links[(a, b)] = "chip"
        elif placed[group[a]].fabric == placed[group[b]].fabric:
            links[(a, b)] = "fabric"
        else:
            links[(a, b)] = "network"
    out = []
    for i, members in enumerate(groups):
        chip = placed[members]
        over = sum(v for (a, b), v in traffic.items() if b in members and links[(a, b)] == "fabric")
        selector: dict[str, str] = {}
        for sel in selectors(members):
            selector.update(sel)
        out.append(
            Group(
                f"g{i}",
                members,
                chip.node,
                chip.chip,
                chip.fabric,
                selector,
                fabric_keps(over) if over > 0 else 0,
                members in routed,
            )
        )
    joined = join_on_fabric(out, traffic, links, routers)
    _check_fabric_bandwidth(joined, view)
    return Placement(joined, links, every, hosts, view.avoid_serials)


def _check_fabric_bandwidth(groups: Sequence[Group], view: ClusterView) -> None:
    want: dict[str, int] = {}
    for g in groups:
        if g.fabric_keps:
            want[g.fabric] = want.get(g.fabric, 0) + g.fabric_keps
    for fid, keps in sorted(want.items()):
        link = view.fabric(fid)
        if link is None:
            raise PlacementError(f"fabric {fid}: no fabric device publishes its bandwidth")
        if keps > link.keps:
            raise PlacementError(
                f"fabric {fid}: the pipeline needs {keps} keps between its chips, {link.keps} free"
            )


# ---- The placement as the plan ConfigMap keeps it (objects.PLACEMENT_KEY) ----


def placement_json(placement: Placement) -> str:
    # "avoid" only when there is one: a placement without is written as before (its hash,
    # which the claims and pods carry, unchanged across an upgrade)
    avoid = {"avoid": list(placement.avoid)} if placement.avoid else {}
    return json.dumps(
        {
            **avoid,
            "groups": [
                {
                    "name": g.name,
                    "stages": list(g.stages),
                    "node": g.node,
                    "chip": g.chip,
                    "fabric": g.fabric,
                    "nodeSelector": dict(g.node_selector),
                    "fabricKeps": g.fabric_keps,
                    "routed": g.routed,
                    "claim": g.claim,
                }
                for g in placement.groups
            ],
            "hosts": {
                stage: {"node": h.node, "nodeSelector": dict(h.node_selector)}
                for stage, h in sorted(placement.hosts.items())
            },
            "links": [
                {
                    "from": a,
                    "to": b,
                    "link": link,
                    "spikesPerSecond": placement.spikes_per_s[(a, b)],
                }
                for (a, b), link in sorted(placement.links.items())
            ],
        },
        sort_keys=True,
    )


def placement_from_json(text: str) -> Placement:
    raw = json.loads(text)
    groups = tuple(
        Group(
            g["name"],
            tuple(g["stages"]),
            g["node"],
            int(g["chip"]),
            g["fabric"],
            dict(g["nodeSelector"]),
            int(g["fabricKeps"]),
            bool(g.get("routed", True)),  # stored before routers were counted
            str(g.get("claim", "")),
        )
        for g in raw["groups"]
    )
    links = {(e["from"], e["to"]): e["link"] for e in raw["links"]}
    rates = {(e["from"], e["to"]): float(e["spikesPerSecond"]) for e in raw["links"]}
    hosts = {k: Host(v["node"], dict(v["nodeSelector"])) for k, v in raw["hosts"].items()}
    return Placement(groups, links, rates, hosts, tuple(raw.get("avoid", ())))
