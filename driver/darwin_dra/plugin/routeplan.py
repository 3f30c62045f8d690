"""The routes a claim asks for on its chip's router, checked against what this node prepares for
it (pure): the ``darwin.snn.io/routes`` annotation (pipeline/chiproutes.py, the controller
writes it) read and checked, each route turned into the chip host's ProgramRoute request once
the partitions exist, and what the claim's ``status.devices`` says of them.

A route joins two requests of the same claim allocated on this node, each one device; the chip
host decides whether their partitions may be joined (one chip, one owner: runtime/routes.py)
and its refusal, with its reason, fails the prepare. The route is named after the claim's uid
and the edge, so two claims never share a name on the chip host; destroying either partition
removes it there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.chiproutes import ROUTES_ANNOTATION, RouteEntry, decode_map, parse_routes
from darwin_dra.plugin.records import DeviceIntent, Prepared
from darwin_dra.runtime.routes import RouteSpec

ROUTES_PROGRAMMED = "RoutesProgrammed"


class RouteError(ValueError):
    """The claim's routes cannot be programmed; the message names the route and why."""


def claim_routes(meta: Obj, where: str) -> tuple[RouteEntry, ...]:
    """The routes of the claim's annotation (none without it); RouteError naming the field."""
    text = (meta.get("annotations") or {}).get(ROUTES_ANNOTATION)
    if text is None:
        return ()
    try:
        return parse_routes(str(text), f"annotation {ROUTES_ANNOTATION}")
    except ValueError as exc:
        raise RouteError(f"{where}: {exc}") from None


def check_routes(routes: Sequence[RouteEntry], intents: Sequence[DeviceIntent], where: str) -> None:
    """Each route between two requests of this claim with one device each on this node, given
    once. Which partitions a route may join (one chip, one owner, not the same) is the chip
    host's rule (runtime/routes.py ``check_route``): its refusal fails the prepare."""
    count = Counter(i.request for i in intents)
    seen: set[tuple[str, str]] = set()
    for r in routes:
        at = f"{where}: route {r.edge}"
        for role, request in (("source", r.source), ("destination", r.destination)):
            if count[request] != 1:
                have = "no device" if not count[request] else f"{count[request]} devices"
                raise RouteError(
                    f"{at}: its {role} request {request!r} has {have} allocated on this node; "
                    f"a route joins two requests of one device each, on one node"
                )
        if (r.source, r.destination) in seen:
            raise RouteError(f"{at}: given twice")
        seen.add((r.source, r.destination))
        try:
            decode_map(r.neuron_map, f"{at}: neuronMap")
        except ValueError as exc:
            raise RouteError(str(exc)) from None


def route_name(claim_uid: str, route: RouteEntry) -> str:
    return f"{claim_uid}/{route.edge}"


def route_spec(claim_uid: str, route: RouteEntry, parts: Mapping[str, int]) -> RouteSpec:
    """The chip host's request for ``route``; ``parts``: request -> its partition."""
    neurons, inputs = decode_map(route.neuron_map)
    return RouteSpec(
        name=route_name(claim_uid, route),
        src=parts[route.source],
        dst=parts[route.destination],
        src_neurons=neurons,
        dst_inputs=inputs,
        lookahead=route.lookahead_steps,
        src_name=route.source,
        dst_name=route.destination,
    )


def status_routes(
    claim_uid: str,
    routes: Sequence[RouteEntry],
    device: Prepared,
    chip_of: Mapping[str, int] | None = None,
) -> tuple[list[Obj], Obj | None]:
    """A device's ``data.routes`` and its RoutesProgrammed condition (None: no routes);
    ``chip_of``: request -> chip of the claim's devices here, which tells a route on the chip's
    router from one the chip host carries over the fabric link to another chip."""
    request = device.intent.request
    chip = device.intent.chip
    chips = chip_of or {}
    data: list[Obj] = []
    for r in routes:
        if request not in (r.source, r.destination):
            continue
        data.append(
            {
                "name": route_name(claim_uid, r),
                "direction": "out" if r.source == request else "in",
                "peer": r.destination if r.source == request else r.source,
                "pairs": int(decode_map(r.neuron_map)[0].size),
                "lookaheadSteps": r.lookahead_steps,
            }
        )
    if not data:
        return [], None
    on_chip, across = [], []
    for d in data:
        edge = f"{d['name'].split('/', 1)[1]} ({d['pairs']} pairs)"
        peer = chips.get(str(d["peer"]), chip)
        if peer == chip:
            on_chip.append(edge)
        else:
            d["peerChip"] = peer
            across.append(
                f"{edge} to chip {peer}" if d["direction"] == "out" else f"{edge} from chip {peer}"
            )
    parts = [f"on chip {chip}'s router: {', '.join(on_chip)}"] if on_chip else []
    if across:
        parts.append(f"over the fabric link: {', '.join(across)}")
    condition: Obj = {
        "type": ROUTES_PROGRAMMED,
        "status": "True",
        "reason": ROUTES_PROGRAMMED,
        "message": "; ".join(parts),
    }
    return data, condition
