"""The generated modules describe exactly the kubelet's wire format, and are up to date."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from darwin_dra.kubelet.proto_gen.dra_health_v1 import api_pb2 as h_v1
from darwin_dra.kubelet.proto_gen.dra_health_v1alpha1 import api_pb2 as h_v1alpha1
from darwin_dra.kubelet.proto_gen.dra_v1 import api_pb2 as dra_v1
from darwin_dra.kubelet.proto_gen.dra_v1beta1 import api_pb2 as dra_v1beta1
from darwin_dra.kubelet.proto_gen.pluginregistration_v1 import api_pb2 as reg_v1
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor

REPO = Path(__file__).resolve().parents[2]
T = FieldDescriptor

# Transcribed from k8s.io/kubelet pkg/apis/*/api.proto: (field name, number, type, repeated).
Fields = list[tuple[str, int, int, bool]]

REGISTRATION: dict[str, Fields] = {
    "PluginInfo": [
        ("type", 1, T.TYPE_STRING, False),
        ("name", 2, T.TYPE_STRING, False),
        ("endpoint", 3, T.TYPE_STRING, False),
        ("supported_versions", 4, T.TYPE_STRING, True),
    ],
    "RegistrationStatus": [
        ("plugin_registered", 1, T.TYPE_BOOL, False),
        ("error", 2, T.TYPE_STRING, False),
    ],
    "RegistrationStatusResponse": [],
    "InfoRequest": [],
}


def _dra(with_share_id: bool) -> dict[str, Fields]:
    device = [
        ("request_names", 1, T.TYPE_STRING, True),
        ("pool_name", 2, T.TYPE_STRING, False),
        ("device_name", 3, T.TYPE_STRING, False),
        ("cdi_device_ids", 4, T.TYPE_STRING, True),
    ]
    if with_share_id:
        device.append(("share_id", 5, T.TYPE_STRING, False))
    return {
        "NodePrepareResourcesRequest": [("claims", 1, T.TYPE_MESSAGE, True)],
        "NodePrepareResourcesResponse": [("claims", 1, T.TYPE_MESSAGE, True)],
        "NodePrepareResourceResponse": [
            ("devices", 1, T.TYPE_MESSAGE, True),
            ("error", 2, T.TYPE_STRING, False),
        ],
        "Device": device,
        "NodeUnprepareResourcesRequest": [("claims", 1, T.TYPE_MESSAGE, True)],
        "NodeUnprepareResourcesResponse": [("claims", 1, T.TYPE_MESSAGE, True)],
        "NodeUnprepareResourceResponse": [("error", 1, T.TYPE_STRING, False)],
        "Claim": [
            ("namespace", 1, T.TYPE_STRING, False),
            ("uid", 2, T.TYPE_STRING, False),
            ("name", 3, T.TYPE_STRING, False),
        ],
    }


HEALTH: dict[str, Fields] = {
    "NodeWatchResourcesRequest": [],
    "DeviceIdentifier": [
        ("pool_name", 1, T.TYPE_STRING, False),
        ("device_name", 2, T.TYPE_STRING, False),
    ],
    "DeviceHealth": [
        ("device", 1, T.TYPE_MESSAGE, False),
        ("health", 2, T.TYPE_ENUM, False),
        ("last_updated_time", 3, T.TYPE_INT64, False),
        ("health_check_timeout_seconds", 4, T.TYPE_INT64, False),
        ("message", 5, T.TYPE_STRING, False),
    ],
    "NodeWatchResourcesResponse": [("devices", 1, T.TYPE_MESSAGE, True)],
}

# package, service, {method: (input, output, server streaming)}, messages
CASES: list[tuple[ModuleType, str, str, dict[str, tuple[str, str, bool]], dict[str, Fields]]] = [
    (
        reg_v1,
        "pluginregistration",
        "Registration",
        {
            "GetInfo": ("InfoRequest", "PluginInfo", False),
            "NotifyRegistrationStatus": ("RegistrationStatus", "RegistrationStatusResponse", False),
        },
        REGISTRATION,
    ),
    *(
        (
            module,
            f"k8s.io.kubelet.pkg.apis.dra.{version}",
            "DRAPlugin",
            {
                "NodePrepareResources": (
                    "NodePrepareResourcesRequest",
                    "NodePrepareResourcesResponse",
                    False,
                ),
                "NodeUnprepareResources": (
                    "NodeUnprepareResourcesRequest",
                    "NodeUnprepareResourcesResponse",
                    False,
                ),
            },
            _dra(with_share_id=version == "v1"),
        )
        for module, version in ((dra_v1, "v1"), (dra_v1beta1, "v1beta1"))
    ),
    *(
        (
            module,
            package,
            "DRAResourceHealth",
            {
                "NodeWatchResources": (
                    "NodeWatchResourcesRequest",
                    "NodeWatchResourcesResponse",
                    True,
                )
            },
            HEALTH,
        )
        for module, package in ((h_v1alpha1, "v1alpha1"), (h_v1, "v1"))
    ),
]


def _fields(message: Descriptor) -> Fields:
    return [
        (f.name, f.number, f.type, f.is_repeated)
        for f in sorted(message.fields, key=lambda f: f.number)
    ]


@pytest.mark.parametrize(
    ("module", "package", "service", "methods", "messages"),
    CASES,
    ids=lambda v: v.__name__ if isinstance(v, ModuleType) else None,
)
def test_wire_matches_kubelet(
    module: ModuleType,
    package: str,
    service: str,
    methods: dict[str, tuple[str, str, bool]],
    messages: dict[str, Fields],
) -> None:
    fd: FileDescriptor = module.DESCRIPTOR
    assert fd.package == package
    assert set(fd.services_by_name) == {service}
    svc = fd.services_by_name[service]
    got = {m.name: (m.input_type.name, m.output_type.name, m.server_streaming) for m in svc.methods}
    assert got == methods
    assert not any(m.client_streaming for m in svc.methods)
    assert {n: _fields(d) for n, d in fd.message_types_by_name.items()} == messages


def test_dra_maps_are_keyed_by_string_claim_uid() -> None:
    for module in (dra_v1, dra_v1beta1):
        for name in ("NodePrepareResourcesResponse", "NodeUnprepareResourcesResponse"):
            entry = module.DESCRIPTOR.message_types_by_name[name].fields_by_name["claims"]
            assert entry.message_type.GetOptions().map_entry
            key, value = (entry.message_type.fields_by_name[n] for n in ("key", "value"))
            assert key.type == T.TYPE_STRING
            assert value.message_type.name == name.replace("Resources", "Resource")


def test_share_id_has_presence_in_v1() -> None:
    field = dra_v1.Device.DESCRIPTOR.fields_by_name["share_id"]
    assert field.has_presence  # "optional": absent and "" differ on the wire
    assert dra_v1.Device().HasField("share_id") is False


def test_health_enum_numbers() -> None:
    for module in (h_v1alpha1, h_v1):
        enum = module.DESCRIPTOR.enum_types_by_name["HealthStatus"]
        assert {v.name: v.number for v in enum.values} == {
            "UNKNOWN": 0,
            "HEALTHY": 1,
            "UNHEALTHY": 2,
        }


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_generate", REPO / "api" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_regenerating_gives_the_committed_files(tmp_path: Path) -> None:
    committed = REPO / "driver" / "darwin_dra" / "kubelet" / "proto_gen"
    generate = _load_generator()
    recorded = (committed / "VERSIONS").read_text()
    if generate.tool_versions() != recorded:
        pytest.skip(f"generator versions differ from the recorded ones:\n{recorded}")
    files = generate.generate(tmp_path)
    names = sorted(str(p.relative_to(tmp_path)) for p in files)
    on_disk = sorted(
        str(p.relative_to(committed))
        for p in committed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert names == on_disk
    for name in names:
        assert (tmp_path / name).read_text() == (committed / name).read_text(), name
