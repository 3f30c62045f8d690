"""Two stages on one chip, as a user runs them: `darwin-dra stage` processes, the engine stages
on partitions of a real chip host, s0 and s1 on the same chip with the route between them
programmed on the chip host (as the plugin would), the other edges over TCP. The outputs equal
the unsplit model's and the all-socket run's, spike for spike; the s0 -> s1 edge carries the
same spikes as over a socket and not one byte on a socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.pipeline.local import Routing, Slot, chip_hosts, launch, on_chip_edges
from darwin_dra.pipeline.outputs import output_digest

from tests.pipeline.threestage import three_stages

STEPS = 120
WINDOW = 8
LOOKAHEAD = 2
ARGS: dict[str, Any] = {
    "steps": STEPS,
    "window": WINDOW,
    "lookahead": LOOKAHEAD,
    "extra": ["--dt", "1e-3"],
}


@pytest.mark.slow  # runs stages in subprocesses
def test_two_stages_on_one_chip_route_on_the_chip_and_equal_the_socket_path(
    tmp_path: Path,
) -> None:
    x = three_stages(tmp_path, STEPS)
    nir_file, model, plan, plan_file, spikes = x.nir_file, x.model, x.plan, x.plan_file, x.spikes
    want = output_digest(x.want)
    # s0 and s1 share chip 0 (a domain each), s2 has chip 1
    slots = {
        "s0": Slot("node-a", 0, (0,)),
        "s1": Slot("node-a", 0, (1,)),
        "s2": Slot("node-a", 1, (0,)),
    }
    edges = on_chip_edges(plan, slots)
    assert edges == [("s0", "s1")]
    inputs = ["--input", f"file:{spikes}"]

    socket_dir, routed_dir = tmp_path / "sockets", tmp_path / "routed"
    socket_dir.mkdir()
    routed_dir.mkdir()
    with chip_hosts(socket_dir, slots) as endpoints:
        run = launch(socket_dir, nir_file, plan_file, plan, endpoints, inputs, **ARGS)
        sockets = run.wait(240)

    routing = Routing(model, plan, edges, lookahead_steps=LOOKAHEAD * WINDOW)
    with chip_hosts(routed_dir, slots, routing=routing) as endpoints:
        run = launch(
            routed_dir, nir_file, plan_file, plan, endpoints, inputs, on_chip=edges, **ARGS
        )
        routed = run.wait(240)
        with ChipHostClient(routed_dir / "node-a-state" / "chip-host.sock") as client:
            (route,) = client.routes()

    assert sockets["output"]["output_digest"] == want
    assert routed["output"]["output_digest"] == want
    over_socket = sockets["s0"]["sent"]["s1"]["spikes"]
    assert over_socket > 20  # the edge carries something
    # the same spikes on the chip's route, and no byte of them on a socket
    assert routed["s0"]["sent"]["s1"] == {"spikes": over_socket, "bytes": 0}
    assert routed["s1"]["received"]["s0"] == {"spikes": over_socket, "bytes": 0}
    assert routed["s0"]["routed"] == {"s1": over_socket}
    assert sockets["s0"]["sent"]["s1"]["bytes"] > 0
    assert (route.name, route.spikes, route.delivered, route.dropped) == (
        "s0->s1",
        over_socket,
        over_socket,
        0,
    )
    assert route.ended
    assert route.src_steps == route.dst_steps == STEPS + model.latency
    for name in ("s0", "s1", "s2"):
        assert routed[name]["dropped"] == 0
        assert routed[name]["steps"] == STEPS + model.latency
    # the other edges still went over sockets, with the same spikes
    for src, dst in [(e.src, e.dst) for e in plan.edges if (e.src, e.dst) != ("s0", "s1")]:
        assert routed[src]["sent"][dst]["spikes"] == sockets[src]["sent"][dst]["spikes"]
        assert routed[src]["sent"][dst]["bytes"] > 0
