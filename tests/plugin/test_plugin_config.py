"""Opaque PartitionConfig: validation against the JSON schema (the one source of its rules),
merge order, and old checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from darwin_dra import schema
from darwin_dra.plugin.config import (
    REMOVED,
    ConfigEntry,
    ConfigError,
    PartitionConfig,
    entries_from_allocation,
    merge_for_request,
    merge_for_requests,
    parse_partition_config,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SCHEMA_PATH = (
    Path(__file__).resolve().parents[2] / "api/config/v1alpha1/partitionconfig.schema.json"
)
SCHEMA = json.loads(SCHEMA_PATH.read_text())
HEAD = {"apiVersion": "darwin.snn.io/v1alpha1", "kind": "PartitionConfig"}


def schema_accepts(obj: Any) -> bool:
    try:
        jsonschema.validate(obj, SCHEMA, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return False
    return True


def validator_accepts(obj: Any) -> bool:
    try:
        parse_partition_config(obj)
    except ConfigError:
        return False
    return True


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_package_ships_the_schema_of_api() -> None:
    assert schema.load("partitionconfig.schema.json") == SCHEMA


def test_the_dataclass_has_exactly_the_schemas_fields() -> None:
    wire = set(PartitionConfig(timestep_us=100).to_dict())
    assert wire == set(SCHEMA["properties"]) - set(REMOVED)
    assert set(REMOVED) == {"spikeEncoding", "isolation"}


def test_a_checkpoint_written_before_the_removal_still_loads() -> None:
    # Checkpoints of older plugins carry the removed fields beside the live ones.
    from darwin_dra.plugin.records import DeviceIntent

    intent = DeviceIntent.from_json(
        {
            "request": "r",
            "device": "chip-0-domain-3",
            "chip": 0,
            "domains": [3],
            "shared": False,
            "keps": 10,
            "shareId": None,
            "config": {**HEAD, "timestepUs": 100, "spikeEncoding": "aer", "isolation": "strict"},
        }
    )
    assert intent.config == PartitionConfig(timestep_us=100)


def test_defaults() -> None:
    assert parse_partition_config(dict(HEAD)) == PartitionConfig(
        timestep_us=None, routing_mode="xy", learning=False
    )
    defaults = {k: v["default"] for k, v in SCHEMA["properties"].items() if "default" in v}
    assert {**HEAD, **defaults} == PartitionConfig().to_dict()


@pytest.mark.parametrize(
    ("obj", "path", "reason"),
    [
        ({**HEAD, "timestepUs": 9}, "parameters.timestepUs", "between 10 and 10000, got 9"),
        ({**HEAD, "timestepUs": 10001}, "parameters.timestepUs", "got 10001"),
        ({**HEAD, "timestepUs": True}, "parameters.timestepUs", "10000, got boolean"),
        ({**HEAD, "timestepUs": "100"}, "parameters.timestepUs", "10000, got string"),
        ({**HEAD, "timestepUs": 10.5}, "parameters.timestepUs", "10000, got 10.5"),
        ({**HEAD, "routingMode": "mesh"}, "parameters.routingMode", "'xy', 'multicast-tree'"),
        ({**HEAD, "spikeEncoding": "aer"}, "parameters.spikeEncoding", "was removed"),
        (
            {**HEAD, "learning": "true"},
            "parameters.learning",
            "boolean (true or false), got string",
        ),
        ({**HEAD, "isolation": "strict"}, "parameters.isolation", "was removed"),
        ({**HEAD, "timestep_us": 100}, "parameters.timestep_us", "unknown field"),
        ({"kind": "PartitionConfig"}, "parameters.apiVersion", "must be 'darwin.snn.io/v1alpha1'"),
        ({**HEAD, "kind": "ChipConfig"}, "parameters.kind", "must be 'PartitionConfig'"),
        ({"apiVersion": "darwin.snn.io/v1alpha1"}, "parameters.kind", "is required"),
        ({**HEAD, "b": 1, "a": 2, "timestepUs": 1}, "parameters.a", "unknown field"),
        ({**HEAD, "timestepUs": float("nan")}, "parameters.timestepUs", "finite number"),
        ([1, 2], "parameters", "must be an object, got array"),
    ],
)
def test_refusals_name_the_field_and_reason(obj: Any, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_partition_config(obj)
    assert info.value.path == path
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: ")
    assert not schema_accepts(obj)


EXAMPLES_OK = [
    dict(HEAD),
    {**HEAD, "timestepUs": 10},
    {**HEAD, "timestepUs": 10000},
    {**HEAD, "timestepUs": 250.0},
    {**HEAD, "routingMode": "multicast-tree"},
    {**HEAD, "learning": True},
]


@pytest.mark.parametrize("obj", EXAMPLES_OK)
def test_examples_accepted_by_both(obj: dict[str, Any]) -> None:
    assert validator_accepts(obj)
    assert schema_accepts(obj)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 20_000) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(), inner, max_size=2),
    max_leaves=4,
)
field_values = {
    "timestepUs": st.integers(0, 12_000) | json_values,
    "routingMode": st.sampled_from(["xy", "multicast-tree", "XY"]) | json_values,
    "spikeEncoding": st.sampled_from(["aer", "rate", ""]) | json_values,
    "learning": st.booleans() | json_values,
    "isolation": st.sampled_from(["strict", "shared", "none"]) | json_values,
    "apiVersion": st.sampled_from(["darwin.snn.io/v1alpha1", "darwin.snn.io/v1"]),
    "kind": st.sampled_from(["PartitionConfig", "Other"]),
    "extra": json_values,
}


@st.composite
def candidate_configs(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.sets(st.sampled_from(sorted(field_values))))
    obj = {k: draw(field_values[k]) for k in keys}
    # Mostly keep the header so the field checks get exercised.
    if draw(st.booleans()):
        obj.update(HEAD)
    return obj


@settings(max_examples=400, deadline=None)
@given(candidate_configs())
def test_a_problem_is_named_exactly_when_the_schema_refuses(obj: dict[str, Any]) -> None:
    # The wording (darwin_dra.schema) covers every way the schema can refuse.
    assert validator_accepts(obj) == schema_accepts(obj), obj


@given(
    st.builds(
        PartitionConfig,
        timestep_us=st.none() | st.integers(10, 10_000),
        routing_mode=st.sampled_from(["xy", "multicast-tree"]),
        learning=st.booleans(),
    )
)
def test_round_trip(config: PartitionConfig) -> None:
    wire = json.loads(json.dumps(config.to_dict()))
    assert schema_accepts(wire)
    assert parse_partition_config(wire) == config


def _alloc_config(
    source: str,
    params: dict[str, Any],
    requests: list[str] | None = None,
    driver: str = "darwin.snn.io",
) -> dict[str, Any]:
    item: dict[str, Any] = {"source": source, "opaque": {"driver": driver, "parameters": params}}
    if requests is not None:
        item["requests"] = requests
    return item


def test_merge_order_class_first_then_claim_later_wins() -> None:
    # The allocation lists claim entries before class ones here on purpose: order comes from
    # the source, not the position.
    allocation = [
        _alloc_config("FromClaim", {**HEAD, "timestepUs": 50}),
        _alloc_config("FromClaim", {**HEAD, "timestepUs": 20, "learning": True}, ["train"]),
        _alloc_config("FromClass", {**HEAD, "timestepUs": 500}),
        _alloc_config("FromClass", {**HEAD, "routingMode": "multicast-tree"}),
        _alloc_config("FromClaim", {"anything": "goes"}, driver="other.example.com"),
    ]
    entries = entries_from_allocation(allocation)
    assert len(entries) == 4
    merged = merge_for_requests(entries, ["infer", "train", "train/big"])
    assert merged["infer"] == PartitionConfig(timestep_us=50, routing_mode="multicast-tree")
    assert merged["train"] == PartitionConfig(
        timestep_us=20, routing_mode="multicast-tree", learning=True
    )
    assert merged["train/big"] == merged["train"]


def test_an_invalid_entry_fails_even_when_it_does_not_apply() -> None:
    entries = [
        ConfigEntry("FromClaim", ("other",), {**HEAD, "routingMode": "bogus"}, "config[3]"),
    ]
    with pytest.raises(ConfigError) as info:
        merge_for_request(entries, "mine")
    assert info.value.path == "config[3].routingMode"


def test_malformed_allocation_entries() -> None:
    with pytest.raises(ConfigError, match=r"config\[0\]\.source"):
        entries_from_allocation([_alloc_config("FromNowhere", dict(HEAD))])
    with pytest.raises(ConfigError, match=r"config\[0\]\.requests"):
        entries_from_allocation([{**_alloc_config("FromClaim", dict(HEAD)), "requests": "a"}])
    entries = entries_from_allocation([_alloc_config("FromClaim", {"kind": "PartitionConfig"})])
    with pytest.raises(ConfigError) as info:
        merge_for_request(entries, "r")
    assert info.value.path == "status.allocation.devices.config[0].opaque.parameters.apiVersion"
