"""Partitions never overlap: the engine agrees with a plain ownership model on any sequence of
creates and destroys, by cores or by domains, exclusive or shared."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from darwin_dra.engine import Conflict, Engine, InvalidArgument, NotFound
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURE_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@dataclass
class Model:
    owner: dict[int, int] = field(default_factory=dict)  # core -> exclusive partition
    shared: dict[int, set[int]] = field(default_factory=dict)  # core -> shared partitions
    parts: dict[int, tuple[frozenset[int], bool]] = field(default_factory=dict)

    def can_create(self, cores: set[int], shared: bool) -> bool:
        if any(c in self.owner for c in cores):
            return False
        return shared or not any(self.shared.get(c) for c in cores)

    def create(self, pid: int, cores: set[int], shared: bool) -> None:
        self.parts[pid] = (frozenset(cores), shared)
        for c in cores:
            if shared:
                self.shared.setdefault(c, set()).add(pid)
            else:
                self.owner[c] = pid

    def destroy(self, pid: int) -> None:
        cores, shared = self.parts.pop(pid)
        for c in cores:
            if shared:
                self.shared[c].discard(pid)
            else:
                del self.owner[c]


def domain_cores(engine: Engine, domains: set[int]) -> set[int]:
    return {c.core for c in engine.cores(0) if c.domain in domains}


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("cores"), st.sets(st.integers(0, 40), min_size=1, max_size=6), st.booleans()
        ),
        st.tuples(
            st.just("domains"), st.sets(st.integers(0, 3), min_size=1, max_size=2), st.booleans()
        ),
        st.tuples(st.just("destroy"), st.integers(0, 7), st.booleans()),
    ),
    max_size=25,
)


@settings(max_examples=80, deadline=None, suppress_health_check=FIXTURE_OK)
@given(sequence=ops)
def test_engine_matches_ownership_model(
    engine: Engine, sequence: list[tuple[str, object, bool]]
) -> None:
    for p in engine.partitions():
        engine.destroy_partition(p.id)
    model = Model()
    all_cores = engine.cores(0)
    for kind, arg, shared in sequence:
        if kind == "destroy":
            live = sorted(model.parts)
            if not live:
                continue
            pid = live[int(arg) % len(live)]  # type: ignore[call-overload]
            engine.destroy_partition(pid)
            model.destroy(pid)
            continue
        ids = set(arg)  # type: ignore[call-overload]
        cores = ids if kind == "cores" else {c.core for c in all_cores if c.domain in ids}
        expect = model.can_create(cores, shared)
        try:
            if kind == "cores":
                pid = engine.create_partition(0, cores=sorted(ids), shared=shared)
            else:
                pid = engine.create_partition(0, domains=sorted(ids), shared=shared)
        except Conflict:
            assert not expect
            continue
        assert expect
        model.create(pid, cores, shared)
    # the engine's view equals the model's, core by core and partition by partition
    for core in engine.cores(0)[:64]:
        assert core.partition == model.owner.get(core.core)
    got = {p.id: (frozenset(p.cores), p.shared) for p in engine.partitions() if p.chip == 0}
    assert got == model.parts


def test_partition_errors(engine: Engine) -> None:
    with pytest.raises(InvalidArgument, match="core 575 does not exist"):
        engine.create_partition(0, cores=[575])
    with pytest.raises(InvalidArgument, match="listed twice"):
        engine.create_partition(0, cores=[3, 3])
    with pytest.raises(InvalidArgument, match="domain 36 does not exist"):
        engine.create_partition(0, domains=[36])
    with pytest.raises(NotFound, match="chip 9 does not exist"):
        engine.create_partition(9, cores=[1])
    with pytest.raises(ValueError, match="either cores or domains"):
        engine.create_partition(0)
    with pytest.raises(InvalidArgument, match="at least one core"):
        engine.create_partition(0, cores=[])
    with pytest.raises(NotFound, match="partition 77 does not exist"):
        engine.destroy_partition(77)
    a = engine.create_partition(0, domains=[5])
    with pytest.raises(Conflict, match=f"already belongs to partition {a}"):
        engine.create_partition(0, cores=[engine.partition(a).cores[0]])
    s = engine.create_partition(0, domains=[6], shared=True, keps_budget=250)
    s2 = engine.create_partition(0, domains=[6], shared=True, keps_budget=100)
    with pytest.raises(Conflict, match="shared partition"):
        engine.create_partition(0, domains=[6])
    assert engine.partition(s).keps_budget == 250
    assert engine.partition(s2).shared
    engine.destroy_partition(s)
    engine.destroy_partition(s2)
    engine.create_partition(0, domains=[6])  # free again
