"""What the chart gives the controller for SpikingPipelines: the stage image (its own), and
the rights, only when pipelines are on."""

from __future__ import annotations

from typing import Any

from helm_chart import one, render

PIPELINE_RIGHTS = {
    ("darwin.snn.io", "spikingpipelines"): ["get", "list", "watch"],
    ("darwin.snn.io", "spikingpipelines/status"): ["patch"],
    ("darwin.snn.io", "spikingpipelines/finalizers"): ["update"],
    ("", "pods"): ["create", "delete", "get", "list", "watch"],
    ("", "pods/log"): ["get"],
    ("", "configmaps"): ["create", "get", "update"],
    ("", "secrets"): ["create", "delete"],
}


def _grants(objs: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    role = one(objs, "ClusterRole", "darwin-controller")
    out: dict[tuple[str, str], list[str]] = {}
    for rule in role["rules"]:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                out[(g, r)] = sorted({*out.get((g, r), []), *rule["verbs"]})
    return out


def _env(objs: list[dict[str, Any]]) -> dict[str, str]:
    dep = one(objs, "Deployment", "darwin-controller")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in c["env"]}


def test_pipelines_run_the_charts_image_with_least_rights() -> None:
    objs = render("d", None, "image.tag=1.2.3", "image.pullPolicy=Never")
    env = _env(objs)
    assert env["STAGE_IMAGE"] == "darwin-dra.local/darwin-dra:1.2.3"
    assert env["STAGE_PULL_POLICY"] == "Never"
    grants = _grants(objs)
    for key, verbs in PIPELINE_RIGHTS.items():
        assert grants[key] == verbs, key
    # Claims: the pipelines' own, read, created and deleted; Secrets never read.
    assert grants[("resource.k8s.io", "resourceclaims")] == [
        "create",
        "delete",
        "get",
        "list",
        "watch",
    ]
    assert "get" not in grants[("", "secrets")]


def test_pipelines_off_leaves_the_rights_and_the_image_out() -> None:
    objs = render("d", None, "controller.pipelines=false")
    assert "STAGE_IMAGE" not in _env(objs)
    grants = _grants(objs)
    assert not set(PIPELINE_RIGHTS) & set(grants)
    # Without pipelines the controller reads and writes no claim at all.
    assert ("resource.k8s.io", "resourceclaims") not in grants
    assert ("resource.k8s.io", "resourceclaims/status") not in grants
