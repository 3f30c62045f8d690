"""plugin/driver.py and the modules it wires, with a real engine, a real checkpoint and CDI
files in temp dirs; claims come from an in-memory store. gRPC tests go through real unix sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import numpy as np
import pytest
from darwin_dra.engine import (
    CapacityExceeded,
    Engine,
    InvalidArgument,
    Network,
    NeuronGroup,
    Routing,
)
from darwin_dra.hardware.model import ChipEntry, ChipProfile
from darwin_dra.kubeapi import Unavailable
from darwin_dra.kubelet.health_service import HealthHub
from darwin_dra.kubelet.preparer import ClaimRef
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2 as v1
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2_grpc as v1_grpc
from darwin_dra.kubelet.server import PluginServer, PluginServerConfig
from darwin_dra.plugin.checkpoint import Phase
from darwin_dra.plugin.driver import Driver
from darwin_dra.plugin.node import DriverConfig
from darwin_dra.plugin.recovery import lost_devices, spike_sockets

from tests.plugin.claims import ClaimStore, claim, opaque, result

NODE = "node-a"


class Crash(Exception):
    pass


def _engine(profile: ChipProfile, chips: int = 2) -> Engine:
    eng = Engine()
    for i in range(chips):
        eng.add_chip(profile, ChipEntry(model="darwin3", serial=f"T-{i}", fabric="f0"))
    return eng


@pytest.fixture
def dirs(tmp_path: Path) -> DriverConfig:
    return DriverConfig(NODE, tmp_path / "state", tmp_path / "cdi", lock_timeout_s=5)


def _driver(
    cfg: DriverConfig,
    engine: Engine,
    profile: ChipProfile,
    store: ClaimStore,
    boot: str = "boot-1",
    **kw: object,
) -> Driver:
    return Driver(cfg, engine, {"darwin3": profile}, store, boot_id=lambda: boot, **kw)  # type: ignore[arg-type]


def _ref(uid: str) -> ClaimRef:
    return ClaimRef("ns", uid, f"c-{uid}")


def _prepare(driver: Driver, *uids: str) -> dict:
    return dict(asyncio.run(driver.prepare([_ref(u) for u in uids])))


def _unprepare(driver: Driver, *uids: str) -> dict:
    return dict(asyncio.run(driver.unprepare([_ref(u) for u in uids])))


@pytest.fixture
def engine2(darwin3: ChipProfile) -> Iterator[Engine]:
    with _engine(darwin3) as eng:
        yield eng


def test_prepare_creates_partition_cdi_checkpoint_and_status(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(claim("u1", [result("chip-1-quad-0", NODE)]))
    driver = _driver(dirs, engine2, darwin3, store)
    res = _prepare(driver, "u1")["u1"]
    assert res.error is None
    [dev] = res.devices
    assert (dev.pool_name, dev.device_name) == (NODE, "chip-1-quad-0")
    [part] = engine2.partitions()
    assert part.chip == 1
    assert len(part.cores) == 63
    spec = json.loads((dirs.cdi_dir / "darwin.snn.io-u1.json").read_text())
    assert dev.cdi_device_ids == (f"darwin.snn.io/partition={spec['devices'][0]['name']}",)
    assert driver.store.load().claims["u1"].phase is Phase.PREPARE_COMPLETED
    [entry] = store.claims[("ns", "c-u1")]["status"]["devices"]
    assert entry["data"]["cores"] == 63
    assert entry["data"]["partition"] == part.id
    # A second prepare answers from the checkpoint: no new partition, no new status write.
    assert _prepare(driver, "u1")["u1"] == res
    assert len(engine2.partitions()) == 1
    assert store.status_writes == 1


def test_unprepare_frees_everything_and_unknown_claims_succeed(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(claim("u1", [result("chip-0", NODE)]))
    driver = _driver(dirs, engine2, darwin3, store)
    assert _prepare(driver, "u1")["u1"].error is None
    assert _unprepare(driver, "u1", "never-seen") == {"u1": None, "never-seen": None}
    assert engine2.partitions() == []
    assert not (dirs.cdi_dir / "darwin.snn.io-u1.json").exists()
    assert "u1" not in driver.store.load().claims
    assert _unprepare(driver, "u1") == {"u1": None}


def test_one_bad_claim_never_fails_the_others(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(
        claim("good", [result("chip-0-domain-5", NODE)]),
        claim("overlap", [result("chip-0-quad-2", NODE)]),  # holds domain 5 too
        claim("unknown", [result("chip-7", NODE)]),
    )
    driver = _driver(dirs, engine2, darwin3, store)
    out = _prepare(driver, "good", "overlap", "unknown", "missing")
    assert out["good"].error is None
    assert "failed" in (out["overlap"].error or "")
    assert "publishes no device 'chip-7'" in (out["unknown"].error or "")
    assert "not found" in (out["missing"].error or "")
    assert [p.chip for p in engine2.partitions()] == [0]
    assert set(driver.store.load().claims) == {"good"}
    assert not (dirs.cdi_dir / "darwin.snn.io-overlap.json").exists()


def test_shared_claims_get_their_granted_keps_as_engine_budget(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(
        *(
            claim(u, [result("chip-0-shared-1", NODE, shareID=u, consumedCapacity={"keps": k})])
            for u, k in (("s1", "250"), ("s2", "1k"))
        )
    )
    driver = _driver(dirs, engine2, darwin3, store)
    out = _prepare(driver, "s1", "s2")
    assert [out[u].devices[0].share_id for u in ("s1", "s2")] == ["s1", "s2"]
    parts = sorted(engine2.partitions(), key=lambda p: p.keps_budget)
    assert [(p.shared, p.keps_budget) for p in parts] == [(True, 250), (True, 1000)]
    assert parts[0].cores == parts[1].cores


def test_partition_config_and_share_grants_reach_the_engine(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    """timestepUs, routingMode and a share's neurons and synapses become the engine's
    configuration of the partition, which refuses what they forbid."""
    head = {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "PartitionConfig"}
    grant = {"keps": "100", "neurons": "4096", "synapses": "20000"}
    store = ClaimStore(
        claim(
            "cfg",
            [result("chip-0-domain-2", NODE)],
            [opaque("FromClaim", {**head, "timestepUs": 1000, "routingMode": "multicast-tree"})],
        ),
        claim("plain", [result("chip-0-domain-3", NODE)]),
        claim(
            "share",
            [result("chip-1-shared-0", NODE, shareID="share", consumedCapacity=grant)],
        ),
    )
    driver = _driver(dirs, engine2, darwin3, store)
    out = _prepare(driver, "cfg", "plain", "share")
    assert all(not r.error for r in out.values()), out
    parts = {p.id: p for p in engine2.partitions()}
    by_claim = {
        u: next(p for p in parts.values() if (p.chip, len(p.cores)) == key)
        for u, key in (("cfg", (0, 16)), ("plain", (0, 16)), ("share", (1, 287)))
        if u != "plain"
    }
    cfg = engine2.config(by_claim["cfg"].id)
    assert (cfg.timestep_us, cfg.routing) == (1000, Routing.MULTICAST_TREE)
    plain = [engine2.config(p) for p in parts if p != by_claim["cfg"].id and parts[p].chip == 0]
    assert [(c.timestep_us, c.routing) for c in plain] == [(0, Routing.XY)]  # the defaults
    with pytest.raises(InvalidArgument, match="timestepUs"):
        engine2.load(by_claim["cfg"].id, _net(100, dt_ms=0.1))
    engine2.load(by_claim["cfg"].id, _net(100, dt_ms=1.0))
    share = engine2.config(by_claim["share"].id)
    assert (share.max_neurons, share.max_synapses) == (4096, 20000)
    with pytest.raises(CapacityExceeded, match="granted"):
        engine2.load(by_claim["share"].id, _net(5000))


def _net(n: int, dt_ms: float = 0.1) -> Network:
    src = np.arange(n, dtype=np.uint32)
    return Network(
        groups=(NeuronGroup(count=n),),
        src=src,
        dst=(src + 1) % n,
        weight=np.full(n, 0.1, np.float32),
        delay=np.ones(n, np.uint16),
        dt_ms=dt_ms,
    )


def test_crash_between_phases_is_rolled_back_and_redone_by_the_next_instance(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(claim("u1", [result("chip-0-half-0", NODE)]))

    def crash(uids: Sequence[str]) -> None:
        raise Crash(f"killed after PrepareStarted of {uids}")

    first = _driver(dirs, engine2, darwin3, store, after_started=crash)
    with pytest.raises(Crash):
        _prepare(first, "u1")
    assert first.store.load().claims["u1"].phase is Phase.PREPARE_STARTED

    second = _driver(dirs, engine2, darwin3, store)
    res = _prepare(second, "u1")["u1"]
    assert res.error is None
    assert len(engine2.partitions()) == 1
    assert second.store.load().claims["u1"].phase is Phase.PREPARE_COMPLETED


def test_reconcile_destroys_a_half_done_prepare_but_not_an_identical_completed_one(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    share = {"consumedCapacity": {"keps": "100"}}
    store = ClaimStore(
        claim("done", [result("chip-0-shared-0", NODE, shareID="a", **share)]),
        claim("half", [result("chip-0-shared-0", NODE, shareID="b", **share)]),
    )
    driver = _driver(dirs, engine2, darwin3, store)
    assert _prepare(driver, "done")["done"].error is None
    kept = engine2.partitions()[0].id
    # "half" got as far as its partition and CDI spec when the process died.
    plan_driver = _driver(dirs, engine2, darwin3, store, after_started=lambda u: None)
    from darwin_dra.plugin.plan import plan_claim

    body = store.get_claim("ns", "c-half")
    plan = plan_claim(body, "half", NODE, plan_driver.views())
    cp = plan_driver.store.load().started(plan)
    plan_driver.store.save(cp)
    engine2.create_partition(0, domains=list(range(18)), shared=True, keps_budget=100)
    (dirs.cdi_dir / "darwin.snn.io-half.json").write_text("{}")

    report = _driver(dirs, engine2, darwin3, store).reconcile()
    assert report.rolled_back == ["half"]
    assert [p.id for p in engine2.partitions()] == [kept]
    assert not (dirs.cdi_dir / "darwin.snn.io-half.json").exists()
    assert set(driver.store.load().claims) == {"done"}


def test_a_restarted_plugin_keeps_the_partitions_the_chip_still_holds(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(claim("u1", [result("chip-1-domain-7", NODE), result("chip-0", NODE, "b")]))
    assert _prepare(_driver(dirs, engine2, darwin3, store), "u1")["u1"].error is None
    before = engine2.partitions()
    spec = (dirs.cdi_dir / "darwin.snn.io-u1.json").read_bytes()
    # a new plugin process on the same chips (the chip host outlived the old one)
    report = _driver(dirs, engine2, darwin3, store).reconcile()
    assert (report.kept, report.recreated, report.lost, report.released) == (2, 0, [], [])
    assert engine2.partitions() == before
    assert (dirs.cdi_dir / "darwin.snn.io-u1.json").read_bytes() == spec


def test_a_restart_removes_the_socket_directories_of_no_recorded_claim(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    """A directory left by a claim released while its spike port restarted (or by an older
    plugin) goes at the next restart; the directories of recorded claims stay."""
    store = ClaimStore(claim("u1", [result("chip-0", NODE)]))
    assert _prepare(_driver(dirs, engine2, darwin3, store), "u1")["u1"].error is None
    mine = sorted(d.name for d in dirs.socket_root.iterdir())
    assert len(mine) == 1
    assert mine[0].startswith("u1-")
    stray = dirs.socket_root / "gone-snn-chip-0-shared-0"
    stray.mkdir()
    (stray / "spike.sock").write_text("")
    report = _driver(dirs, engine2, darwin3, store).reconcile()
    assert report.orphan_socket_dirs == [stray.name]
    assert sorted(d.name for d in dirs.socket_root.iterdir()) == mine
    assert _unprepare(_driver(dirs, engine2, darwin3, store), "u1") == {"u1": None}
    assert list(dirs.socket_root.iterdir()) == []


def _as_version_1(path: Path) -> None:
    """Rewrite a checkpoint the way the plugin before the typed plan wrote it."""
    import hashlib

    body = json.loads(path.read_text())
    body.pop("checksum")
    for c in body["claims"].values():
        plan = c.pop("plan")
        c["intent"] = plan
        c["devices"] = [
            {
                "requestNames": [i["request"]],
                "pool": plan["pool"],
                "device": i["device"],
                "cdiIds": d["cdiIds"],
                "enginePartition": d["partition"],
                "shareId": i["shareId"],
            }
            for i, d in zip(plan["devices"], c["devices"], strict=True)
        ]
    body["version"] = 1
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["checksum"] = hashlib.sha256(canonical).hexdigest()
    path.write_text(json.dumps(body))


def test_a_plugin_upgraded_over_a_version_1_checkpoint_keeps_its_claims(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    share = {"consumedCapacity": {"keps": "100"}, "shareID": "s"}
    store = ClaimStore(
        claim("u1", [result("chip-1-domain-7", NODE), result("chip-0-shared-0", NODE, **share)])
    )
    first = _prepare(_driver(dirs, engine2, darwin3, store), "u1")["u1"]
    assert first.error is None
    before = engine2.partitions()
    _as_version_1(dirs.checkpoint_path)

    upgraded = _driver(dirs, engine2, darwin3, store)
    report = upgraded.reconcile()
    assert (report.kept, report.recreated, report.released, report.failed) == (2, 0, [], {})
    assert engine2.partitions() == before
    written = json.loads(dirs.checkpoint_path.read_text())
    assert written["version"] == 2
    assert [len(d["cores"]) for d in written["claims"]["u1"]["devices"]] == [
        len(p.cores) for p in before
    ]
    # The same answer, and the same status: cores come from the chips where v1 kept none.
    assert _prepare(upgraded, "u1")["u1"] == first
    assert store.status_writes == 1
    assert _unprepare(upgraded, "u1") == {"u1": None}
    assert engine2.partitions() == []


def test_a_missing_partition_is_recreated_and_a_stray_one_released(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(claim("u1", [result("chip-1-domain-7", NODE), result("chip-0", NODE, "b")]))
    driver = _driver(dirs, engine2, darwin3, store)
    assert _prepare(driver, "u1")["u1"].error is None
    first, second = (d.partition_id for d in driver.store.load().claims["u1"].devices)
    assert first is not None
    engine2.destroy_partition(first)
    stray = engine2.create_partition(1, domains=[30])
    stray_cores = engine2.partition(stray).cores
    report = _driver(dirs, engine2, darwin3, store).reconcile()
    assert (report.kept, report.recreated, report.released) == (1, 1, [stray])
    record = driver.store.load().claims["u1"]
    parts = {p.id for p in engine2.partitions()}
    assert {d.partition_id for d in record.devices} == parts
    assert second in parts
    assert all(p.cores != stray_cores for p in engine2.partitions())  # ids are reused
    spec = json.loads((dirs.cdi_dir / "darwin.snn.io-u1.json").read_text())
    env = spec["devices"][0]["containerEdits"]["env"]
    assert f"DARWIN_PARTITION={record.devices[0].partition_id}" in env


def test_a_chip_reset_loses_the_claim_until_it_is_unprepared(
    dirs: DriverConfig, darwin3: ChipProfile
) -> None:
    store = ClaimStore(
        claim("u1", [result("chip-1-domain-7", NODE), result("chip-0", NODE, "b")]),
        claim("u2", [result("chip-1-domain-7", NODE)]),
    )
    with _engine(darwin3) as eng:
        assert _prepare(_driver(dirs, eng, darwin3, store), "u1")["u1"].error is None
        old = {d.partition_id for d in _driver(dirs, eng, darwin3, store)
               .store.load().claims["u1"].devices}  # fmt: skip
    with _engine(darwin3) as eng:  # the chip host restarted: a new boot, nothing on the chips
        driver = _driver(dirs, eng, darwin3, store)
        report = driver.reconcile()
        assert (report.kept, report.recreated, report.lost) == (0, 0, ["u1"])
        assert eng.partitions() == []
        cp = driver.store.load()
        assert lost_devices(cp, eng.boot_id) == {"chip-1-domain-7", "chip-0"}
        assert spike_sockets(cp, dirs.socket_root, eng.boot_id) == {}
        again = _prepare(driver, "u1")["u1"]
        assert "chip was reset" in str(again.error)
        # another claim takes the same device on the new chip; its partition may reuse an id
        assert _prepare(driver, "u2")["u2"].error is None
        [theirs] = eng.partitions()
        assert theirs.id in old
        assert _unprepare(driver, "u1") == {"u1": None}
        assert eng.partitions() == [theirs]  # the lost claim's ids were never used
        assert not (dirs.cdi_dir / "darwin.snn.io-u1.json").exists()
        assert lost_devices(driver.store.load(), eng.boot_id) == frozenset()


def test_a_claim_recorded_before_chip_boots_is_recreated(
    dirs: DriverConfig, darwin3: ChipProfile
) -> None:
    """An older plugin held the engine in its own process and recorded no chip boot: after the
    upgrade its partitions are gone and are made again, as that plugin did at each start."""
    store = ClaimStore(claim("u1", [result("chip-1-domain-7", NODE)]))
    with _engine(darwin3) as eng:
        driver = _driver(dirs, eng, darwin3, store)
        assert _prepare(driver, "u1")["u1"].error is None
        cp = driver.store.load()
        legacy = dataclasses.replace(cp.claims["u1"], chip_boot=None)
        driver.store.save(dataclasses.replace(cp, claims={"u1": legacy}))
    with _engine(darwin3) as eng:
        driver = _driver(dirs, eng, darwin3, store)
        report = driver.reconcile()
        assert (report.recreated, report.lost) == (1, [])
        assert driver.store.load().claims["u1"].chip_boot == eng.boot_id
        assert _unprepare(driver, "u1") == {"u1": None}
        assert eng.partitions() == []


def test_a_new_boot_discards_the_checkpoint(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(claim("u1", [result("chip-0", NODE)]))
    assert _prepare(_driver(dirs, engine2, darwin3, store), "u1")["u1"].error is None
    with _engine(darwin3) as fresh:
        driver = _driver(dirs, fresh, darwin3, store, boot="boot-2")
        report = driver.reconcile()
        assert (report.kept, report.recreated) == (0, 0)
        assert fresh.partitions() == []
        assert report.orphan_specs == ["u1"]


def test_status_write_failure_does_not_fail_the_claim(
    dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile
) -> None:
    store = ClaimStore(claim("u1", [result("chip-0", NODE)]))
    store.fail_status = Unavailable("API server away")
    driver = _driver(dirs, engine2, darwin3, store)
    assert _prepare(driver, "u1")["u1"].error is None
    assert driver.metrics.claim_status_errors._value.get() == 1


@pytest.mark.parametrize("count", [1, 10])
def test_node_prepare_resources_over_real_unix_sockets(
    tmp_path: Path, dirs: DriverConfig, engine2: Engine, darwin3: ChipProfile, count: int
) -> None:
    uids = [f"u{i}" for i in range(count)]
    store = ClaimStore(
        *(claim(u, [result(f"chip-{i % 2}-domain-{i}", NODE)]) for i, u in enumerate(uids))
    )
    driver = _driver(dirs, engine2, darwin3, store)

    async def scenario() -> None:
        server = PluginServer(
            PluginServerConfig(tmp_path / "reg", tmp_path / "plugins", probe_interval_s=60),
            driver,
            HealthHub(),
        )
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"unix:{server.paths.dra}") as ch:
                stub = v1_grpc.DRAPluginStub(ch)
                claims = [v1.Claim(namespace="ns", uid=u, name=f"c-{u}") for u in uids]
                resp = await stub.NodePrepareResources(
                    v1.NodePrepareResourcesRequest(claims=claims)
                )
                assert set(resp.claims) == set(uids)
                assert all(not r.error and len(r.devices) == 1 for r in resp.claims.values())
                assert len(engine2.partitions()) == count
                un = await stub.NodeUnprepareResources(
                    v1.NodeUnprepareResourcesRequest(claims=claims)
                )
                assert all(not r.error for r in un.claims.values())
                assert engine2.partitions() == []
        finally:
            await server.stop()

    asyncio.run(scenario())
