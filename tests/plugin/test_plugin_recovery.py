"""plugin/recovery.py: which live partition a rollback destroys, and which a restarted plugin
keeps, recreates or releases."""

from __future__ import annotations

from pathlib import Path

from darwin_dra.engine import PartitionInfo
from darwin_dra.plugin.checkpoint import Checkpoint
from darwin_dra.plugin.config import PartitionConfig
from darwin_dra.plugin.records import ClaimPlan, DeviceIntent, Prepared
from darwin_dra.plugin.recovery import (
    Action,
    Wanted,
    lost_devices,
    orphan_socket_dirs,
    owned_partitions,
    plan_restore,
    rollback_victims,
    spike_sockets,
    wanted,
)
from hypothesis import given
from hypothesis import strategies as st

BOOT = "boot-b"


def _want(uid: str, partition: int | None, boot: str | None = BOOT, cores=(1, 2)) -> Wanted:
    return Wanted(uid, 0, 0, frozenset(cores), False, partition, boot)


def _live(pid: int, cores=(1, 2), chip: int = 0, shared: bool = False) -> PartitionInfo:
    return PartitionInfo(pid, chip, tuple(cores), shared, 0)


def test_each_case() -> None:
    wanted = [
        _want("keep", 1),
        _want("moved", 2),  # its id now names other cores: not the same partition
        _want("gone", 3),
        _want("reset", 4, boot="boot-a"),
        _want("legacy", 5, boot=None),
    ]
    live = [_live(1), _live(2, cores=(7,)), _live(4), _live(5), _live(9)]
    plan = plan_restore(wanted, live, BOOT)
    got = {d.wanted.uid: d.action for d in plan.decisions}
    assert got == {
        "keep": Action.KEEP,
        "moved": Action.RECREATE,
        "gone": Action.RECREATE,
        "reset": Action.LOST,
        "legacy": Action.KEEP,
    }
    # 4 exists but belongs to the new boot (someone else's, or a stray): never kept for "reset"
    assert plan.release == (2, 4, 9)
    assert plan.lost() == ["reset"]


def test_two_entries_never_keep_one_partition() -> None:
    plan = plan_restore([_want("a", 1), _want("b", 1)], [_live(1)], BOOT)
    assert [d.action for d in plan.decisions] == [Action.KEEP, Action.RECREATE]
    assert plan.release == ()


_cores = st.frozensets(st.integers(0, 5), min_size=1, max_size=3)
_wanted = st.builds(
    Wanted,
    uid=st.sampled_from("abcdef"),
    index=st.integers(0, 2),
    chip=st.integers(0, 1),
    cores=_cores,
    shared=st.booleans(),
    partition=st.none() | st.integers(0, 6),
    chip_boot=st.sampled_from([None, "boot-a", BOOT]),
)
_parts = st.builds(
    lambda pid, chip, cores, shared: PartitionInfo(pid, chip, tuple(sorted(cores)), shared, 0),
    st.integers(0, 6),
    st.integers(0, 1),
    _cores,
    st.booleans(),
)


@given(st.lists(_wanted, max_size=8), st.lists(_parts, max_size=6, unique_by=lambda p: p.id))
def test_against_the_rules(wanted: list[Wanted], live: list[PartitionInfo]) -> None:
    plan = plan_restore(wanted, live, BOOT)
    assert sorted((d.wanted for d in plan.decisions), key=repr) == sorted(wanted, key=repr)
    by_id = {p.id: p for p in live}
    kept = [d.wanted.partition for d in plan.decisions if d.action is Action.KEEP]
    assert len(kept) == len(set(kept))  # one partition serves one device
    for d in plan.decisions:
        w = d.wanted
        if w.chip_boot not in (None, BOOT):
            assert d.action is Action.LOST
        elif d.action is Action.KEEP:
            p = by_id[w.partition]  # type: ignore[index]
            assert (p.chip, frozenset(p.cores), p.shared) == (w.chip, w.cores, w.shared)
        else:
            assert d.action is Action.RECREATE
            p = by_id.get(w.partition)  # type: ignore[arg-type]
            assert (
                p is None
                or p.id in kept
                or (p.chip, frozenset(p.cores), p.shared)
                != (
                    w.chip,
                    w.cores,
                    w.shared,
                )
            )
    assert set(plan.release) == set(by_id) - set(kept)


# ---- rollback and the checkpoint's view ----


# Chip 0's domain d holds cores 10d .. 10d+9 in these tests.
def _cores(intent: DeviceIntent) -> frozenset[int]:
    return frozenset(c for d in intent.domains for c in range(10 * d, 10 * d + 10))


def _intent(device: str, domains: tuple[int, ...], shared: bool = False) -> DeviceIntent:
    return DeviceIntent("r", device, 0, domains, shared, 100, None, PartitionConfig())


def _plan(uid: str, *intents: DeviceIntent) -> ClaimPlan:
    return ClaimPlan(uid, "ns", f"c-{uid}", "node-a", intents)


def _done(cp: Checkpoint, uid: str, parts: dict[DeviceIntent, int], boot: str) -> Checkpoint:
    plan = _plan(uid, *parts)
    devices = tuple(Prepared(i, p, tuple(sorted(_cores(i)))) for i, p in parts.items())
    return cp.started(plan).completed(uid, devices, boot)


D0, D1, S0 = (
    _intent("chip-0-domain-0", (0,)),
    _intent("chip-0-domain-1", (1,)),
    _intent("chip-0-shared-0", (0, 1), shared=True),
)


def _part(pid: int, domains: tuple[int, ...], shared: bool = False) -> PartitionInfo:
    cores = tuple(c for d in domains for c in range(10 * d, 10 * d + 10))
    return PartitionInfo(pid, 0, cores, shared, 0)


def test_rollback_destroys_one_matching_partition_per_intent_and_never_an_owned_one() -> None:
    cp = _done(Checkpoint("host"), "done", {D0: 1}, BOOT)
    cp = cp.started(_plan("half", D0, D0, S0, D1))
    live = [_part(1, (0,)), _part(2, (0,)), _part(3, (0, 1)), _part(4, (0, 1), shared=True)]
    owned = owned_partitions(cp, BOOT)
    assert owned == {1}
    # D0 twice: 2 for the first, none left for the second (1 is "done"'s); S0 is the shared
    # one (3 has its cores but is exclusive); D1 was never made.
    assert rollback_victims(cp.claims["half"], live, owned, _cores) == [2, 4]


def test_a_lost_claims_partitions_are_not_owned() -> None:
    cp = _done(Checkpoint("host"), "old", {D0: 1, S0: 2}, "boot-a")
    cp = _done(cp, "new", {D1: 3}, BOOT)
    assert owned_partitions(cp, BOOT) == {3}
    assert lost_devices(cp, BOOT) == {"chip-0-domain-0", "chip-0-shared-0"}
    assert lost_devices(cp, "boot-a") == {"chip-0-domain-1"}
    cp = cp.started(_plan("half", D0))
    assert rollback_victims(
        cp.claims["half"], [_part(1, (0,))], owned_partitions(cp, BOOT), _cores
    ) == [1]  # id 1 of the old boot may be anyone's now


def test_spike_sockets_and_wanted_come_from_the_completed_claims(tmp_path: Path) -> None:
    cp = _done(Checkpoint("host"), "u1", {D0: 5, S0: 6}, BOOT)
    cp = _done(cp, "old", {D1: 7}, "boot-a")
    cp = cp.started(_plan("half", D1))
    assert spike_sockets(cp, tmp_path, BOOT) == {
        tmp_path / "u1-r-chip-0-domain-0" / "spike.sock": 5,
        tmp_path / "u1-r-chip-0-shared-0" / "spike.sock": 6,
    }
    got = sorted(wanted(cp, _cores), key=lambda w: (w.uid, w.index))
    assert [(w.uid, w.index, w.partition, w.chip_boot, w.shared) for w in got] == [
        ("old", 0, 7, "boot-a", False),
        ("u1", 0, 5, BOOT, False),
        ("u1", 1, 6, BOOT, True),
    ]
    assert got[2].cores == _cores(S0)


def test_orphan_socket_dirs_are_those_of_no_recorded_device() -> None:
    cp = _done(Checkpoint("host"), "u1", {D0: 5}, BOOT)
    cp = _done(cp, "old", {D1: 7}, "boot-a")  # lost in a reset: kept until unprepared
    cp = cp.started(_plan("half", S0))  # rolled back before the sweep, never swept by it
    present = [
        "u1-r-chip-0-domain-0",
        "old-r-chip-0-domain-1",
        "half-r-chip-0-shared-0",
        "u1-r-chip-0-shared-0",  # a device u1 does not have
        "u10-r-chip-0-domain-0",  # a uid that only starts with a recorded one
        "gone-r-chip-0-domain-0",
    ]
    assert orphan_socket_dirs(cp, present) == [
        "gone-r-chip-0-domain-0",
        "u1-r-chip-0-shared-0",
        "u10-r-chip-0-domain-0",
    ]
