"""Just enough of the protobuf wire format for the kubelet's Registration and DRA v1 messages.

The test plugin encodes by hand instead of generating classes: the production protos under api/
register the same proto package names in protobuf's global pool, and two copies would clash.
Field numbers follow k8s.io/kubelet/pkg/apis/{pluginregistration,dra,dra-health}/v1 (api.proto).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

_VARINT, _LEN = 0, 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _key(number, _LEN) + _varint(len(data)) + data


def _str_field(number: int, text: str) -> bytes:
    return _bytes_field(number, text.encode()) if text else b""


def _int_field(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _varint(value) if value else b""


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs; length-delimited values as bytes, varints as int."""
    pos = 0

    def read_varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < len(data):
        key = read_varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            yield number, read_varint()
        elif wire_type == _LEN:
            size = read_varint()
            yield number, data[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unexpected wire type {wire_type} for field {number}")


# pluginregistration.PluginInfo
def plugin_info(kind: str, name: str, endpoint: str, versions: list[str]) -> bytes:
    out = _str_field(1, kind) + _str_field(2, name) + _str_field(3, endpoint)
    return out + b"".join(_str_field(4, v) for v in versions)


# pluginregistration.RegistrationStatus
def registration_status(data: bytes) -> tuple[bool, str]:
    registered, error = False, ""
    for number, value in fields(data):
        if number == 1 and isinstance(value, int):
            registered = bool(value)
        elif number == 2 and isinstance(value, bytes):
            error = value.decode()
    return registered, error


@dataclass(frozen=True)
class Claim:
    namespace: str
    uid: str
    name: str


def claims_request(data: bytes) -> list[Claim]:
    """Node(Un)PrepareResourcesRequest{repeated Claim claims = 1}."""
    claims = []
    for number, value in fields(data):
        if number != 1 or not isinstance(value, bytes):
            continue
        parts = {n: v.decode() for n, v in fields(value) if isinstance(v, bytes)}
        claims.append(Claim(parts.get(1, ""), parts.get(2, ""), parts.get(3, "")))
    return claims


@dataclass(frozen=True)
class Device:
    request_names: list[str]
    pool_name: str
    device_name: str
    cdi_device_ids: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        out = b"".join(_str_field(1, r) for r in self.request_names)
        out += _str_field(2, self.pool_name) + _str_field(3, self.device_name)
        return out + b"".join(_str_field(4, c) for c in self.cdi_device_ids)


def _map_response(entries: dict[str, bytes]) -> bytes:
    # map<string, V> is a repeated entry message {string key = 1; V value = 2}.
    return b"".join(
        _bytes_field(1, _str_field(1, uid) + _bytes_field(2, value))
        for uid, value in entries.items()
    )


def prepare_response(results: dict[str, tuple[list[Device], str]]) -> bytes:
    """NodePrepareResourcesResponse: claim UID -> (devices, error)."""
    return _map_response(
        {
            uid: b"".join(_bytes_field(1, d.encode()) for d in devices) + _str_field(2, error)
            for uid, (devices, error) in results.items()
        }
    )


def unprepare_response(results: dict[str, str]) -> bytes:
    """NodeUnprepareResourcesResponse: claim UID -> error."""
    return _map_response({uid: _str_field(1, error) for uid, error in results.items()})


HEALTHY, UNHEALTHY = 1, 2


@dataclass(frozen=True)
class DeviceHealth:
    pool_name: str
    device_name: str
    health: int
    last_updated: int  # unix seconds
    timeout_seconds: int = 300
    message: str = ""


def watch_response(devices: list[DeviceHealth]) -> bytes:
    """NodeWatchResourcesResponse{repeated DeviceHealth devices = 1}."""
    out = b""
    for d in devices:
        ident = _str_field(1, d.pool_name) + _str_field(2, d.device_name)
        body = _bytes_field(1, ident) + _int_field(2, d.health) + _int_field(3, d.last_updated)
        body += _int_field(4, d.timeout_seconds) + _str_field(5, d.message)
        out += _bytes_field(1, body)
    return out
