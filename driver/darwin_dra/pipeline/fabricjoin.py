"""Joining the claims of groups that one node's fabric links (pure): the route of an edge
between two such groups is then one claim's, and the chip host carries it over the fabric
link between their chips instead of a socket (placement.place calls this last)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # placement.py imports this module: its types only, for the annotations
    from darwin_dra.pipeline.placement import Group, Link


def join_on_fabric(
    groups: Sequence[Group],
    traffic: Mapping[tuple[str, str], float],
    links: Mapping[tuple[str, str], Link],
    routers: Mapping[tuple[str, int], int],
) -> tuple[Group, ...]:
    """The groups with the claims they share (pure). The edges between two groups on one
    fabric and one planned node, heaviest first, join their claims: the route of such an edge
    is then one claim's, programmed on the chip host over the fabric link between the chips.
    A claim with routes holds one router, its binding gate: two joined claims that each hold
    one keep the first's and give the other's back; when neither does, the claim takes a free
    one (``routers``: what is left on each (node, chip)) of the source's chip, else of the
    destination's, else they are not joined (that edge stays on a socket). A joined claim is
    named after its first group; a router given back goes to a claim whose stages exchange
    spikes and that holds none (placed without one for want of it). Their fabric bandwidth is
    each group's as before: the spikes of a routed fabric edge still cross the fabric."""
    by_stage = {s: g for g in groups for s in g.stages}
    order = {g.name: i for i, g in enumerate(groups)}
    parent = {g.name: g.name for g in groups}
    holder = {g.name: g.name for g in groups if g.routed}  # claim root -> group holding the router
    free = dict(routers)

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for (a, b), _ in sorted(traffic.items(), key=lambda kv: (-kv[1], kv[0])):
        ga, gb = by_stage.get(a), by_stage.get(b)
        if ga is None or gb is None or links.get((a, b)) != "fabric" or ga.node != gb.node:
            continue
        ra, rb = root(ga.name), root(gb.name)
        if ra == rb:
            continue
        if ra in holder and rb in holder:
            back = _named(groups, holder[rb])
            free[(back.node, back.chip)] = free.get((back.node, back.chip), 0) + 1
            keep = holder[ra]
        elif ra in holder or rb in holder:
            keep = holder.get(ra) or holder[rb]
        else:
            taker = next((g for g in (ga, gb) if free.get((g.node, g.chip), 0) > 0), None)
            if taker is None:
                continue
            free[(taker.node, taker.chip)] -= 1
            keep = taker.name
        first, second = sorted((ra, rb), key=order.__getitem__)
        parent[second] = first
        holder.pop(ra, None)
        holder.pop(rb, None)
        holder[first] = keep

    # A router given back serves a claim whose stages exchange spikes and that has none yet.
    def exchanges(claim: str) -> bool:
        return any(
            a in by_stage
            and b in by_stage
            and root(by_stage[a].name) == claim == root(by_stage[b].name)
            for a, b in traffic
        )

    for g in groups:
        claim = root(g.name)
        if claim not in holder and free.get((g.node, g.chip), 0) > 0 and exchanges(claim):
            free[(g.node, g.chip)] -= 1
            holder[claim] = g.name
    holding = set(holder.values())
    return tuple(
        replace(
            g,
            routed=g.name in holding,
            claim="" if root(g.name) == g.name else root(g.name),
        )
        for g in groups
    )


def _named(groups: Sequence[Group], name: str) -> Group:
    return next(g for g in groups if g.name == name)
