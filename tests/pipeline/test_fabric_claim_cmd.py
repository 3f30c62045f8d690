"""The placement's decision run as a user runs it: a node with two chips of one fabric, room for
two stages a chip, the three-stage split placed on it (place: a group of two on one chip, the
third stage on the other chip, both groups joined in one claim), the claim's routes
(on_chip_edges) programmed on a real chip host as the plugin programs them, `darwin-dra stage`
processes. The edges between the chips cross the engine's fabric link, which counts them per
link in the chip host's metrics; the outputs equal the unsplit model's."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.cluster.ports import free_port
from darwin_dra.pipeline.chiproutes import on_chip_edges, route_maps
from darwin_dra.pipeline.cluster import ChipSlot, ClusterView, FabricLink, Half
from darwin_dra.pipeline.local import Routing, Slot, chip_hosts, launch
from darwin_dra.pipeline.outputs import output_digest
from darwin_dra.pipeline.placement import place
from darwin_dra.pipeline.plan import from_split_json
from prometheus_client.parser import text_string_to_metric_families

from tests.pipeline.test_onchip_cmd import ARGS, LOOKAHEAD, STEPS, WINDOW
from tests.pipeline.threestage import three_stages

NODE, FABRIC = "node-a", "node-a-f"  # the fabric local.chip_hosts gives the node's chips


def _links(text: str) -> dict[tuple[int, int, str], float]:
    """The chip host's per-link fabric counters: (src chip, dst chip, kind) -> spikes."""
    out: dict[tuple[int, int, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "darwin_chiphost_fabric_link_spikes_total" and (
                s.labels["fabric"] == FABRIC
            ):
                key = (int(s.labels["src_chip"]), int(s.labels["dst_chip"]), s.labels["kind"])
                out[key] = s.value
    return out


@pytest.mark.slow  # runs stages in subprocesses
def test_a_joined_claims_fabric_edges_cross_the_fabric_link_and_equal_the_unsplit_model(
    tmp_path: Path,
) -> None:
    x = three_stages(tmp_path, STEPS)
    plan = from_split_json(x.plan.to_json())
    engine = [s for s in plan.stages if s.on_chip]
    widest = max(s.neurons for s in engine)
    # A half holds one stage (no two fit one half together): two stages a chip.
    assert all(a.neurons + b.neurons > widest for a in engine for b in engine if a != b)
    view = ClusterView(
        tuple(
            ChipSlot(
                NODE,
                c,
                FABRIC,
                tuple(Half("p", f"chip-{c}-shared-{h}", 10**9, widest, 10**9) for h in (0, 1)),
            )
            for c in (0, 1)
        ),
        (FabricLink(FABRIC, "p", f"fabric-{FABRIC}", (NODE,), 10**9),),
    )
    placement = place(plan, view, target_rate=1000)
    pair, single = sorted(placement.groups, key=lambda g: -len(g.stages))
    assert (len(pair.stages), len(single.stages)) == (2, 1)
    assert pair.chip != single.chip
    assert list(placement.claims()) == ["g0"]  # one claim: one owner for the routes
    edges = on_chip_edges(plan, placement, route_maps(x.model, x.plan))
    chip_of = {s: g.chip for g in placement.groups for s in g.stages}
    # Every edge between engine stages is the claim's: on a chip's router or the fabric.
    assert sorted(edges) == sorted(
        (e.src, e.dst) for e in plan.edges if e.src in chip_of and e.dst in chip_of
    )
    across = [(a, b) for a, b in edges if chip_of[a] != chip_of[b]]
    assert across  # the fabric's edges are routed, not only the chip's
    slots = {s: Slot(NODE, g.chip, (i,)) for g in placement.groups for i, s in enumerate(g.stages)}
    port = free_port()
    routing = Routing(x.model, x.plan, edges, lookahead_steps=LOOKAHEAD * WINDOW)
    inputs = ["--input", f"file:{x.spikes}"]
    with chip_hosts(tmp_path, slots, routing=routing, metrics_ports={NODE: port}) as endpoints:
        run = launch(
            tmp_path, x.nir_file, x.plan_file, x.plan, endpoints, inputs, on_chip=edges, **ARGS
        )
        report = run.wait(240)
        with ChipHostClient(tmp_path / f"{NODE}-state" / "chip-host.sock") as client:
            routes = {r.name: r for r in client.routes()}
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            links = _links(resp.read().decode())

    assert report["output"]["output_digest"] == output_digest(x.want)
    assert sorted(routes) == sorted(f"{a}->{b}" for a, b in edges)
    per_link: dict[tuple[int, int], int] = {}
    for a, b in edges:
        r = routes[f"{a}->{b}"]
        assert (r.delivered, r.dropped) == (r.spikes, 0)
        assert report[a]["sent"][b] == {"spikes": r.spikes, "bytes": 0}  # none on a socket
        if chip_of[a] != chip_of[b]:
            link = (chip_of[a], chip_of[b])
            per_link[link] = per_link.get(link, 0) + r.spikes
    assert sum(per_link.values()) > 20  # the fabric edges carry something
    # What the fabric links carried is exactly the routes' spikes between the chips.
    carried = {(a, b): v for (a, b, kind), v in links.items() if kind == "carried" and v}
    assert carried == {k: float(v) for k, v in per_link.items() if v}
    # Nothing waited on a link or was lost there: the spikes arrived at their steps.
    assert {k: v for k, v in links.items() if k[2] != "carried" and v} == {}
    for name in ("s0", "s1", "s2"):
        assert report[name]["dropped"] == 0
