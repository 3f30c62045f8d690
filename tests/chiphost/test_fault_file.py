"""The fault file is checked against its schema (api/chiphost/v1alpha1/faultlist.schema.json):
a bad entry is refused with the file and the field, a good one read as the engine takes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from darwin_dra import schema
from darwin_dra.chiphost import faults

HEAD = {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "FaultList"}


def test_the_fault_kinds_are_the_schemas() -> None:
    items = schema.load(faults.SCHEMA_FILE)["properties"]["faults"]["items"]
    assert items["properties"]["kind"]["enum"] == [k.value for k in faults.Kind]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "Pod"}, "f.yaml: kind: must be 'FaultList', got 'Pod'"),
        ({**HEAD, "faults": "all"}, "f.yaml: faults: must be a list, got string"),
        ({**HEAD, "faults": [{"chip": -1, "kind": "core"}]}, "faults[0].chip: must be an integer"),
        ({**HEAD, "faults": [{"chip": True, "kind": "core"}]}, "faults[0].chip: must be an"),
        ({**HEAD, "faults": [{"chip": 0, "kind": "fan"}]}, "faults[0].kind: must be one of 'core'"),
        ({**HEAD, "faults": [{"chip": 0}]}, "faults[0].kind: is required"),
        ({**HEAD, "faults": [{"chip": 0, "kind": "chip", "x": 1}]}, "faults[0].x: unknown field"),
    ],
)
def test_a_bad_fault_file_names_the_field(data: Any, message: str) -> None:
    with pytest.raises(faults.FaultFileError) as info:
        faults.parse(data, "f.yaml")
    assert message in str(info.value)


def test_good_entries_are_read_as_the_engine_takes_them(tmp_path: Path) -> None:
    data = {
        **HEAD,
        "faults": [
            {"chip": 1.0, "kind": "domain", "index": 5},
            {"chip": 0, "kind": "chip", "index": 3},
        ],
    }
    assert faults.parse(data, "f.yaml") == {
        faults.Fault(1, faults.Kind.DOMAIN, 5),
        faults.Fault(0, faults.Kind.CHIP, 0),
    }
    assert isinstance(next(iter(faults.parse(data, "f.yaml"))).chip, int)
    path = tmp_path / "faults.yaml"
    written = faults.edit(path, add=[faults.Fault(2, faults.Kind.LINK, 7)])
    assert faults.load(path) == written
    assert faults.parse(None, "empty") == frozenset()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x9e\x01kind: FaultList", "not UTF-8 text"),
        (b"[" * 3000 + b"]" * 3000, "nested too deeply"),
        (b"kind: [", "not YAML"),
        (b"kind: FaultList\nfaults: [{chip: .nan, kind: core}]\n", "must be a finite number"),
    ],
)
def test_a_file_that_is_no_fault_list_is_refused_with_the_reason(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "faults.yaml"
    path.write_bytes(data)
    with pytest.raises(faults.FaultFileError, match=message):
        faults.load(path)
