"""The chip's router between partitions: routes that ChipHost.ProgramRoute programs and the
partitions' SpikePort Steps drive (runtime/spikeport.py).

A route maps neurons of a source partition to inputs of a destination partition on the same
chip, or on another chip of the same fabric (the neuron map: pairs ``src_neurons[k] ->
dst_inputs[k]``). When the source runs a window,
the spikes its mapped neurons fired go onto the route, each with the step it was fired at;
when the destination runs a window, the route's spikes due in it are injected into its input
queue together with (and ordered as) the spikes its client sent, at their own steps. Nothing
crosses a socket. The simulated router keeps the spikes in the chip host, between the two
partitions' steps. A route between two chips of one fabric hands its due spikes to the engine's
fabric link between them instead (engine/fabric.py: counted per link, at most its capacity a
step, the excess later or dropped and counted there), after the client's spikes.

Lockstep by window: the destination runs steps ``[t, t + n)`` only once the source has run
through ``t + n`` (or ended, ``end``). Backpressure: a source that is ahead of a destination
runs at most ``lookahead`` steps past it; a source level with it always may run (so no window
size can deadlock the pair). What the route cannot hold (``capacity``) or what comes due before
the destination's present step is dropped and counted.

Isolation: a route joins two partitions (of one chip or one fabric) with the same non-empty
owner (the ``owner`` of CreatePartition: the plugin passes the claim's pipeline, or the claim's
uid), and only the mapped neurons' spikes flow. Destroying either partition removes its routes.

Everything here runs on the chip host's event loop; the engine's calls stay in the servicers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from darwin_dra.kubelet.proto_gen.runtime_v1alpha1 import spikeport_pb2 as pb

I64 = npt.NDArray[np.int64]
DEFAULT_CAPACITY = 1 << 24


@dataclass(frozen=True)
class RouteSpec:
    name: str
    src: int
    dst: int
    src_neurons: I64
    dst_inputs: I64
    lookahead: int
    src_name: str = ""
    dst_name: str = ""
    capacity: int = DEFAULT_CAPACITY


@dataclass
class Route:
    spec: RouteSpec
    chip: int
    owner: str
    dst_chip: int = -1  # another chip of the fabric: the route crosses the fabric link
    ended: bool = False
    spikes: int = 0
    delivered: int = 0
    dropped: int = 0
    q_steps: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    q_inputs: I64 = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def queued(self) -> int:
        return int(self.q_steps.size)

    @property
    def crosses_fabric(self) -> bool:
        return self.dst_chip >= 0 and self.dst_chip != self.chip


def check_route(
    spec: RouteSpec,
    chips: dict[int, int],
    owners: dict[int, str],
    fabrics: dict[int, str] | None = None,
) -> None:
    """A route's request against the partitions (``chips``: partition -> chip of those that
    exist; ``owners``: partition -> owner; ``fabrics``: chip -> its fabric); ValueError naming
    what is wrong (pure)."""
    if not spec.name:
        raise ValueError("a route needs a name")
    for role, part in (("source", spec.src), ("destination", spec.dst)):
        if part not in chips:
            raise ValueError(f"route {spec.name}: {role} partition {part} does not exist")
    if spec.src == spec.dst:
        raise ValueError(f"route {spec.name}: source and destination are partition {spec.src}")
    a_chip, b_chip, on = chips[spec.src], chips[spec.dst], fabrics or {}
    if a_chip != b_chip and (not on.get(a_chip) or on.get(a_chip) != on.get(b_chip)):
        raise ValueError(
            f"route {spec.name}: partition {spec.src} is on chip {a_chip} (fabric "
            f"{on.get(a_chip) or 'none'}), partition {spec.dst} on chip {b_chip} (fabric "
            f"{on.get(b_chip) or 'none'}): a route stays on one chip's router or one fabric"
        )
    a, b = owners.get(spec.src, ""), owners.get(spec.dst, "")
    if not a or a != b:
        raise ValueError(
            f"route {spec.name}: partitions {spec.src} (owner {a or 'none'}) and {spec.dst} "
            f"(owner {b or 'none'}) do not belong to one owner; routes join only those"
        )
    if spec.src_neurons.size != spec.dst_inputs.size:
        raise ValueError(
            f"route {spec.name}: {spec.src_neurons.size} source neurons but "
            f"{spec.dst_inputs.size} destination inputs"
        )
    if spec.lookahead < 1:
        raise ValueError(f"route {spec.name}: lookahead_steps must be at least 1")
    if spec.capacity < 1:
        raise ValueError(f"route {spec.name}: capacity must be at least 1 spike")


def check_bounds(route: RouteSpec, part: int, n_neurons: int, n_inputs: int) -> None:
    """A network about to load on ``part`` against the route's map; ValueError naming it."""
    if route.src == part and route.src_neurons.size and int(route.src_neurons.max()) >= n_neurons:
        raise ValueError(
            f"route {route.name} maps neuron {int(route.src_neurons.max())}, but the network "
            f"has {n_neurons} neurons"
        )
    if route.dst == part and route.dst_inputs.size and int(route.dst_inputs.max()) >= n_inputs:
        raise ValueError(
            f"route {route.name} feeds input {int(route.dst_inputs.max())}, but the network has "
            f"{n_inputs} inputs"
        )


def map_spikes(spec: RouteSpec, steps: I64, ids: I64) -> tuple[I64, I64]:
    """The source's exported spikes (step, neuron) as the destination's (step, input): every
    pair of the map whose neuron fired, in the order of the spikes (pure)."""
    order = np.argsort(spec.src_neurons, kind="stable")
    src = spec.src_neurons[order]
    dst = spec.dst_inputs[order]
    lo = np.searchsorted(src, ids, "left")
    hi = np.searchsorted(src, ids, "right")
    count = hi - lo
    at = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    return np.repeat(steps, count), dst[at]


def merge_inputs(
    steps: npt.NDArray[np.integer], ids: npt.NDArray[np.integer], r_steps: I64, r_ids: I64
) -> tuple[I64, I64]:
    """A client's input spikes and a route's as one batch in (step, input) order: the order
    the stage runtime injects spikes from sockets in, so both paths add them alike (pure)."""
    all_s = np.concatenate([steps.astype(np.int64), r_steps])
    all_i = np.concatenate([ids.astype(np.int64), r_ids])
    order = np.lexsort((all_i, all_s))
    return all_s[order], all_i[order]


class RouteTable:
    """The routes of one chip host and the steps each partition has run since its Load."""

    def __init__(self, count: Callable[[str, int], None] | None = None) -> None:
        # count(kind, n): spikes "moved" onto routes, "delivered" off them, "dropped"
        self._count = count or (lambda kind, n: None)
        self.routes: dict[str, Route] = {}
        self.owners: dict[int, str] = {}
        self.steps: dict[int, int] = {}
        # what take_due gave each partition's Step, until settle says whether it ran
        self._taken: dict[int, list[tuple[Route, I64, I64]]] = {}
        self._changed = asyncio.Event()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self._changed.wait()

    def into(self, part: int) -> list[Route]:
        return [r for r in self.routes.values() if r.spec.dst == part]

    def out_of(self, part: int) -> list[Route]:
        return [r for r in self.routes.values() if r.spec.src == part]

    # ---- programming (ChipHost) ----

    def own(self, part: int, owner: str) -> None:
        self.owners[part] = owner

    def program(
        self, spec: RouteSpec, chips: dict[int, int], fabrics: dict[int, str] | None = None
    ) -> Route:
        check_route(spec, chips, self.owners, fabrics)
        route = Route(spec, chips[spec.src], self.owners[spec.src], chips[spec.dst])
        self.routes[spec.name] = route
        self._wake()
        return route

    def delete(self, name: str) -> None:
        if self.routes.pop(name, None) is None:
            raise KeyError(name)
        self._wake()

    def forget(self, part: int) -> list[str]:
        """The partition is destroyed: its routes go, its waiters wake."""
        gone = sorted(n for n, r in self.routes.items() if part in (r.spec.src, r.spec.dst))
        for name in gone:
            del self.routes[name]
        self.owners.pop(part, None)
        self.steps.pop(part, None)
        self.settle(part, ran=False)  # its routes are gone: what it held is counted dropped
        self._wake()
        return gone

    # ---- driving (SpikePort) ----

    def exported(self, part: int) -> I64:
        """The neurons the chip host records on ``part`` for its routes."""
        maps = [r.spec.src_neurons for r in self.out_of(part)]
        return np.unique(np.concatenate([np.zeros(0, np.int64), *maps]))

    def refuse_load(self, part: int, req: pb.LoadRequest) -> str | None:
        """Why the network of ``req`` may not load on ``part`` given its routes, or None."""
        n_neurons = sum(g.count for g in req.groups)
        try:
            for r in self.into(part) + self.out_of(part):
                check_bounds(r.spec, part, n_neurons, req.n_inputs)
        except ValueError as exc:
            return str(exc)
        return None

    def loaded(self, part: int) -> None:
        """A network is loaded on ``part``: its steps restart at 0, and so do its routes out."""
        self.steps[part] = 0
        for r in self.out_of(part):
            r.ended = False
            r.q_steps, r.q_inputs = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self._wake()

    def ready(self, part: int, n: int) -> bool:
        now = self.steps.get(part, 0)
        for r in self.out_of(part):
            there = self.steps.get(r.spec.dst, 0)
            if now > there and now + n > there + r.spec.lookahead:
                return False
        return all(self.horizon_ok(r, now + n) for r in self.into(part))

    def horizon_ok(self, r: Route, through: int) -> bool:
        return r.ended or self.steps.get(r.spec.src, 0) >= through

    async def wait_turn(self, part: int, n: int) -> None:
        """Until ``part`` may run ``n`` steps: its sources through them, its destinations near."""
        await self._until(lambda: self.ready(part, n))

    async def wait_sources(self, part: int, through: int) -> None:
        await self._until(lambda: all(self.horizon_ok(r, through) for r in self.into(part)))

    def _take(self, part: int, r: Route, now: int, n: int) -> tuple[I64, I64]:
        """``r``'s spikes due in ``part``'s next ``n`` steps, off the route; late ones are
        dropped and counted, the rest are delivered (or given back) by ``settle``."""
        due = r.q_steps < now + n
        late = r.q_steps < now
        r.dropped += int(late.sum())
        self._count("dropped", int(late.sum()))
        ok = due & ~late
        got = r.q_steps[ok], r.q_inputs[ok]
        self._taken.setdefault(part, []).append((r, *got))
        r.q_steps, r.q_inputs = r.q_steps[~due], r.q_inputs[~due]
        return got

    def take_due(self, part: int, n: int) -> tuple[I64, I64]:
        """The on-chip routes' spikes due in ``part``'s next ``n`` steps, off the routes;
        delivered (or given back) by ``settle`` once the Step that takes them ran (or did
        not). Called first in a Step: ``take_fabric_due`` adds that Step's fabric spikes."""
        self.settle(part, ran=False)  # (a Step that never settled: its spikes are still due)
        now = self.steps.get(part, 0)
        got_s: list[I64] = [np.zeros(0, np.int64)]
        got_i: list[I64] = [np.zeros(0, np.int64)]
        for r in self.into(part):
            if not r.crosses_fabric:
                s, i = self._take(part, r, now, n)
                got_s.append(s)
                got_i.append(i)
        return np.concatenate(got_s), np.concatenate(got_i)

    def take_fabric_due(self, part: int, n: int) -> list[tuple[int, I64, I64]]:
        """The spikes due in ``part``'s next ``n`` steps of each route that reaches it over a
        fabric link, off the routes: (source partition, steps, inputs) per route."""
        now = self.steps.get(part, 0)
        into = [r for r in self.into(part) if r.crosses_fabric]
        return [(r.spec.src, *self._take(part, r, now, n)) for r in into]

    def settle(self, part: int, ran: bool) -> None:
        """The Step given ``part``'s due spikes ran (they are delivered) or did not (an engine
        error before it ran: they go back on their routes, ahead of the rest, due again at the
        next Step; a route gone meanwhile counts them dropped). Never lost uncounted."""
        for r, steps, inputs in self._taken.pop(part, []):
            if not steps.size:
                continue
            if ran:
                r.delivered += int(steps.size)
                self._count("delivered", int(steps.size))
            elif self.routes.get(r.spec.name) is r:
                r.q_steps = np.concatenate([steps, r.q_steps])
                r.q_inputs = np.concatenate([inputs, r.q_inputs])
            else:
                r.dropped += int(steps.size)
                self._count("dropped", int(steps.size))

    def stepped(self, part: int, through: int, steps: I64, ids: I64) -> int:
        """``part`` ran through step ``through`` and exported (steps, ids): onto its routes.
        Returns the spikes moved onto routes."""
        self.steps[part] = through
        moved = 0
        for r in self.out_of(part):
            s, i = map_spikes(r.spec, steps, ids)
            room = max(0, r.spec.capacity - r.queued)
            r.dropped += max(0, int(s.size) - room)
            self._count("dropped", max(0, int(s.size) - room))
            s, i = s[:room], i[:room]
            r.spikes += int(s.size)
            self._count("moved", int(s.size))
            moved += int(s.size)
            r.q_steps = np.concatenate([r.q_steps, s])
            r.q_inputs = np.concatenate([r.q_inputs, i])
        self._wake()
        return moved

    def end(self, part: int) -> None:
        """``part`` runs no more steps (its client said so, or it was unloaded)."""
        for r in self.out_of(part):
            r.ended = True
        self._wake()


def port_routes(table: RouteTable, part: int) -> list[pb.PortRoute]:
    """The routes into and out of ``part`` as the SpikePort answers them."""
    return [
        pb.PortRoute(
            name=r.spec.name,
            src_name=r.spec.src_name,
            dst_name=r.spec.dst_name,
            outbound=r.spec.src == part,
            pairs=int(r.spec.src_neurons.size),
            src_steps=table.steps.get(r.spec.src, 0),
            ended=r.ended,
            spikes=r.spikes,
            delivered=r.delivered,
            dropped=r.dropped,
        )
        for r in table.out_of(part) + table.into(part)
    ]
