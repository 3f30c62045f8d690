"""The chart's parts generated from the schemas in api/: the opaque-config admission policy (from
the PartitionConfig schema; the API server's verdicts: tests/integration/test_deploy_chart.py)
and the inventory part of values.schema.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from helm_chart import CHART, ROOT, by_kind, generator, helm, render


def _generator() -> ModuleType:
    return generator("generate_opaque_config_policy")


def test_the_committed_policy_is_a_fresh_generation() -> None:
    gen = _generator()
    assert gen.TEMPLATE.read_text() == gen.render(), (
        "the policy is generated: run .venv/bin/python deploy/helm/generate_opaque_config_policy.py"
    )


def test_the_rendered_policy_checks_every_field_of_the_schema() -> None:
    from darwin_dra import schema
    from darwin_dra.plugin.config import SCHEMA_FILE

    policies = [
        p
        for p in by_kind(render(), "ValidatingAdmissionPolicy")
        if "opaque" in p["metadata"]["name"]
    ]
    assert len(policies) == 1
    policy = policies[0]
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    properties = schema.load(SCHEMA_FILE)["properties"]
    assert yaml.safe_load(variables["known"]) == list(properties)
    for key in properties:
        assert f'e.at + ".{key}: ' in variables["problems"], key


@pytest.mark.parametrize(
    "sub",
    [
        {"type": "string", "pattern": "^a"},
        {"type": "integer", "multipleOf": 2},
        {"anyOf": [{"type": "integer"}]},
        {"enum": ["a", 1]},
    ],
)
def test_a_keyword_without_cel_is_an_error_not_skipped(sub: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no CEL for the schema keywords"):
        _generator().value_check(sub, "x")


def test_the_charts_inventory_schema_is_a_fresh_generation() -> None:
    module = generator("generate_values_schema")
    assert module.VALUES_SCHEMA.read_text() == module.render(), (
        "inventory part generated: run .venv/bin/python deploy/helm/generate_values_schema.py"
    )


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda inv: inv["nodes"][0]["fabrics"][0].update(id="Wafer_0"), "does not match"),
        (lambda inv: inv["nodes"][0]["fabrics"][0]["chips"][0].update(count=0), "minimum"),
        (lambda inv: inv["nodes"][0].update(colour="red"), "additional properties"),
    ],
)
def test_helm_refuses_an_inventory_the_plugin_would_refuse(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], complaint: str
) -> None:
    from darwin_dra.hardware.errors import HardwareFileError
    from darwin_dra.hardware.inventory import load_inventory
    from darwin_dra.hardware.profiles import load_profiles

    inventory = yaml.safe_load((ROOT / "deploy" / "examples" / "inventory.yaml").read_text())
    edit(inventory)
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"inventory": inventory}))
    with pytest.raises(HardwareFileError):
        load_inventory(_write(tmp_path / "inventory.yaml", inventory), load_profiles())
    proc = helm("template", "x", str(CHART), "--namespace", "d", "-f", str(values), check=False)
    assert proc.returncode != 0
    assert complaint in proc.stderr


def _write(path: Path, doc: Any) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path
