"""The plugin programs a claim's routes (its ``darwin.snn.io/routes`` annotation) on a real
chip host when it prepares the claim, reports them in ``status.devices``, answers a repeated
prepare (also after its own restart) from its checkpoint without programming them twice, and
leaves nothing behind at unprepare; a route it cannot program fails the prepare with the reason
and leaves no partition."""

from __future__ import annotations

import asyncio
from pathlib import Path

from darwin_dra.chiphost.client import RemotePorts
from darwin_dra.engine import Engine
from darwin_dra.hardware.model import ChipEntry
from darwin_dra.hardware.profiles import load_profiles
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.chiproutes import ROUTES_ANNOTATION, RouteEntry, routes_annotation
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig

from tests.chiphost.conftest import NODE, Host
from tests.plugin.claims import ClaimStore, claim, result

MAP = "0:0:2 5:2:1"  # neurons 0, 1, 5 -> inputs 0, 1, 2


def routed_claim(uid: str, devices: tuple[str, str], *routes: RouteEntry) -> Obj:
    body = claim(uid, [result(devices[0], NODE, "s0"), result(devices[1], NODE, "s1")])
    body["metadata"]["annotations"] = {ROUTES_ANNOTATION: routes_annotation(routes)}
    return body


def _driver(host: Host, tmp_path: Path, chip: object, store: ClaimStore) -> Driver:
    config = DriverConfig(NODE, host.state_dir, tmp_path / "cdi", lock_timeout_s=5)
    return Driver(config, chip, load_profiles(), store, boot_id=lambda: "boot-1",  # type: ignore[arg-type]
                  spike_ports=RemotePorts(chip))  # type: ignore[arg-type]  # fmt: skip


def test_routes_programmed_at_prepare_once_and_gone_at_unprepare(
    host: Host, tmp_path: Path
) -> None:
    store = ClaimStore(
        routed_claim("u1", ("chip-0-domain-3", "chip-0-domain-4"), RouteEntry("s0", "s1", MAP, 40))
    )
    ref = ClaimRef("ns", "u1", "c-u1")
    with host.client() as chip:
        driver = _driver(host, tmp_path, chip, store)
        [done] = asyncio.run(driver.prepare([ref])).values()
        assert done.error is None, done.error
        s0, s1 = sorted(p.id for p in chip.partitions())
        [route] = chip.routes()
        assert (route.name, route.src_partition, route.dst_partition) == ("u1/s0->s1", s0, s1)
        assert (route.src_name, route.dst_name, route.pairs, route.lookahead_steps) == (
            "s0",
            "s1",
            3,
            40,
        )
        assert route.owner == "u1"
        # status.devices: both ends say so, each from its side
        entries = {e["device"]: e for e in store.get_claim("ns", "c-u1")["status"]["devices"]}
        for device, direction, peer in (
            ("chip-0-domain-3", "out", "s1"),
            ("chip-0-domain-4", "in", "s0"),
        ):
            entry = entries[device]
            [cond] = [c for c in entry["conditions"] if c["type"] == "RoutesProgrammed"]
            assert cond["status"] == "True"
            assert "s0->s1 (3 pairs)" in cond["message"]
            assert entry["data"]["routes"] == [
                {"name": "u1/s0->s1", "direction": direction, "peer": peer, "pairs": 3,
                 "lookaheadSteps": 40}
            ]  # fmt: skip
        # Asked again, and again by a restarted plugin: the checkpoint answers, nothing twice.
        again = asyncio.run(driver.prepare([ref]))
        assert again["u1"].error is None
        restarted = _driver(host, tmp_path, chip, store)
        assert asyncio.run(restarted.prepare([ref]))["u1"].error is None
        assert [r.name for r in chip.routes()] == ["u1/s0->s1"]
        assert sorted(p.id for p in chip.partitions()) == [s0, s1]
        # Unprepared (twice: the kubelet may repeat it): partitions and route gone.
        assert asyncio.run(restarted.unprepare([ref])) == {"u1": None}
        assert asyncio.run(restarted.unprepare([ref])) == {"u1": None}
        assert chip.routes() == []
        assert chip.partitions() == []


def test_a_route_across_a_fabric_is_programmed_and_one_to_no_request_refused_by_name(
    host: Host, tmp_path: Path
) -> None:
    store = ClaimStore(
        routed_claim("u2", ("chip-0-domain-3", "chip-1-domain-3"), RouteEntry("s0", "s1", MAP, 40)),
        routed_claim("u3", ("chip-0-domain-3", "chip-0-domain-4"), RouteEntry("s0", "s9", MAP, 40)),
    )
    with host.client() as chip:
        driver = _driver(host, tmp_path, chip, store)
        out = asyncio.run(
            driver.prepare([ClaimRef("ns", "u2", "c-u2"), ClaimRef("ns", "u3", "c-u3")])
        )
        # chips 0 and 1 share a fabric: that route crosses its fabric link, and is programmed
        assert out["u2"].error is None, out["u2"].error
        assert [r.name for r in chip.routes()] == ["u2/s0->s1"]
        assert "route s0->s9: its destination request 's9' has no device" in str(out["u3"].error)
        assert len(chip.partitions()) == 2  # u2's two; u3 left nothing behind


def test_a_bad_annotation_names_the_field(host: Host, tmp_path: Path) -> None:
    body = routed_claim("u4", ("chip-0-domain-3", "chip-0-domain-4"))
    body["metadata"]["annotations"][ROUTES_ANNOTATION] = (
        '{"apiVersion": "darwin.snn.io/v1alpha1", "kind": "ClaimRoutes", "routes": '
        '[{"source": "s0", "destination": "s1", "neuronMap": "1:2:0", "lookaheadSteps": 4}]}'
    )
    with host.client() as chip:
        driver = _driver(host, tmp_path, chip, ClaimStore(body))
        out = asyncio.run(driver.prepare([ClaimRef("ns", "u4", "c-u4")]))
        error = str(out["u4"].error)
        assert (
            "annotation darwin.snn.io/routes.routes[0].neuronMap: must be a string matching"
            in error
        )
        assert chip.partitions() == []


def test_an_engine_in_the_plugins_process_has_no_router(tmp_path: Path) -> None:
    """Routes need the device process: a prepare on the in-process engine fails by name and
    keeps no partition."""
    profiles = load_profiles()
    engine = Engine()
    for i in range(2):
        engine.add_chip(
            profiles["darwin3"], ChipEntry(model="darwin3", serial=f"T-{i}", fabric="f0")
        )
    store = ClaimStore(
        routed_claim("u5", ("chip-0-domain-3", "chip-0-domain-4"), RouteEntry("s0", "s1", MAP, 40))
    )
    config = DriverConfig(NODE, tmp_path / "state", tmp_path / "cdi", lock_timeout_s=5)
    driver = Driver(config, engine, profiles, store, boot_id=lambda: "boot-1")
    out = asyncio.run(driver.prepare([ClaimRef("ns", "u5", "c-u5")]))
    error = str(out["u5"].error)
    assert "route s0->s1: the engine runs in the plugin's process" in error
    assert engine.partitions() == []
