"""Two stages on two chips of one fabric, as a user runs them: `darwin-dra stage` processes on
partitions of one real chip host, s0 on chip 0 and s1 on chip 1 (the chip host's inventory puts
a node's chips on one fabric), the s0 -> s1 route programmed on the chip host: its spikes cross
the engine's fabric link 0 -> 1 instead of a socket. The outputs equal the unsplit model's and
the all-socket run's, spike for spike."""

from __future__ import annotations

from pathlib import Path

import pytest
from darwin_dra.chiphost.client import ChipHostClient
from darwin_dra.pipeline.local import Routing, Slot, chip_hosts, launch
from darwin_dra.pipeline.outputs import output_digest

from tests.pipeline.test_onchip_cmd import ARGS, LOOKAHEAD, STEPS, WINDOW
from tests.pipeline.threestage import three_stages


@pytest.mark.slow  # runs stages in subprocesses
def test_a_route_between_two_chips_of_one_fabric_equals_the_socket_path(tmp_path: Path) -> None:
    x = three_stages(tmp_path, STEPS)
    want = output_digest(x.want)
    slots = {
        "s0": Slot("node-a", 0, (0,)),
        "s1": Slot("node-a", 1, (0,)),  # another chip of node-a's fabric
        "s2": Slot("node-a", 1, (1,)),
    }
    edges = [("s0", "s1")]
    inputs = ["--input", f"file:{x.spikes}"]
    routing = Routing(x.model, x.plan, edges, lookahead_steps=LOOKAHEAD * WINDOW)
    with chip_hosts(tmp_path, slots, routing=routing) as endpoints:
        run = launch(
            tmp_path, x.nir_file, x.plan_file, x.plan, endpoints, inputs, on_chip=edges, **ARGS
        )
        routed = run.wait(240)
        with ChipHostClient(tmp_path / "node-a-state" / "chip-host.sock") as client:
            (route,) = client.routes()
    assert routed["output"]["output_digest"] == want
    moved = routed["s0"]["routed"]["s1"]
    assert moved > 20
    assert routed["s0"]["sent"]["s1"] == {"spikes": moved, "bytes": 0}
    assert (route.chip, route.spikes, route.delivered, route.dropped) == (0, moved, moved, 0)
    for name in ("s0", "s1", "s2"):
        assert routed[name]["dropped"] == 0
