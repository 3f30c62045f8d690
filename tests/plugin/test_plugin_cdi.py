"""CDI spec writing: names valid under the CDI rules, content, atomic files, listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from darwin_dra.plugin.cdi import (
    CLASS,
    CLASS_RE,
    DEVICE_RE,
    KIND,
    VENDOR,
    VENDOR_RE,
    CDIWriter,
    build_spec,
    cdi_device_id,
    cdi_device_name,
    compact_ranges,
)
from darwin_dra.plugin.config import PartitionConfig
from darwin_dra.plugin.records import DeviceIntent, Prepared
from hypothesis import given
from hypothesis import strategies as st

UID = "5f0c2a1e-9d5b-4c1e-8a77-0d9c6b1f2e3a"


SOCKETS = Path("/run/darwin/partitions")


def dev(request: str = "snn", device: str = "chip-0-quad-4", pid: int = 3) -> Prepared:
    intent = DeviceIntent(request, device, 0, (4,), False, 250, None, PartitionConfig())
    return Prepared(intent, partition_id=pid, cores=(16, 17, 18, 19, 40, 41, 42))


def test_vendor_and_class_follow_cdi_rules() -> None:
    assert VENDOR_RE.match(VENDOR)
    assert CLASS_RE.match(CLASS)
    assert KIND == "darwin.snn.io/partition"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", True),
        ("chip-0", True),
        ("0abc:def_1.x", True),
        ("-abc", False),
        ("abc-", False),
        ("ab/c", False),
        ("ab c", False),
        ("", False),
    ],
)
def test_device_name_rule_matches_the_cdi_parser(name: str, ok: bool) -> None:
    assert bool(DEVICE_RE.match(name)) is ok


def test_device_name_shape_and_id() -> None:
    name = cdi_device_name(UID, "snn", "chip-0-quad-4")
    assert name == f"{UID}-snn-chip-0-quad-4"
    assert cdi_device_id(name) == f"darwin.snn.io/partition={UID}-snn-chip-0-quad-4"
    # A subrequest's slash is not allowed in CDI names.
    assert cdi_device_name(UID, "stage/fast", "chip-1") == f"{UID}-stage-fast-chip-1"


@given(st.text(min_size=1, max_size=40), st.text(max_size=20), st.text(max_size=20))
def test_any_input_gives_a_valid_name_or_a_clear_error(uid: str, req: str, device: str) -> None:
    raw = f"{uid}-{req}-{device}"
    if not any(c.isascii() and c.isalnum() for c in raw):
        with pytest.raises(ValueError, match="no valid CDI device name"):
            cdi_device_name(uid, req, device)
        return
    name = cdi_device_name(uid, req, device)
    assert DEVICE_RE.match(name), name


def test_compact_ranges() -> None:
    assert compact_ranges([5, 0, 1, 2, 7, 8, 2]) == "0-2,5,7-8"
    assert compact_ranges(list(range(575))) == "0-574"
    assert compact_ranges([]) == ""


def test_spec_content() -> None:
    spec = build_spec(UID, [dev(), dev("train", "chip-1", 4)], SOCKETS)
    assert spec["cdiVersion"] == "0.6.0"
    assert spec["kind"] == "darwin.snn.io/partition"
    first = spec["devices"][0]
    assert first["name"] == f"{UID}-snn-chip-0-quad-4"
    env = dict(e.split("=", 1) for e in first["containerEdits"]["env"])
    container_dir = f"/var/run/darwin/partitions/{UID}-snn-chip-0-quad-4"
    fields = {
        "PARTITION": "3",
        "CORES": "16-19,40-42",
        "SPIKE_ENDPOINT": f"unix://{container_dir}/spike.sock",
        "KEPS": "250",
    }
    assert env == {f"DARWIN_{k}": v for k, v in fields.items()} | {
        f"DARWIN_SNN_{k}": v for k, v in fields.items()
    }
    [mount] = first["containerEdits"]["mounts"]
    assert mount["hostPath"] == f"/run/darwin/partitions/{UID}-snn-chip-0-quad-4"
    assert mount["containerPath"] == container_dir
    assert spec["devices"][1]["name"] == f"{UID}-train-chip-1"


def test_several_devices_in_one_container_keep_their_own_variables() -> None:
    # CDI applies every device's edits to the container: the plain DARWIN_* of one device would
    # hide the others', so each device also names its variables after its request (and its
    # index within the request from the second device on).
    spec = build_spec(
        UID,
        [dev("encoder", "chip-0", 1), dev("stage-2", "chip-1", 2), dev("stage-2", "chip-2", 7)],
        SOCKETS,
    )
    merged: dict[str, str] = {}
    for device in spec["devices"]:
        merged.update(e.split("=", 1) for e in device["containerEdits"]["env"])
    assert merged["DARWIN_ENCODER_PARTITION"] == "1"
    assert merged["DARWIN_STAGE_2_PARTITION"] == "2"
    assert merged["DARWIN_STAGE_2_1_PARTITION"] == "7"
    endpoints = {
        v
        for k, v in merged.items()
        if k.endswith("_SPIKE_ENDPOINT") and k != ("DARWIN_SPIKE_ENDPOINT")
    }
    assert len(endpoints) == 3  # one socket per device, none lost


def test_colliding_names_refused() -> None:
    with pytest.raises(ValueError, match="same CDI name"):
        build_spec(UID, [dev("a/b", "c"), dev("a-b", "c")], SOCKETS)


def test_write_remove_list(tmp_path: Path) -> None:
    writer = CDIWriter(tmp_path / "cdi", SOCKETS)
    assert writer.claims() == []
    ids = writer.write(UID, [dev()], namespace="ns")
    assert ids == [f"darwin.snn.io/partition={UID}-snn-chip-0-quad-4"]
    path = tmp_path / "cdi" / f"darwin.snn.io-{UID}.json"
    assert json.loads(path.read_text()) == build_spec(UID, [dev()], SOCKETS)
    assert path.stat().st_mode & 0o777 == 0o644
    # Rewriting replaces, never appends or leaves temp files around.
    writer.write(UID, [dev(pid=9)])
    assert json.loads(path.read_text())["devices"][0]["containerEdits"]["env"][0] == (
        "DARWIN_PARTITION=9"
    )
    writer.write("other-uid", [dev()])
    (tmp_path / "cdi" / "nvidia.com-gpu.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "cdi").iterdir()) == [
        "darwin.snn.io-5f0c2a1e-9d5b-4c1e-8a77-0d9c6b1f2e3a.json",
        "darwin.snn.io-other-uid.json",
        "nvidia.com-gpu.json",
    ]
    assert writer.claims() == sorted([UID, "other-uid"])
    assert writer.remove(UID)
    assert not writer.remove(UID)
    assert writer.claims() == ["other-uid"]


def test_unsafe_claim_uid_cannot_escape_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot name a CDI spec file"):
        CDIWriter(tmp_path, SOCKETS).write("../../etc/x", [dev()])
