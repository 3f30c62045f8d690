"""What a starting plugin does with the partitions the chip host holds (pure).

The chip host outlives the plugin, so a starting plugin finds the partitions of its prepared
claims still there, serving their workloads. For each device of each completed claim in the
checkpoint, the decision is:

- **keep**: the partition the checkpoint names exists in the chip's current boot, on the same
  chip, with the same cores and mode. Nothing is touched; its spike port keeps flowing.
- **lost**: the claim was prepared in an earlier boot of the chip host (a chip reset). Its
  partitions died with the chip, and an id it names may now belong to someone else, so it is
  never touched; its devices are tainted until the claim is unprepared.
- **recreate**: the partition is missing or different in the current boot (or the claim was
  recorded before boots were, by an older plugin whose engine died with it). A new partition
  is made from the claim's intent.

Every live partition that no kept device owns is **released**: it was made by a prepare that
never completed, or by something that is not this driver.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from darwin_dra.engine import PartitionInfo


class Action(enum.StrEnum):
    KEEP = "keep"
    RECREATE = "recreate"
    LOST = "lost"


@dataclass(frozen=True)
class Wanted:
    """One device of a completed claim, as the checkpoint has it."""

    uid: str
    index: int  # the device's position in the claim
    chip: int
    cores: frozenset[int]
    shared: bool
    partition: int | None
    chip_boot: str | None  # None: recorded by a plugin that did not record boots


@dataclass(frozen=True)
class Decision:
    wanted: Wanted
    action: Action


@dataclass(frozen=True)
class RestorePlan:
    decisions: tuple[Decision, ...]
    release: tuple[int, ...]

    def of(self, uid: str) -> list[Decision]:
        return sorted((d for d in self.decisions if d.wanted.uid == uid), key=_index)

    def lost(self) -> list[str]:
        return sorted({d.wanted.uid for d in self.decisions if d.action is Action.LOST})


def _index(d: Decision) -> int:
    return d.wanted.index


def _matches(w: Wanted, p: PartitionInfo) -> bool:
    return p.chip == w.chip and frozenset(p.cores) == w.cores and p.shared == w.shared


def plan_restore(wanted: Iterable[Wanted], live: Sequence[PartitionInfo], boot: str) -> RestorePlan:
    by_id = {p.id: p for p in live}
    taken: set[int] = set()
    decisions = []
    for w in sorted(wanted, key=lambda w: (w.uid, w.index)):
        if w.chip_boot is not None and w.chip_boot != boot:
            decisions.append(Decision(w, Action.LOST))
            continue
        p = by_id.get(w.partition) if w.partition is not None else None
        if p is not None and p.id not in taken and _matches(w, p):
            taken.add(p.id)
            decisions.append(Decision(w, Action.KEEP))
        else:
            decisions.append(Decision(w, Action.RECREATE))
    release = tuple(sorted(i for i in by_id if i not in taken))
    return RestorePlan(tuple(decisions), release)
