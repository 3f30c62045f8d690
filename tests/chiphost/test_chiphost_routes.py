"""Routes between partitions of one chip, on a real chip host process: who may be joined, what
flows (only the mapped neurons, at their steps, into the destination's Step), lockstep and
backpressure between the two partitions' Steps, the end of a route, and its teardown."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from darwin_dra.chiphost.client import RemotePorts
from darwin_dra.cluster.ports import free_port
from darwin_dra.engine import errors
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig
from darwin_dra.runtime.client import SpikePortClient
from darwin_dra.runtime.routes import RouteSpec

from tests.chiphost.conftest import NODE, Host, write_inventory
from tests.plugin.claims import ClaimStore, claim, result
from tests.runtime.nets import relay, sort_aer


def spec(
    src: int, dst: int, neurons: list[int], inputs: list[int], lookahead: int = 5
) -> RouteSpec:
    return RouteSpec(
        name=f"{src}->{dst}",
        src=src,
        dst=dst,
        src_neurons=np.array(neurons, np.int64),
        dst_inputs=np.array(inputs, np.int64),
        lookahead=lookahead,
        src_name="a",
        dst_name="b",
    )


def test_routes_join_only_partitions_of_one_fabric_and_one_owner(host: Host) -> None:
    with host.client() as chip:
        a = chip.create_partition(0, domains=[0], owner="ns/p")
        b = chip.create_partition(0, domains=[1], owner="ns/p")
        other = chip.create_partition(0, domains=[2], owner="ns/q")
        nobody = chip.create_partition(0, domains=[3])
        far = chip.create_partition(1, domains=[0], owner="ns/p")
        refusals = {
            "do not belong to one owner": spec(a, other, [0], [0]),
            "(owner none)": spec(a, nobody, [0], [0]),
            "2 source neurons but 1 destination inputs": spec(a, b, [0, 1], [0]),
            "partition 77 does not exist": spec(a, 77, [0], [0]),
            "lookahead_steps must be at least 1": spec(a, b, [0], [0], lookahead=0),
        }
        for why, bad in refusals.items():
            with pytest.raises(errors.InvalidArgument, match=re.escape(why)):
                chip.program_route(bad)
        assert chip.routes() == []
        across = chip.program_route(spec(a, far, [0], [0]))  # chips 0 and 1: one fabric, f0
        assert (across.chip, across.dst_partition) == (0, far)
        chip.delete_route(f"{a}->{far}")
        made = chip.program_route(spec(a, b, [0, 1], [1, 0]))
        assert (made.src_partition, made.dst_partition, made.chip, made.owner) == (a, b, 0, "ns/p")
        assert made.pairs == 2
        assert [r.name for r in chip.routes()] == [f"{a}->{b}"]
        chip.destroy_partition(b)  # takes its routes along
        assert chip.routes() == []
        with pytest.raises(errors.NotFound, match="no route named"):
            chip.delete_route(f"{a}->{b}")


def test_spikes_flow_on_the_route_in_lockstep_with_backpressure(host: Host) -> None:
    sockets = {n: host.state_dir / "partitions" / n / "spike.sock" for n in ("a", "b", "c")}
    with host.client() as chip:
        parts = {
            n: chip.create_partition(0, domains=[i], owner="ns/p") for i, n in enumerate("abc")
        }
        assert chip.serve_ports({sockets[n]: parts[n] for n in parts}) == {}
        # a's neurons 0..3 feed b's inputs 3..0; c is on the chip and the owner's, unrouted
        chip.program_route(spec(parts["a"], parts["b"], [0, 1, 2, 3], [3, 2, 1, 0]))

        async def run() -> None:
            async with (
                SpikePortClient(sockets["a"]) as a,
                SpikePortClient(sockets["b"]) as b,
                SpikePortClient(sockets["c"]) as c,
            ):
                for port in (a, b, c):
                    await port.load(relay(4, 1), export=range(4))
                out_a = await a.step(5, [0, 0, 0, 0], [0, 1, 2, 3])
                assert sort_aer(out_a.steps, out_a.ids) == [(1, 0), (1, 1), (1, 2), (1, 3)]
                out_b = await b.step(5)  # the route's spikes at step 1 -> b's neurons at 2
                assert sort_aer(out_b.steps, out_b.ids) == [(2, 0), (2, 1), (2, 2), (2, 3)]
                out_c = await c.step(5)
                assert (out_c.ids.size, out_c.counters.input_spikes) == (0, 0)

                # lockstep: b may not run steps 5..10 before a has
                waiting = asyncio.create_task(b.step(5))
                await asyncio.sleep(0.5)
                assert not waiting.done()
                await a.step(5)
                await asyncio.wait_for(waiting, 10)
                # backpressure: a level with b runs; 5 steps ahead of b it waits for b
                await asyncio.wait_for(a.step(5), 10)
                held = asyncio.create_task(a.step(5))
                await asyncio.sleep(0.5)
                assert not held.done()
                await b.step(5)
                await asyncio.wait_for(held, 10)
                # the end: b's wait for steps a will never run returns once a ends
                ends = asyncio.create_task(b.routes(wait_steps=1000))
                await asyncio.sleep(0.3)
                assert not ends.done()
                await a.end_routes()
                (seen,) = await asyncio.wait_for(ends, 10)
                assert (seen.ended, seen.src_steps, seen.outbound) == (True, 20, False)
                assert (seen.spikes, seen.delivered, seen.dropped) == (4, 4, 0)

        asyncio.run(run())
        (route,) = chip.routes()
        assert (route.src_steps, route.dst_steps, route.spikes, route.queued) == (20, 15, 4, 0)


def test_a_network_too_small_for_its_route_is_refused(host: Host, tmp_path: Path) -> None:
    sock = host.state_dir / "partitions" / "b" / "spike.sock"
    with host.client() as chip:
        a = chip.create_partition(0, domains=[0], owner="o")
        b = chip.create_partition(0, domains=[1], owner="o")
        chip.serve_ports({sock: b})
        chip.program_route(spec(a, b, [0], [9]))

        async def load() -> str:
            async with SpikePortClient(sock) as port:
                try:
                    await port.load(relay(4, 1))
                except grpc.aio.AioRpcError as exc:
                    return str(exc.details())
                return "loaded"

        assert "feeds input 9, but the network has 4 inputs" in asyncio.run(load())


def test_the_plugin_makes_a_claims_partitions_one_owner(host: Host, tmp_path: Path) -> None:
    """The plugin prepares two claims on the chip host; a route may join the two partitions of
    one claim (a pipeline's group on a chip) but not partitions of two claims."""
    store = ClaimStore(
        claim(
            "u1",
            [result("chip-0-domain-3", NODE, "s0"), result("chip-0-domain-4", NODE, "s1")],
        ),
        claim("u2", [result("chip-0-domain-5", NODE)]),
    )
    with host.client() as chip:
        config = DriverConfig(NODE, host.state_dir, tmp_path / "cdi", lock_timeout_s=5)
        driver = Driver(config, chip, load_profiles(), store, boot_id=lambda: "boot-1",
                        spike_ports=RemotePorts(chip))  # fmt: skip
        refs = [ClaimRef("ns", "u1", "c-u1"), ClaimRef("ns", "u2", "c-u2")]
        done = asyncio.run(driver.prepare(refs))
        assert all(r.error is None for r in done.values()), done
        s0, s1, other = sorted(p.id for p in chip.partitions())  # made in this order
        assert chip.program_route(spec(s0, s1, [0], [0])).owner == "u1"
        with pytest.raises(errors.InvalidArgument, match="do not belong to one owner"):
            chip.program_route(spec(s1, other, [0], [0]))
        assert asyncio.run(driver.unprepare(refs)) == {"u1": None, "u2": None}
        assert chip.routes() == []  # the partitions went, and their route with them


def test_a_route_between_two_chips_of_one_fabric_crosses_the_fabric_link(tmp_path: Path) -> None:
    """Stages on chips 0 and 1 (one fabric) in one chip host: the route's spikes reach the
    destination at their steps, over the engine's fabric link 0 -> 1, which counts them (the
    chip host's metrics); the link back, unused, carried nothing."""
    h = Host(tmp_path / "s", write_inventory(tmp_path / "i.yaml"), tmp_path / "ch.log",
             metrics_port=free_port())  # fmt: skip
    h.start()
    sockets = {n: h.state_dir / "partitions" / n / "spike.sock" for n in ("a", "b")}
    try:
        with h.client() as chip:
            a = chip.create_partition(0, domains=[0], owner="ns/p")
            b = chip.create_partition(1, domains=[0], owner="ns/p")
            assert chip.serve_ports({sockets["a"]: a, sockets["b"]: b}) == {}
            chip.program_route(spec(a, b, [0, 1, 2, 3], [3, 2, 1, 0]))

            async def run() -> None:
                async with SpikePortClient(sockets["a"]) as pa, SpikePortClient(sockets["b"]) as pb:
                    for port in (pa, pb):
                        await port.load(relay(4, 1), export=range(4))
                    out_a = await pa.step(5, [0, 0, 0, 0], [0, 1, 2, 3])
                    assert sort_aer(out_a.steps, out_a.ids) == [(1, i) for i in range(4)]
                    out_b = await pb.step(5)  # at step 1 over the link -> b's neurons at 2
                    assert sort_aer(out_b.steps, out_b.ids) == [(2, i) for i in range(4)]
                    assert out_b.counters.input_spikes == 4

            asyncio.run(run())
            (route,) = chip.routes()
            assert (route.spikes, route.delivered, route.dropped) == (4, 4, 0)
        url = f"http://127.0.0.1:{h.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        at = 'dst_chip="{}",fabric="f0",kind="{}",src_chip="{}"'
        assert (
            f"darwin_chiphost_fabric_link_spikes_total{{{at.format(1, 'carried', 0)}}} 4.0" in text
        )
        assert (
            f"darwin_chiphost_fabric_link_spikes_total{{{at.format(1, 'dropped', 0)}}} 0.0" in text
        )
        assert (
            f"darwin_chiphost_fabric_link_spikes_total{{{at.format(0, 'carried', 1)}}} 0.0" in text
        )
        assert 'darwin_chiphost_fabric_link_peak{dst_chip="1",fabric="f0",src_chip="0"} 4.0' in text
    finally:
        assert h.stop() == 0


def test_a_step_that_fails_gives_the_routes_spikes_back(host: Host) -> None:
    """The destination's Step takes the route's spikes due, then fails in the engine (a bad
    input of its own): they go back on the route, and the next Step delivers them; nothing
    is lost uncounted."""
    sockets = {n: host.state_dir / "partitions" / n / "spike.sock" for n in ("a", "b")}
    with host.client() as chip:
        parts = {n: chip.create_partition(0, domains=[i], owner="ns/p") for i, n in enumerate("ab")}
        assert chip.serve_ports({sockets[n]: parts[n] for n in parts}) == {}
        chip.program_route(spec(parts["a"], parts["b"], [0, 1, 2, 3], [3, 2, 1, 0]))

        async def run() -> None:
            async with SpikePortClient(sockets["a"]) as a, SpikePortClient(sockets["b"]) as b:
                for port in (a, b):
                    await port.load(relay(4, 1), export=range(4))
                await a.step(5, [0, 0, 0, 0], [0, 1, 2, 3])
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await b.step(5, [0], [99])  # input 99 of 4
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                (held,) = await b.routes()
                assert (held.spikes, held.delivered, held.dropped) == (4, 0, 0)
                out_b = await b.step(5)
                assert sort_aer(out_b.steps, out_b.ids) == [(2, 0), (2, 1), (2, 2), (2, 3)]
                (seen,) = await b.routes()
                assert (seen.spikes, seen.delivered, seen.dropped) == (4, 4, 0)

        asyncio.run(run())
        (route,) = chip.routes()
        assert route.queued == 0
