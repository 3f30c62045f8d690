"""The plugin's records of a claim: what a prepare sets out to do and what it made (pure data).

A ``ClaimPlan`` (from plan.py) lists one ``DeviceIntent`` per allocated device: enough to make,
find again or undo its engine partition. A ``Prepared`` is one device once made: its intent, the
engine partition, the partition's cores and its CDI device ids. The checkpoint stores both, the
CDI spec and the claim's ``status.devices`` are written from ``Prepared``, and the kubelet's
answer is ``Prepared.to_kubelet``: one record of a prepared device, no copies to keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from darwin_dra.kubelet.preparer import PreparedDevice
from darwin_dra.kubetypes import Obj
from darwin_dra.pipeline.chiproutes import RouteEntry
from darwin_dra.plugin.config import REMOVED, PartitionConfig, parse_partition_config


@dataclass(frozen=True)
class DeviceIntent:
    """One allocated device turned into an engine partition request."""

    request: str
    device: str
    chip: int
    domains: tuple[int, ...]
    shared: bool
    keps: int  # thousands of events/s: the grant (shared) or the partition's share (exclusive)
    share_id: str | None
    config: PartitionConfig
    neurons: int = 0  # a share's granted neurons (consumedCapacity.neurons); 0: not limited
    synapses: int = 0  # a share's granted synapses (consumedCapacity.synapses); 0: not limited
    # A capacity device's granted domains (consumedCapacity.domains): the plugin picks which
    # (placement.py) and ``domains`` holds them once picked; 0: a named partition.
    wanted_domains: int = 0

    @property
    def picked(self) -> bool:
        """A capacity grant whose domains are chosen (what the engine partition is made of)."""
        return self.wanted_domains > 0 and len(self.domains) == self.wanted_domains

    def to_json(self) -> Obj:
        return {
            "request": self.request,
            "device": self.device,
            "chip": self.chip,
            "domains": list(self.domains),
            "shared": self.shared,
            "keps": self.keps,
            "shareId": self.share_id,
            "config": self.config.to_dict(),
            "neurons": self.neurons,
            "synapses": self.synapses,
            "wantedDomains": self.wanted_domains,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DeviceIntent:
        return cls(
            request=str(obj["request"]),
            device=str(obj["device"]),
            chip=int(obj["chip"]),
            domains=tuple(int(d) for d in obj["domains"]),
            shared=bool(obj["shared"]),
            keps=int(obj["keps"]),
            share_id=obj.get("shareId"),
            # checkpoints written before REMOVED fields were refused may still carry them
            config=parse_partition_config(
                {k: v for k, v in obj["config"].items() if k not in REMOVED}, "intent.config"
            ),
            neurons=int(obj.get("neurons", 0)),
            synapses=int(obj.get("synapses", 0)),
            wanted_domains=int(obj.get("wantedDomains", 0)),
        )


@dataclass(frozen=True)
class ClaimPlan:
    """What a prepare of one claim on this node sets out to do (pool = node name)."""

    uid: str
    namespace: str
    name: str
    pool: str
    devices: tuple[DeviceIntent, ...]
    routes: tuple[RouteEntry, ...] = ()  # on the chip's router, between the claim's devices

    def intent(self) -> Obj:
        """The JSON form the checkpoint keeps: enough to redo or undo the prepare."""
        out: Obj = {"pool": self.pool, "devices": [d.to_json() for d in self.devices]}
        if self.routes:  # (absent: as checkpoints written before routes)
            out["routes"] = [r.to_json() for r in self.routes]
        return out

    @classmethod
    def from_intent(
        cls, uid: str, namespace: str, name: str, intent: Mapping[str, Any]
    ) -> ClaimPlan:
        return cls(
            uid=uid,
            namespace=namespace,
            name=name,
            pool=str(intent["pool"]),
            devices=tuple(DeviceIntent.from_json(d) for d in intent["devices"]),
            routes=tuple(RouteEntry.from_json(r) for r in intent.get("routes") or ()),
        )


@dataclass(frozen=True)
class Prepared:
    """One device of a claim as this node prepared it."""

    intent: DeviceIntent
    partition_id: int  # the engine's partition
    cores: tuple[int, ...]  # the partition's cores, as the engine made them
    cdi_ids: tuple[str, ...] = ()  # set once the claim's CDI spec is written

    def to_kubelet(self, pool: str) -> PreparedDevice:
        """The kubelet's answer for this device."""
        return PreparedDevice(
            request_names=(self.intent.request,),
            pool_name=pool,
            device_name=self.intent.device,
            cdi_device_ids=self.cdi_ids,
            share_id=self.intent.share_id,
        )
