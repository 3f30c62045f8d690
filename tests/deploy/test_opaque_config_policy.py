"""The chart's opaque-config admission policy is generated from the PartitionConfig schema
(the real API server's verdicts: tests/integration/test_deploy_chart.py)."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest
import yaml
from helm_chart import ROOT, by_kind, render


def _generator() -> ModuleType:
    path = ROOT / "deploy" / "helm" / "generate_opaque_config_policy.py"
    spec = importlib.util.spec_from_file_location("generate_opaque_config_policy", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
