"""DRA node service (v1 and v1beta1): protobuf in, :class:`Preparer` call, protobuf out.

Errors are reported per claim, never as a failed RPC, so one bad claim does not fail the others
in the same call; the kubelet retries claims whose answer carries an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

import grpc
import structlog

from darwin_dra.kubelet.preparer import ClaimRef, Preparer, PrepareResult
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2 as v1
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2_grpc as v1_grpc
from darwin_dra.kubelet.proto_gen.dra_v1beta1 import api_pb2 as v1beta1
from darwin_dra.kubelet.proto_gen.dra_v1beta1 import api_pb2_grpc as v1beta1_grpc

log = structlog.get_logger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

# Service names as the kubelet expects them in PluginInfo.supported_versions.
V1_SERVICE = "v1.DRAPlugin"
V1BETA1_SERVICE = "v1beta1.DRAPlugin"


def claim_refs(claims: Iterable[v1.Claim | v1beta1.Claim]) -> tuple[list[ClaimRef], dict[str, str]]:
    """The claims of a request, each uid once, and the error of every uid the request names
    more than once under different names (the kubelet never does; a malformed call may, and
    preparing a uid twice in one call would let the second undo the first)."""
    first: dict[str, ClaimRef] = {}
    twice: dict[str, str] = {}
    for c in claims:
        ref = ClaimRef(namespace=c.namespace, uid=c.uid, name=c.name)
        seen = first.setdefault(ref.uid, ref)
        if seen != ref:
            twice[ref.uid] = (
                f"claim UID {ref.uid!r} is named twice in one request, as "
                f"{seen.namespace}/{seen.name} and {ref.namespace}/{ref.name}"
            )
    return [r for uid, r in first.items() if uid not in twice], twice


async def _prepare(preparer: Preparer, claims: Sequence[ClaimRef]) -> dict[str, PrepareResult]:
    if not claims:
        return {}
    try:
        results = dict(await preparer.prepare(claims))
    except Exception as exc:  # the kubelet must get an answer per claim, whatever broke
        log.exception("prepare failed", claims=[c.uid for c in claims])
        return {c.uid: PrepareResult(error=f"prepare failed: {exc}") for c in claims}
    for claim in claims:
        if claim.uid not in results:
            log.error("preparer gave no result", claim_uid=claim.uid, namespace=claim.namespace)
            results[claim.uid] = PrepareResult(error="driver returned no result for this claim")
    return results


async def _unprepare(preparer: Preparer, claims: Sequence[ClaimRef]) -> dict[str, str | None]:
    if not claims:
        return {}
    try:
        results = dict(await preparer.unprepare(claims))
    except Exception as exc:
        log.exception("unprepare failed", claims=[c.uid for c in claims])
        return {c.uid: f"unprepare failed: {exc}" for c in claims}
    for claim in claims:
        if claim.uid not in results:
            log.error("preparer gave no result", claim_uid=claim.uid, namespace=claim.namespace)
            results[claim.uid] = "driver returned no result for this claim"
    return results


def _prepare_response(pb: ModuleType, results: Mapping[str, PrepareResult], share_ids: bool) -> Any:
    response = pb.NodePrepareResourcesResponse()
    for uid, result in results.items():
        entry = response.claims[uid]
        entry.error = result.error or ""
        for dev in result.devices:
            device = entry.devices.add(
                request_names=dev.request_names,
                pool_name=dev.pool_name,
                device_name=dev.device_name,
                cdi_device_ids=dev.cdi_device_ids,
            )
            if share_ids and dev.share_id is not None:
                device.share_id = dev.share_id
    return response


class DRAPlugin:
    """The DRA node service of one API version: ``pb`` is that version's generated messages.
    ``share_ids``: whether the version carries a device's share_id (v1beta1 has none: a
    kubelet that old cannot use consumable capacity anyway)."""

    def __init__(self, preparer: Preparer, pb: ModuleType, share_ids: bool) -> None:
        self._preparer = preparer
        self._pb = pb
        self._share_ids = share_ids

    async def NodePrepareResources(  # noqa: N802 (gRPC method)
        self, request: Any, context: Context
    ) -> Any:
        claims, twice = claim_refs(request.claims)
        results = await _prepare(self._preparer, claims)
        results.update({uid: PrepareResult(error=e) for uid, e in twice.items()})
        return _prepare_response(self._pb, results, self._share_ids)

    async def NodeUnprepareResources(  # noqa: N802 (gRPC method)
        self, request: Any, context: Context
    ) -> Any:
        claims, twice = claim_refs(request.claims)
        results: dict[str, str | None] = {**await _unprepare(self._preparer, claims), **twice}
        response = self._pb.NodeUnprepareResourcesResponse()
        for uid, error in results.items():
            response.claims[uid].error = error or ""
        return response


def add_dra_services(server: grpc.aio.Server, preparer: Preparer) -> list[str]:
    """Register both DRA versions; returns the service names to advertise."""
    versions: tuple[tuple[ModuleType, ModuleType, bool, str], ...] = (
        (v1, v1_grpc, True, V1_SERVICE),
        (v1beta1, v1beta1_grpc, False, V1BETA1_SERVICE),
    )
    for pb, pb_grpc, share_ids, _ in versions:
        pb_grpc.add_DRAPluginServicer_to_server(DRAPlugin(preparer, pb, share_ids), server)
    return [service for *_, service in versions]
