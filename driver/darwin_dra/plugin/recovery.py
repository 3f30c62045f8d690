"""What to undo, keep or recreate after an interruption: the decisions of recovery (pure).

**Rollback** of a prepare that was interrupted (its checkpoint record says PrepareStarted): the
partition ids were never recorded, so for each intent the one live partition that matches it
(chip, cores, mode) and that no completed claim owns is destroyed (``rollback_victims``).

**Restore** on start: what a starting plugin does with the partitions the chip host holds.

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
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass
from pathlib import Path

from darwin_dra.engine import PartitionInfo
from darwin_dra.plugin.cdi import SPIKE_SOCKET, socket_dir
from darwin_dra.plugin.checkpoint import Checkpoint, ClaimRecord, Phase
from darwin_dra.plugin.records import DeviceIntent

# The cores of an intent's domains on this node's chips (the node's hardware view answers).
CoresOf = Callable[[DeviceIntent], frozenset[int]]


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


def _matches(chip: int, cores: frozenset[int], shared: bool, p: PartitionInfo) -> bool:
    """Whether a live partition is the one made for a device: same chip, cores and mode."""
    return p.chip == chip and frozenset(p.cores) == cores and p.shared == shared


def plan_restore(wanted: Iterable[Wanted], live: Sequence[PartitionInfo], boot: str) -> RestorePlan:
    by_id = {p.id: p for p in live}
    taken: set[int] = set()
    decisions = []
    for w in sorted(wanted, key=lambda w: (w.uid, w.index)):
        if w.chip_boot is not None and w.chip_boot != boot:
            decisions.append(Decision(w, Action.LOST))
            continue
        p = by_id.get(w.partition) if w.partition is not None else None
        if p is not None and p.id not in taken and _matches(w.chip, w.cores, w.shared, p):
            taken.add(p.id)
            decisions.append(Decision(w, Action.KEEP))
        else:
            decisions.append(Decision(w, Action.RECREATE))
    release = tuple(sorted(i for i in by_id if i not in taken))
    return RestorePlan(tuple(decisions), release)


def is_lost(record: ClaimRecord, boot: str) -> bool:
    """A completed claim whose partitions died in a chip reset."""
    return (
        record.phase is Phase.PREPARE_COMPLETED
        and record.chip_boot is not None
        and record.chip_boot != boot
    )


def lost_devices(cp: Checkpoint, boot: str) -> frozenset[str]:
    """The devices of claims prepared in an earlier chip boot: tainted until unprepared."""
    return frozenset(
        d.intent.device for r in cp.claims.values() if is_lost(r, boot) for d in r.devices
    )


def live_claims(cp: Checkpoint, boot: str) -> list[ClaimRecord]:
    """The completed claims whose partitions live in the chip's current boot."""
    return [
        r for r in cp.claims.values() if r.phase is Phase.PREPARE_COMPLETED and not is_lost(r, boot)
    ]


def owned_partitions(cp: Checkpoint, boot: str) -> set[int]:
    """The partitions completed claims of this chip boot hold: never a rollback's to destroy."""
    return {d.partition_id for r in live_claims(cp, boot) for d in r.devices}


def spike_sockets(cp: Checkpoint, socket_root: Path, boot: str) -> dict[Path, int]:
    """The spike.sock of every partition of a completed claim, and the partition it serves."""
    return {
        socket_dir(socket_root, r.uid, d.intent) / SPIKE_SOCKET: d.partition_id
        for r in live_claims(cp, boot)
        for d in r.devices
    }


def orphan_socket_dirs(cp: Checkpoint, present: Iterable[str]) -> list[str]:
    """The socket directories (names under the socket root) of no device of a claim the
    checkpoint knows: a claim released while its spike port was being started again, or by
    an older plugin. Lost claims keep theirs until the kubelet unprepares them."""
    known = {socket_dir(Path(), r.uid, i).name for r in cp.claims.values() for i in r.plan.devices}
    return sorted(name for name in present if name not in known)


def rollback_victims(
    record: ClaimRecord,
    live: Sequence[PartitionInfo],
    owned: Set[int],
    cores_of: CoresOf,
) -> list[int]:
    """The live partitions an interrupted prepare may have made: for each intent, the first
    partition matching it that no completed claim owns (one intent undoes at most one)."""
    taken = set(owned)
    out: list[int] = []
    for intent in record.plan.devices:
        cores = cores_of(intent)
        for info in live:
            if info.id not in taken and _matches(intent.chip, cores, intent.shared, info):
                taken.add(info.id)
                out.append(info.id)
                break
    return out


def wanted(cp: Checkpoint, cores_of: CoresOf) -> list[Wanted]:
    """Every device of every completed claim, as plan_restore takes them."""
    return [
        Wanted(
            uid=r.uid,
            index=i,
            chip=d.intent.chip,
            cores=cores_of(d.intent),
            shared=d.intent.shared,
            partition=d.partition_id,
            chip_boot=r.chip_boot,
        )
        for r in cp.claims.values()
        if r.phase is Phase.PREPARE_COMPLETED
        for i, d in enumerate(r.devices)
    ]
