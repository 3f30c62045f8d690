"""plugin/restore.py: which live partition a restarted plugin keeps, recreates or releases."""

from __future__ import annotations

from darwin_dra.engine import PartitionInfo
from darwin_dra.plugin.restore import Action, Wanted, plan_restore
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
