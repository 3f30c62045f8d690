"""The SpikingPipeline CRD in the chart is the one generated from api/pipeline/, and it is
structural (the API server's rule: every node typed, no untyped leaves)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from helm_chart import by_kind, generator, helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "darwin-dra"


def _generator() -> ModuleType:
    return generator("generate_crd")


def test_chart_crd_is_generated_from_the_api_schema() -> None:
    gen = _generator()
    hint = "run .venv/bin/python deploy/helm/generate_crd.py"
    assert gen.TARGET.read_text() == gen.render(), hint


def test_helm_installs_the_crd_from_its_crds_directory() -> None:
    out = helm("template", "darwin", str(CHART), "--include-crds", "-n", "darwin-dra").stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    [crd] = by_kind(docs, "CustomResourceDefinition")
    assert crd == _generator().crd()
    # Without --include-crds (what `helm template | kubectl apply` users get by default) the
    # templates hold no copy of it: one source.
    plain = helm("template", "darwin", str(CHART), "-n", "darwin-dra").stdout
    assert "CustomResourceDefinition" not in plain


def _untyped(node: Any, where: str) -> list[str]:
    if not isinstance(node, dict):
        return []
    bad = []
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        bad.append(where)
    for name, child in (node.get("properties") or {}).items():
        bad += _untyped(child, f"{where}.{name}")
    if isinstance(node.get("items"), dict):
        bad += _untyped(node["items"], f"{where}[]")
    if isinstance(node.get("additionalProperties"), dict):
        bad += _untyped(node["additionalProperties"], f"{where}{{}}")
    return bad


def test_schema_is_structural_and_status_is_a_subresource() -> None:
    crd = _generator().crd()
    [version] = crd["spec"]["versions"]
    assert _untyped(version["schema"]["openAPIV3Schema"], "") == []
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    for wanted in ("Ready", "Stages", "Nodes", "Cross-node spikes/s", "Age"):
        assert wanted in columns
