"""The chip host's messages to and from the engine's dataclasses, field by field (pure)."""

from __future__ import annotations

import dataclasses

from darwin_dra.engine import PartitionInfo
from darwin_dra.hardware.model import ChipInfo, CoreInfo, DomainInfo
from darwin_dra.kubelet.proto_gen.chiphost_v1alpha1 import chiphost_pb2 as pb


def _names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def chip_to_pb(info: ChipInfo) -> pb.Chip:
    # the proto's fields are named as the dataclass's
    fields = {n: getattr(info, n) for n in _names(ChipInfo) if n != "domains"}
    domains = [pb.Domain(**dataclasses.asdict(d)) for d in info.domains]
    return pb.Chip(**fields, domains=domains)


def chip_from_pb(msg: pb.Chip) -> ChipInfo:
    fields = {n: getattr(msg, n) for n in _names(ChipInfo) if n != "domains"}
    fields["failed_link_ids"] = tuple(msg.failed_link_ids)
    domains = tuple(
        DomainInfo(**{n: getattr(d, n) for n in _names(DomainInfo)}) for d in msg.domains
    )
    return ChipInfo(**fields, domains=domains)


def core_to_pb(info: CoreInfo) -> pb.Core:
    return pb.Core(
        core=info.core,
        x=info.x,
        y=info.y,
        domain=info.domain,
        healthy=info.healthy,
        partition=-1 if info.partition is None else info.partition,
    )


def core_from_pb(msg: pb.Core) -> CoreInfo:
    return CoreInfo(
        core=msg.core,
        x=msg.x,
        y=msg.y,
        domain=msg.domain,
        healthy=msg.healthy,
        partition=None if msg.partition < 0 else int(msg.partition),
    )


def partition_to_pb(info: PartitionInfo) -> pb.Partition:
    return pb.Partition(
        id=info.id,
        chip=info.chip,
        cores=list(info.cores),
        shared=info.shared,
        keps_budget=info.keps_budget,
    )


def partition_from_pb(msg: pb.Partition) -> PartitionInfo:
    return PartitionInfo(
        id=msg.id,
        chip=msg.chip,
        cores=tuple(msg.cores),
        shared=msg.shared,
        keps_budget=msg.keps_budget,
    )
